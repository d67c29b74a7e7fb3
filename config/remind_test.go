package config

import (
	"slices"
	"strings"
	"testing"
	"time"
)

const remindBase = `
chat:
  console: {users: {a: a@example.com}}
providers:
  dryrun: {}
rotations:
  platform: {members: [bob@example.com], handoff: "monday 09:00", timezone: UTC}
roles:
  r:
    description: d
    provider: dryrun
    group: g
    max_duration: 1h
    approvers: {users: [a@example.com]}
`

// TestRemindKeys: remind_after, escalate_after and escalate_to build the
// role's reminders and escalation; each mistake is reported at its key
// path.
func TestRemindKeys(t *testing.T) {
	l, err := Parse([]byte(remindBase+`    remind_after: 10m
    escalate_after: 30m
    escalate_to: {users: [Head@Example.com], rotations: [platform]}
`), noEnv)
	if err != nil {
		t.Fatal(err)
	}
	r := l.Policy.Roles["r"]
	if r.RemindAfter != 10*time.Minute || r.EscalateAfter != 30*time.Minute ||
		!slices.Equal(r.EscalateUsers, []string{"head@example.com"}) || !slices.Equal(r.EscalateRotations, []string{"platform"}) {
		t.Fatalf("role %+v", r)
	}
	if l, err := Parse([]byte(remindBase), noEnv); err != nil || l.Policy.Roles["r"].RemindAfter != 0 || l.Policy.Roles["r"].EscalateAfter != 0 {
		t.Fatalf("without the keys: %v", err)
	}
	for name, tc := range map[string]struct{ keys, want string }{
		"bad duration":        {"    remind_after: soon\n", `roles.r.remind_after: "soon" is not a duration`},
		"too short":           {"    remind_after: 10s\n", `roles.r.remind_after: "10s" is shorter than the minimum of 1m`},
		"after the ttl":       {"    remind_after: 2h\n", "roles.r.remind_after: 2h is not shorter than pending_ttl 1h"},
		"escalate after ttl":  {"    pending_ttl: 30m\n    escalate_after: 30m\n    escalate_to: {users: [h@example.com]}\n", "roles.r.escalate_after: 30m is not shorter than pending_ttl 30m"},
		"nobody to escalate":  {"    escalate_after: 30m\n", "roles.r.escalate_to: missing"},
		"no escalation time":  {"    escalate_to: {users: [h@example.com]}\n", "roles.r.escalate_after: missing"},
		"unknown rotation":    {"    escalate_after: 30m\n    escalate_to: {rotations: [nope]}\n", `roles.r.escalate_to.rotations[0]: unknown rotation "nope" (rotations: platform)`},
		"bad user":            {"    escalate_after: 30m\n    escalate_to: {users: [head]}\n", `roles.r.escalate_to.users[0]: "head" is not an email address`},
		"unknown key":         {"    escalate_after: 30m\n    escalate_to: {user: [h@example.com]}\n", "roles.r.escalate_to.user"},
		"non-ascii user":      {"    escalate_after: 30m\n    escalate_to: {users: [\"ſam@example.com\"]}\n", "roles.r.escalate_to.users[0]"},
		"negative-ish number": {"    escalate_after: -5m\n    escalate_to: {users: [h@example.com]}\n", `roles.r.escalate_after: "-5m" is not a duration`},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := Parse([]byte(remindBase+tc.keys), noEnv)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("want %q, got:\n%v", tc.want, err)
			}
		})
	}
}
