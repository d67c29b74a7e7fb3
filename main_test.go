package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/accessbot/accessbot/internal/redistest"
)

func TestMain(m *testing.M) { redistest.Main(m.Run) }

func writeFile(t *testing.T, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "accessbot.yaml")
	if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestCheckReportsEveryMistakeWithItsPath(t *testing.T) {
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
roles:
  prod-admin:
    description: admin
    provider: dryrun
    group: g
    max_duration: 4x
    approvers: {rotation: platfrom}
    self_aprove: true
`
	var out, errb bytes.Buffer
	code := run(context.Background(), []string{"check", "--config", writeFile(t, cfg)}, nil, &out, &errb)
	if code != 1 {
		t.Fatalf("exit %d, want 1; stderr:\n%s", code, errb.String())
	}
	for _, want := range []string{
		`roles.prod-admin.self_aprove: unknown key`,
		`roles.prod-admin.max_duration: "4x" is not a duration`,
		`roles.prod-admin.approvers.rotation: unknown rotation "platfrom"`,
		"3 problem(s)",
	} {
		if !strings.Contains(errb.String(), want) {
			t.Errorf("missing %q in:\n%s", want, errb.String())
		}
	}
}

func TestCheckMoreMistakes(t *testing.T) {
	cfg := `
store: {bolt: {path: x.db}, redis: {url: ""}}
chat:
  console:
    users: {alice: not-an-email}
providers:
  dryrun: {}
  slack: {}
rotations:
  platform:
    members: []
    timezone: Mars/Olympus
    handoff: "funday 25:00"
    grant: [nope]
roles:
  prod-admin:
    description: admin
    provider: aws
    group: g
    max_duration: 4h
    default_duration: 5h
    approvers: {users: [bob]}
    approvals: 2
    reconcile: maybe
  Bad_Name:
    description: x
    provider: dryrun
    group: g
    max_duration: 1h
    approvers: {users: [bob@example.com]}
break_glass:
  allowed: [erin]
token: ${ACCESSBOT_TEST_UNSET_VARIABLE}
`
	var out, errb bytes.Buffer
	code := run(context.Background(), []string{"check", "--config", writeFile(t, cfg)}, nil, &out, &errb)
	if code != 1 {
		t.Fatalf("exit %d", code)
	}
	for _, want := range []string{
		"token: environment variable ACCESSBOT_TEST_UNSET_VARIABLE is not set",
		"token: unknown key",
		"providers.slack: unknown key",
		"store: choose one of bolt and redis",
		"store.redis.url: missing",
		`chat.console.users.alice: "not-an-email" is not an email`,
		"rotations.platform.members",
		"rotations.platform.timezone",
		`rotations.platform.handoff`,
		`rotations.platform.grant[0]: unknown role "nope"`,
		`roles.prod-admin.provider: "aws" is not configured`,
		"roles.prod-admin.default_duration: 5h is longer than max_duration 4h",
		`roles.prod-admin.approvers.users[0]: "bob" is not an email`,
		`roles.prod-admin.reconcile: unknown value "maybe"`,
		"roles.Bad_Name: role names are lower-case",
		`break_glass.allowed[0]: "erin" is not an email`,
	} {
		if !strings.Contains(errb.String(), want) {
			t.Errorf("missing %q in:\n%s", want, errb.String())
		}
	}
}

func TestCheckDemoAndExamples(t *testing.T) {
	for _, f := range []string{"manifests/examples/demo.yaml"} {
		var out, errb bytes.Buffer
		if code := run(context.Background(), []string{"check", "--config", f}, nil, &out, &errb); code != 0 {
			t.Fatalf("%s: exit %d\n%s", f, code, errb.String())
		}
		if !strings.Contains(out.String(), "config OK") {
			t.Fatalf("%s: %s", f, out.String())
		}
	}
}

func TestCommandLine(t *testing.T) {
	cases := []struct {
		args []string
		code int
		want string
	}{
		{[]string{"version"}, 0, "accessbot"},
		{nil, 2, "Usage"},
		{[]string{"frobnicate"}, 2, `unknown command "frobnicate"`},
		{[]string{"run"}, 2, "--config FILE is required"},
		{[]string{"check", "--config", "/nonexistent/x.yaml"}, 1, "read config"},
		{[]string{"audit", "--config", "manifests/examples/demo.yaml", "--format", "xml"}, 2, "--format must be jsonl or csv"},
		{[]string{"audit", "--config", "manifests/examples/demo.yaml", "--since", "yesterday"}, 2, "is not a duration"},
	}
	for _, c := range cases {
		var out, errb bytes.Buffer
		code := run(context.Background(), c.args, nil, &out, &errb)
		if code != c.code || !strings.Contains(out.String()+errb.String(), c.want) {
			t.Errorf("%v: exit %d, output %q; want %d and %q", c.args, code, out.String()+errb.String(), c.code, c.want)
		}
	}
}

// TestRunConsoleScript runs the binary's run command with a piped script
// whose requests all settle, so it exits on its own.
func TestRunConsoleScript(t *testing.T) {
	demo, err := os.ReadFile("manifests/examples/demo.yaml")
	if err != nil {
		t.Fatal(err)
	}
	script := strings.Join([]string{
		"alice: /access prod-admin 1m fixing checkout",
		"alice: approve",
		"carol: approve",
		"mallory: /access prod-admin 1h x",
		"alice: /access prod-god 1h x",
		"alice: /access prod-admin 9h too long",
		"alice: /access prod-admin 2x bad duration",
		"alice: /access prod-admin 1h " + strings.Repeat("y", 1001),
		"alice: /access frobnicate",
		"bob: deny not now",
		"bob: approve",
		"erin: /access breakglass prod-admin 1m database on fire",
		"erin: ack",
		"dave: ack",
		"erin: /access revoke prod-admin done",
	}, "\n") + "\n"
	var out, errb bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	code := run(ctx, []string{"run", "--config", writeFile(t, string(demo))}, strings.NewReader(script), &out, &errb)
	o := out.String()
	if code != 0 {
		t.Fatalf("exit %d\nstderr: %s\nstdout: %s", code, errb.String(), o)
	}
	for _, want := range []string{
		"you cannot approve or deny your own request for prod-admin",
		"you are not an approver of prod-admin right now",
		"your chat account has no email address",
		`There is no role or command "prod-god"`,
		"prod-admin may be held for at most 4h; you asked for 9h",
		`"2x" is not a duration`,
		"the reason is 1001 characters long; the limit is 1000",
		`There is no role or command "frobnicate"`,
		"You denied request",
		"is already denied by bob@example.com: “not now”; nothing was changed",
		"[#security] message",
		"Break-glass: erin@example.com took prod-admin",
		"you cannot acknowledge your own break-glass access",
		"Acknowledged by dave@example.com",
		"[dryrun] added erin@example.com to group prod-admins",
		"[dryrun] removed erin@example.com from group prod-admins",
		"acknowledged role=prod-admin by=dave@example.com",
	} {
		if !strings.Contains(o, want) {
			t.Errorf("missing %q", want)
		}
	}
	if strings.Contains(o, "added alice@example.com") {
		t.Error("alice was granted although her request was denied")
	}
	if t.Failed() {
		t.Logf("output:\n%s", o)
	}
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}
func (s *syncBuffer) String() string { s.mu.Lock(); defer s.mu.Unlock(); return s.b.String() }
