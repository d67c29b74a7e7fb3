package main

import (
	"strings"
	"testing"

	"github.com/accessbot/accessbot/config"
)

// limits.roles_per_request caps the roles of one request: unset keeps
// the service default, a number sets it, anything under 1 is refused.
func TestRolesPerRequestConfig(t *testing.T) {
	base := "chat:\n  console:\n    users: {alice: alice@example.com}\nproviders:\n  dryrun: {}\n" +
		"roles:\n  prod-admin:\n    description: admin\n    provider: dryrun\n    group: g\n    max_duration: 4h\n" +
		"    approvers: {users: [dave@example.com]}\n"
	env := func(string) (string, bool) { return "", false }
	l, err := config.Parse([]byte(base), env)
	if err != nil || l.Limits.RolesPerRequest != 0 {
		t.Fatalf("no limits section: %v, %+v; want the service default (zero)", err, l.Limits)
	}
	l, err = config.Parse([]byte(base+"limits: {roles_per_request: 3}\n"), env)
	if err != nil || l.Limits.RolesPerRequest != 3 {
		t.Fatalf("roles_per_request 3: %v, %+v", err, l.Limits)
	}
	_, err = config.Parse([]byte(base+"limits: {roles_per_request: 0}\n"), env)
	if err == nil || !strings.Contains(err.Error(), "limits.roles_per_request: 0: a request names at least one role") {
		t.Errorf("roles_per_request 0: %v", err)
	}
}
