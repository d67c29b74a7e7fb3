package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
)

// TestCheckWarnsOfOpenRoles: check accepts a role without requesters but
// prints a WARNING at its key path; a role with requesters gets none.
func TestCheckWarnsOfOpenRoles(t *testing.T) {
	cfg := checkBase + `  gated: {description: d, provider: dryrun, group: g2, max_duration: 1h, approvers: {users: [bob@example.com]},
    requesters: {users: [alice@example.com]}, reason_pattern: '^INC-'}
`
	var out, errb bytes.Buffer
	if code := run(context.Background(), []string{"check", "--config", writeFile(t, cfg)}, nil, &out, &errb); code != 0 {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	if !strings.Contains(out.String(), "WARNING roles.r.requesters: absent, so everyone in chat may request this role") ||
		strings.Contains(out.String(), "roles.gated.requesters") {
		t.Fatalf("output:\n%s", out.String())
	}
	cfg = checkBase + "  bad: {description: d, provider: dryrun, group: g2, max_duration: 1h, approvers: {users: [bob@example.com]}, reason_pattern: '(x'}\n"
	out.Reset()
	errb.Reset()
	if code := run(context.Background(), []string{"check", "--config", writeFile(t, cfg)}, nil, &out, &errb); code != 1 ||
		!strings.Contains(errb.String()+out.String(), "roles.bad.reason_pattern: not a valid regular expression") {
		t.Fatalf("exit %d:\n%s%s", code, out.String(), errb.String())
	}
}
