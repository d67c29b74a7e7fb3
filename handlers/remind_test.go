package handlers_test

import (
	"context"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/accessbot/accessbot/access"
	"github.com/accessbot/accessbot/handlers"
	"github.com/accessbot/accessbot/internal/testclock"
	"github.com/accessbot/accessbot/providers/dryrun"
	"github.com/accessbot/accessbot/store/bolt"
)

// remindSetup is setup with a test clock and a role that reminds after
// 10m and escalates to carol after 20m; approvals approvals are needed.
func remindSetup(t *testing.T, approvalsChannel string, approvals int) (*handlers.Handler, *chat, *access.Service, *testclock.Clock) {
	t.Helper()
	st, err := bolt.Open(filepath.Join(t.TempDir(), "h.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	pol := &access.Policy{Roles: map[string]access.Role{
		"prod-admin": {Name: "prod-admin", Description: "Production admin", Provider: "dryrun", Group: "g",
			MaxDuration: 4 * time.Hour, DefaultDuration: time.Hour, ApproverUsers: []string{"bob@example.com", "dave@example.com"},
			Approvals: approvals, PendingTTL: time.Hour,
			RemindAfter: 10 * time.Minute, EscalateAfter: 20 * time.Minute, EscalateUsers: []string{"carol@example.com"}},
	}}
	clk := testclock.New(time.Date(2031, 3, 4, 10, 0, 0, 0, time.UTC))
	svc, err := access.NewService(access.Deps{Store: st, Policy: pol, Providers: map[string]access.Provisioner{"dryrun": dryrun.New(nil)}, Clock: clk})
	if err != nil {
		t.Fatal(err)
	}
	c := &chat{dms: map[string][]handlers.Message{}, channel: approvalsChannel, security: "sec"}
	svc.SetNotifier(handlers.NewNotifier(c, nil))
	return handlers.New(svc, c, nil), c, svc, clk
}

// at moves the clock to start+d and runs what is due for id.
func at(t *testing.T, svc *access.Service, clk *testclock.Clock, start time.Time, d time.Duration, id string) {
	t.Helper()
	clk.Set(start.Add(d))
	if err := svc.Process(context.Background(), id); err != nil {
		t.Fatal(err)
	}
}

func pendingID(t *testing.T, svc *access.Service) string {
	t.Helper()
	rs, err := svc.Mine(context.Background(), "alice@example.com")
	if err != nil || len(rs) != 1 {
		t.Fatalf("alice's requests: %v, %v", rs, err)
	}
	return rs[0].ID
}

func titles(ms []handlers.Message) []string {
	var out []string
	for _, m := range ms {
		out = append(out, m.Title)
	}
	return out
}

func fieldOf(m handlers.Message, label string) string {
	for _, f := range m.Fields {
		if f.Label == label {
			return f.Value
		}
	}
	return ""
}

// TestReminderAndEscalationInTheApprovalsChannel: the reminder is a reply
// under the channel card naming who is awaited, plus a DM to each of them;
// the escalation updates the card, gives carol the card by DM, notes it
// under the card and tells alice.
func TestReminderAndEscalationInTheApprovalsChannel(t *testing.T) {
	h, c, svc, clk := remindSetup(t, "approvals", 1)
	start := clk.Now()
	cmd(h, "alice", "prod-admin 1h fixing checkout")
	id := pendingID(t, svc)

	at(t, svc, clk, start, 10*time.Minute, id)
	c.mu.Lock()
	if len(c.replies) != 1 || c.replies[0].under.Channel != "approvals" || c.replies[0].under.ID != "1" ||
		!strings.Contains(c.replies[0].msg.Text, "Waiting for: bob@example.com, dave@example.com") {
		t.Fatalf("replies %+v", c.replies)
	}
	for _, who := range []string{"bob@example.com", "dave@example.com"} {
		if got := titles(c.dms[who]); !slices.Equal(got, []string{"Reminder: request " + id + " waits for your decision"}) {
			t.Errorf("%s got %q", who, got)
		} else if m := c.dms[who][0]; !strings.Contains(m.Text, "/access approve "+id) || !strings.Contains(m.Text, "approvals channel") {
			t.Errorf("%s reminder text %q", who, m.Text)
		}
	}
	c.mu.Unlock()

	at(t, svc, clk, start, 20*time.Minute, id)
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.updates) == 0 || !strings.HasPrefix(fieldOf(c.updates[len(c.updates)-1], "Escalated"), "escalated to carol@example.com at ") {
		t.Fatalf("card after escalation: %+v", c.updates)
	}
	if got := c.dms["carol@example.com"]; len(got) != 1 || got[0].Title != "alice@example.com asks for prod-admin" || len(got[0].Buttons) != 2 {
		t.Fatalf("carol got %+v", got)
	}
	if len(c.replies) != 2 || c.replies[1].msg.Title != "Escalated to carol@example.com" {
		t.Fatalf("replies %+v", c.replies)
	}
	if got := titles(c.dms["alice@example.com"]); !slices.Contains(got, "Request "+id+" was escalated") {
		t.Fatalf("alice got %q", got)
	}
}

