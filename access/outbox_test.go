package access_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/accessbot/accessbot/access"
	"github.com/accessbot/accessbot/internal/testclock"
	"github.com/accessbot/accessbot/providers/dryrun"
	"github.com/accessbot/accessbot/providers/static"
)

// partsNotifier is a Notifier that sends each event as separate parts, as
// a chat notifier does (an approval card to each approver, a DM to the
// requester), and keeps the Notifier contract: a card goes out once per
// approver, any other part once per outbox entry (by the references
// stored on the request). fail decides, per attempt, whether a part's post
// fails. It counts what went out, so tests can check exactly once.
type partsNotifier struct {
	mu      sync.Mutex
	fail    func(part string) error // nil: never
	attempt int                     // post attempts so far
	sent    map[string]int          // "<entry>/<part>" -> posts that went out
	order   []access.EventType      // entries in the order their first part went out
	refresh int
}

func newParts() *partsNotifier { return &partsNotifier{sent: map[string]int{}} }

func (p *partsNotifier) Notify(_ context.Context, ev access.Event) ([]access.MessageRef, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	r := ev.Request
	if ev.Type == access.EvRefresh {
		p.refresh++
		return nil, nil
	}
	type part struct{ purpose, who string }
	var parts []part
	if ev.Type == access.EvSubmitted {
		for _, a := range r.Approvers {
			parts = append(parts, part{"approval", a})
		}
	}
	parts = append(parts, part{"notice", r.Requester})
	var refs []access.MessageRef
	var errs []error
	for _, pt := range parts {
		done := slices.ContainsFunc(r.Messages, func(m access.MessageRef) bool {
			if pt.purpose == "approval" {
				return m.Purpose == pt.purpose && m.For == pt.who // a card: once per approver
			}
			return m.Announcement == ev.ID && m.Purpose == pt.purpose && m.For == pt.who
		})
		if done {
			continue
		}
		name := pt.purpose + ":" + pt.who
		p.attempt++
		if p.fail != nil {
			if err := p.fail(name); err != nil {
				errs = append(errs, fmt.Errorf("%s: %w", name, err))
				continue
			}
		}
		p.sent[ev.ID+"/"+name]++
		refs = append(refs, access.MessageRef{Platform: "test", Purpose: pt.purpose, For: pt.who, Channel: "dm:" + pt.who,
			ID: fmt.Sprint(len(p.sent)), Announcement: ev.ID})
	}
	if !slices.Contains(p.order, ev.Type) && len(refs) > 0 {
		p.order = append(p.order, ev.Type)
	}
	return refs, errors.Join(errs...)
}

// posts returns how often each "<entry type>/<part>" went out, and fails
// the test when any part of any entry went out more than once.
func (p *partsNotifier) posts(t *testing.T) map[string]int {
	t.Helper()
	p.mu.Lock()
	defer p.mu.Unlock()
	out := map[string]int{}
	for k, n := range p.sent {
		if n != 1 {
			t.Errorf("%s went out %d times, want once", k, n)
		}
		typ, rest, _ := strings.Cut(k, "@")
		_, part, _ := strings.Cut(rest, "/")
		out[typ+"/"+part] += n
	}
	return out
}

// outboxEnv is one service on a bolt store with a partsNotifier.
type outboxEnv struct {
	svc   *access.Service
	store access.Store
	clock *testclock.Clock
	notes *partsNotifier
	logs  *syncBuffer
}

func newOutboxEnv(t *testing.T, st access.Store, c *testclock.Clock, notes access.Notifier) (*access.Service, *syncBuffer) {
	t.Helper()
	rot, errs := static.New(static.Config{Name: "platform", Timezone: "Europe/Berlin", Handoff: "monday 09:00",
		Start: "2026-11-16", Members: []string{"bob@example.com", "carol@example.com"}})
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	logs := &syncBuffer{}
	svc, err := access.NewService(access.Deps{Store: st, Policy: policy(),
		Providers: map[string]access.Provisioner{"dryrun": dryrun.New(nil)},
		OnCall:    access.OnCallRouter{"platform": rot}, Notifier: notes, Clock: c,
		Logger: slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelInfo}))})
	if err != nil {
		t.Fatal(err)
	}
	return svc, logs
}

