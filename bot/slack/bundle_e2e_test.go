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
	"github.com/accessbot/accessbot/scheduler"
	"github.com/accessbot/accessbot/store/bolt"
)

const groupDB = "g-db-admin"

// newBundleWorld wires the real engine with two roles of different
// approvers: prod-admin is bob's, db-admin carol's.
func newBundleWorld(t *testing.T) *world {
	t.Helper()
	prov := dryrun.New(testLogger(t))
	f := newFake(t, slackfake.Options{})
	f.AddUser(slackfake.User{ID: "UCAROL", Name: "carol", Email: "carol@example.com"})
	log := testLogger(t)
	st, err := bolt.Open(filepath.Join(t.TempDir(), "accessbot.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	policy := &access.Policy{Roles: map[string]access.Role{
		"prod-admin": {Name: "prod-admin", Description: "Administrator on production", Provider: "dryrun", Group: groupAdmin,
			MaxDuration: 4 * time.Hour, DefaultDuration: time.Hour, ApproverUsers: []string{"bob@example.com"},
			Approvals: 1, PendingTTL: time.Hour},
		"db-admin": {Name: "db-admin", Description: "Database administrator", Provider: "dryrun", Group: groupDB,
			MaxDuration: 2 * time.Hour, DefaultDuration: time.Hour, ApproverUsers: []string{"carol@example.com"},
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
	sched := scheduler.New(st, svc, clk, log, scheduler.Options{})
	svc.SetWaker(sched)
	runBot(t, b)
	waitFor(t, f, "first connection", func() bool { return f.LiveConnections() == 1 })
	return &world{fake: f, bot: b, svc: svc, sched: sched, clk: clk, prov: prov}
}

// cardText returns the current text of a posted card and whether it has buttons.
func (w *world) cardText(card slackfake.Message) (string, bool) {
	m, _ := w.fake.Message(card.Channel, card.TS)
	return slackfake.BlockText(m.Blocks), slackfake.HasButtons(m.Blocks)
}

// Two roles in one request, each with its own approver: one card; bob's
// click grants prod-admin only (the card shows one granted, one pending),
// carol's grants db-admin; both end at the same time, when the scheduler
// removes both memberships.
func TestE2ETwoRolesOneRequest(t *testing.T) {
	w := newBundleWorld(t)
	start := w.clk.Now()
	w.command(t, "UALICE", "prod-admin, db-admin 30m fixing checkout")

	card, id := w.card(t, 1)
	if !access.IsBundleID(id) {
		t.Fatalf("the card's Approve button carries %q, want the request's bundle id", id)
	}
	txt := slackfake.BlockText(card.Blocks)
	if !strings.Contains(txt, "alice@example.com asks for prod-admin, db-admin") || strings.Count(txt, "pending, 0 of 1") != 2 {
		t.Errorf("card text:\n%s", txt)
	}
	waitFor(t, w.fake, "alice's confirmation", func() bool { return len(w.fake.EphemeralsFor("UALICE")) == 1 })
	if e := w.fake.EphemeralsFor("UALICE")[0]; !strings.Contains(e.Text, id) || !strings.Contains(e.Text, "*db-admin*") {
		t.Errorf("confirmation %q", e.Text)
	}

	w.click(t, "UBOB", "", handlers.ActionApprove, id, false)
	waitFor(t, w.fake, "prod-admin granted", func() bool { return w.prov.IsMember(groupAdmin, alice) })
	waitFor(t, w.fake, "card: one granted, one pending", func() bool {
		txt, buttons := w.cardText(card)
		return buttons && strings.Contains(txt, "active until 2031-03-04 10:30 UTC (approved by bob@example.com)") &&
			strings.Contains(txt, "pending, 0 of 1 approvals (carol@example.com)")
	})
	if w.prov.IsMember(groupDB, alice) {
		t.Fatal("bob's click granted db-admin, which only carol approves")
	}
	waitFor(t, w.fake, "bob's answer", func() bool { return len(w.fake.EphemeralsFor("UBOB")) == 1 })
	if e := w.fake.EphemeralsFor("UBOB")[0].Text; !strings.Contains(e, "You approved *prod-admin*") || !strings.Contains(e, "*db-admin*: you are not an approver") {
		t.Errorf("bob sees %q", e)
	}

	w.clk.Advance(10 * time.Minute)
	w.click(t, "UCAROL", "", handlers.ActionApprove, id, false)
	waitFor(t, w.fake, "db-admin granted", func() bool { return w.prov.IsMember(groupDB, alice) })
	waitFor(t, w.fake, "card: both granted, no buttons", func() bool {
		txt, buttons := w.cardText(card)
		return !buttons && strings.Count(txt, "active until 2031-03-04 10:30 UTC") == 2
	})
	ms, err := w.svc.Bundle(context.Background(), id)
	if err != nil || len(ms) != 2 {
		t.Fatalf("bundle %s: %v %v", id, ms, err)
	}
	for _, m := range ms {
		if !m.EndsAt.Equal(start.Add(30 * time.Minute)) {
			t.Errorf("%s ends %v, want the shared end %v", m.Role, m.EndsAt, start.Add(30*time.Minute))
		}
	}
	if n := len(w.fake.Messages(chApprove)); n != 1 {
		t.Errorf("%d cards posted for one request", n)
	}

	w.command(t, "UALICE", "list")
	waitFor(t, w.fake, "list", func() bool { return len(w.fake.EphemeralsFor("UALICE")) == 2 })
	if l := w.fake.EphemeralsFor("UALICE")[1].Text; strings.Count(l, "•") != 1 || !strings.Contains(l, id) ||
		!strings.Contains(l, "*prod-admin*") || !strings.Contains(l, "*db-admin*") {
		t.Errorf("list shows %q, want one entry with both roles", l)
	}

	w.clk.Advance(21 * time.Minute) // 31 minutes after the request: both ended
	if _, err := w.sched.Drain(tctx(t)); err != nil {
		t.Fatal(err)
	}
	if w.prov.IsMember(groupAdmin, alice) || w.prov.IsMember(groupDB, alice) {
		t.Fatal("memberships left after the shared end")
	}
	for _, m := range ms {
		if got := w.state(t, m.ID); got != access.StateEnded {
			t.Errorf("%s is %s after the shared end", m.Role, got)
		}
	}
	waitFor(t, w.fake, "card shows the end", func() bool {
		txt, _ := w.cardText(card)
		return strings.Count(txt, "(expired)") == 2
	})
}

// The form's multi-select asks for several roles in one request; the
// whole request is revoked with its bundle id.
func TestE2EFormSeveralRolesRevokeAll(t *testing.T) {
	w := newBundleWorld(t)
	ctx := tctx(t)
	w.command(t, "UALICE", "")
	waitFor(t, w.fake, "modal", func() bool { return len(w.fake.Views()) == 1 })
	v := w.fake.Views()[0]
	el := v.Blocks[0]["element"].(map[string]any)
	if el["type"] != "multi_static_select" || el["max_selected_items"] != float64(access.DefaultRolesPerRequest) {
		t.Fatalf("role element %v", el)
	}
	res, err := w.fake.SubmitView(ctx, v.ID, "UALICE", "", map[string]string{handlers.FieldRole: "prod-admin,db-admin",
		handlers.FieldDuration: "3h", handlers.FieldReason: "migration"})
	if err != nil {
		t.Fatal(err)
	}
	if res.Ack.ResponseAction() != "errors" || !strings.Contains(res.Ack.Errors()[handlers.FieldRole], "db-admin may be held for at most 2h") {
		t.Fatalf("3h for db-admin: ack %s", res.Ack.Payload)
	}
	if len(w.fake.Messages(chApprove)) != 0 {
		t.Fatal("a refused request posted a card")
	}
	if _, err := w.fake.SubmitView(ctx, v.ID, "UALICE", "", map[string]string{handlers.FieldRole: "prod-admin,db-admin",
		handlers.FieldDuration: "1h", handlers.FieldReason: "migration"}); err != nil {
		t.Fatal(err)
	}
	_, id := w.card(t, 1)
	w.click(t, "UBOB", "", handlers.ActionApprove, id, false)
	w.click(t, "UCAROL", "", handlers.ActionApprove, id, false)
	ms, err := w.svc.Bundle(context.Background(), id)
	if err != nil || len(ms) != 2 {
		t.Fatalf("bundle %s: %v %v", id, ms, err)
	}
	waitFor(t, w.fake, "both granted", func() bool {
		return w.state(t, ms[0].ID) == access.StateActive && w.state(t, ms[1].ID) == access.StateActive
	})

	n := len(w.fake.EphemeralsFor("UALICE"))
	w.command(t, "UALICE", "revoke "+id+" done early")
	waitFor(t, w.fake, "alice's answer", func() bool { return len(w.fake.EphemeralsFor("UALICE")) > n })
	if e := w.fake.EphemeralsFor("UALICE")[n].Text; !strings.Contains(e, "*prod-admin* (ended") || !strings.Contains(e, "*db-admin* (ended") {
		t.Errorf("alice sees %q", e)
	}
	if w.prov.IsMember(groupAdmin, alice) || w.prov.IsMember(groupDB, alice) {
		t.Error("memberships left after revoking the whole request")
	}
}