// TestReminderUnderDMCards: with approval cards in DMs the reminder is a
// reply under each undecided approver's own card (no second DM), and
// after the escalation under carol's card too.
func TestReminderUnderDMCards(t *testing.T) {
	h, c, svc, clk := remindSetup(t, "", 2)
	start := clk.Now()
	cmd(h, "alice", "prod-admin 1h fixing checkout")
	id := pendingID(t, svc)
	clk.Set(start.Add(5 * time.Minute))
	if _, err := svc.Decide(context.Background(), id, "dave@example.com", true, ""); err != nil {
		t.Fatal(err)
	}
	at(t, svc, clk, start, 10*time.Minute, id)
	at(t, svc, clk, start, 20*time.Minute, id)
	at(t, svc, clk, start, 30*time.Minute, id)
	c.mu.Lock()
	defer c.mu.Unlock()
	var under []string
	for _, r := range c.replies {
		under = append(under, r.under.Channel+":"+r.msg.Title)
	}
	want := []string{
		"dm:bob@example.com:Reminder: request " + id + " waits for your decision",
		"dm:bob@example.com:Reminder: request " + id + " waits for your decision",
		"dm:carol@example.com:Reminder: request " + id + " waits for your decision",
	}
	if !slices.Equal(under, want) {
		t.Fatalf("replies:\n%s\nwant:\n%s", strings.Join(under, "\n"), strings.Join(want, "\n"))
	}
	if got := titles(c.dms["bob@example.com"]); len(got) != 1 {
		t.Fatalf("bob got DMs %q besides the replies under his card", got)
	}
	if got := titles(c.dms["dave@example.com"]); len(got) != 1 {
		t.Fatalf("dave, who decided, got %q", got)
	}
	if got := c.dms["carol@example.com"]; len(got) != 1 || len(got[0].Buttons) != 2 {
		t.Fatalf("carol got %+v", got)
	}
}

// TestNoReminderOnceDecided: a reminder or escalation entry delivered
// after the request stopped waiting (a retry after a failed delivery)
// sends nothing.
func TestNoReminderOnceDecided(t *testing.T) {
	c := &chat{dms: map[string][]handlers.Message{}, channel: "approvals"}
	n := handlers.NewNotifier(c, nil)
	r := &access.Request{ID: "r-2345678a", Requester: "alice@example.com", Role: "prod-admin", State: access.StateApproved,
		Approvers: []string{"bob@example.com", "dave@example.com"}, EscalatedTo: []string{"carol@example.com"},
		Decisions: []access.Decision{{By: "bob@example.com", Approve: true}},
		Messages:  []access.MessageRef{{Purpose: handlers.PurposeApproval, Channel: "approvals", ID: "1"}}}
	for _, typ := range []access.EventType{access.EvReminder, access.EvEscalated} {
		refs, err := n.Notify(context.Background(), access.Event{Type: typ, Request: r, ID: string(typ) + "@3", Reason: "10m"})
		if err != nil || len(refs) != 0 {
			t.Fatalf("%s: refs %v, err %v", typ, refs, err)
		}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.replies)+len(c.posts)+len(c.dms) != 0 {
		t.Fatalf("sent replies %v, posts %v, DMs %v", c.replies, c.posts, c.dms)
	}
}
