package slack_test

import (
	"context"
	"path/filepath"
	"strings"
	"sync"
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

// End-to-end: the real engine (bolt store, dry-run provider, workflow
// service, expiry scheduler, handlers and notifier) behind this transport,
// against the fake Slack.

const (
	groupAdmin = "g-prod-admin"
	groupRead  = "g-prod-read"
	alice      = "alice@example.com"
)

type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

type world struct {
	fake  *slackfake.Server
	bot   *slackbot.Bot
	svc   *access.Service
	prov  *dryrun.Provider
	sched *scheduler.Scheduler
	clk   *clock
}

func newWorld(t *testing.T, opts slackfake.Options, mods ...func(*slackbot.Config)) *world {
	t.Helper()
	prov := dryrun.New(testLogger(t))
	w := newWorldWith(t, opts, prov, groupAdmin, groupRead, mods...)
	w.prov = prov
	return w
}

// newWorldWith wires the engine with prov (registered as "dryrun") and
// the groups of prod-admin and prod-read.
func newWorldWith(t *testing.T, opts slackfake.Options, prov access.Provisioner, adminGroup, readGroup string, mods ...func(*slackbot.Config)) *world {
	t.Helper()
	f := newFake(t, opts)
	f.AddUser(slackfake.User{ID: "UCAROL", Name: "carol", Email: "carol@example.com"})
	// dave is a named approver, but this account is in a workspace that is
	// not allowed: the transport must refuse it before the engine sees it.
	f.AddUser(slackfake.User{ID: "UDAVE", Name: "dave", Email: "dave@example.com", Team: otherTeam})

	log := testLogger(t)
	st, err := bolt.Open(filepath.Join(t.TempDir(), "accessbot.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() }) // runs after the bot stopped (cleanups run last-in first-out)

	policy := &access.Policy{Roles: map[string]access.Role{
		"prod-admin": {Name: "prod-admin", Description: "Administrator on production", Provider: "dryrun", Group: adminGroup,
			MaxDuration: 4 * time.Hour, DefaultDuration: time.Hour, ApproverUsers: []string{"bob@example.com", "dave@example.com"},
			Approvals: 1, PendingTTL: time.Hour},
		"prod-read": {Name: "prod-read", Description: "Read-only on production", Provider: "dryrun", Group: readGroup,
			MaxDuration: 8 * time.Hour, DefaultDuration: time.Hour, ApproverUsers: []string{"bob@example.com"},
			Approvals: 1, PendingTTL: time.Hour},
	}}
	clk := &clock{now: time.Date(2031, 3, 4, 10, 0, 0, 0, time.UTC)}
	svc, err := access.NewService(access.Deps{Store: st, Policy: policy, Providers: map[string]access.Provisioner{"dryrun": prov}, Clock: clk, Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	cfg := botConfig(f)
	for _, m := range mods {
		m(&cfg)
	}
	b, err := slackbot.New(cfg, nil, st, log)
	if err != nil {
		t.Fatal(err)
	}
	svc.SetNotifier(handlers.NewNotifier(b, log))
	b.SetHandler(handlers.New(svc, b, log))
	sched := scheduler.New(st, svc, clk, log, scheduler.Options{})
	svc.SetWaker(sched)
	runBot(t, b)
	waitFor(t, f, "first connection", func() bool { return f.LiveConnections() == 1 })
	return &world{fake: f, bot: b, svc: svc, sched: sched, clk: clk}
}

func (w *world) command(t *testing.T, user, text string) slackfake.Result {
	t.Helper()
	res, err := w.fake.SlashCommand(tctx(t), slackfake.Command{User: user, Channel: chGeneral, Text: text})
	if err != nil {
		t.Fatalf("/access %s: %v", text, err)
	}
	return res
}

// card waits for the n-th approval card (1-based) and returns it and the
// request id on its Approve button.
func (w *world) card(t *testing.T, n int) (slackfake.Message, string) {
	t.Helper()
	waitFor(t, w.fake, "approval card", func() bool { return len(w.fake.Messages(chApprove)) >= n })
	m := w.fake.Messages(chApprove)[n-1]
	for _, b := range m.Blocks {
		if b["type"] != "actions" {
			continue
		}
		for _, e := range b["elements"].([]any) {
			el := e.(map[string]any)
			if el["action_id"] == handlers.ActionApprove {
				return m, el["value"].(string)
			}
		}
	}
	t.Fatalf("card without an Approve button: %s", slackfake.BlockText(m.Blocks))
	return m, ""
}

func (w *world) click(t *testing.T, user, team, action, id string, stale bool) slackfake.Result {
	t.Helper()
	res, err := w.fake.Click(tctx(t), slackfake.Click{User: user, Team: team, Channel: chApprove, ActionID: action, Value: id, Stale: stale})
	if err != nil {
		t.Fatalf("%s clicks %s on %s: %v", user, action, id, err)
	}
	return res
}

func (w *world) state(t *testing.T, id string) access.State {
	t.Helper()
	r, err := w.svc.Get(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	return r.State
}

func (w *world) reportAcks(t *testing.T) {
	var lat []time.Duration
	for _, a := range w.fake.Acks() {
		lat = append(lat, a.Latency)
	}
	t.Logf("acks: %d, latency p50=%v max=%v; connections.open calls: %d", len(lat), percentile(lat, 0.5), percentile(lat, 1), w.fake.ConnectionsOpened())
}

func ephemeralTexts(es []slackfake.Ephemeral) string {
	var out []string
	for _, e := range es {
		out = append(out, e.Text)
	}
	return strings.Join(out, "\n")
}

// (1) request, approval card, approve, grant, card update, DM, expiry.
func TestE2ERequestApproveExpire(t *testing.T) {
	w := newWorld(t, slackfake.Options{})
	w.command(t, "UALICE", "prod-admin 30m fixing checkout <!channel>")

	card, id := w.card(t, 1)
	txt := slackfake.BlockText(card.Blocks)
	if !strings.Contains(txt, "alice@example.com asks for prod-admin") || !strings.Contains(txt, "fixing checkout &lt;!channel&gt;") {
		t.Errorf("card text:\n%s", txt)
	}
	waitFor(t, w.fake, "alice's confirmation", func() bool { return len(w.fake.EphemeralsFor("UALICE")) == 1 })
	if e := w.fake.EphemeralsFor("UALICE")[0]; !strings.Contains(e.Text, id) || e.Channel != chGeneral {
		t.Errorf("confirmation %+v", e)
	}

	w.click(t, "UBOB", "", handlers.ActionApprove, id, false)
	waitFor(t, w.fake, "grant", func() bool { return w.prov.IsMember(groupAdmin, alice) })
	waitFor(t, w.fake, "card without buttons", func() bool {
		m, _ := w.fake.Message(card.Channel, card.TS)
		return m.Updates > 0 && !slackfake.HasButtons(m.Blocks) && strings.Contains(slackfake.BlockText(m.Blocks), "active until")
	})
	dm := w.fake.DMChannel("UALICE")
	waitFor(t, w.fake, "alice's DMs", func() bool { return dm != "" || w.fake.DMChannel("UALICE") != "" })
	dm = w.fake.DMChannel("UALICE")
	waitFor(t, w.fake, "grant DM", func() bool {
		for _, m := range w.fake.Messages(dm) {
			if strings.Contains(m.Text, "You have prod-admin until") {
				return true
			}
		}
		return false
	})
	waitFor(t, w.fake, "bob's ephemeral", func() bool { return len(w.fake.EphemeralsFor("UBOB")) == 1 })
	if e := w.fake.EphemeralsFor("UBOB")[0]; !strings.Contains(e.Text, "You approved "+id) {
		t.Errorf("bob sees %q", e.Text)
	}

	// Expiry: 31 minutes later the expiry engine removes her.
	w.clk.Advance(31 * time.Minute)
	if _, err := w.sched.Drain(tctx(t)); err != nil {
		t.Fatal(err)
	}
	if w.prov.IsMember(groupAdmin, alice) {
		t.Fatal("alice still in the group after expiry")
	}
	if got := w.state(t, id); got != access.StateEnded {
		t.Errorf("request %s after expiry", got)
	}
	waitFor(t, w.fake, "card shows the end", func() bool {
		m, _ := w.fake.Message(card.Channel, card.TS)
		return !slackfake.HasButtons(m.Blocks) && strings.Contains(strings.ToLower(slackfake.BlockText(m.Blocks)), "expired")
	})
	waitFor(t, w.fake, "end DM", func() bool {
		for _, m := range w.fake.Messages(dm) {
			if strings.Contains(m.Text, "access has ended") {
				return true
			}
		}
		return false
	})
	if n := w.prov.Count("grant", alice); n != 1 {
		t.Errorf("%d grants", n)
	}
	if n := w.prov.Count("revoke", alice); n != 1 {
		t.Errorf("%d revokes", n)
	}
	w.reportAcks(t)
}

// (2) self-approval, a non-approver, a foreign workspace and 20 concurrent
// Approve clicks: exactly one grant, every refusal ephemeral.
func TestE2ERefusalsAndConcurrentApprovals(t *testing.T) {
	w := newWorld(t, slackfake.Options{})
	w.command(t, "UALICE", "prod-admin 1h deploy hotfix")
	card, id := w.card(t, 1)
	waitFor(t, w.fake, "confirmation", func() bool { return len(w.fake.EphemeralsFor("UALICE")) == 1 })

	w.click(t, "UALICE", "", handlers.ActionApprove, id, false)
	waitFor(t, w.fake, "self-approval refused", func() bool { return len(w.fake.EphemeralsFor("UALICE")) == 2 })
	if e := w.fake.EphemeralsFor("UALICE")[1]; !strings.Contains(e.Text, "own request") {
		t.Errorf("alice sees %q", e.Text)
	}
	w.click(t, "UCAROL", "", handlers.ActionApprove, id, false)
	waitFor(t, w.fake, "non-approver refused", func() bool { return len(w.fake.EphemeralsFor("UCAROL")) == 1 })
	if e := w.fake.EphemeralsFor("UCAROL")[0]; !strings.Contains(e.Text, "not an approver") {
		t.Errorf("carol sees %q", e.Text)
	}
	w.click(t, "UDAVE", otherTeam, handlers.ActionApprove, id, false)
	waitFor(t, w.fake, "foreign team refused", func() bool { return len(w.fake.EphemeralsFor("UDAVE")) == 1 })
	if e := w.fake.EphemeralsFor("UDAVE")[0]; !strings.Contains(e.Text, "workspace is not allowed") {
		t.Errorf("dave sees %q", e.Text)
	}
	if got := w.state(t, id); got != access.StatePending || w.prov.Count("grant", alice) != 0 {
		t.Fatalf("after refusals: state %s, %d grants", got, w.prov.Count("grant", alice))
	}
	if m, _ := w.fake.Message(card.Channel, card.TS); m.Updates != 0 {
		t.Errorf("refused clicks changed the card %d times", m.Updates)
	}

	const clicks = 20
	var wg sync.WaitGroup
	lat := make([]time.Duration, clicks)
	for i := range clicks {
		wg.Go(func() {
			res, err := w.fake.Click(tctx(t), slackfake.Click{User: "UBOB", Channel: chApprove, ActionID: handlers.ActionApprove, Value: id, Stale: true})
			if err != nil {
				t.Errorf("click %d: %v", i, err)
				return
			}
			lat[i] = res.Ack.Latency
		})
	}
	wg.Wait()
	t.Logf("%d concurrent Approve clicks: ack latency p50=%v max=%v", clicks, percentile(lat, 0.5), percentile(lat, 1))
	waitFor(t, w.fake, "an answer to every click", func() bool { return len(w.fake.EphemeralsFor("UBOB")) == clicks })
	waitFor(t, w.fake, "grant", func() bool { return w.prov.IsMember(groupAdmin, alice) })
	if n := w.prov.Count("grant", alice); n != 1 {
		t.Errorf("%d grants from %d clicks, want exactly 1", n, clicks)
	}
	approved := 0
	for _, e := range w.fake.EphemeralsFor("UBOB") {
		if strings.Contains(e.Text, "You approved "+id) {
			approved++
		}
	}
	if approved != 1 {
		t.Errorf("%d clicks were told they approved, want 1:\n%s", approved, ephemeralTexts(w.fake.EphemeralsFor("UBOB")))
	}
	if len(w.fake.EphemeralsFor("UALICE")) != 2 || len(w.fake.EphemeralsFor("UCAROL")) != 1 || len(w.fake.EphemeralsFor("UDAVE")) != 1 {
		t.Error("refused people got more than one answer each")
	}
	// Nothing in the channel but the card: every refusal was ephemeral.
	if ms := w.fake.Messages(chApprove); len(ms) != 1 {
		t.Errorf("%d messages in the approvals channel, want only the card", len(ms))
	}
	if ms := w.fake.Messages(chGeneral); len(ms) != 0 {
		t.Errorf("%d public messages in the command channel", len(ms))
	}
	w.reportAcks(t)
}

// (3) /access without arguments opens the modal in time; an invalid
// submission shows errors in it; a valid one creates the request.
func TestE2EFormModal(t *testing.T) {
	w := newWorld(t, slackfake.Options{})
	w.command(t, "UALICE", "")
	waitFor(t, w.fake, "modal", func() bool { return len(w.fake.Views()) == 1 })
	v := w.fake.Views()[0]
	t.Logf("modal opened %v after its trigger was issued (Slack allows 3s)", v.SinceTrigger)
	if v.SinceTrigger > 3*time.Second {
		t.Errorf("modal opened %v after the trigger", v.SinceTrigger)
	}
	opts, _ := v.Blocks[0]["element"].(map[string]any)["options"].([]any)
	if len(opts) != 2 {
		t.Errorf("%d role options, want 2", len(opts))
	}

	res, err := w.fake.SubmitView(tctx(t), v.ID, "UALICE", "", map[string]string{
		handlers.FieldRole: "prod-admin", handlers.FieldDuration: "9h", handlers.FieldReason: "fix checkout"})
	if err != nil {
		t.Fatal(err)
	}
	if res.Ack.ResponseAction() != "errors" || !strings.Contains(res.Ack.Errors()[handlers.FieldDuration], "at most") {
		t.Fatalf("invalid submission ack: %s", res.Ack.Payload)
	}
	if n := len(w.fake.Messages(chApprove)); n != 0 {
		t.Fatalf("an invalid submission posted %d cards", n)
	}

	res, err = w.fake.SubmitView(tctx(t), v.ID, "UALICE", "", map[string]string{
		handlers.FieldRole: "prod-admin", handlers.FieldDuration: "2h", handlers.FieldReason: "fix checkout"})
	if err != nil {
		t.Fatal(err)
	}
	if res.Ack.Payload != nil {
		t.Errorf("valid submission ack %s, want a plain ack", res.Ack.Payload)
	}
	_, id := w.card(t, 1)
	if got := w.state(t, id); got != access.StatePending {
		t.Errorf("request %s", got)
	}
	waitFor(t, w.fake, "confirmation", func() bool { return len(w.fake.EphemeralsFor("UALICE")) == 1 })
	if e := w.fake.EphemeralsFor("UALICE")[0]; !strings.Contains(e.Text, id) || e.Channel != chGeneral {
		t.Errorf("confirmation %+v", e)
	}
	w.reportAcks(t)
}

// (4) a disconnect frame and dropped sockets mid-run: the bot reconnects
// and loses no event.
func TestE2EReconnectLosesNothing(t *testing.T) {
	w := newWorld(t, slackfake.Options{})
	w.command(t, "UALICE", "prod-admin 1h incident 42")
	_, adminID := w.card(t, 1)

	w.fake.Disconnect("refresh_requested")
	w.click(t, "UBOB", "", handlers.ActionApprove, adminID, false)
	waitFor(t, w.fake, "grant after disconnect", func() bool { return w.prov.IsMember(groupAdmin, alice) })

	// The next envelope's socket dies before its ack is back: it is
	// redelivered on the new connection and acted on once.
	w.fake.DropNextDelivery()
	w.command(t, "UALICE", "prod-read 2h incident 42 dashboards")
	_, readID := w.card(t, 2)
	waitFor(t, w.fake, "reconnect after the mid-delivery drop", func() bool {
		return w.fake.ConnectionsOpened() >= 3 && w.fake.LiveConnections() == 1
	})

	w.fake.Drop()
	w.fake.DropNextDelivery()
	w.click(t, "UBOB", "", handlers.ActionApprove, readID, false)
	waitFor(t, w.fake, "second grant", func() bool { return w.prov.IsMember(groupRead, alice) })

	w.command(t, "UALICE", "list")
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	if err := w.fake.Wait(ctx, func() bool {
		es := w.fake.EphemeralsFor("UALICE")
		for _, e := range es {
			if strings.Contains(e.Text, "Your requests") && strings.Contains(e.Text, adminID) && strings.Contains(e.Text, readID) {
				return len(es) == 3 // two confirmations (in either order) and the list
			}
		}
		return false
	}); err != nil {
		t.Fatalf("list reply: %v; alice saw:\n%s", err, ephemeralTexts(w.fake.EphemeralsFor("UALICE")))
	}
	waitFor(t, w.fake, "bob's answers", func() bool { return len(w.fake.EphemeralsFor("UBOB")) == 2 })

	if n := w.prov.Count("grant", alice); n != 2 {
		t.Errorf("%d grants, want 2 (one per request)", n)
	}
	if n := len(w.fake.Messages(chApprove)); n != 2 {
		t.Errorf("%d cards, want 2 (a redelivered command must not submit twice)", n)
	}
	if n := w.fake.ConnectionsOpened(); n < 4 {
		t.Errorf("connections.open called %d times, want at least 4 (start, disconnect, two drops)", n)
	}
	if n := w.fake.Unacked(); n != 0 {
		t.Errorf("%d envelopes never acknowledged", n)
	}
	retried := 0
	for _, a := range w.fake.Acks() {
		if a.RetryAttempt > 0 {
			retried++
		}
	}
	t.Logf("redelivered and acknowledged: %d; stray acks: %d", retried, w.fake.StrayAcks())
	w.reportAcks(t)
}

// Without an approvals channel every approver gets the card by DM and
// decides there; every copy is updated.
func TestE2EApprovalCardsByDM(t *testing.T) {
	w := newWorld(t, slackfake.Options{}, func(c *slackbot.Config) { c.ApprovalsChannel = "" })
	w.command(t, "UALICE", "prod-read 1h check dashboards")
	var bobDM string
	waitFor(t, w.fake, "card in bob's DM", func() bool {
		bobDM = w.fake.DMChannel("UBOB")
		return bobDM != "" && len(w.fake.Messages(bobDM)) == 1
	})
	card := w.fake.Messages(bobDM)[0]
	if !slackfake.HasButtons(card.Blocks) {
		t.Fatalf("DM card without buttons: %s", slackfake.BlockText(card.Blocks))
	}
	var id string
	for _, b := range card.Blocks {
		if b["type"] == "actions" {
			id = b["elements"].([]any)[0].(map[string]any)["value"].(string)
		}
	}
	if _, err := w.fake.Click(tctx(t), slackfake.Click{User: "UBOB", Channel: bobDM, ActionID: handlers.ActionApprove, Value: id}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, w.fake, "grant", func() bool { return w.prov.IsMember(groupRead, alice) })
	waitFor(t, w.fake, "DM card updated", func() bool {
		m, _ := w.fake.Message(bobDM, card.TS)
		return m.Updates > 0 && !slackfake.HasButtons(m.Blocks)
	})
	waitFor(t, w.fake, "bob's answer in his DM", func() bool {
		es := w.fake.EphemeralsFor("UBOB")
		return len(es) == 1 && es[0].Channel == bobDM
	})
	if n := len(w.fake.Messages(chApprove)); n != 0 {
		t.Errorf("%d messages in the approvals channel, want none", n)
	}
	w.reportAcks(t)
}
