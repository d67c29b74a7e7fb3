package access_test

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
	"github.com/accessbot/accessbot/internal/redistest"
	"github.com/accessbot/accessbot/internal/testclock"
	"github.com/accessbot/accessbot/providers/dryrun"
	"github.com/accessbot/accessbot/providers/static"
	"github.com/accessbot/accessbot/store/bolt"
	"github.com/accessbot/accessbot/store/redis"
)

// hangProvider is a provisioner in front of a dry-run one whose calls can
// be made to hang until their context ends (a network blackhole), or to
// block until the test lets them go.
type hangProvider struct {
	*dryrun.Provider

	mu      sync.Mutex
	hang    map[string]bool          // op -> calls block until ctx ends
	landing map[string]bool          // op -> a hung call still takes effect (it reached the provider)
	gate    map[string]chan struct{} // op -> the next call waits for this channel, ignoring ctx
	started chan string              // told "op" when a call begins
	calls   map[string]int           // op -> calls begun
}

func newHangProvider() *hangProvider {
	return &hangProvider{Provider: dryrun.New(nil), hang: map[string]bool{}, landing: map[string]bool{},
		gate: map[string]chan struct{}{}, started: make(chan string, 100), calls: map[string]int{}}
}

func (h *hangProvider) setHang(op string, on bool) {
	h.mu.Lock()
	h.hang[op] = on
	h.mu.Unlock()
}

// hold makes the next call of op wait until the returned func is called;
// that call ignores its context, like a provider that answers late.
func (h *hangProvider) hold(op string) (let func()) {
	ch := make(chan struct{})
	h.mu.Lock()
	h.gate[op] = ch
	h.mu.Unlock()
	var once sync.Once
	return func() { once.Do(func() { close(ch) }) }
}

func (h *hangProvider) count(op string) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.calls[op]
}

func (h *hangProvider) call(ctx context.Context, op string, g access.Grant, do func(context.Context, access.Grant) error) error {
	h.mu.Lock()
	h.calls[op]++
	hang, landing, gate := h.hang[op], h.landing[op], h.gate[op]
	delete(h.gate, op)
	h.mu.Unlock()
	h.started <- op
	if gate != nil {
		<-gate
		return do(context.Background(), g)
	}
	if hang {
		<-ctx.Done()
		if landing {
			_ = do(context.Background(), g)
		}
		return fmt.Errorf("hang: %s %s: %w", op, g.User, ctx.Err())
	}
	return do(ctx, g)
}

func (h *hangProvider) Grant(ctx context.Context, g access.Grant) error {
	return h.call(ctx, "grant", g, h.Provider.Grant)
}

func (h *hangProvider) Revoke(ctx context.Context, g access.Grant) error {
	return h.call(ctx, "revoke", g, h.Provider.Revoke)
}

// clockClaims gives a store claims that expire on the test clock, so a
// test can let a claim run out while a provider call is still in flight.
type clockClaims struct {
	access.Store
	clock *testclock.Clock
	mu    sync.Mutex
	m     map[string]struct {
		owner string
		until time.Time
	}
}

func (c *clockClaims) Claim(_ context.Context, id, owner string, ttl time.Duration) (bool, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	now := c.clock.Now()
	if cur, ok := c.m[id]; ok && cur.owner != owner && now.Before(cur.until) {
		return false, nil
	}
	c.m[id] = struct {
		owner string
		until time.Time
	}{owner, now.Add(ttl)}
	return true, nil
}

func (c *clockClaims) Release(_ context.Context, id, owner string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m[id].owner == owner {
		delete(c.m, id)
	}
	return nil
}

// flakyNotes fails security-channel posts while failing is set, and keeps
// every event it was asked to send with whether it got out.
type flakyNotes struct {
	recorder
	mu      sync.Mutex
	failing bool
	tried   map[access.EventType]int
	posted  map[access.EventType]int
}

func (f *flakyNotes) setFailing(on bool) {
	f.mu.Lock()
	f.failing = on
	f.mu.Unlock()
}

