package slack_test

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/accessbot/accessbot/access"
	slackbot "github.com/accessbot/accessbot/bot/slack"
	"github.com/accessbot/accessbot/bot/slack/slackfake"
	"github.com/accessbot/accessbot/handlers"
	"github.com/accessbot/accessbot/providers/dryrun"
	"github.com/accessbot/accessbot/store/bolt"
)

// newTwoApproverWorld is the end-to-end engine of newWorld with one role,
// prod-admin, that bob and carol (both in the allowed workspace) approve.
func newTwoApproverWorld(t *testing.T) *world {
	t.Helper()
	f := newFake(t, slackfake.Options{})
	f.AddUser(slackfake.User{ID: "UCAROL", Name: "carol", Email: "carol@example.com"})
	log := testLogger(t)
	st, err := bolt.Open(filepath.Join(t.TempDir(), "accessbot.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	prov := dryrun.New(log)
	policy := &access.Policy{Roles: map[string]access.Role{
		"prod-admin": {Name: "prod-admin", Description: "Administrator on production", Provider: "dryrun", Group: groupAdmin,
			MaxDuration: 4 * time.Hour, DefaultDuration: time.Hour, ApproverUsers: []string{"bob@example.com", "carol@example.com"},
			Approvals: 1, PendingTTL: time.Hour},
	}}
	clk := &clock{now: time.Date(2031, 3, 4, 10, 0, 0, 0, time.UTC)}
	svc, err := access.NewService(access.Deps{Store: st, Policy: policy, Providers: map[string]access.Provisioner{"dryrun": prov}, Clock: clk, Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	b, err := slackbot.New(botConfig(f), nil, st, log)
	if err != nil {
		t.Fatal(err)
	}
	svc.SetNotifier(handlers.NewNotifier(b, log))
	b.SetHandler(handlers.New(svc, b, log))
	runBot(t, b)
	waitFor(t, f, "first connection", func() bool { return f.LiveConnections() == 1 })
	return &world{fake: f, bot: b, svc: svc, prov: prov, clk: clk}
}

func (w *world) dmTexts(user string) string {
	ch := w.fake.DMChannel(user)
	if ch == "" {
		return ""
	}
	var out []string
	for _, m := range w.fake.Messages(ch) {
		out = append(out, m.Text+"\n"+slackfake.BlockText(m.Blocks))
	}
	return strings.Join(out, "\n")
}

// cardKept waits until the request keeps the reference of its card: a
// decision taken before that cannot update the card (the service stores the
// reference in a step of its own after posting).
func (w *world) cardKept(t *testing.T, id string) {
	t.Helper()
	waitFor(t, w.fake, "card reference stored", func() bool {
		r, err := w.svc.Get(context.Background(), id)
		return err == nil && len(r.Messages) > 0
	})
}

func buttonIDs(blocks []map[string]any) []string {
	var out []string
	for _, b := range blocks {
		if b["type"] != "actions" {
			continue
		}
		for _, e := range b["elements"].([]any) {
			out = append(out, e.(map[string]any)["action_id"].(string))
		}
	}
	return out
}

// TestE2EDenyAtClickReasonAfter: a Deny click denies at once, with no
// form in between: the card changes, the requester is told, and another
// approver's Approve (on the card as it still showed) is refused. The
// reason comes afterwards through Add a reason, which only the approver
// who denied may use; it reaches the card, the requester and the audit log.
func TestE2EDenyAtClickReasonAfter(t *testing.T) {
	w := newTwoApproverWorld(t)
	w.command(t, "UALICE", "prod-admin 1h fixing checkout")
	card, id := w.card(t, 1)
	w.cardKept(t, id)

	w.click(t, "UBOB", "", handlers.ActionDeny, id, false)
	// Denied by the click itself: no form stands between the click and the
	// denial, so closing one can never leave the request pending.
	waitFor(t, w.fake, "bob's answer", func() bool { return len(w.fake.EphemeralsFor("UBOB")) == 1 })
	if got := w.state(t, id); got != access.StateDenied {
		t.Fatalf("request %s right after the Deny click, want denied", got)
	}
	if n := len(w.fake.Views()); n != 0 {
		t.Fatalf("the Deny click opened %d forms", n)
	}
	if e := w.fake.EphemeralsFor("UBOB")[0]; !strings.Contains(e.Text, "You denied request "+id) {
		t.Errorf("bob sees %q", e.Text)
	}
	waitFor(t, w.fake, "denied card", func() bool {
		m, _ := w.fake.Message(card.Channel, card.TS)
		return m.Updates > 0 && strings.Contains(slackfake.BlockText(m.Blocks), "denied by bob@example.com")
	})
	m, _ := w.fake.Message(card.Channel, card.TS)
	if got := buttonIDs(m.Blocks); len(got) != 1 || got[0] != handlers.ActionAddReason {
		t.Errorf("denied card buttons %v, want only %s", got, handlers.ActionAddReason)
	}
	waitFor(t, w.fake, "alice is told", func() bool { return strings.Contains(w.dmTexts("UALICE"), "Request "+id+" was denied") })

	// carol still sees the old card for a moment and presses Approve.
	w.click(t, "UCAROL", "", handlers.ActionApprove, id, true)
	waitFor(t, w.fake, "carol's answer", func() bool { return len(w.fake.EphemeralsFor("UCAROL")) == 1 })
	if e := w.fake.EphemeralsFor("UCAROL")[0]; !strings.Contains(e.Text, "already denied") {
		t.Errorf("carol sees %q", e.Text)
	}
	if got := w.state(t, id); got != access.StateDenied || w.prov.Count("grant", alice) != 0 {
		t.Fatalf("after carol's Approve: %s, %d grants", got, w.prov.Count("grant", alice))
	}

	// Only the denier may give the reason: carol is refused, no form opens.
	w.click(t, "UCAROL", "", handlers.ActionAddReason, id, false)
	waitFor(t, w.fake, "carol's refusal", func() bool { return len(w.fake.EphemeralsFor("UCAROL")) == 2 })
	if e := w.fake.EphemeralsFor("UCAROL")[1]; !strings.Contains(e.Text, "only the approver who denied") {
		t.Errorf("carol sees %q", e.Text)
	}
	if n := len(w.fake.Views()); n != 0 {
		t.Fatalf("%d forms opened for carol", n)
	}

	// bob: Add a reason -> form -> the reason is on the card, told to alice,
	// written to the audit log.
	w.click(t, "UBOB", "", handlers.ActionAddReason, id, false)
	waitFor(t, w.fake, "reason form", func() bool { return len(w.fake.Views()) == 1 })
	v := w.fake.Views()[0]
	if v.User != "UBOB" || v.Title != "Add a reason" {
		t.Errorf("form %+v", v)
	}
	res, err := w.fake.SubmitView(tctx(t), v.ID, "UBOB", "", map[string]string{"ask_text": "change freeze until Monday"})
	if err != nil {
		t.Fatal(err)
	}
	if res.Ack.Payload != nil {
		t.Errorf("submission ack %s, want a plain ack (the form closes)", res.Ack.Payload)
	}
	waitFor(t, w.fake, "card with the reason", func() bool {
		m, _ := w.fake.Message(card.Channel, card.TS)
		return strings.Contains(slackfake.BlockText(m.Blocks), "denied by bob@example.com: “change freeze until Monday”")
	})
	m, _ = w.fake.Message(card.Channel, card.TS)
	if slackfake.HasButtons(m.Blocks) {
		t.Errorf("the card keeps buttons after the reason: %v", buttonIDs(m.Blocks))
	}
	waitFor(t, w.fake, "alice gets the reason", func() bool {
		return strings.Contains(w.dmTexts("UALICE"), "“change freeze until Monday”")
	})
	waitFor(t, w.fake, "bob's confirmation", func() bool { return len(w.fake.EphemeralsFor("UBOB")) == 2 })
	evs, err := w.svc.Audit(context.Background(), time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	var acts []string
	reasonLogged := false
	for _, e := range evs {
		if e.RequestID != id {
			continue
		}
		acts = append(acts, string(e.Action))
		if e.Action == access.ActDenyReason && e.Actor == "bob@example.com" && e.Reason == "change freeze until Monday" {
			reasonLogged = true
		}
	}
	if strings.Join(acts, ",") != "submitted,denied,deny_reason" || !reasonLogged {
		t.Errorf("audit %v (reason logged: %v)", acts, reasonLogged)
	}
	w.reportAcks(t)
}