func outboxSetup(t *testing.T) *outboxEnv {
	t.Helper()
	c := testclock.New(t0)
	st := boltStore(t)
	notes := newParts()
	svc, logs := newOutboxEnv(t, st, c, notes)
	return &outboxEnv{svc: svc, store: st, clock: c, notes: notes, logs: logs}
}

// sweep runs Process for everything due now, as the expiry engine does.
func sweepDue(t *testing.T, st access.Store, svc *access.Service, now time.Time) {
	t.Helper()
	ids, err := st.Due(context.Background(), now, 1000)
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range ids {
		if err := svc.Process(context.Background(), id); err != nil {
			t.Fatalf("process %s: %v", id, err)
		}
	}
}

// settle moves the clock to each next due time and sweeps, until nothing
// is owed any more (bounded).
func (e *outboxEnv) settle(t *testing.T, id string) *access.Request {
	t.Helper()
	for range 50 {
		r := getReq(t, e.store, id)
		if len(r.Outbox) == 0 {
			return r
		}
		if at, ok := r.DueAt(); ok && at.After(e.clock.Now()) {
			e.clock.Set(at)
		}
		sweepDue(t, e.store, e.svc, e.clock.Now())
	}
	t.Fatalf("outbox of %s never drained: %+v", id, getReq(t, e.store, id).Outbox)
	return nil
}

// Every message of a request's life goes out exactly once and in order,
// although the chat platform refuses the first posts (rate limited, as a
// 429): the refused ones are retried by the sweep, with backoff, until
// accepted, and a decision made while the card is still owed is told
// after the card.
func TestOutboxRetriesUntilEveryMessageIsOut(t *testing.T) {
	e := outboxSetup(t)
	ctx := context.Background()
	e.notes.fail = func(string) error {
		if e.notes.attempt <= 5 {
			return errors.New("slack: chat.postMessage: rate limited (429), retry after 1s")
		}
		return nil
	}
	r, err := e.svc.Submit(ctx, access.SubmitInput{Requester: "alice@example.com", Role: "prod-admin", Duration: 30 * time.Minute, Reason: "x"})
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Outbox) != 1 || r.Outbox[0].Tries != 1 || r.State != access.StatePending {
		t.Fatalf("after a refused first delivery: %s, outbox %+v; want the submission owed", r.State, r.Outbox)
	}
	// Approved while the card is still owed: the approval and the grant
	// are told after the card, not before.
	if _, err := e.svc.Decide(ctx, r.ID, "bob@example.com", true, ""); err != nil {
		t.Fatal(err)
	}
	if got := getReq(t, e.store, r.ID); len(got.Outbox) != 3 {
		t.Fatalf("owed after the decision: %+v, want submitted, approval, active", got.Outbox)
	}
	e.settle(t, r.ID)
	// Expiry: the end is told too.
	e.clock.Set(r.PendingUntil.Add(time.Hour))
	sweepDue(t, e.store, e.svc, e.clock.Now())
	end := e.settle(t, r.ID)
	if end.State != access.StateEnded {
		t.Fatalf("state %s, want ended", end.State)
	}
	got := e.notes.posts(t)
	want := map[string]int{"submitted/approval:dave@example.com": 1, "submitted/approval:bob@example.com": 1,
		"submitted/notice:alice@example.com": 1, "approval/notice:alice@example.com": 1, "active/notice:alice@example.com": 1,
		"ended/notice:alice@example.com": 1}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("posts %v, want %v", got, want)
	}
	wantOrder := []access.EventType{access.EvSubmitted, access.EvApproval, access.EvActive, access.EvEnded}
	if !slices.Equal(e.notes.order, wantOrder) {
		t.Fatalf("delivered in the order %v, want %v", e.notes.order, wantOrder)
	}
	if !strings.Contains(e.logs.String(), "notification not delivered; will retry") ||
		!strings.Contains(e.logs.String(), "notification delivered") || !strings.Contains(e.logs.String(), "lag=") {
		t.Fatalf("retries or delivery lag not logged:\n%s", e.logs.String())
	}
}

