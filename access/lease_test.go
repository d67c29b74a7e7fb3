package access_test

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/accessbot/accessbot/access"
	"github.com/accessbot/accessbot/internal/testclock"
	"github.com/accessbot/accessbot/providers/static"
)

var errDead = errors.New("replica is dead")

// replicaStore is one replica's view of a shared store. Once killed, none
// of its writes (claims, renewals, releases, updates) reach the store any
// more, as when its process is gone. It remembers the owner token of each
// claim, so that a test can take a lease away from its holder.
type replicaStore struct {
	access.Store
	dead   atomic.Bool
	mu     sync.Mutex
	owners map[string]string
}

func newReplicaStore(st access.Store) *replicaStore {
	return &replicaStore{Store: st, owners: map[string]string{}}
}

func (r *replicaStore) kill() { r.dead.Store(true) }

func (r *replicaStore) Claim(ctx context.Context, id, owner string, ttl time.Duration) (bool, error) {
	if r.dead.Load() {
		return false, errDead
	}
	ok, err := r.Store.Claim(ctx, id, owner, ttl)
	if ok {
		r.mu.Lock()
		r.owners[id] = owner
		r.mu.Unlock()
	}
	return ok, err
}

func (r *replicaStore) Release(ctx context.Context, id, owner string) error {
	if r.dead.Load() {
		return errDead
	}
	return r.Store.Release(ctx, id, owner)
}

func (r *replicaStore) Update(ctx context.Context, id string, fn func(*access.Request) ([]access.AuditEvent, error)) (*access.Request, error) {
	if r.dead.Load() {
		return nil, errDead
	}
	return r.Store.Update(ctx, id, fn)
}

func (r *replicaStore) owner(id string) string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.owners[id]
}

// syncBuffer is a log sink safe for concurrent writers.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// replica is one Service on a shared store and provider.
type replica struct {
	svc   *access.Service
	store *replicaStore
	logs  *syncBuffer
}

func newReplica(t *testing.T, name string, st access.Store, prov *hangProvider, c *testclock.Clock, opt access.Options) *replica {
	t.Helper()
	rot, errs := static.New(static.Config{Name: "platform", Timezone: "Europe/Berlin", Handoff: "monday 09:00",
		Start: "2026-11-16", Members: []string{"bob@example.com", "carol@example.com"}})
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	rs := newReplicaStore(st)
	logs := &syncBuffer{}
	svc, err := access.NewService(access.Deps{Store: rs, Policy: policy(),
		Providers: map[string]access.Provisioner{"dryrun": prov}, OnCall: access.OnCallRouter{"platform": rot}, Notifier: &recorder{}, Clock: c, Owner: name,
		Logger: slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelWarn})), Options: opt})
	if err != nil {
		t.Fatal(err)
	}
	return &replica{svc: svc, store: rs, logs: logs}
}

func testClockClaims(t *testing.T, c *testclock.Clock) access.Store {
	return &clockClaims{Store: boltStore(t), clock: c, m: map[string]struct {
		owner string
		until time.Time
	}{}}
}

