package discord_test

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/accessbot/accessbot/access"
	"github.com/accessbot/accessbot/bot/discord"
	"github.com/accessbot/accessbot/bot/discord/discordfake"
	"github.com/accessbot/accessbot/handlers"
	"github.com/accessbot/accessbot/internal/redistest"
	"github.com/accessbot/accessbot/providers/dryrun"
	redisstore "github.com/accessbot/accessbot/store/redis"
)

// Durable intake: two replicas on one real Redis behind the fake Discord
// (which spreads interactions over both gateway sessions). One replica
// "dies" in the middle of an interaction it already acknowledged with a
// deferred response: its handling blocks until the replica is stopped
// abruptly, which leaves the inbox entry with its lease, as a killed
// process would. Leases are real time (Redis measures them), so the tests
// use a short one.

const testLease = 300 * time.Millisecond

func TestMain(m *testing.M) { redistest.Main(m.Run) }

// deathPlan makes the first matching interaction handled on any replica
// stop there: before the handler runs, or after it ran but before the
// answer and the inbox entry's removal.
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
	inner discord.Handler
	plan  *deathPlan

	mu       sync.Mutex
	commands int
	actions  int
}

func (g *gate) die(ctx context.Context) {
	g.plan.entered <- g.name
	<-ctx.Done()
}

func (g *gate) counts() (commands, actions int) {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.commands, g.actions
}

func (g *gate) Command(ctx context.Context, c handlers.Command) handlers.Reply {
	g.mu.Lock()
	g.commands++
	g.mu.Unlock()
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

// formHandler asks for the request form whatever was typed.
type formHandler struct{ *counter }

func (formHandler) Command(context.Context, handlers.Command) handlers.Reply {
	return handlers.Reply{Form: &handlers.Form{Role: "prod-admin"}}
}

type redisWorld struct {
	fake   *discordfake.Server
	prov   *dryrun.Provider
	clk    *clock
	prefix string
	client *goredis.Client
}

func newRedisWorld(t *testing.T, opts ...discordfake.Options) *redisWorld {
	t.Helper()
	o := discordfake.Options{}
	if len(opts) > 0 {
		o = opts[0]
	}
	return &redisWorld{
		fake:   newFake(t, o),
		prov:   dryrun.New(testLogger(t)),
		clk:    &clock{now: time.Date(2031, 3, 4, 10, 0, 0, 0, time.UTC)},
		prefix: redistest.Prefix(t),
		client: redistest.Client(t),
	}
}

type replica struct {
	name string
	st   *redisstore.Store
	svc  *access.Service
	gate *gate
	stop func() // cancels Run abruptly and waits for it to return
}

// replica starts a bot on the shared Redis prefix with the real handlers
// behind plan's gate, or inner instead when given.
func (w *redisWorld) replica(t *testing.T, name string, plan *deathPlan, inner ...discord.Handler) *replica {
	t.Helper()
	log := testLogger(t).With("replica", name)
	st := redisstore.New(w.client, w.prefix)
	svc, err := access.NewService(access.Deps{Store: st, Policy: policy(), Providers: map[string]access.Provisioner{"dryrun": w.prov}, Clock: w.clk, Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	cfg := botConfig(w.fake)
	cfg.InboxLease = testLease
	b, err := discord.New(cfg, nil, st, log, nil)
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
			case <-time.After(15 * time.Second):
				t.Errorf("replica %s: Run did not return after cancel", name)
			}
		})
	}
	t.Cleanup(stop)
	return &replica{name: name, st: st, svc: svc, gate: g, stop: stop}
}

func (w *redisWorld) twoReplicas(t *testing.T, plan *deathPlan, inner ...discord.Handler) map[string]*replica {
	t.Helper()
	n := w.fake.Overwrites()
	rs := map[string]*replica{"a": w.replica(t, "a", plan, inner...), "b": w.replica(t, "b", plan, inner...)}
	waitFor(t, w.fake, "two sessions with commands", func() bool { return w.fake.LiveSessions() == 2 && w.fake.Overwrites() == n+2 })
	return rs
}

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

// answeredOnce waits for the edit of in's deferred response and checks
// that it is the person's only answer.
func answeredOnce(t *testing.T, f *discordfake.Server, in *discordfake.Interaction) string {
	t.Helper()
	waitFor(t, f, "the answer to "+in.ID, func() bool { return f.Interaction(in.ID).Original.Edits >= 1 })
	time.Sleep(testLease) // a second answer would come within a lease
	got := f.Interaction(in.ID)
	if got.Callbacks != 1 || got.ResponseType != 5 || got.Original.Edits != 1 || len(got.Followups) != 0 {
		t.Errorf("interaction %s: %d callbacks (type %d), %d edits, %d follow-ups; want 1 deferred response answered by 1 edit",
			in.ID, got.Callbacks, got.ResponseType, got.Original.Edits, len(got.Followups))
	}
	txt := discordfake.Text(*got.Original)
	for _, bad := range []string{"went wrong", "restarting", "Done."} {
		if strings.Contains(txt, bad) {
			t.Errorf("the person sees %q", txt)
		}
	}
	return txt
}

