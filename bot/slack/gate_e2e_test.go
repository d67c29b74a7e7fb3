package slack_test

import (
	"context"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/accessbot/accessbot/access"
	slackbot "github.com/accessbot/accessbot/bot/slack"
	"github.com/accessbot/accessbot/bot/slack/slackfake"
	"github.com/accessbot/accessbot/handlers"
	"github.com/accessbot/accessbot/providers/dryrun"
	"github.com/accessbot/accessbot/providers/static"
	"github.com/accessbot/accessbot/scheduler"
	"github.com/accessbot/accessbot/store/bolt"
)

// End-to-end through the fake Slack: the request gate (requesters,
// reason_pattern, auto_approve) and the per-role routing (approvals_channel,
// notify).

const (
	chDBApprovals = "C0DBAPPROVALS"
	gateHint      = "start with the incident or change id, e.g. INC-1234 checkout down"
	autoRule      = "on call for platform during mon-fri 09:00-18:00 Europe/Berlin"
)

// gateWorld: bob is on call for platform; prod-admin may be requested by
// alice and whoever is on call, needs an INC-/CHG- reason, has its card
// in C0DBAPPROVALS and tells carol of outcomes; deploy is auto-approved
// for the on-call person in office hours (bob, its only approver: nobody
// else could approve his request, and none is needed). The clock is Tuesday 11:00 in
// Berlin.
func gateWorld(t *testing.T) *world {
	t.Helper()
	f := newFake(t, slackfake.Options{})
	f.AddChannel(chDBApprovals)
	f.AddUser(slackfake.User{ID: "UCAROL", Name: "carol", Email: "carol@example.com"})
	f.AddUser(slackfake.User{ID: "UZED", Name: "zed", Email: "zed@example.com"})
	log := testLogger(t)
	st, err := bolt.Open(filepath.Join(t.TempDir(), "accessbot.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	rot, errs := static.New(static.Config{Name: "platform", Timezone: "Europe/Berlin", Handoff: "monday 09:00",
		Start: "2031-03-03", Members: []string{"bob@example.com"}})
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	hours, err := access.ParseHours("mon-fri 09:00-18:00 Europe/Berlin")
	if err != nil {
		t.Fatal(err)
	}
	policy := &access.Policy{Roles: map[string]access.Role{
		"prod-admin": {Name: "prod-admin", Description: "Administrator on production", Provider: "dryrun", Group: groupAdmin,
			MaxDuration: 4 * time.Hour, DefaultDuration: time.Hour, ApproverUsers: []string{"bob@example.com"},
			Approvals: 1, PendingTTL: time.Hour,
			Requesters:    &access.Requesters{Users: []string{alice}, Rotations: []string{"platform"}},
			ReasonPattern: regexp.MustCompile(`^(INC|CHG)-[0-9]+ `), ReasonHint: gateHint,
			ApprovalsChannel: chDBApprovals, Notify: []string{"carol@example.com"}},
		"deploy": {Name: "deploy", Description: "Deploy to production", Provider: "dryrun", Group: groupRead,
			MaxDuration: 4 * time.Hour, DefaultDuration: time.Hour, ApproverUsers: []string{"bob@example.com"},
			Approvals: 1, PendingTTL: time.Hour,
			AutoApprove: &access.AutoApprove{Rotations: []string{"platform"}, Hours: hours}},
	}, Rotations: map[string]access.Rotation{"platform": {Name: "platform", Source: "static"}}}
	clk := &clock{now: time.Date(2031, 3, 4, 10, 0, 0, 0, time.UTC)}
	prov := dryrun.New(log)
	svc, err := access.NewService(access.Deps{Store: st, Policy: policy, Providers: map[string]access.Provisioner{"dryrun": prov},
		OnCall: access.OnCallRouter{"platform": rot}, Clock: clk, Logger: log})
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
	return &world{fake: f, bot: b, svc: svc, prov: prov, sched: sched, clk: clk}
}

func (w *world) lastEphemeral(t *testing.T, user string, n int) string {
	t.Helper()
	waitFor(t, w.fake, user+"'s reply", func() bool { return len(w.fake.EphemeralsFor(user)) >= n })
	es := w.fake.EphemeralsFor(user)
	return es[len(es)-1].Text
}

func TestE2EAutoApprovedOnCall(t *testing.T) {
	w := gateWorld(t)
	w.command(t, "UBOB", "deploy 1h hotfix for checkout")
	waitFor(t, w.fake, "grant", func() bool { return w.prov.IsMember(groupRead, "bob@example.com") })
	if txt := w.lastEphemeral(t, "UBOB", 1); !strings.Contains(txt, "was auto-approved ("+autoRule+"): you have it until") {
		t.Errorf("bob's reply: %q", txt)
	}
	waitFor(t, w.fake, "the card", func() bool { return len(w.fake.Messages(chApprove)) == 1 })
	card := w.fake.Messages(chApprove)[0]
	waitFor(t, w.fake, "the card shows the grant", func() bool {
		m, _ := w.fake.Message(card.Channel, card.TS)
		return strings.Contains(slackfake.BlockText(m.Blocks), "active until")
	})
	m, _ := w.fake.Message(card.Channel, card.TS)
	txt := slackfake.BlockText(m.Blocks)
	if slackfake.HasButtons(m.Blocks) || !strings.Contains(txt, "Auto-approved by accessbot: "+autoRule) ||
		!strings.Contains(txt, "auto-approved: "+autoRule) {
		t.Errorf("card:\n%s", txt)
	}
	evs, _ := w.svc.Audit(context.Background(), time.Time{})
	found := false
	for _, ev := range evs {
		if ev.Action == access.ActApproved && ev.Actor == access.SystemActor && ev.Detail == "auto-approved: "+autoRule {
			found = true
		}
	}
	if !found {
		t.Errorf("no approval by %s with the rule in the audit log: %+v", access.SystemActor, evs)
	}
	// alice is not on call: her deploy waits for a click.
	w.command(t, "UALICE", "deploy 1h hotfix for checkout")
	if txt := w.lastEphemeral(t, "UALICE", 1); !strings.Contains(txt, "sent for approval") {
		t.Errorf("alice's reply: %q", txt)
	}
}