func (f *flakyNotes) Notify(ctx context.Context, ev access.Event) ([]access.MessageRef, error) {
	switch ev.Type {
	case access.EvBreakGlass, access.EvRevokeAlert, access.EvRevokeRecovered, access.EvUserGone:
		f.mu.Lock()
		defer f.mu.Unlock()
		if f.tried == nil {
			f.tried, f.posted = map[access.EventType]int{}, map[access.EventType]int{}
		}
		f.tried[ev.Type]++
		if f.failing {
			return nil, errors.New("not_in_channel")
		}
		f.posted[ev.Type]++
		_, _ = f.recorder.Notify(ctx, ev)
		return []access.MessageRef{{Platform: "test", Purpose: "security", Channel: "C0SECURITY", ID: fmt.Sprint(f.posted[ev.Type])}}, nil
	}
	return f.recorder.Notify(ctx, ev)
}

func (f *flakyNotes) counts(t access.EventType) (tried, posted int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.tried[t], f.posted[t]
}

type hangEnv struct {
	svc   *access.Service
	store access.Store
	prov  *hangProvider
	clock *testclock.Clock
	notes *flakyNotes
}

func boltStore(t *testing.T) access.Store {
	t.Helper()
	st, err := bolt.Open(filepath.Join(t.TempDir(), "test.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

func redisStore(t *testing.T) access.Store {
	t.Helper()
	prefix := redistest.Prefix(t)
	c := redistest.Client(t)
	t.Cleanup(func() {
		ctx := context.Background()
		iter := c.Scan(ctx, 0, "{"+prefix+"}*", 1000).Iterator()
		for iter.Next(ctx) {
			c.Del(ctx, iter.Val())
		}
	})
	st := redis.New(c, prefix)
	t.Cleanup(func() { _ = st.Close() })
	return st
}

func newHangEnv(t *testing.T, st access.Store, c *testclock.Clock, opt access.Options) *hangEnv {
	t.Helper()
	rot, errs := static.New(static.Config{Name: "platform", Timezone: "Europe/Berlin", Handoff: "monday 09:00",
		Start: "2026-11-16", Members: []string{"bob@example.com", "carol@example.com"}})
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	prov := newHangProvider()
	notes := &flakyNotes{}
	svc, err := access.NewService(access.Deps{Store: st, Policy: policy(),
		Providers: map[string]access.Provisioner{"dryrun": prov},
		OnCall:    access.OnCallRouter{"platform": rot}, Notifier: notes, Clock: c, Options: opt})
	if err != nil {
		t.Fatal(err)
	}
	return &hangEnv{svc: svc, store: st, prov: prov, clock: c, notes: notes}
}

// sweep processes every due request as the expiry engine does: each call
// with a deadline of its own (the scheduler's ItemTimeout, short here).
func (e *hangEnv) sweep(t *testing.T, itemTimeout time.Duration) {
	t.Helper()
	e.sweepOr(t, itemTimeout, false)
}

// sweepOr is sweep; with deadlineSkips, a Process call whose deadline ran
// out before it recorded anything (a store call slow on a loaded machine
// used the short item deadline up before the provider was called) is
// logged and left to the next sweep, as the scheduler does: the request
// stays due at the same time, so the caller retries it at once.
func (e *hangEnv) sweepOr(t *testing.T, itemTimeout time.Duration, deadlineSkips bool) {
	t.Helper()
	ids, err := e.store.Due(context.Background(), e.clock.Now(), 1000)
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range ids {
		ctx, cancel := context.WithTimeout(context.Background(), itemTimeout)
		err := e.svc.Process(ctx, id)
		cancel()
		if err != nil && deadlineSkips && errors.Is(err, context.DeadlineExceeded) {
			t.Logf("process %s: %v (left to the next sweep)", id, err)
			continue
		}
		if err != nil {
			t.Fatalf("process %s: %v", id, err)
		}
	}
}

// toNextDue advances the clock to the request's next due time.
func (e *hangEnv) toNextDue(t *testing.T, id string) {
	t.Helper()
	r, err := e.store.Get(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	due, ok := r.DueAt()
	if !ok {
		t.Fatalf("%s (%s) left the due index", id, r.State)
	}
	// A millisecond more: stores may keep due times at millisecond precision.
	if d := due.Sub(e.clock.Now()) + time.Millisecond; d > 0 {
		e.clock.Advance(d)
	}
}

func (e *hangEnv) get(t *testing.T, id string) *access.Request {
	t.Helper()
	r, err := e.store.Get(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func (e *hangEnv) auditOf(t *testing.T, id string) []access.AuditEvent {
	t.Helper()
	evs, err := e.store.Audit(context.Background(), time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	var out []access.AuditEvent
	for _, ev := range evs {
		if ev.RequestID == id {
			out = append(out, ev)
		}
	}
	return out
}

func countAct(evs []access.AuditEvent, a access.Action) int {
	n := 0
	for _, ev := range evs {
		if ev.Action == a {
			n++
		}
	}
	return n
}

func (e *hangEnv) approve(t *testing.T, who, role string, d time.Duration) *access.Request {
	t.Helper()
	r, err := e.svc.Submit(context.Background(), access.SubmitInput{Requester: who, Role: role, Duration: d, Reason: "fixing checkout"})
	if err != nil {
		t.Fatal(err)
	}
	approver := "bob@example.com"
	if role == "admin-alias" {
		approver = "dave@example.com"
	}
	if _, err := e.svc.Decide(context.Background(), r.ID, approver, true, ""); err != nil {
		t.Fatal(err)
	}
	return e.get(t, r.ID)
}

// A revocation whose provider call hangs until its deadline is counted,
// audited and announced (once, within RevokeAlertAfter of the first
// failure), and the user is removed once the provider answers again.
func TestHungRevocationRecordedAlertedAndRemoved(t *testing.T) {
	for name, open := range map[string]func(*testing.T) access.Store{"bolt": boltStore, "redis": redisStore} {
		t.Run(name, func(t *testing.T) {
			e := newHangEnv(t, open(t), testclock.New(t0), access.Options{})
			r := e.approve(t, "alice@example.com", "prod-admin", time.Hour)
			if !e.prov.IsMember("g-admin", "alice@example.com") {
				t.Fatal("not granted")
			}
			e.prov.setHang("revoke", true)
			e.clock.Advance(time.Hour)
			start := e.clock.Now()
			var alertAt time.Time
			for i := 0; e.clock.Now().Sub(start) < 5*time.Minute; i++ {
				if i > 100 {
					t.Fatalf("no progress: %+v", e.get(t, r.ID))
				}
				// Each Process call has 50ms, like the scheduler's
				// ItemTimeout; the hung call uses all of it.
				e.sweepOr(t, 50*time.Millisecond, true)
				if alertAt.IsZero() && e.notes.count(access.EvRevokeAlert) > 0 {
					alertAt = e.clock.Now()
				}
				e.toNextDue(t, r.ID)
			}
			got := e.get(t, r.ID)
			evs := e.auditOf(t, r.ID)
			if got.State != access.StateRevoking || got.Attempts < 5 || got.FailingSince.IsZero() {
				t.Fatalf("after 5 minutes of hung revocations: state %s, %d attempts, failing since %v", got.State, got.Attempts, got.FailingSince)
			}
			if n := countAct(evs, access.ActRevokeRetry); n != got.Attempts {
				t.Fatalf("%d failed attempts audited, want every one of %d", n, got.Attempts)
			}
			if !strings.Contains(got.LastError, "deadline exceeded") {
				t.Fatalf("last error %q", got.LastError)
			}
			if n := e.notes.count(access.EvRevokeAlert); n != 1 || countAct(evs, access.ActRevokeAlert) != 1 {
				t.Fatalf("security channel told %d times (audit %d), want once", n, countAct(evs, access.ActRevokeAlert))
			}
			if late := alertAt.Sub(got.FailingSince); late > 2*time.Minute+time.Second {
				t.Fatalf("alert %v after the first failure, want within revoke_alert_after (2m)", late)
			}
			if !e.prov.IsMember("g-admin", "alice@example.com") {
				t.Fatal("hung revocation removed the member (test provider broken)")
			}
			t.Logf("5 minutes of hung revocations: %d attempts, all audited, alert %v after the first failure", got.Attempts, alertAt.Sub(got.FailingSince))

			e.prov.setHang("revoke", false)
			e.toNextDue(t, r.ID)
			e.sweep(t, 50*time.Millisecond)
			got = e.get(t, r.ID)
			if got.State != access.StateEnded || e.prov.IsMember("g-admin", "alice@example.com") {
				t.Fatalf("after recovery: %s, member %v", got.State, e.prov.IsMember("g-admin", "alice@example.com"))
			}
			if e.notes.count(access.EvRevokeRecovered) != 1 || e.notes.count(access.EvRevokeAlert) != 1 {
				t.Fatalf("recovery not announced once: %v", e.notes.types())
			}
		})
	}
}

// A grant whose provider call hangs ends failed after the retry window,
// the requester and the approvers told; a call that reached the provider
// before timing out leaves nothing behind, and nothing is applied later.
func TestHungGrantFailsAndLeavesNothing(t *testing.T) {
	// The calls' own deadline is longer than what the approval click and
	// each sweep item have (50ms): the caller's deadline ends the calls.
	e := newHangEnv(t, boltStore(t), testclock.New(t0), access.Options{AttemptTimeout: 100 * time.Millisecond})
	e.prov.setHang("grant", true)
	e.prov.setHang("revoke", true)
	e.prov.landing["grant"] = true // each timed-out Grant did add the member
	r, err := e.svc.Submit(context.Background(), access.SubmitInput{Requester: "alice@example.com", Role: "prod-admin", Duration: time.Hour, Reason: "x"})
	if err != nil {
		t.Fatal(err)
	}
	click, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	_, err = e.svc.Decide(click, r.ID, "bob@example.com", true, "")
	cancel()
	if err != nil {
		t.Fatal(err)
	}
	if r = e.get(t, r.ID); r.State != access.StateApproved || r.Attempts != 1 {
		t.Fatalf("after the first hung grant: %s, %d attempts", r.State, r.Attempts)
	}
	for i := 0; i < 100 && e.get(t, r.ID).State == access.StateApproved; i++ {
		e.toNextDue(t, r.ID)
		e.sweep(t, 50*time.Millisecond)
	}
	got := e.get(t, r.ID)
	if got.State != access.StateFailed || got.EndedAt.Sub(got.CreatedAt) > 5*time.Minute+time.Second {
		t.Fatalf("hung grant: %s at %v after submit", got.State, got.EndedAt.Sub(got.CreatedAt))
	}
	if e.notes.count(access.EvFailed) != 1 || !strings.Contains(got.Failure, "deadline exceeded") {
		t.Fatalf("requester/approvers not told once (%d), failure %q", e.notes.count(access.EvFailed), got.Failure)
	}
	evs := e.auditOf(t, r.ID)
	if n := countAct(evs, access.ActGrantRetry); n < 3 {
		t.Fatalf("%d grant retries audited", n)
	}
	// The clean-up removal hangs too: it stays pending.
	if !got.Cleanup || !e.prov.IsMember("g-admin", "alice@example.com") {
		t.Fatalf("clean-up pending %v, member %v", got.Cleanup, e.prov.IsMember("g-admin", "alice@example.com"))
	}
	e.prov.setHang("grant", false)
	e.prov.setHang("revoke", false)
	e.toNextDue(t, r.ID)
	e.sweep(t, time.Second)
	got = e.get(t, r.ID)
	if got.Cleanup || e.prov.IsMember("g-admin", "alice@example.com") || countAct(e.auditOf(t, r.ID), access.ActCleanedUp) != 1 {
		t.Fatalf("clean-up not done after recovery: pending %v, member %v", got.Cleanup, e.prov.IsMember("g-admin", "alice@example.com"))
	}
	// Hours later nothing is applied.
	grants := e.prov.count("grant")
	for i := 0; i < 8; i++ {
		e.clock.Advance(30 * time.Minute)
		e.sweep(t, time.Second)
	}
	if e.prov.count("grant") != grants || e.prov.IsMember("g-admin", "alice@example.com") || e.get(t, r.ID).State != access.StateFailed {
		t.Fatal("a failed grant was applied later")
	}
}

// Two provider calls for the same request never run at once, not even
// from two goroutines of one process: the approval's provisioning is in
// flight when the sweep finds the approved request due again.
func TestOneProviderCallPerRequest(t *testing.T) {
	for name, open := range map[string]func(*testing.T) access.Store{"bolt": boltStore, "redis": redisStore} {
		t.Run(name, func(t *testing.T) {
			e := newHangEnv(t, open(t), testclock.New(t0), access.Options{})
			ctx := context.Background()
			r, err := e.svc.Submit(ctx, access.SubmitInput{Requester: "alice@example.com", Role: "prod-admin", Duration: time.Hour, Reason: "x"})
			if err != nil {
				t.Fatal(err)
			}
			let := e.prov.hold("grant")
			done := make(chan error, 1)
			go func() {
				_, err := e.svc.Decide(ctx, r.ID, "bob@example.com", true, "")
				done <- err
			}()
			<-e.prov.started
			e.clock.Advance(31 * time.Second) // the approved request is due again
			pctx, cancel := context.WithTimeout(ctx, 500*time.Millisecond)
			err = e.svc.Process(pctx, r.ID)
			cancel()
			if err != nil {
				t.Fatal(err)
			}
			let()
			if err := <-done; err != nil {
				t.Fatal(err)
			}
			if n := e.prov.count("grant"); n != 1 {
				t.Fatalf("%d Grant calls for one request, want 1", n)
			}
			if got := e.get(t, r.ID); got.State != access.StateActive {
				t.Fatalf("state %s", got.State)
			}
		})
	}
}

// A Grant that answers after its request ended (another worker took the
// request over when the claim ran out, and failed it) is undone.
func TestLateGrantUndone(t *testing.T) {
	c := testclock.New(t0)
	st := &clockClaims{Store: boltStore(t), clock: c, m: map[string]struct {
		owner string
		until time.Time
	}{}}
	e := newHangEnv(t, st, c, access.Options{})
	ctx := context.Background()
	r, err := e.svc.Submit(ctx, access.SubmitInput{Requester: "alice@example.com", Role: "prod-admin", Duration: time.Hour, Reason: "x"})
	if err != nil {
		t.Fatal(err)
	}
	let := e.prov.hold("grant") // answers late, and then succeeds
	done := make(chan error, 1)
	go func() {
		_, err := e.svc.Decide(ctx, r.ID, "bob@example.com", true, "")
		done <- err
	}()
	<-e.prov.started
	e.clock.Advance(10 * time.Minute) // every claim ran out
	e.prov.FailNext("grant", 1, access.Permanent(errors.New("GROUP not found")))
	if err := e.svc.Process(ctx, r.ID); err != nil {
		t.Fatal(err)
	}
	if got := e.get(t, r.ID); got.State != access.StateFailed {
		t.Fatalf("takeover: %s", got.State)
	}
	let()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	got := e.get(t, r.ID)
	if got.State != access.StateFailed || e.prov.IsMember("g-admin", "alice@example.com") {
		t.Fatalf("late grant left a member without a live grant: %s, member %v", got.State, e.prov.IsMember("g-admin", "alice@example.com"))
	}
	if countAct(e.auditOf(t, r.ID), access.ActGrantUndone) != 1 {
		t.Fatal("undoing the late grant not audited")
	}
}

// A revocation in flight while a new grant of the same group becomes
// active must not leave the new grant without its membership.
func TestRevokeInFlightDoesNotCutNewGrant(t *testing.T) {
	e := newHangEnv(t, boltStore(t), testclock.New(t0), access.Options{MemberWait: 50 * time.Millisecond})
	ctx := context.Background()
	a := e.approve(t, "alice@example.com", "prod-admin", 30*time.Minute)
	e.clock.Advance(31 * time.Minute)
	let := e.prov.hold("revoke") // the removal is slow to answer
	done := make(chan error, 1)
	go func() { done <- e.svc.Process(ctx, a.ID) }()
	<-e.prov.started
	// Meanwhile the same group is approved again through another role.
	b, err := e.svc.Submit(ctx, access.SubmitInput{Requester: "alice@example.com", Role: "admin-alias", Duration: time.Hour, Reason: "x"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.svc.Decide(ctx, b.ID, "dave@example.com", true, ""); err != nil {
		t.Fatal(err)
	}
	let()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 5 && e.get(t, b.ID).State != access.StateActive; i++ {
		e.toNextDue(t, b.ID)
		e.sweep(t, time.Second)
	}
	if got := e.get(t, b.ID); got.State != access.StateActive || !e.prov.IsMember("g-admin", "alice@example.com") {
		t.Fatalf("new grant %s, member %v: cut short by the older revocation", got.State, e.prov.IsMember("g-admin", "alice@example.com"))
	}
	if got := e.get(t, a.ID); got.State != access.StateEnded {
		t.Fatalf("old grant %s", got.State)
	}
}

// A failed grant's clean-up never removes a membership another live grant
// of the same group needs.
func TestFailedGrantCleanupKeepsOtherGrant(t *testing.T) {
	e := newHangEnv(t, boltStore(t), testclock.New(t0), access.Options{})
	ctx := context.Background()
	a := e.approve(t, "alice@example.com", "prod-admin", time.Hour)
	if a.State != access.StateActive {
		t.Fatal(a.State)
	}
	b, err := e.svc.Submit(ctx, access.SubmitInput{Requester: "alice@example.com", Role: "admin-alias", Duration: time.Hour, Reason: "x"})
	if err != nil {
		t.Fatal(err)
	}
	e.prov.FailNext("grant", 1, access.Permanent(errors.New("refused")))
	got, err := e.svc.Decide(ctx, b.ID, "dave@example.com", true, "")
	if err != nil || got.State != access.StateFailed {
		t.Fatalf("%v %+v", err, got)
	}
	if !e.prov.IsMember("g-admin", "alice@example.com") {
		t.Fatal("a failed grant's clean-up removed the membership of a live grant")
	}
}

// Revoking a user the provider no longer knows ends the grant (there is
// no membership left), audited, with the security channel told once.
func TestRevokeUnknownUserEnds(t *testing.T) {
	e := newHangEnv(t, boltStore(t), testclock.New(t0), access.Options{})
	r := e.approve(t, "alice@example.com", "prod-admin", time.Hour)
	e.prov.FailNext("revoke", 1000, fmt.Errorf("dryrun: no user alice@example.com: %w", access.ErrUnknownUser))
	e.clock.Advance(time.Hour)
	for i := 0; i < 3; i++ {
		e.sweep(t, time.Second)
		e.clock.Advance(time.Minute)
	}
	got := e.get(t, r.ID)
	if got.State != access.StateEnded || got.EndReason != access.EndExpired {
		t.Fatalf("state %s (%s), want ended", got.State, got.EndReason)
	}
	evs := e.auditOf(t, r.ID)
	last := evs[len(evs)-2]
	if last.Action != access.ActRevoked || !strings.Contains(last.Detail, "no longer exists in dryrun") {
		t.Fatalf("audit %+v", last)
	}
	if n := e.notes.count(access.EvUserGone); n != 1 || evs[len(evs)-1].Action != access.ActAnnounced {
		t.Fatalf("security channel told %d times", n)
	}
	if e.prov.count("revoke") != 1 {
		t.Fatalf("%d revoke calls, want 1", e.prov.count("revoke"))
	}
}

// A break-glass announcement whose post fails stays due and is posted
// once the channel works again; the audit log records the delivery.
func TestBreakGlassAnnouncementRetriedUntilDelivered(t *testing.T) {
	e := newHangEnv(t, boltStore(t), testclock.New(t0), access.Options{})
	e.notes.setFailing(true)
	r, err := e.svc.BreakGlass(context.Background(), access.SubmitInput{Requester: "erin@example.com", Role: "prod-admin", Duration: time.Hour, Reason: "outage"})
	if err != nil || r.State != access.StateActive {
		t.Fatalf("%v %+v", err, r)
	}
	got := e.get(t, r.ID)
	if len(got.Outbox) != 1 || got.Outbox[0].Type != access.EvBreakGlass || countAct(e.auditOf(t, r.ID), access.ActAnnounced) != 0 {
		t.Fatalf("undelivered announcement not kept: %+v", got.Outbox)
	}
	for i := 0; i < 3; i++ {
		e.toNextDue(t, r.ID)
		e.sweep(t, time.Second)
	}
	e.notes.setFailing(false)
	e.toNextDue(t, r.ID)
	e.sweep(t, time.Second)
	tried, posted := e.notes.counts(access.EvBreakGlass)
	got = e.get(t, r.ID)
	if posted != 1 || tried != 5 || len(got.Outbox) != 0 {
		t.Fatalf("tried %d, posted %d, outbox %+v", tried, posted, got.Outbox)
	}
	if countAct(e.auditOf(t, r.ID), access.ActAnnounced) != 1 || len(got.Messages) == 0 {
		t.Fatal("delivery not audited or message not kept")
	}
	// Once delivered, it is not posted again.
	e.clock.Advance(10 * time.Minute)
	e.sweep(t, time.Second)
	if _, posted := e.notes.counts(access.EvBreakGlass); posted != 1 {
		t.Fatalf("posted %d times", posted)
	}
	if due, _ := e.get(t, r.ID).DueAt(); !due.Equal(got.EndsAt) {
		t.Fatalf("due %v, want the grant's end %v", due, got.EndsAt)
	}
}

// A revocation alert whose post fails is retried until delivered.
func TestRevokeAlertRetriedUntilDelivered(t *testing.T) {
	e := newHangEnv(t, boltStore(t), testclock.New(t0), access.Options{})
	r := e.approve(t, "alice@example.com", "prod-admin", time.Hour)
	e.prov.FailNext("revoke", 1000, errors.New("provider down"))
	e.notes.setFailing(true)
	e.clock.Advance(time.Hour)
	for e.clock.Now().Sub(r.EndsAt) < 4*time.Minute {
		e.sweep(t, time.Second)
		e.toNextDue(t, r.ID)
	}
	if tried, posted := e.notes.counts(access.EvRevokeAlert); tried < 2 || posted != 0 {
		t.Fatalf("alert tried %d, posted %d", tried, posted)
	}
	e.notes.setFailing(false)
	for i := 0; i < 5; i++ {
		if _, posted := e.notes.counts(access.EvRevokeAlert); posted > 0 {
			break
		}
		e.toNextDue(t, r.ID)
		e.sweep(t, time.Second)
	}
	if _, posted := e.notes.counts(access.EvRevokeAlert); posted != 1 {
		t.Fatalf("alert posted %d times, want 1", posted)
	}
	if got := e.get(t, r.ID); len(got.Outbox) != 0 || countAct(e.auditOf(t, r.ID), access.ActAnnounced) != 1 {
		t.Fatalf("delivery not recorded: %+v", got.Outbox)
	}
	for i := 0; i < 5; i++ {
		e.toNextDue(t, r.ID)
		e.sweep(t, time.Second)
	}
	if _, posted := e.notes.counts(access.EvRevokeAlert); posted != 1 {
		t.Fatalf("alert posted %d times, want 1", posted)
	}
}

// Shift grants get the same deadline: a hung provider does not hold the
// rotation job.
func TestRotationGrantHasDeadline(t *testing.T) {
	e := newHangEnv(t, boltStore(t), testclock.New(t0), access.Options{AttemptTimeout: 30 * time.Millisecond})
	pol := e.svc.Policy()
	rot := pol.Rotations["platform"]
	rot.Grant = []string{"db-admin"}
	pol.Rotations["platform"] = rot
	e.prov.setHang("grant", true)
	done := make(chan error, 1)
	go func() {
		_, err := e.svc.SyncRotation(context.Background(), "platform")
		done <- err
	}()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("SyncRotation still waiting for a hung Grant after 10s")
	}
	live, err := e.store.List(context.Background(), access.Filter{States: []access.State{access.StateApproved}})
	if err != nil || len(live) != 1 || live[0].Kind != access.KindRotation || live[0].Attempts != 1 {
		t.Fatalf("shift grant not left for a retry: %v %+v", err, live)
	}
}