// A request acknowledged (deferred) by a replica that dies before handling
// it is handled by the other replica once the lease lapsed, and answered
// once, through the interaction's webhook.
func TestInboxDeferredRequestSurvivesReplicaDeath(t *testing.T) {
	w := newRedisWorld(t)
	plan := newDeathPlan("", false)
	rs := w.twoReplicas(t, plan)

	in, err := w.fake.Command(tctx(t), in(uAlice), "request", discordfake.Option{Name: "role", Value: "prod-admin"},
		discordfake.Option{Name: "duration", Value: "1h"}, discordfake.Option{Name: "reason", Value: "checkout is down"})
	if err != nil {
		t.Fatal(err)
	}
	if in.ResponseType != 5 || in.Late {
		t.Fatalf("first response type %d after %v, want a deferred one in time", in.ResponseType, in.Latency)
	}
	dead, alive := w.dies(t, plan, rs)
	died := time.Now()
	txt := answeredOnce(t, w.fake, in)
	waitFor(t, w.fake, "approval card", func() bool { return len(w.fake.Messages(chApprove)) >= 1 })
	inboxEmpty(t, alive.st)

	if !strings.Contains(txt, "r-") {
		t.Errorf("alice's answer %q names no request", txt)
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
	if c, _ := alive.gate.counts(); c != 1 {
		t.Errorf("the survivor handled %d commands, want 1", c)
	}
	t.Logf("replica %s died holding the request; %s answered %v after (lease %v); first response %v",
		dead.name, alive.name, time.Since(died).Round(time.Millisecond), testLease, in.Latency)
}

// An Approve click whose replica applied it and died before answering and
// removing the entry is handled again by the other replica: the decision
// and the grant happen once, bob is answered once. A redelivery of the
// click is dropped.
func TestInboxClickHandledTwiceAppliesOnce(t *testing.T) {
	w := newRedisWorld(t)
	plan := newDeathPlan(handlers.ActionApprove, true)
	rs := w.twoReplicas(t, plan)

	req, err := w.fake.Command(tctx(t), in(uAlice), "request", discordfake.Option{Name: "role", Value: "prod-admin"},
		discordfake.Option{Name: "duration", Value: "1h"}, discordfake.Option{Name: "reason", Value: "deploy hotfix"})
	if err != nil {
		t.Fatal(err)
	}
	answeredOnce(t, w.fake, req)
	waitFor(t, w.fake, "approval card", func() bool { return len(w.fake.Messages(chApprove)) == 1 })
	card := w.fake.Messages(chApprove)[0]
	var id string
	for _, b := range discordfake.Buttons(card.Components) {
		if v, ok := strings.CutPrefix(b.CustomID, "access:approve:"); ok {
			id = v
		}
	}
	click, err := w.fake.Click(tctx(t), in(uBob), card, "access:approve:"+id)
	if err != nil {
		t.Fatal(err)
	}
	_, alive := w.dies(t, plan, rs)
	if !w.prov.IsMember(groupAdmin, alice) {
		t.Fatal("the dying replica did not grant first")
	}
	answeredOnce(t, w.fake, click)
	inboxEmpty(t, alive.st)

	// A late redelivery of the click changes nothing.
	if err := w.fake.Redispatch(click, in(uBob), 3, discordfake.ClickData("access:approve:"+id)); err != nil {
		t.Fatal(err)
	}
	if _, err := w.fake.Command(tctx(t), in(uCarol), "help"); err != nil { // after the redelivery, on the same socket
		t.Fatal(err)
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
	if got := w.fake.Interaction(click.ID); got.Callbacks != 1 || got.Original.Edits != 1 {
		t.Errorf("click: %d callbacks, %d answers; want 1 and 1", got.Callbacks, got.Original.Edits)
	}
	if _, n := alive.gate.counts(); n != 1 {
		t.Errorf("the survivor handled %d clicks, want 1 (the taken-over one)", n)
	}
}

// Work taken over cannot open a modal (only a first response can): the
// person is told the form could not be opened and how to type it.
func TestInboxTakenOverFormAnswersExpired(t *testing.T) {
	w := newRedisWorld(t)
	plan := newDeathPlan("", false)
	rs := w.twoReplicas(t, plan, formHandler{&counter{}})
	in, err := w.fake.Command(tctx(t), in(uAlice), "request", discordfake.Option{Name: "role", Value: "prod-admin"},
		discordfake.Option{Name: "duration", Value: "1h"}, discordfake.Option{Name: "reason", Value: "x"})
	if err != nil {
		t.Fatal(err)
	}
	w.dies(t, plan, rs)
	if txt := answeredOnce(t, w.fake, in); !strings.Contains(txt, "could not be opened in time") || !strings.Contains(txt, "/access request") {
		t.Errorf("alice sees %q", txt)
	}
}

// counter answers every command and counts them.
type counter struct {
	mu sync.Mutex
	n  int
}

func (c *counter) Command(context.Context, handlers.Command) handlers.Reply {
	c.mu.Lock()
	c.n++
	c.mu.Unlock()
	return handlers.Reply{Message: handlers.Message{Text: "handled"}}
}
func (c *counter) Action(context.Context, handlers.Action) handlers.Reply { return handlers.Reply{} }
func (c *counter) SubmitForm(context.Context, handlers.FormInput) (handlers.Reply, handlers.FormErrors) {
	return handlers.Reply{}, nil
}
func (c *counter) RoleOptions(context.Context, string, string) []handlers.RoleOption { return nil }
func (c *counter) count() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.n
}

// When the inbox cannot be written (Redis down), the interaction gets no
// deferred (success) response and is not worked on: the person is told at
// once, ephemerally, to try again (Discord does not redeliver).
func TestInboxWriteFailureAnswersTryAgain(t *testing.T) {
	srv := redistest.NewServer(t, redistest.FreePort(t))
	srv.Start()
	opt, err := goredis.ParseURL(srv.URL())
	if err != nil {
		t.Fatal(err)
	}
	c := goredis.NewClient(opt)
	t.Cleanup(func() { _ = c.Close() })
	st := redisstore.New(c, "inboxdown")

	f := newFake(t, discordfake.Options{})
	cfg := botConfig(f)
	cfg.InboxLease = testLease
	h := &counter{}
	b, err := discord.New(cfg, h, st, testLogger(t), nil)
	if err != nil {
		t.Fatal(err)
	}
	runBot(t, b)
	waitFor(t, f, "commands registered", func() bool { return f.Overwrites() == 1 })

	one, err := f.Command(tctx(t), in(uAlice), "list")
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, f, "first command answered", func() bool { return f.Interaction(one.ID).Original.Edits == 1 })
	if one.ResponseType != 5 || h.count() != 1 {
		t.Fatalf("with Redis up: response type %d, %d handled", one.ResponseType, h.count())
	}

	srv.Stop()
	two, err := f.Command(tctx(t), in(uAlice), "list")
	if err != nil {
		t.Fatal(err)
	}
	if two.Late || two.Latency > 3*time.Second {
		t.Errorf("first response after %v", two.Latency)
	}
	if two.ResponseType != 4 || two.Flags()&64 == 0 {
		t.Errorf("response type %d flags %d; want an ephemeral immediate answer, not a deferred one", two.ResponseType, two.Flags())
	}
	if txt := discordfake.Text(*two.Original); !strings.Contains(txt, "try again") || !strings.Contains(txt, "nothing was done") {
		t.Errorf("alice sees %q", txt)
	}
	time.Sleep(2 * testLease)
	if got := f.Interaction(two.ID); got.Callbacks != 1 || got.Original.Edits != 0 || h.count() != 1 {
		t.Errorf("with Redis down: %d callbacks, %d edits, %d handled; want 1, 0, 1", got.Callbacks, got.Original.Edits, h.count())
	}
}