func TestE2ERequesterRefused(t *testing.T) {
	w := gateWorld(t)
	w.command(t, "UZED", "prod-admin 1h INC-1 checkout down")
	want := "you may not request prod-admin; who may: alice@example.com, whoever is on call for platform. Nothing was sent"
	if txt := w.lastEphemeral(t, "UZED", 1); !strings.Contains(txt, want) {
		t.Errorf("zed's reply %q, want %q", txt, want)
	}
	// /access roles does not offer it to zed.
	w.command(t, "UZED", "roles")
	if txt := w.lastEphemeral(t, "UZED", 2); strings.Contains(txt, "prod-admin") || !strings.Contains(txt, "deploy") {
		t.Errorf("zed's roles: %q", txt)
	}
	if n := len(w.fake.Messages(chDBApprovals)) + len(w.fake.Messages(chApprove)); n != 0 {
		t.Errorf("%d cards posted for a refused request", n)
	}
	if all, _ := w.svc.Store().List(context.Background(), access.Filter{}); len(all) != 0 {
		t.Errorf("%d requests stored", len(all))
	}
}

func TestE2EReasonPattern(t *testing.T) {
	w := gateWorld(t)
	ctx := tctx(t)
	w.command(t, "UALICE", "prod-admin 1h checkout down")
	if txt := w.lastEphemeral(t, "UALICE", 1); !strings.Contains(txt, "must match `^(INC|CHG)-[0-9]+ `: "+gateHint) {
		t.Errorf("alice's reply %q", txt)
	}
	// The form shows the hint under the reason field and puts the
	// refusal on it.
	w.command(t, "UALICE", "prod-admin")
	waitFor(t, w.fake, "modal", func() bool { return len(w.fake.Views()) == 1 })
	v := w.fake.Views()[0]
	hint, _ := v.Blocks[2]["hint"].(map[string]any)
	if v.Blocks[2]["block_id"] != handlers.FieldReason || hint["text"] != gateHint {
		t.Fatalf("reason block %v", v.Blocks[2])
	}
	res, err := w.fake.SubmitView(ctx, v.ID, "UALICE", "", map[string]string{handlers.FieldDuration: "1h", handlers.FieldReason: "checkout down"})
	if err != nil {
		t.Fatal(err)
	}
	if res.Ack.ResponseAction() != "errors" || !strings.Contains(res.Ack.Errors()[handlers.FieldReason], gateHint) {
		t.Fatalf("ack %s", res.Ack.Payload)
	}
	if n := len(w.fake.Messages(chDBApprovals)); n != 0 {
		t.Errorf("%d cards posted", n)
	}
}

func TestE2EApprovalsChannelAndNotify(t *testing.T) {
	w := gateWorld(t)
	w.command(t, "UALICE", "prod-admin 1h INC-42 checkout down")
	waitFor(t, w.fake, "card in the role's channel", func() bool { return len(w.fake.Messages(chDBApprovals)) == 1 })
	if n := len(w.fake.Messages(chApprove)); n != 0 {
		t.Errorf("%d cards in the default approvals channel", n)
	}
	_, id := cardIn(t, w, chDBApprovals)
	if _, err := w.fake.Click(tctx(t), slackfake.Click{User: "UBOB", Channel: chDBApprovals, ActionID: handlers.ActionApprove, Value: id}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, w.fake, "grant", func() bool { return w.prov.IsMember(groupAdmin, alice) })
	waitFor(t, w.fake, "carol's DMs", func() bool {
		d := w.dmTexts("UCAROL")
		return strings.Contains(d, "for prod-admin was approved") && strings.Contains(d, "for prod-admin is active")
	})
	ch := w.fake.DMChannel("UCAROL")
	for _, m := range w.fake.Messages(ch) {
		if slackfake.HasButtons(m.Blocks) {
			t.Errorf("a notify DM has buttons:\n%s", slackfake.BlockText(m.Blocks))
		}
	}
	if d := w.dmTexts("UCAROL"); !strings.Contains(d, "Approved by bob@example.com") || !strings.Contains(d, "you cannot decide it") {
		t.Errorf("carol's DMs:\n%s", d)
	}
	// carol cannot decide: she is told, not asked.
	if _, err := w.svc.Decide(context.Background(), id, "carol@example.com", false, "no"); err == nil {
		t.Error("a notify identity decided")
	}
}

// cardIn returns the newest card in ch with an Approve button and its request id.
func cardIn(t *testing.T, w *world, ch string) (slackfake.Message, string) {
	t.Helper()
	for _, m := range w.fake.Messages(ch) {
		for _, b := range m.Blocks {
			if b["type"] != "actions" {
				continue
			}
			for _, e := range b["elements"].([]any) {
				if el := e.(map[string]any); el["action_id"] == handlers.ActionApprove {
					return m, el["value"].(string)
				}
			}
		}
	}
	t.Fatalf("no card with an Approve button in %s", ch)
	return slackfake.Message{}, ""
}
