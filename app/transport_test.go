package app

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/accessbot/accessbot/access"
	"github.com/accessbot/accessbot/bot/console"
	"github.com/accessbot/accessbot/handlers"
	"github.com/accessbot/accessbot/internal/testclock"
	"github.com/accessbot/accessbot/providers/dryrun"
	"github.com/accessbot/accessbot/store/bolt"
)

// TestInjectedTransport: a transport given in Deps replaces the configured
// one (here Slack, never contacted): requests come in through it, the
// notifier posts through it, and Run runs it and returns its error.
func TestInjectedTransport(t *testing.T) {
	t.Setenv("ACCESSBOT_TEST_APP_TOKEN", "xapp-1")
	t.Setenv("ACCESSBOT_TEST_BOT_TOKEN", "xoxb-1")
	l := rotConfig(t, `
chat:
  slack: {app_token: "${ACCESSBOT_TEST_APP_TOKEN}", bot_token: "${ACCESSBOT_TEST_BOT_TOKEN}", api_url: "http://127.0.0.1:1/api/", security_channel: C1}
providers:
  dryrun: {}
roles:
  prod-read: {description: read, provider: dryrun, group: readers, max_duration: 1d, approvers: {users: [dave@example.com]}}
metrics: {listen: "127.0.0.1:0"}
`)
	st, err := bolt.Open(filepath.Join(t.TempDir(), "t.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	out := &syncBuffer{}
	con := console.New(console.Config{Users: map[string]string{"alice": "alice@example.com", "dave": "dave@example.com"},
		ApprovalsChannel: "approvals", SecurityChannel: "security"}, out)
	stop := errors.New("transport stopped")
	prov := dryrun.New(nil)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	a, err := New(ctx, l, Deps{Clock: testclock.New(time.Date(2026, 11, 18, 10, 0, 0, 0, time.UTC)), Store: st,
		Providers: map[string]access.Provisioner{"dryrun": prov},
		Transport: &Transport{Chat: con, Directory: con, SetHandler: func(h *handlers.Handler) { con.SetHandler(h) },
			Run: func(context.Context) error { return stop }}})
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range []string{"alice: /access prod-read 1h reading logs", "dave: approve"} {
		if err := con.Line(ctx, line); err != nil {
			t.Fatal(err)
		}
	}
	if !prov.IsMember("readers", "alice@example.com") {
		t.Fatalf("not granted through the injected transport:\n%s", out)
	}
	if !strings.Contains(out.String(), "[#approvals]") {
		t.Errorf("the approval card was not posted through the injected transport:\n%s", out)
	}
	if err := a.Run(ctx); !errors.Is(err, stop) {
		t.Errorf("Run = %v, want the transport's error", err)
	}
}
