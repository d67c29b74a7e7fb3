package slack_test

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/accessbot/accessbot/access"
	slackbot "github.com/accessbot/accessbot/bot/slack"
	"github.com/accessbot/accessbot/bot/slack/slackfake"
	"github.com/accessbot/accessbot/handlers"
	"github.com/accessbot/accessbot/internal/redistest"
	"github.com/accessbot/accessbot/providers/dryrun"
	redisstore "github.com/accessbot/accessbot/store/redis"
)

// Durable intake: two replicas on one real Redis behind the fake Slack
// (which spreads envelopes over both Socket Mode connections). One replica
// "dies" in the middle of an event: its handling blocks until the replica
// is stopped abruptly, which leaves the inbox entry with its lease, as a
// killed process would. Leases are real time (Redis measures them), so the
// tests use a short one.

const testLease = 300 * time.Millisecond

func TestMain(m *testing.M) { redistest.Main(m.Run) }

// deathPlan makes the first matching event handled on any replica stop
// there: before the handler runs (died mid-event) or after it ran but
// before the answer and the inbox entry's removal (died at the end).
type deathPlan struct {
	action string // "" for a command, else the button action that dies
	after  bool

	mu      sync.Mutex
	used    bool
	entered chan string // the name of the replica that died
}

func newDeathPlan(action string, after bool) *deathPlan {
	return &deathPlan{action: action, after: after, entered: make(chan string, 1)}
}

func (p *deathPlan) claim(action string) bool {
	if p == nil || action != p.action {
		return false
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.used {
		return false
	}
	p.used = true
	return true
}

// gate is the Handler of one replica: the real handlers, with the plan.
type gate struct {
	name  string
	inner slackbot.Handler
	plan  *deathPlan

	mu      sync.Mutex
	actions int // button actions handled
}

func (g *gate) die(ctx context.Context) {
	g.plan.entered <- g.name
	<-ctx.Done()
}

func (g *gate) actionsHandled() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.actions
}

func (g *gate) Command(ctx context.Context, c handlers.Command) handlers.Reply {
	if g.plan.claim("") {
		if g.plan.after {
			g.inner.Command(ctx, c)
		}
		g.die(ctx)
		return handlers.Reply{}
	}
	return g.inner.Command(ctx, c)
}

func (g *gate) Action(ctx context.Context, a handlers.Action) handlers.Reply {
	g.mu.Lock()
	g.actions++
	g.mu.Unlock()
	if g.plan.claim(a.Action) {
		if g.plan.after {
			g.inner.Action(ctx, a)
		}
		g.die(ctx)
		return handlers.Reply{}
	}
	return g.inner.Action(ctx, a)
}

func (g *gate) SubmitForm(ctx context.Context, in handlers.FormInput) (handlers.Reply, handlers.FormErrors) {
	return g.inner.SubmitForm(ctx, in)
}

func (g *gate) RoleOptions(ctx context.Context, user, query string) []handlers.RoleOption {
	return g.inner.RoleOptions(ctx, user, query)
}

// redisWorld is the fake Slack, the provider and the policy shared by the
// replicas, and the Redis prefix their stores share.
type redisWorld struct {
	fake   *slackfake.Server
	prov   *dryrun.Provider
	clk    *clock
	prefix string
	policy *access.Policy
	client *goredis.Client
}

func newRedisWorld(t *testing.T, opts slackfake.Options) *redisWorld {
	t.Helper()
	f := newFake(t, opts)
	return &redisWorld{
		fake:   f,
		prov:   dryrun.New(testLogger(t)),
		clk:    &clock{now: time.Date(2031, 3, 4, 10, 0, 0, 0, time.UTC)},
		prefix: redistest.Prefix(t),
		client: redistest.Client(t),
		policy: &access.Policy{Roles: map[string]access.Role{
			"prod-admin": {Name: "prod-admin", Description: "Administrator on production", Provider: "dryrun", Group: groupAdmin,
				MaxDuration: 4 * time.Hour, DefaultDuration: time.Hour, ApproverUsers: []string{"bob@example.com"},
				Approvals: 1, PendingTTL: time.Hour},
		}},
	}
}

type replica struct {
	name string
	st   *redisstore.Store
	svc  *access.Service
	gate *gate
	stop func() // cancels Run abruptly and waits for it to return
}

