package handlers_test

import (
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/accessbot/accessbot/access"
	"github.com/accessbot/accessbot/handlers"
	"github.com/accessbot/accessbot/internal/testclock"
	"github.com/accessbot/accessbot/providers/dryrun"
	"github.com/accessbot/accessbot/store/bolt"
)

// TestOverflowingDurationRefused: "213504d" used to parse as 25m26s and
// was sent for approval.
func TestOverflowingDurationRefused(t *testing.T) {
	h, c, _ := setup(t, "approvals")
	r := cmd(h, "alice", "prod-admin 213504d fixing checkout")
	if !strings.Contains(r.Text, `"213504d" is longer than 366d`) {
		t.Fatalf("reply %q", r.Text)
	}
	if len(c.posts) != 0 {
		t.Fatalf("%d approval cards posted", len(c.posts))
	}
}

// TestNonASCIIIdentityRefused: a chat account whose email is "ſam@..."
// (U+017F) is refused with a clear message before anything is sent.
func TestNonASCIIIdentityRefused(t *testing.T) {
	h, c, _ := setup(t, "approvals")
	for _, user := range []string{"\u017fam", "\u212aate"} {
		r := cmd(h, user, "prod-admin 1h fixing checkout")
		if !strings.Contains(r.Text, "plain ASCII") {
			t.Errorf("%s: reply %q", user, r.Text)
		}
	}
	if len(c.posts) != 0 {
		t.Fatalf("%d approval cards posted", len(c.posts))
	}
}

// TestCommandsPerMinuteLimit: past the per-minute limit, commands that
// ask for or look at things are refused with a clear message; revoke,
// cancel, decisions and break-glass still go through.
func TestCommandsPerMinuteLimit(t *testing.T) {
	st, err := bolt.Open(filepath.Join(t.TempDir(), "h.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	pol := &access.Policy{Roles: map[string]access.Role{
		"prod-admin": {Name: "prod-admin", Description: "Production admin", Provider: "dryrun", Group: "g",
			MaxDuration: 4 * time.Hour, DefaultDuration: time.Hour, ApproverUsers: []string{"bob@example.com", "dave@example.com"},
			Approvals: 1, PendingTTL: time.Hour, BreakGlass: true},
		"db-admin": {Name: "db-admin", Description: "DB admin", Provider: "dryrun", Group: "g-db",
			MaxDuration: 4 * time.Hour, DefaultDuration: time.Hour, ApproverUsers: []string{"dave@example.com"},
			Approvals: 1, PendingTTL: time.Hour},
	}, BreakGlass: []string{"alice@example.com"}}
	clock := testclock.New(time.Date(2026, 11, 18, 10, 0, 0, 0, time.UTC))
	svc, err := access.NewService(access.Deps{Store: st, Policy: pol, Clock: clock,
		Providers: map[string]access.Provisioner{"dryrun": dryrun.New(nil)}, Options: access.Options{CommandsPerMinute: 3}})
	if err != nil {
		t.Fatal(err)
	}
	c := &chat{dms: map[string][]handlers.Message{}, channel: "approvals", security: "sec"}
	svc.SetNotifier(handlers.NewNotifier(c, nil))
	h := handlers.New(svc, c, nil)

	pending := cmd(h, "alice", "prod-admin 1h fixing checkout")
	id := strings.Fields(pending.Text)[1]
	cmd(h, "alice", "list")
	cmd(h, "alice", "roles")
	if r := cmd(h, "alice", "db-admin 1h more"); !strings.Contains(r.Text, "more than 3 commands in a minute") {
		t.Fatalf("4th command: %q", r.Text)
	}
	if len(c.posts) != 1 {
		t.Fatalf("%d approval cards, want 1", len(c.posts))
	}
	if r := cmd(h, "alice", "cancel "+id); !strings.Contains(r.Text, "is cancelled") {
		t.Fatalf("cancel while limited: %q", r.Text)
	}
	if r := cmd(h, "alice", "breakglass prod-admin 1h outage"); !strings.Contains(r.Text, "Break-glass: you have") {
		t.Fatalf("break-glass while limited: %q", r.Text)
	}
	if r := cmd(h, "alice", "revoke prod-admin done"); !strings.Contains(r.Text, "access is removed") {
		t.Fatalf("revoke while limited: %q", r.Text)
	}
	if r := cmd(h, "bob", "list"); strings.Contains(r.Text, "commands in a minute") {
		t.Fatalf("another user limited: %q", r.Text)
	}
	clock.Advance(time.Minute)
	if r := cmd(h, "alice", "list"); strings.Contains(r.Text, "commands in a minute") {
		t.Fatalf("next minute still limited: %q", r.Text)
	}
}

// TestRefusalsToStrangersLeakNothing: someone unrelated to a request who
// types its id learns neither who asked, nor why it was denied, nor that
// it exists: the refusal reads like the one for an unknown id. The people
// involved still get the specific text.
func TestRefusalsToStrangersLeakNothing(t *testing.T) {
	h, _, _ := setup(t, "approvals")
	denied := cmd(h, "alice", "prod-admin 1h secret project falcon")
	deniedID := strings.Fields(denied.Text)[1]
	if r := cmd(h, "bob", "deny "+deniedID+" falcon is cancelled"); !strings.Contains(r.Text, "You denied") {
		t.Fatalf("deny: %q", r.Text)
	}
	active := cmd(h, "carol", "prod-admin 1h other work")
	activeID := strings.Fields(active.Text)[1]
	if r := cmd(h, "dave", "approve "+activeID); !strings.Contains(r.Text, "You approved") {
		t.Fatalf("approve: %q", r.Text)
	}
	pending := cmd(h, "alice", "prod-admin 2h third try")
	if strings.Contains(pending.Text, "already") {
		t.Fatalf("submit: %q", pending.Text)
	}
	pendingID := strings.Fields(pending.Text)[1]

	unknown := cmd(h, "mallory", "cancel r-zzzzzzzz").Text
	if !strings.Contains(unknown, "there is no request r-zzzzzzzz that you can act on") {
		t.Fatalf("unknown id: %q", unknown)
	}
	for _, c := range []struct{ text, id string }{
		{"cancel " + pendingID, pendingID},
		{"extend " + activeID + " 1h more", activeID},
		{"revoke " + activeID + " because", activeID},
		{"approve " + deniedID, deniedID},
		{"deny " + deniedID, deniedID},
	} {
		r := cmd(h, "mallory", c.text).Text
		for _, secret := range []string{"alice", "carol", "falcon", "bob@", "denied by"} {
			if strings.Contains(r, secret) {
				t.Errorf("%q told mallory %q: %q", c.text, secret, r)
			}
		}
		if strings.HasPrefix(c.text, "approve") || strings.HasPrefix(c.text, "deny") {
			if !strings.Contains(r, "you are not an approver of prod-admin right now") {
				t.Errorf("%q: %q", c.text, r)
			}
			continue
		}
		if want := "there is no request " + c.id + " that you can act on"; !strings.Contains(r, want) {
			t.Errorf("%q: %q, want %q", c.text, r, want)
		}
	}
	// The involved keep the specific text.
	if r := cmd(h, "bob", "approve "+deniedID).Text; !strings.Contains(r, "denied by bob@example.com: “falcon is cancelled”") {
		t.Errorf("approver on a denied request: %q", r)
	}
	if r := cmd(h, "bob", "cancel "+pendingID).Text; !strings.Contains(r, "only alice@example.com can cancel") {
		t.Errorf("approver cancelling: %q", r)
	}
}
