package handlers_test

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/accessbot/accessbot/access"
	"github.com/accessbot/accessbot/handlers"
	"github.com/accessbot/accessbot/providers/dryrun"
	"github.com/accessbot/accessbot/store/bolt"
)

// homeChat is a chat that shows personal views: it records whose Home
// the notifier asks to refresh.
type homeChat struct {
	*chat
	mu        sync.Mutex
	refreshed []string
}

func (c *homeChat) RefreshHome(identities ...string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.refreshed = append(c.refreshed, identities...)
}

func (c *homeChat) take() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := c.refreshed
	c.refreshed = nil
	return out
}

// oncall answers: carol is on call for "platform" until a week from now;
// "incident" cannot be reached.
type oncall struct{ now time.Time }

func (o oncall) OnCall(_ context.Context, rotation string, at time.Time) (access.Shift, error) {
	if rotation == "incident" {
		return access.Shift{}, errors.New("pagerduty: 503")
	}
	return access.Shift{Rotation: rotation, People: []string{"carol@example.com"}, Start: o.now, End: o.now.Add(7 * 24 * time.Hour)}, nil
}

type stepClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *stepClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *stepClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func setupHome(t *testing.T) (*handlers.Handler, *homeChat, *stepClock) {
	t.Helper()
	st, err := bolt.Open(filepath.Join(t.TempDir(), "h.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	roles := map[string]access.Role{}
	for _, n := range []string{"prod-admin", "prod-read", "db"} {
		roles[n] = access.Role{Name: n, Description: n + " access", Provider: "dryrun", Group: "g-" + n,
			MaxDuration: 4 * time.Hour, DefaultDuration: time.Hour, ApproverUsers: []string{"bob@example.com", "dave@example.com"},
			Approvals: 1, PendingTTL: time.Hour}
	}
	now := time.Date(2031, 3, 4, 10, 0, 0, 0, time.UTC)
	pol := &access.Policy{Roles: roles, Rotations: map[string]access.Rotation{
		"platform": {Name: "platform", Source: "static"}, "incident": {Name: "incident", Source: "pagerduty"}}}
	prov := dryrun.New(nil)
	clk := &stepClock{t: now}
	svc, err := access.NewService(access.Deps{Store: st, Policy: pol, Providers: map[string]access.Provisioner{"dryrun": prov},
		OnCall: oncall{now}, Clock: clk})
	if err != nil {
		t.Fatal(err)
	}
	c := &homeChat{chat: &chat{dms: map[string][]handlers.Message{}, channel: "approvals", security: "sec"}}
	svc.SetNotifier(handlers.NewNotifier(c, nil))
	return handlers.New(svc, c, nil), c, clk
}

func requestID(t *testing.T, r handlers.Reply) string {
	t.Helper()
	for _, w := range strings.Fields(r.Text) {
		if strings.HasPrefix(w, "r-") {
			return w
		}
	}
	t.Fatalf("no request id in %q", r.Text)
	return ""
}

// /access list shows the Home as text: grants, pending requests, what
// waits for the person's decision and who is on call; the Home built for
// the Slack tab has the same items with the cards' buttons.
func TestListShowsHome(t *testing.T) {
	h, c, clk := setupHome(t)
	ctx := context.Background()

	r := cmd(h, "alice", "list")
	for _, want := range []string{"no pending or active requests", "*Your access*", "You hold no access right now.",
		"*Waiting for your decision*", "Nothing waits for your decision.", "*On call now*",
		"*incident*: the on-call source cannot be reached right now", "*platform*: carol@example.com until 2031-03-11 10:00 UTC"} {
		if !strings.Contains(r.Text, want) {
			t.Errorf("empty list lacks %q:\n%s", want, r.Text)
		}
	}

	admin := requestID(t, cmd(h, "alice", "prod-admin 1h fixing *checkout* <!channel>"))
	clk.Advance(time.Minute)
	read := requestID(t, cmd(h, "alice", "prod-read 2h dashboards"))
	if got := c.take(); !containsAll(got, "alice@example.com", "bob@example.com", "dave@example.com") {
		t.Errorf("homes refreshed after the requests: %v", got)
	}
	r = cmd(h, "alice", "list")
	if r.Title != "Your requests" || !strings.Contains(r.Text, "*Your pending requests*\n• "+read+" *prod-read* for 2h — waiting for approval") ||
		!strings.Contains(r.Text, "• "+admin+" *prod-admin* for 1h") || strings.Contains(r.Text, "fixing") {
		t.Errorf("alice's list:\n%s", r.Text)
	}
	if strings.Index(r.Text, read) > strings.Index(r.Text, admin) {
		t.Errorf("not newest first:\n%s", r.Text)
	}
	r = cmd(h, "bob", "list")
	if !strings.Contains(r.Text, "*Waiting for your decision*\n• "+read+" alice@example.com asks for *prod-read* for 2h") ||
		!strings.Contains(r.Text, admin+" alice@example.com asks for *prod-admin* for 1h: “fixing ∗checkout∗ <!channel>”") {
		t.Errorf("bob's list:\n%s", r.Text)
	}
	home, err := h.Home(ctx, "bob")
	if err != nil {
		t.Fatal(err)
	}
	if len(home.Waiting) != 2 || len(home.Waiting[0].Buttons) != 2 || home.Waiting[0].Buttons[0].Action != handlers.ActionApprove ||
		home.Waiting[0].Buttons[1].Action != handlers.ActionDeny || home.Waiting[0].Buttons[0].Value != read {
		t.Errorf("bob's home waiting: %+v", home.Waiting)
	}

	// bob approves one: it leaves his list and becomes alice's grant.
	if r := act(h, "bob", handlers.ActionApprove, admin); !strings.Contains(r.Text, "You approved") {
		t.Fatalf("approve: %q", r.Text)
	}
	if got := c.take(); !containsAll(got, "alice@example.com", "bob@example.com") {
		t.Errorf("homes refreshed after the approval: %v", got)
	}
	r = cmd(h, "bob", "list")
	if strings.Contains(r.Text, admin) || !strings.Contains(r.Text, read) {
		t.Errorf("bob's list after approving %s:\n%s", admin, r.Text)
	}
	// dave was asked too, but the request is decided.
	if r = cmd(h, "dave", "list"); strings.Contains(r.Text, admin) || !strings.Contains(r.Text, read) {
		t.Errorf("dave's list:\n%s", r.Text)
	}
	r = cmd(h, "alice", "list")
	if !strings.Contains(r.Text, "*Your access*\n• "+admin+" *prod-admin* — active until 2031-03-04 11:01 UTC (approved by bob@example.com)") ||
		strings.Contains(r.Text, "no pending or active requests") {
		t.Errorf("alice's list after approval:\n%s", r.Text)
	}
	home, _ = h.Home(ctx, "alice")
	if len(home.Grants) != 1 || len(home.Grants[0].Buttons) != 1 || home.Grants[0].Buttons[0].Action != handlers.ActionRevoke ||
		home.Grants[0].Buttons[0].Value != admin || len(home.Pending) != 1 || home.Pending[0].Buttons[0].Action != handlers.ActionCancel {
		t.Errorf("alice's home: %+v", home)
	}
	// One list alone.
	r = cmd(h, "bob", "list waiting")
	if !strings.HasPrefix(r.Text, "*Waiting for your decision*\n• "+read) || strings.Contains(r.Text, "Your access") {
		t.Errorf("bob's waiting list:\n%s", r.Text)
	}
	if r := cmd(h, "bob", "list everything"); r.Color != "danger" || !strings.Contains(r.Text, `There is no list "everything"`) {
		t.Errorf("unknown list: %q", r.Text)
	}
	// Once its pending time has run out, a request no longer waits for
	// anyone's decision, even before the sweep marks it timed out.
	clk.Advance(time.Hour)
	if r := cmd(h, "bob", "list waiting"); strings.Contains(r.Text, read) || !strings.Contains(r.Text, "Nothing waits for your decision.") {
		t.Errorf("bob's waiting list after the pending time:\n%s", r.Text)
	}
	// A person without an identity is told why, as for any command.
	if r := cmd(h, "ghost", "list"); !strings.Contains(r.Text, "no email address") {
		t.Errorf("ghost: %q", r.Text)
	}
}

func act(h *handlers.Handler, user, action, id string) handlers.Reply {
	return h.Action(context.Background(), handlers.Action{User: user, Action: action, RequestID: id})
}

func containsAll(got []string, want ...string) bool {
	for _, w := range want {
		found := false
		for _, g := range got {
			found = found || g == w
		}
		if !found {
			return false
		}
	}
	return true
}

// The text form fits one message however many items there are: the
// newest of each list, and how many more.
func TestHomeTextBudget(t *testing.T) {
	var home handlers.Home
	for i := range 60 {
		id := fmt.Sprintf("r-%03d", i)
		line := id + " " + strings.Repeat("x", 120)
		home.Grants = append(home.Grants, handlers.HomeItem{RequestID: id, Text: line})
		home.Pending = append(home.Pending, handlers.HomeItem{RequestID: id, Text: line})
		home.Waiting = append(home.Waiting, handlers.HomeItem{RequestID: id, Text: line})
		home.OnCall = append(home.OnCall, handlers.HomeItem{Text: line})
	}
	txt := home.Text(handlers.ListBudget)
	if len(txt) > handlers.ListBudget {
		t.Fatalf("%d characters, budget %d", len(txt), handlers.ListBudget)
	}
	if !strings.Contains(txt, "• r-000 ") || strings.Contains(txt, "r-059") {
		t.Errorf("not the newest:\n%s", txt)
	}
	if n := strings.Count(txt, "more\n") + strings.Count(txt, "more"); n < 4 {
		t.Errorf("%d more lines, want one per list:\n%s", n, txt)
	}
	shown := strings.Count(txt, "• ")
	more := 0
	for _, l := range strings.Split(txt, "\n") {
		var k int
		if _, err := fmt.Sscanf(l, "…and %d more", &k); err == nil {
			more += k
		}
	}
	if shown+more != 240 {
		t.Errorf("%d shown + %d more, want 240", shown, more)
	}
	t.Logf("240 items: %d shown in %d characters, %d counted as more", shown, len(txt), more)
	if !strings.Contains(txt, "more: `/access list waiting`") {
		t.Errorf("the more lines do not say how to see a list alone:\n%s", txt)
	}

	// One list alone shows more of it, within the same budget.
	one := home.TextOf("waiting", handlers.ListBudget)
	if len(one) > handlers.ListBudget || strings.Count(one, "• ") <= 10 || strings.Contains(one, "Your access") ||
		!strings.Contains(one, "…and ") {
		t.Errorf("waiting alone (%d characters, %d items):\n%s", len(one), strings.Count(one, "• "), one)
	}
}

// A request with a start ahead says when it starts in the requester's and
// the approver's Home; once approved it waits among the grants with a
// Revoke button, as it may be revoked before it begins.
func TestHomeShowsScheduledAccess(t *testing.T) {
	h, _, _ := setupHome(t)
	ctx := context.Background()
	id := requestID(t, cmd(h, "alice", "prod-admin 1h at 2031-03-04T22:00 maintenance window"))
	mine, err := h.Home(ctx, "alice")
	if err != nil {
		t.Fatal(err)
	}
	if len(mine.Pending) != 1 || !strings.Contains(mine.Pending[0].Text, "starts at 2031-03-04 22:00") {
		t.Errorf("alice's pending: %+v", mine.Pending)
	}
	theirs, err := h.Home(ctx, "bob")
	if err != nil {
		t.Fatal(err)
	}
	if len(theirs.Waiting) != 1 || !strings.Contains(theirs.Waiting[0].Text, "starts at 2031-03-04 22:00") {
		t.Errorf("bob's waiting: %+v", theirs.Waiting)
	}
	if r := cmd(h, "bob", "approve "+id); !strings.Contains(r.Text, "You approved") {
		t.Fatalf("approve: %+v", r)
	}
	mine, err = h.Home(ctx, "alice")
	if err != nil {
		t.Fatal(err)
	}
	if len(mine.Grants) != 1 || len(mine.Grants[0].Buttons) != 1 || mine.Grants[0].Buttons[0].Action != handlers.ActionRevoke ||
		mine.Grants[0].Buttons[0].Value != id {
		t.Errorf("alice's scheduled grant: %+v", mine.Grants)
	}
}

// Once a request is escalated, the people it was escalated to see it in
// their Home: theirs is refreshed with the requester's and approvers'.
func TestEscalatedPeoplesHomesRefreshed(t *testing.T) {
	c := &homeChat{chat: &chat{dms: map[string][]handlers.Message{}, channel: "approvals", security: "sec"}}
	n := handlers.NewNotifier(c, nil)
	at := time.Date(2031, 3, 4, 10, 30, 0, 0, time.UTC)
	r := &access.Request{ID: "r-esc23456", Requester: "alice@example.com", Role: "prod-admin", State: access.StatePending,
		Duration: time.Hour, Reason: "x", Approvers: []string{"bob@example.com"}, Needed: 1, PendingUntil: at.Add(time.Hour),
		EscalatedAt: at, EscalatedTo: []string{"heidi@example.com"}}
	_, _ = n.Notify(context.Background(), access.Event{Type: access.EvEscalated, Request: r, ID: "escalated@3"})
	if got := c.take(); !containsAll(got, "alice@example.com", "bob@example.com", "heidi@example.com") {
		t.Errorf("homes refreshed after the escalation: %v", got)
	}
}