// Run opens the store's connections before the first burst of
// interactions, so the first inbox writes do not each wait for a dial.
func TestInboxConnectionsWarmedAtStart(t *testing.T) {
	c := redistest.Client(t)
	st := redisstore.New(c, redistest.Prefix(t))
	f := newFake(t, discordfake.Options{})
	b, err := discord.New(botConfig(f), &counter{}, st, testLogger(t), nil)
	if err != nil {
		t.Fatal(err)
	}
	runBot(t, b)
	want := uint32(c.Options().PoolSize)
	waitFor(t, f, "the store's connections", func() bool { return c.PoolStats().TotalConns >= want })
	if _, err := f.Command(tctx(t), in(uAlice), "list"); err != nil {
		t.Fatal(err)
	}
}

// Work taken over after the interaction's token expired (15 minutes; the
// fake refuses the webhook then) is still done; only its answer is lost.
func TestInboxTakenOverAfterTokenExpiryStillActs(t *testing.T) {
	fakeClock := &clock{now: time.Now()}
	w := newRedisWorld(t, discordfake.Options{Now: fakeClock.Now})
	plan := newDeathPlan("", false)
	rs := w.twoReplicas(t, plan)
	in, err := w.fake.Command(tctx(t), in(uAlice), "request", discordfake.Option{Name: "role", Value: "prod-admin"},
		discordfake.Option{Name: "duration", Value: "1h"}, discordfake.Option{Name: "reason", Value: "late"})
	if err != nil {
		t.Fatal(err)
	}
	fakeClock.Advance(16 * time.Minute) // on Discord's side, while the replica is dying
	_, alive := w.dies(t, plan, rs)
	waitFor(t, w.fake, "approval card", func() bool { return len(w.fake.Messages(chApprove)) == 1 })
	inboxEmpty(t, alive.st)
	if got := w.fake.Interaction(in.ID); got.Original.Edits != 0 || len(got.Followups) != 0 {
		t.Errorf("answered through an expired token: %d edits, %d follow-ups", got.Original.Edits, len(got.Followups))
	}
	if mine, err := alive.svc.Mine(context.Background(), alice); err != nil || len(mine) != 1 {
		t.Errorf("%d requests for alice (%v), want 1", len(mine), err)
	}
}