// replica starts a bot on the shared Redis prefix, with the real handlers
// behind plan's gate, or with inner instead when it is given.
func (w *redisWorld) replica(t *testing.T, name string, plan *deathPlan, inner ...slackbot.Handler) *replica {
	t.Helper()
	log := testLogger(t).With("replica", name)
	st := redisstore.New(w.client, w.prefix)
	svc, err := access.NewService(access.Deps{Store: st, Policy: w.policy, Providers: map[string]access.Provisioner{"dryrun": w.prov}, Clock: w.clk, Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	cfg := botConfig(w.fake)
	cfg.InboxLease = testLease
	b, err := slackbot.New(cfg, nil, st, log)
	if err != nil {
		t.Fatal(err)
	}
	svc.SetNotifier(handlers.NewNotifier(b, log))
	g := &gate{name: name, inner: handlers.New(svc, b, log), plan: plan}
	if len(inner) > 0 {
		g.inner = inner[0]
	}
	b.SetHandler(g)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- b.Run(ctx) }()
	var once sync.Once
	stop := func() {
		once.Do(func() {
			cancel()
			select {
			case err := <-done:
				if err != nil {
					t.Errorf("replica %s: Run: %v", name, err)
				}
			case <-time.After(10 * time.Second):
				t.Errorf("replica %s: Run did not return after cancel", name)
			}
		})
	}
	t.Cleanup(stop)
	return &replica{name: name, st: st, svc: svc, gate: g, stop: stop}
}

// twoReplicas starts replicas a and b and waits for both connections.
func (w *redisWorld) twoReplicas(t *testing.T, plan *deathPlan) map[string]*replica {
	t.Helper()
	rs := map[string]*replica{"a": w.replica(t, "a", plan), "b": w.replica(t, "b", plan)}
	waitFor(t, w.fake, "two connections", func() bool { return w.fake.LiveConnections() == 2 })
	return rs
}

// dies waits for the plan's victim and stops it; it returns the survivor.
func (w *redisWorld) dies(t *testing.T, plan *deathPlan, rs map[string]*replica) (dead, alive *replica) {
	t.Helper()
	select {
	case name := <-plan.entered:
		dead = rs[name]
	case <-time.After(15 * time.Second):
		t.Fatal("no replica reached the planned death")
	}
	dead.stop()
	for _, r := range rs {
		if r != dead {
			alive = r
		}
	}
	return dead, alive
}

// inboxEmpty checks that no entry is left (after any lease lapsed).
func inboxEmpty(t *testing.T, st *redisstore.Store) {
	t.Helper()
	time.Sleep(testLease + 100*time.Millisecond)
	es, err := st.InboxTake(context.Background(), "probe", 10, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if len(es) != 0 {
		t.Fatalf("%d inbox entries left over, first %s (attempts %d)", len(es), es[0].ID, es[0].Attempts)
	}
}

// (a) A command acknowledged by a replica that dies before handling it is
// handled by the other replica once the lease lapsed, and answered once.
func TestInboxCommandSurvivesReplicaDeath(t *testing.T) {
	w := newRedisWorld(t, slackfake.Options{})
	plan := newDeathPlan("", false)
	rs := w.twoReplicas(t, plan)

	res, err := w.fake.SlashCommand(tctx(t), slackfake.Command{User: "UALICE", Channel: chGeneral, Text: "prod-admin 1h checkout is down"})
	if err != nil {
		t.Fatalf("/access: %v", err)
	}
	if res.Ack.Late {
		t.Errorf("ack took %v", res.Ack.Latency)
	}
	dead, alive := w.dies(t, plan, rs)
	died := time.Now()

	waitFor(t, w.fake, "alice's answer from the survivor", func() bool { return len(w.fake.EphemeralsFor("UALICE")) >= 1 })
	answered := time.Since(died)
	waitFor(t, w.fake, "approval card", func() bool { return len(w.fake.Messages(chApprove)) >= 1 })
	inboxEmpty(t, alive.st)

	if n := len(w.fake.EphemeralsFor("UALICE")); n != 1 {
		t.Errorf("alice got %d answers, want 1: %s", n, ephemeralTexts(w.fake.EphemeralsFor("UALICE")))
	}
	if e := w.fake.EphemeralsFor("UALICE")[0]; strings.Contains(e.Text, "went wrong") {
		t.Errorf("alice sees %q", e.Text)
	}
	if n := len(w.fake.Messages(chApprove)); n != 1 {
		t.Errorf("%d approval cards, want 1", n)
	}
	mine, err := alive.svc.Mine(context.Background(), alice)
	if err != nil {
		t.Fatal(err)
	}
	if len(mine) != 1 {
		t.Errorf("%d requests stored for alice, want 1", len(mine))
	}
	if len(w.fake.Acks()) != 1 || w.fake.StrayAcks() != 0 {
		t.Errorf("acks %d, stray %d; want 1 and 0", len(w.fake.Acks()), w.fake.StrayAcks())
	}
	t.Logf("replica %s died holding the command; %s answered %v later (lease %v); ack latency %v",
		dead.name, alive.name, answered.Round(time.Millisecond), testLease, res.Ack.Latency)
}

// (b) An Approve click whose replica applied it and died before answering
// and removing the entry is handled again by the other replica: the grant
// and the decision happen once, bob is answered once. A redelivery of the
// same envelope is dropped by the inbox.
func TestInboxClickHandledTwiceAppliesOnce(t *testing.T) {
	w := newRedisWorld(t, slackfake.Options{})
	plan := newDeathPlan(handlers.ActionApprove, true)
	rs := w.twoReplicas(t, plan)

	if _, err := w.fake.SlashCommand(tctx(t), slackfake.Command{User: "UALICE", Channel: chGeneral, Text: "prod-admin 1h deploy hotfix"}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, w.fake, "approval card", func() bool { return len(w.fake.Messages(chApprove)) == 1 })
	id := approveValue(t, w.fake.Messages(chApprove)[0])

	click, err := w.fake.Click(tctx(t), slackfake.Click{User: "UBOB", Channel: chApprove, ActionID: handlers.ActionApprove, Value: id})
	if err != nil {
		t.Fatal(err)
	}
	_, alive := w.dies(t, plan, rs)
	if !w.prov.IsMember(groupAdmin, alice) {
		t.Fatal("the dying replica did not grant first")
	}
	waitFor(t, w.fake, "bob's answer from the survivor", func() bool { return len(w.fake.EphemeralsFor("UBOB")) >= 1 })
	inboxEmpty(t, alive.st)

	// A late redelivery of the click's envelope changes nothing.
	if _, err := w.fake.Redeliver(tctx(t), click.EnvelopeID); err != nil {
		t.Fatalf("Redeliver: %v", err)
	}
	inboxEmpty(t, alive.st)

	if n := w.prov.Count("grant", alice); n != 1 {
		t.Errorf("%d grants, want 1", n)
	}
	r, err := alive.svc.Get(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Decisions) != 1 || r.State != access.StateActive {
		t.Errorf("request %s with %d decisions, want active with 1", r.State, len(r.Decisions))
	}
	if n := len(w.fake.EphemeralsFor("UBOB")); n != 1 {
		t.Errorf("bob got %d answers, want 1: %s", n, ephemeralTexts(w.fake.EphemeralsFor("UBOB")))
	}
	if e := w.fake.EphemeralsFor("UBOB")[0]; strings.Contains(e.Text, "went wrong") {
		t.Errorf("bob sees %q", e.Text)
	}
	if n := alive.gate.actionsHandled(); n != 1 {
		t.Errorf("the survivor handled %d clicks, want 1 (the taken-over one)", n)
	}
}

// A request form whose trigger expired while its replica was dead is
// answered with the form-expired text by the replica that took it over.
func TestInboxTakenOverFormAnswersExpired(t *testing.T) {
	w := newRedisWorld(t, slackfake.Options{TriggerTTL: 100 * time.Millisecond})
	plan := newDeathPlan("", false)
	rs := w.twoReplicas(t, plan)
	if _, err := w.fake.SlashCommand(tctx(t), slackfake.Command{User: "UALICE", Channel: chGeneral, Text: ""}); err != nil {
		t.Fatal(err)
	}
	w.dies(t, plan, rs)
	waitFor(t, w.fake, "alice's answer", func() bool { return len(w.fake.EphemeralsFor("UALICE")) >= 1 })
	if e := w.fake.EphemeralsFor("UALICE")[0]; !strings.Contains(e.Text, "could not be opened in time") {
		t.Errorf("alice sees %q", e.Text)
	}
	if n := len(w.fake.Views()); n != 0 {
		t.Errorf("%d views opened", n)
	}
}

func approveValue(t *testing.T, m slackfake.Message) string {
	t.Helper()
	for _, b := range m.Blocks {
		if b["type"] != "actions" {
			continue
		}
		for _, e := range b["elements"].([]any) {
			if el := e.(map[string]any); el["action_id"] == handlers.ActionApprove {
				return el["value"].(string)
			}
		}
	}
	t.Fatalf("card without an Approve button: %s", slackfake.BlockText(m.Blocks))
	return ""
}

// (c) When the inbox cannot be written (Redis down), the envelope is not
// acknowledged and nothing is handled; once Redis is back, the envelope
// Slack sends again is stored, acknowledged and handled once.
func TestInboxWriteFailureLeavesEnvelopeUnacked(t *testing.T) {
	srv := redistest.NewServer(t, redistest.FreePort(t))
	srv.Start()
	opt, err := goredis.ParseURL(srv.URL())
	if err != nil {
		t.Fatal(err)
	}
	c := goredis.NewClient(opt)
	t.Cleanup(func() { _ = c.Close() })
	st := redisstore.New(c, "inboxdown")

	f := newFake(t, slackfake.Options{AckWait: 2 * time.Second})
	cfg := botConfig(f)
	cfg.InboxLease = testLease
	b, err := slackbot.New(cfg, nil, st, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	h := &recorder{}
	b.SetHandler(h)
	runBot(t, b)
	waitFor(t, f, "connection", func() bool { return f.LiveConnections() == 1 })

	if _, err := f.SlashCommand(tctx(t), slackfake.Command{User: "UALICE", Channel: chGeneral, Text: "one"}); err != nil {
		t.Fatalf("/access one with Redis up: %v", err)
	}
	waitFor(t, f, "first command handled", func() bool { cmds, _, _ := h.counts(); return cmds == 1 })

	srv.Stop()
	res, err := f.SlashCommand(tctx(t), slackfake.Command{User: "UALICE", Channel: chGeneral, Text: "two"})
	if err == nil {
		t.Fatalf("/access two acknowledged while Redis is down: %+v", res.Ack)
	}
	if cmds, _, _ := h.counts(); cmds != 1 || f.Unacked() != 1 {
		t.Fatalf("with Redis down: %d commands handled, %d envelopes unacked; want 1 and 1", cmds, f.Unacked())
	}

	srv.Start()
	f.Drop() // the fake sends unacknowledged envelopes again on the new connection
	waitFor(t, f, "second command handled after Redis is back", func() bool { cmds, _, _ := h.counts(); return cmds == 2 })
	waitFor(t, f, "its ack", func() bool { return f.Unacked() == 0 })
	acks := f.Acks()
	if len(acks) != 2 || acks[1].RetryAttempt != 1 {
		t.Fatalf("acks %+v; want the redelivery (retry_attempt 1) acknowledged", acks)
	}
	if got := h.commandTexts(); len(got) != 2 || got[1] != "two" {
		t.Errorf("commands handled: %q", got)
	}
}

// The inbox write happens before the ack: the ack still comes within
// milliseconds (Slack allows 3 s).
func TestInboxAckLatency(t *testing.T) {
	w := newRedisWorld(t, slackfake.Options{})
	h := &recorder{}
	r := w.replica(t, "a", nil, h)
	waitFor(t, w.fake, "connection", func() bool { return w.fake.LiveConnections() == 1 })
	const n = 100
	var lat []time.Duration
	for i := range n {
		res, err := w.fake.SlashCommand(tctx(t), slackfake.Command{User: "UALICE", Channel: chGeneral, Text: "ack " + strings.Repeat("x", i)})
		if err != nil {
			t.Fatal(err)
		}
		lat = append(lat, res.Ack.Latency)
	}
	waitFor(t, w.fake, "all handled", func() bool { cmds, _, _ := h.counts(); return cmds == n })
	inboxEmpty(t, r.st)
	p50, p99, worst := percentile(lat, 0.5), percentile(lat, 0.99), percentile(lat, 1)
	t.Logf("ack latency through the Redis inbox over %d commands: p50=%v p99=%v max=%v", n, p50, p99, worst)
	if worst > time.Second {
		t.Errorf("slowest ack %v; Slack waits 3 s", worst)
	}
}

// A handler that runs for several leases keeps its entry (the lease is
// renewed): the other replica does not handle the command a second time.
func TestInboxSlowHandlerKeepsItsEntry(t *testing.T) {
	w := newRedisWorld(t, slackfake.Options{})
	slow := func(handlers.Command) handlers.Reply {
		time.Sleep(4 * testLease)
		return handlers.Reply{Message: handlers.Message{Text: "done slowly"}}
	}
	ha, hb := &recorder{onCommand: slow}, &recorder{onCommand: slow}
	a, _ := w.replica(t, "a", nil, ha), w.replica(t, "b", nil, hb)
	waitFor(t, w.fake, "two connections", func() bool { return w.fake.LiveConnections() == 2 })
	if _, err := w.fake.SlashCommand(tctx(t), slackfake.Command{User: "UALICE", Channel: chGeneral, Text: "slow"}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, w.fake, "the answer", func() bool { return len(w.fake.EphemeralsFor("UALICE")) == 1 })
	inboxEmpty(t, a.st)
	ca, _, _ := ha.counts()
	cb, _, _ := hb.counts()
	if ca+cb != 1 || len(w.fake.EphemeralsFor("UALICE")) != 1 {
		t.Fatalf("handled %d times (a %d, b %d), %d answers; want once", ca+cb, ca, cb, len(w.fake.EphemeralsFor("UALICE")))
	}
}
