package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
)

// TestCheckRefusesOverflowingDurations: max_duration goes through the same
// parser as chat input; 213504d used to wrap around to 25m26s.
func TestCheckRefusesOverflowingDurations(t *testing.T) {
	cfg := `
chat:
  console:
    users: {alice: alice@example.com}
providers:
  dryrun: {}
rotations:
  platform:
    members: [bob@example.com]
    timezone: Europe/Berlin
    grace: 400d
roles:
  prod-admin:
    description: admin
    provider: dryrun
    group: g
    max_duration: 213504d
    approvers: {rotation: platform}
`
	var out, errb bytes.Buffer
	if code := run(context.Background(), []string{"check", "--config", writeFile(t, cfg)}, nil, &out, &errb); code != 1 {
		t.Fatalf("exit %d, want 1; stderr:\n%s", code, errb.String())
	}
	for _, want := range []string{
		`roles.prod-admin.max_duration: "213504d" is longer than 366d, the longest duration accepted`,
		`rotations.platform.grace: "400d" is longer than 366d`,
	} {
		if !strings.Contains(errb.String(), want) {
			t.Errorf("missing %q in:\n%s", want, errb.String())
		}
	}
}