// A retry after a partial failure sends only what is missing: the card
// went to the first approver, the card to the second failed; the sweep
// posts the second card only.
func TestOutboxPartialFailureRetriesOnlyTheMissingPart(t *testing.T) {
	e := outboxSetup(t)
	ctx := context.Background()
	failed := false
	e.notes.fail = func(part string) error {
		if part == "approval:bob@example.com" && !failed {
			failed = true
			return errors.New("dm bob: internal_error")
		}
		return nil
	}
	r, err := e.svc.Submit(ctx, access.SubmitInput{Requester: "alice@example.com", Role: "prod-admin", Duration: time.Hour, Reason: "x"})
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Outbox) != 1 || len(r.Messages) != 2 {
		t.Fatalf("after the partial failure: outbox %+v, messages %+v; want the entry owed and two references kept", r.Outbox, r.Messages)
	}
	e.settle(t, r.ID)
	got := e.notes.posts(t)
	want := map[string]int{"submitted/approval:dave@example.com": 1, "submitted/approval:bob@example.com": 1,
		"submitted/notice:alice@example.com": 1}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("posts %v, want %v", got, want)
	}
	if n := len(getReq(t, e.store, r.ID).Messages); n != 3 {
		t.Fatalf("%d references kept, want 3", n)
	}
}

// crashingNotifier kills its replica (no write of it reaches the store any
// more) the moment it is asked to post, before anything goes out: a
// process killed between storing a request and posting its card, with its
// outbox lease left behind.
type crashingNotifier struct {
	rep   *replicaStore
	calls int
}

func (c *crashingNotifier) Notify(context.Context, access.Event) ([]access.MessageRef, error) {
	c.calls++
	c.rep.kill()
	return nil, errors.New("killed")
}

// A replica killed between storing a request and posting its approval
// card leaves the card owed and its outbox lease behind: another replica
// posts the card (once) within LeaseTTL and one sweep of the kill.
func TestOutboxCardPostedByAnotherReplicaAfterACrash(t *testing.T) {
	c := testclock.New(t0)
	st := testClockClaims(t, c)
	ra := newReplicaStore(st)
	dead := &crashingNotifier{rep: ra}
	a, _ := newOutboxEnv(t, ra, c, dead)
	notes := newParts()
	b, blogs := newOutboxEnv(t, st, c, notes)
	ctx := context.Background()

	r, err := a.Submit(ctx, access.SubmitInput{Requester: "alice@example.com", Role: "prod-admin", Duration: time.Hour, Reason: "x"})
	if err != nil {
		t.Fatal(err)
	}
	if dead.calls != 1 {
		t.Fatalf("the dying replica was asked to post %d times", dead.calls)
	}
	if ok, _ := st.Claim(ctx, "announce:"+r.ID, "probe", time.Second); ok {
		t.Fatal("the dead replica's outbox lease is not left behind")
	}
	const sweep = time.Second // the expiry engine's sweep, on the test clock
	killed := c.Now()
	var postedAt time.Time
	for c.Now().Sub(killed) < time.Minute {
		c.Advance(sweep)
		sweepDue(t, st, b, c.Now())
		if len(notes.posts(t)) > 0 {
			postedAt = c.Now()
			break
		}
	}
	if postedAt.IsZero() {
		t.Fatal("the card was never posted by the other replica")
	}
	lease := 10 * time.Second // LeaseTTL default
	t.Logf("card posted by the other replica %v after the kill (LeaseTTL %v, sweep %v)", postedAt.Sub(killed), lease, sweep)
	if postedAt.Sub(killed) > lease+sweep {
		t.Fatalf("card posted %v after the kill, want within LeaseTTL + one sweep (%v)", postedAt.Sub(killed), lease+sweep)
	}
	for range 5 {
		c.Advance(sweep)
		sweepDue(t, st, b, c.Now())
	}
	got := notes.posts(t)
	want := map[string]int{"submitted/approval:dave@example.com": 1, "submitted/approval:bob@example.com": 1,
		"submitted/notice:alice@example.com": 1}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("posts %v, want %v", got, want)
	}
	cur := getReq(t, st, r.ID)
	if len(cur.Outbox) != 0 || cur.State != access.StatePending || len(cur.Messages) != 3 {
		t.Fatalf("after the takeover: %s, outbox %+v, %d references", cur.State, cur.Outbox, len(cur.Messages))
	}
	if !strings.Contains(blogs.String(), "notification delivered") {
		t.Fatalf("the delivery is not logged:\n%s", blogs.String())
	}
}

