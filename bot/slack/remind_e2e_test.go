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

// Reminders and escalation end to end: the real engine behind the Slack
// transport and the fake Slack, driven by a test clock and the expiry
// engine's Drain (what its timer does at the due time).

// remindPolicy: bob approves prod-admin; reminders after 10m (then 20m
// and 40m later), escalation to carol after 20m; requests time out after 2h.
func remindPolicy() *access.Policy {
	return &access.Policy{Roles: map[string]access.Role{
		"prod-admin": {Name: "prod-admin", Description: "Administrator on production", Provider: "dryrun", Group: groupAdmin,
			MaxDuration: 4 * time.Hour, DefaultDuration: time.Hour, ApproverUsers: []string{"bob@example.com"},
			Approvals: 1, PendingTTL: 2 * time.Hour,
			RemindAfter: 10 * time.Minute, EscalateAfter: 20 * time.Minute, EscalateUsers: []string{"carol@example.com"}},
	}}
}

// node is one process of accessbot: store, service, bot and expiry engine.
type node struct {
	st    access.Store
	svc   *access.Service
	sched *scheduler.Scheduler
	stop  func()
}

// startNode runs a bot with the engine on st against f; stop ends it
// (and closes st when closeStore).
func startNode(t *testing.T, f *slackfake.Server, st access.Store, policy *access.Policy, prov access.Provisioner, clk access.Clock, name string, closeStore bool) *node {
	t.Helper()
	log := testLogger(t).With("node", name)
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
					t.Errorf("%s: Run: %v", name, err)
				}
			case <-time.After(10 * time.Second):
				t.Errorf("%s: Run did not return after cancel", name)
			}
			if closeStore {
				_ = st.Close()
			}
		})
	}
	t.Cleanup(stop)
	return &node{st: st, svc: svc, sched: sched, stop: stop}
}

// drainAll runs the expiry engine of every node at once, as replicas
// sweeping at the same moment do, and waits for all of them.
func drainAll(t *testing.T, ns ...*node) {
	t.Helper()
	var wg sync.WaitGroup
	for _, n := range ns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := n.sched.Drain(tctx(t)); err != nil {
				t.Errorf("drain: %v", err)
			}
		}()
	}
	wg.Wait()
}

// remindCounts is what the fake Slack shows of reminders and escalation.
type remindCounts struct {
	threadReminders  int // "Reminder" replies under the card
	threadEscalation int // "Escalated" replies under the card
	bobReminders     int // reminder DMs to bob
	carolReminders   int // reminder DMs to carol
	carolCards       int // approval cards DMed to carol
	aliceEscalated   int // "was escalated" DMs to alice
}

func countRemind(f *slackfake.Server, card slackfake.Message) remindCounts {
	var c remindCounts
	for _, m := range f.Replies(card.Channel, card.TS) {
		txt := slackfake.BlockText(m.Blocks)
		switch {
		case strings.Contains(txt, "Reminder: still waiting"):
			c.threadReminders++
		case strings.Contains(txt, "Escalated to carol@example.com"):
			c.threadEscalation++
		}
	}
	count := func(user, what string) int {
		n := 0
		if ch := f.DMChannel(user); ch != "" {
			for _, m := range f.Messages(ch) {
				if strings.Contains(slackfake.BlockText(m.Blocks), what) {
					n++
				}
			}
		}
		return n
	}
	c.bobReminders = count("UBOB", "waits for your decision")
	c.carolReminders = count("UCAROL", "waits for your decision")
	c.carolCards = count("UCAROL", "asks for prod-admin")
	c.aliceEscalated = count("UALICE", "was escalated")
	return c
}

func waitCounts(t *testing.T, f *slackfake.Server, card slackfake.Message, want remindCounts, what string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	if err := f.Wait(ctx, func() bool { return countRemind(f, card) == want }); err != nil {
		t.Fatalf("%s: got %+v, want %+v", what, countRemind(f, card), want)
	}
}

