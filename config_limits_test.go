package main

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/accessbot/accessbot/config"
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

// TestCheckRefusesNonASCIIIdentities: ſ (U+017F) and the Kelvin sign
// (U+212A) fold to s and k; check names each such identity by key path.
func TestCheckRefusesNonASCIIIdentities(t *testing.T) {
	cfg := "chat:\n  console:\n    users: {sam: \"\u017fam@example.com\"}\nproviders:\n  dryrun: {}\n" +
		"rotations:\n  platform:\n    members: [bob@example.com, \"\u017fam@example.com\"]\n    timezone: Europe/Berlin\n" +
		"roles:\n  prod-admin:\n    description: admin\n    provider: dryrun\n    group: g\n    max_duration: 4h\n" +
		"    approvers: {rotation: platform, users: [\"\u212aate@example.com\"]}\n" +
		"admins: [\"\u017fam@example.com\", kate@example.com]\nbreak_glass:\n  allowed: [\"\u212aate@example.com\"]\n"
	var out, errb bytes.Buffer
	if code := run(context.Background(), []string{"check", "--config", writeFile(t, cfg)}, nil, &out, &errb); code != 1 {
		t.Fatalf("exit %d, want 1; stderr:\n%s", code, errb.String())
	}
	for _, want := range []string{
		"chat.console.users.sam: \"\u017fam@example.com\" contains 'ſ' (U+017F); identities must be plain ASCII",
		"rotations.platform.members[1]: \"\u017fam@example.com\" contains 'ſ' (U+017F)",
		"roles.prod-admin.approvers.users[0]: \"\u212aate@example.com\" contains '\u212a' (U+212A)",
		"admins[0]: \"\u017fam@example.com\" contains",
		"break_glass.allowed[0]: \"\u212aate@example.com\" contains",
	} {
		if !strings.Contains(errb.String(), want) {
			t.Errorf("missing %q in:\n%s", want, errb.String())
		}
	}
	if strings.Contains(errb.String(), "admins[1]") {
		t.Errorf("kate@example.com refused:\n%s", errb.String())
	}
}

func TestLimitsConfig(t *testing.T) {
	base := "chat:\n  console:\n    users: {alice: alice@example.com}\nproviders:\n  dryrun: {}\n" +
		"roles:\n  prod-admin:\n    description: admin\n    provider: dryrun\n    group: g\n    max_duration: 4h\n" +
		"    approvers: {users: [dave@example.com]}\n"
	env := func(string) (string, bool) { return "", false }
	l, err := config.Parse([]byte(base), env)
	if err != nil {
		t.Fatal(err)
	}
	if l.Limits.MaxPendingPerUser != 0 || l.Limits.CommandsPerMinute != 0 {
		t.Fatalf("no limits section: %+v, want the service defaults (zero)", l.Limits)
	}
	l, err = config.Parse([]byte(base+"limits: {pending_per_user: 7, commands_per_minute: 0}\n"), env)
	if err != nil {
		t.Fatal(err)
	}
	if l.Limits.MaxPendingPerUser != 7 || l.Limits.CommandsPerMinute != -1 {
		t.Fatalf("limits %+v, want 7 pending and no command limit", l.Limits)
	}
	_, err = config.Parse([]byte(base+"limits: {pending_per_user: -2, per_minute: 3}\n"), env)
	for _, want := range []string{"limits.pending_per_user: -2 is negative", "limits.per_minute: unknown key"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("missing %q in %v", want, err)
		}
	}
}