func getReq(t *testing.T, st access.Store, id string) *access.Request {
	t.Helper()
	r, err := st.Get(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// activeGrant submits, approves and grants a request through rep.
func activeGrant(t *testing.T, rep *replica, d time.Duration) *access.Request {
	t.Helper()
	ctx := context.Background()
	r, err := rep.svc.Submit(ctx, access.SubmitInput{Requester: "alice@example.com", Role: "prod-admin", Duration: d, Reason: "x"})
	if err != nil {
		t.Fatal(err)
	}
	r, err = rep.svc.Decide(ctx, r.ID, "bob@example.com", true, "")
	if err != nil {
		t.Fatal(err)
	}
	if r.State != access.StateActive {
		t.Fatalf("grant: %s", r.State)
	}
	return r
}

// killDuringRevoke ends r's grant on replica a with the provider's removal
// hanging, then kills a mid-call: its context is cancelled, its lease left
// behind (no release, no renewal reaches the store). It returns when a's
// work has stopped.
func killDuringRevoke(t *testing.T, a *replica, prov *hangProvider, c *testclock.Clock, r *access.Request) {
	t.Helper()
	for len(prov.started) > 0 {
		<-prov.started // the grant's
	}
	c.Set(r.EndsAt.Add(time.Second))
	prov.setHang("revoke", true)
	actx, kill := context.WithCancel(context.Background())
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		_ = a.svc.Process(actx, r.ID)
	}()
	<-prov.started
	a.store.kill()
	kill()
	select {
	case <-stopped:
	case <-time.After(10 * time.Second):
		t.Fatal("the killed replica's work did not stop")
	}
	prov.setHang("revoke", false)
	if got := getReq(t, a.store.Store, r.ID); got.State != access.StateRevoking {
		t.Fatalf("after the kill: %s, want revoking", got.State)
	}
}

// A replica killed in the middle of a revocation leaves its lease behind;
// another replica takes the revocation over once the lease has run out
// (LeaseTTL, 10 s by default), not after minutes. Leases on the test clock.
func TestDeadHolderLeaseTakenOverOnTestClock(t *testing.T) {
	c := testclock.New(t0)
	st := testClockClaims(t, c)
	prov := newHangProvider()
	a := newReplica(t, "a", st, prov, c, access.Options{})
	b := newReplica(t, "b", st, prov, c, access.Options{})
	r := activeGrant(t, a, time.Hour)
	killDuringRevoke(t, a, prov, c, r)
	ctx := context.Background()

	// The lease is still a's: b leaves the request alone.
	if err := b.svc.Process(ctx, r.ID); err != nil {
		t.Fatal(err)
	}
	if n := prov.count("revoke"); n != 1 || getReq(t, st, r.ID).State != access.StateRevoking {
		t.Fatalf("taken over while the lease was live: %d Revoke calls", n)
	}
	c.Advance(10*time.Second + time.Millisecond) // LeaseTTL
	if err := b.svc.Process(ctx, r.ID); err != nil {
		t.Fatal(err)
	}
	got := getReq(t, st, r.ID)
	if got.State != access.StateEnded || prov.IsMember("g-admin", "alice@example.com") {
		t.Fatalf("10 s after the kill: %s, member %v; want ended and removed", got.State, prov.IsMember("g-admin", "alice@example.com"))
	}
	if n := prov.count("revoke"); n != 2 {
		t.Fatalf("%d Revoke calls, want 2 (the killed one and the takeover)", n)
	}
	if !strings.Contains(b.logs.String(), "taking over work its last worker left unfinished") {
		t.Fatalf("takeover not logged:\n%s", b.logs.String())
	}
}

// The same on real stores, whose leases run on real time (a 300 ms
// LeaseTTL): the revocation is taken over within about LeaseTTL of the kill.
func TestDeadHolderLeaseTakenOver(t *testing.T) {
	const ttl = 300 * time.Millisecond
	for name, open := range map[string]func(*testing.T) access.Store{"bolt": boltStore, "redis": redisStore} {
		t.Run(name, func(t *testing.T) {
			c := testclock.New(t0)
			st := open(t)
			prov := newHangProvider()
			opt := access.Options{LeaseTTL: ttl}
			a := newReplica(t, "a", st, prov, c, opt)
			b := newReplica(t, "b", st, prov, c, opt)
			r := activeGrant(t, a, time.Hour)
			killed := time.Now()
			killDuringRevoke(t, a, prov, c, r)
			ctx := context.Background()
			deadline := time.Now().Add(10 * time.Second)
			for getReq(t, st, r.ID).State != access.StateEnded {
				if time.Now().After(deadline) {
					t.Fatalf("not taken over 10 s after the kill (%d Revoke calls)", prov.count("revoke"))
				}
				if err := b.svc.Process(ctx, r.ID); err != nil {
					t.Fatal(err)
				}
				time.Sleep(10 * time.Millisecond)
			}
			took := time.Since(killed)
			t.Logf("%s: revocation taken over %v after the kill (LeaseTTL %v)", name, took.Round(time.Millisecond), ttl)
			if took > ttl+3*time.Second {
				t.Fatalf("taken over %v after the kill, want about LeaseTTL (%v)", took, ttl)
			}
			if prov.count("revoke") != 2 || prov.IsMember("g-admin", "alice@example.com") {
				t.Fatalf("%d Revoke calls, member %v", prov.count("revoke"), prov.IsMember("g-admin", "alice@example.com"))
			}
		})
	}
}

// A holder whose lease is taken from it (a renewal refused) has its
// provider call cancelled at once, and records nothing: the request is
// the new holder's.
func TestLostLeaseCancelsProviderCall(t *testing.T) {
	const ttl = 300 * time.Millisecond
	for name, open := range map[string]func(*testing.T) access.Store{"bolt": boltStore, "redis": redisStore} {
		t.Run(name, func(t *testing.T) {
			c := testclock.New(t0)
			st := open(t)
			prov := newHangProvider()
			// The call's own deadline is far away: only losing the lease ends it.
			a := newReplica(t, "a", st, prov, c, access.Options{LeaseTTL: ttl, AttemptTimeout: time.Minute})
			ctx := context.Background()
			r, err := a.svc.Submit(ctx, access.SubmitInput{Requester: "alice@example.com", Role: "prod-admin", Duration: time.Hour, Reason: "x"})
			if err != nil {
				t.Fatal(err)
			}
			prov.setHang("grant", true)
			done := make(chan error, 1)
			go func() {
				_, err := a.svc.Decide(ctx, r.ID, "bob@example.com", true, "")
				done <- err
			}()
			<-prov.started
			key := "request:" + r.ID
			owner := a.store.owner(key)
			if owner == "" {
				t.Fatal("no lease recorded for the work")
			}
			// Another worker has the lease now (it lapsed and was taken).
			if err := st.Release(ctx, key, owner); err != nil {
				t.Fatal(err)
			}
			if ok, err := st.Claim(ctx, key, "thief", time.Minute); err != nil || !ok {
				t.Fatalf("steal: %v %v", ok, err)
			}
			stolen := time.Now()
			select {
			case err := <-done:
				if err != nil {
					t.Fatal(err)
				}
			case <-time.After(10 * time.Second):
				t.Fatal("the provider call went on after its lease was lost")
			}
			t.Logf("%s: provider call cancelled %v after the lease was lost (LeaseTTL %v)", name, time.Since(stolen).Round(time.Millisecond), ttl)
			got := getReq(t, st, r.ID)
			if got.State != access.StateApproved || got.Attempts != 0 || got.LastError != "" {
				t.Fatalf("the loser recorded its cancelled call: %s, %d attempts, %q", got.State, got.Attempts, got.LastError)
			}
			if ok, _ := st.Claim(ctx, key, "someone-else", time.Minute); ok {
				t.Fatal("the loser gave back or overwrote the thief's lease")
			}
			if !strings.Contains(a.logs.String(), "lease lost") {
				t.Fatalf("losing the lease not logged:\n%s", a.logs.String())
			}
		})
	}
}

// A provider call that takes many LeaseTTLs keeps its lease by renewal:
// another replica sweeping the request meanwhile never calls the provider.
func TestLongProviderCallKeepsLease(t *testing.T) {
	const ttl = 300 * time.Millisecond
	for name, open := range map[string]func(*testing.T) access.Store{"bolt": boltStore, "redis": redisStore} {
		t.Run(name, func(t *testing.T) {
			c := testclock.New(t0)
			st := open(t)
			prov := newHangProvider()
			opt := access.Options{LeaseTTL: ttl}
			a := newReplica(t, "a", st, prov, c, opt)
			b := newReplica(t, "b", st, prov, c, opt)
			ctx := context.Background()
			r, err := a.svc.Submit(ctx, access.SubmitInput{Requester: "alice@example.com", Role: "prod-admin", Duration: time.Hour, Reason: "x"})
			if err != nil {
				t.Fatal(err)
			}
			let := prov.hold("grant") // answers (successfully) when let go
			done := make(chan error, 1)
			go func() {
				_, err := a.svc.Decide(ctx, r.ID, "bob@example.com", true, "")
				done <- err
			}()
			<-prov.started
			c.Advance(31 * time.Second) // the approved request is due for the sweep
			start := time.Now()
			sweeps := 0
			for time.Since(start) < 5*ttl {
				if err := b.svc.Process(ctx, r.ID); err != nil {
					t.Fatal(err)
				}
				sweeps++
				if n := prov.count("grant"); n != 1 {
					t.Fatalf("%d Grant calls after %v (%d sweeps), want 1: the lease was not kept", n, time.Since(start), sweeps)
				}
				time.Sleep(10 * time.Millisecond)
			}
			t.Logf("%s: %d sweeps over %v (%d LeaseTTLs) left the held call alone", name, sweeps, time.Since(start).Round(time.Millisecond), 5)
			let()
			if err := <-done; err != nil {
				t.Fatal(err)
			}
			if got := getReq(t, st, r.ID); got.State != access.StateActive || prov.count("grant") != 1 {
				t.Fatalf("state %s, %d Grant calls", got.State, prov.count("grant"))
			}
		})
	}
}
