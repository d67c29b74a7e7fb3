package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
)

// TestCheckShowsReminders: check prints a role's reminders and escalation
// under its line (the demo policy has both).
func TestCheckShowsReminders(t *testing.T) {
	var out, errb bytes.Buffer
	if code := run(context.Background(), []string{"check", "--config", "manifests/examples/demo.yaml"}, nil, &out, &errb); code != 0 {
		t.Fatalf("exit %d\n%s", code, errb.String())
	}
	want := "  role prod-admin: dryrun group prod-admins, up to 4h, 1 approval(s) from on-call of platform, dave@example.com\n" +
		"    reminds undecided approvers after 5m (then 2x, 4x; 3 at most); escalates to erin@example.com after 15m\n"
	if !strings.Contains(out.String(), want) {
		t.Fatalf("check output:\n%s", out.String())
	}
}