// approvalCard waits for the approval card in the approvals channel and
// returns it with its request id.
func approvalCard(t *testing.T, f *slackfake.Server) (slackfake.Message, string) {
	t.Helper()
	waitFor(t, f, "approval card", func() bool { return len(f.Messages(chApprove)) >= 1 })
	m := f.Messages(chApprove)[0]
	txt := slackfake.BlockText(m.Blocks)
	i := strings.Index(txt, "Request r-")
	if i < 0 {
		t.Fatalf("card without a request id: %s", txt)
	}
	return m, strings.Fields(txt[i+len("Request "):])[0]
}

// TestE2EReminderAndEscalationAcrossRestart: the first reminder fires at
// 10m (not a second before), the process restarts, and the new one (a new
// service, bot and engine on the same store) escalates at 20m and sends
// the second reminder at 30m, each once; the escalated person approves
// from the card she was sent, and no reminder follows.
func TestE2EReminderAndEscalationAcrossRestart(t *testing.T) {
	f := newFake(t, slackfake.Options{})
	f.AddUser(slackfake.User{ID: "UCAROL", Name: "carol", Email: "carol@example.com"})
	prov := dryrun.New(testLogger(t))
	clk := &clock{now: time.Date(2031, 3, 4, 10, 0, 0, 0, time.UTC)}
	t0 := clk.Now()
	path := filepath.Join(t.TempDir(), "accessbot.db")
	open := func() access.Store {
		st, err := bolt.Open(path)
		if err != nil {
			t.Fatal(err)
		}
		return st
	}
	setAt := func(d time.Duration) { clk.Advance(t0.Add(d).Sub(clk.Now())) }

	n1 := startNode(t, f, open(), remindPolicy(), prov, clk, "first", true)
	waitFor(t, f, "connection", func() bool { return f.LiveConnections() == 1 })
	if _, err := f.SlashCommand(tctx(t), slackfake.Command{User: "UALICE", Channel: chGeneral, Text: "prod-admin 1h fixing checkout"}); err != nil {
		t.Fatal(err)
	}
	card, id := approvalCard(t, f)

	setAt(10*time.Minute - time.Second)
	drainAll(t, n1)
	if c := countRemind(f, card); c != (remindCounts{}) {
		t.Fatalf("reminded early: %+v", c)
	}
	setAt(10 * time.Minute)
	drainAll(t, n1)
	waitCounts(t, f, card, remindCounts{threadReminders: 1, bobReminders: 1}, "first reminder at 10m")

	// Restart: the old process goes away, a new one opens the same store.
	n1.stop()
	waitFor(t, f, "first connection gone", func() bool { return f.LiveConnections() == 0 })
	n2 := startNode(t, f, open(), remindPolicy(), prov, clk, "second", true)
	waitFor(t, f, "new connection", func() bool { return f.LiveConnections() == 1 })

	setAt(20*time.Minute - time.Second)
	drainAll(t, n2)
	if c := countRemind(f, card); c != (remindCounts{threadReminders: 1, bobReminders: 1}) {
		t.Fatalf("escalated early: %+v", c)
	}
	setAt(20 * time.Minute)
	drainAll(t, n2)
	afterEsc := remindCounts{threadReminders: 1, threadEscalation: 1, bobReminders: 1, carolCards: 1, aliceEscalated: 1}
	waitCounts(t, f, card, afterEsc, "escalation at 20m")
	waitFor(t, f, "card says escalated", func() bool {
		m, _ := f.Message(card.Channel, card.TS)
		return strings.Contains(slackfake.BlockText(m.Blocks), "escalated to carol@example.com")
	})

	setAt(30 * time.Minute)
	drainAll(t, n2)
	afterRem2 := afterEsc
	afterRem2.threadReminders, afterRem2.bobReminders, afterRem2.carolReminders = 2, 2, 1
	waitCounts(t, f, card, afterRem2, "second reminder at 30m")

	// carol approves from the card in her DMs.
	if _, err := f.Click(tctx(t), slackfake.Click{User: "UCAROL", Channel: f.DMChannel("UCAROL"), ActionID: handlers.ActionApprove, Value: id}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, f, "grant", func() bool { return prov.IsMember(groupAdmin, alice) })
	r, err := n2.svc.Get(context.Background(), id)
	if err != nil || r.State != access.StateActive || r.Decisions[0].By != "carol@example.com" {
		t.Fatalf("after carol's approval: %+v, %v", r, err)
	}

	// 70m would have been the third reminder: the request is decided.
	setAt(70 * time.Minute)
	drainAll(t, n2)
	if c := countRemind(f, card); c != afterRem2 {
		t.Fatalf("after the decision: %+v, want %+v", c, afterRem2)
	}
	evs, err := n2.svc.Audit(context.Background(), time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	var acts []string
	for _, ev := range evs {
		if ev.RequestID == id && (ev.Action == access.ActReminded || ev.Action == access.ActEscalated) {
			acts = append(acts, string(ev.Action)+"@"+ev.At.Sub(t0).String())
		}
	}
	if got := strings.Join(acts, " "); got != "reminded@10m0s escalated@20m0s reminded@30m0s" {
		t.Fatalf("audit: %s", got)
	}
}

// TestE2EReminderExactlyOnceTwoReplicas: two replicas on one Redis, each
// with its own expiry engine, both sweeping at every minute of the
// request's life at the same moment: every reminder, the escalation and
// the time-out happen once, and Slack shows exactly the messages one
// process would have sent.
func TestE2EReminderExactlyOnceTwoReplicas(t *testing.T) {
	w := newRedisWorld(t, slackfake.Options{})
	w.fake.AddUser(slackfake.User{ID: "UCAROL", Name: "carol", Email: "carol@example.com"})
	w.policy = remindPolicy()
	rs := w.twoReplicas(t, nil)
	var ns []*node
	for _, name := range []string{"a", "b"} {
		r := rs[name]
		sched := scheduler.New(r.st, r.svc, w.clk, testLogger(t).With("replica", name), scheduler.Options{})
		r.svc.SetWaker(sched)
		ns = append(ns, &node{st: r.st, svc: r.svc, sched: sched})
	}
	t0 := w.clk.Now()
	if _, err := w.fake.SlashCommand(tctx(t), slackfake.Command{User: "UALICE", Channel: chGeneral, Text: "prod-admin 1h fixing checkout"}); err != nil {
		t.Fatal(err)
	}
	card, id := approvalCard(t, w.fake)

	for minute := 1; minute <= 125; minute++ {
		w.clk.Advance(t0.Add(time.Duration(minute) * time.Minute).Sub(w.clk.Now()))
		drainAll(t, ns[0], ns[1], ns[0], ns[1])
	}
	want := remindCounts{threadReminders: 3, threadEscalation: 1, bobReminders: 3, carolReminders: 2, carolCards: 1, aliceEscalated: 1}
	waitCounts(t, w.fake, card, want, "reminders at 10m, 30m and 70m, escalation at 20m")
	r, err := ns[0].svc.Get(context.Background(), id)
	if err != nil || r.State != access.StateTimedOut {
		t.Fatalf("after the ttl: %+v, %v", r, err)
	}
	evs, err := ns[1].svc.Audit(context.Background(), time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	var acts []string
	for _, ev := range evs {
		if ev.RequestID == id && ev.Action != access.ActSubmitted {
			acts = append(acts, string(ev.Action)+"@"+ev.At.Sub(t0).String())
		}
	}
	if got := strings.Join(acts, " "); got != "reminded@10m0s escalated@20m0s reminded@30m0s reminded@1h10m0s timed_out@2h0m0s" {
		t.Fatalf("audit: %s", got)
	}
	// Nothing else arrives later (an entry left for the sweep would).
	w.clk.Advance(time.Hour)
	drainAll(t, ns...)
	if c := countRemind(w.fake, card); c != want {
		t.Fatalf("later: %+v, want %+v", c, want)
	}
	c := countRemind(w.fake, card)
	t.Logf("two replicas, 250 concurrent drains each: thread replies under the card %d; reminder DMs bob %d, carol %d; escalation card to carol %d, note to alice %d",
		c.threadReminders+c.threadEscalation, c.bobReminders, c.carolReminders, c.carolCards, c.aliceEscalated)
}