// A message delivered long after it was owed is logged as late (a Warn
// with the lag), so that delivery lag shows in the logs.
func TestOutboxLateDeliveryIsLogged(t *testing.T) {
	e := outboxSetup(t)
	down := true
	e.notes.fail = func(string) error {
		if down {
			return errors.New("503 service unavailable")
		}
		return nil
	}
	r, err := e.svc.Submit(context.Background(), access.SubmitInput{Requester: "alice@example.com", Role: "prod-admin", Duration: time.Hour, Reason: "x"})
	if err != nil {
		t.Fatal(err)
	}
	e.clock.Advance(time.Minute)
	down = false
	e.settle(t, r.ID)
	var late bytes.Buffer
	for _, l := range strings.Split(e.logs.String(), "\n") {
		if strings.Contains(l, "notification delivered late") {
			late.WriteString(l + "\n")
		}
	}
	if !strings.Contains(late.String(), "level=WARN") || !strings.Contains(late.String(), "lag=1m") {
		t.Fatalf("late delivery not logged with its lag:\n%s", e.logs.String())
	}
}

// killedAfterCreate is a replica that dies right after storing a new
// request: its write is in, nothing after it (no outbox lease, no post).
type killedAfterCreate struct{ *replicaStore }

func (k killedAfterCreate) Create(ctx context.Context, r *access.Request, evs ...access.AuditEvent) error {
	err := k.replicaStore.Create(ctx, r, evs...)
	k.kill()
	return err
}

// A replica killed right after storing a request, before it even took
// the outbox lease: another replica's sweep posts the card once the fresh
// entry is left to the sweep (a few seconds), well within LeaseTTL.
func TestOutboxCardPostedAfterAKillRightAfterTheWrite(t *testing.T) {
	c := testclock.New(t0)
	st := testClockClaims(t, c)
	dead := &partsNotifier{sent: map[string]int{}}
	a, _ := newOutboxEnv(t, killedAfterCreate{newReplicaStore(st)}, c, dead)
	notes := newParts()
	b, _ := newOutboxEnv(t, st, c, notes)
	r, err := a.Submit(context.Background(), access.SubmitInput{Requester: "alice@example.com", Role: "prod-admin", Duration: time.Hour, Reason: "x"})
	if err != nil {
		t.Fatal(err)
	}
	if len(dead.sent) != 0 {
		t.Fatalf("the dead replica posted %v", dead.sent)
	}
	killed := c.Now()
	for len(notes.posts(t)) == 0 && c.Now().Sub(killed) < time.Minute {
		c.Advance(time.Second)
		sweepDue(t, st, b, c.Now())
	}
	took := c.Now().Sub(killed)
	t.Logf("card posted by the other replica %v after the kill", took)
	if took > 10*time.Second {
		t.Fatalf("card posted %v after the kill, want within LeaseTTL", took)
	}
	if got := len(notes.posts(t)); got != 3 || len(getReq(t, st, r.ID).Outbox) != 0 {
		t.Fatalf("%d parts posted, outbox %+v", got, getReq(t, st, r.ID).Outbox)
	}
}
