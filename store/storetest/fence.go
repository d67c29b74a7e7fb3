package storetest

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/accessbot/accessbot/access"
)

// RunFence runs the conformance subtests of access.Fencer, each against a
// fresh store (open and reopen as for Run). A store that is no Fencer
// fails them.
func RunFence(t *testing.T, open Open, reopen Reopen) {
	tests := []struct {
		name string
		fn   func(t *testing.T, s access.Store, f access.Fencer)
	}{
		{"TokensIncrease", testFenceTokens},
		{"OneLockWithClaim", testFenceSharesClaim},
		{"LapseReported", testFenceLapse},
		{"FencedWrites", testFencedWrites},
		{"FencedWritesOrderedBeforeTakeover", testFenceTakeoverOrder},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := open(t)
			tc.fn(t, s, fencer(t, s))
		})
	}
	t.Run("TokensIncreaseAcrossRestart", func(t *testing.T) { testFenceRestart(t, open, reopen) })
}

func fencer(t *testing.T, s access.Store) access.Fencer {
	t.Helper()
	f, ok := s.(access.Fencer)
	if !ok {
		t.Fatalf("%T is no access.Fencer", s)
	}
	return f
}

func claimFenced(t *testing.T, f access.Fencer, key, owner string, ttl time.Duration) (access.Lease, bool) {
	t.Helper()
	l, ok, err := f.ClaimFenced(ctx(t), key, owner, ttl)
	if err != nil {
		t.Fatalf("ClaimFenced(%s, %s): %v", key, owner, err)
	}
	if ok && l.Token <= 0 {
		t.Fatalf("ClaimFenced(%s, %s) token %d, want a positive one", key, owner, l.Token)
	}
	return l, ok
}

func mustClaimFenced(t *testing.T, f access.Fencer, key, owner string, ttl time.Duration) access.Lease {
	t.Helper()
	l, ok := claimFenced(t, f, key, owner, ttl)
	if !ok {
		t.Fatalf("ClaimFenced(%s, %s) = not obtained", key, owner)
	}
	return l
}

func releaseFenced(t *testing.T, f access.Fencer, key, owner string) bool {
	t.Helper()
	ok, err := f.ReleaseFenced(ctx(t), key, owner)
	if err != nil {
		t.Fatalf("ReleaseFenced(%s, %s): %v", key, owner, err)
	}
	return ok
}

func testFenceTokens(t *testing.T, s access.Store, f access.Fencer) {
	const key, ttl = "job:report", time.Minute
	a := mustClaimFenced(t, f, key, "replica-a", ttl)
	if a.Lapsed != nil {
		t.Errorf("first acquisition reports a lapsed holding %+v", *a.Lapsed)
	}
	if again := mustClaimFenced(t, f, key, "replica-a", ttl); again.Token != a.Token || again.Lapsed != nil {
		t.Errorf("renewal by the holder = %+v, want token %d kept and nothing lapsed", again, a.Token)
	}
	if l, ok := claimFenced(t, f, key, "replica-b", ttl); ok || l.Token != 0 {
		t.Errorf("ClaimFenced by another owner while held = %+v, %v; want not obtained", l, ok)
	}
	if releaseFenced(t, f, key, "replica-b") {
		t.Error("ReleaseFenced by a non-holder reported a release")
	}
	other := mustClaimFenced(t, f, "job:other", "replica-b", ttl)
	if other.Token == a.Token {
		t.Errorf("two keys' holdings share token %d", a.Token)
	}
	if !releaseFenced(t, f, key, "replica-a") {
		t.Error("ReleaseFenced by the holder reported no release")
	}
	if releaseFenced(t, f, key, "replica-a") {
		t.Error("second ReleaseFenced reported a release")
	}
	if releaseFenced(t, f, "job:never", "replica-a") {
		t.Error("ReleaseFenced of a key never claimed reported a release")
	}

	// Every new acquisition gets a greater token, whoever takes it.
	last := a.Token
	for i, owner := range []string{"replica-b", "replica-a", "replica-a", "replica-c"} {
		l := mustClaimFenced(t, f, key, owner, ttl)
		if l.Token <= last {
			t.Errorf("acquisition %d by %s: token %d, want more than %d", i, owner, l.Token, last)
		}
		if l.Lapsed != nil {
			t.Errorf("acquisition %d after a release reports a lapsed holding %+v", i, *l.Lapsed)
		}
		last = l.Token
		if !releaseFenced(t, f, key, owner) {
			t.Fatalf("release %d reported no release", i)
		}
	}

	if _, _, err := f.ClaimFenced(ctx(t), key, "replica-a", 0); err == nil {
		t.Error("ClaimFenced with a zero ttl succeeded")
	}
	if _, _, err := f.ClaimFenced(ctx(t), "", "replica-a", ttl); err == nil {
		t.Error("ClaimFenced with an empty key succeeded")
	}
	if _, _, err := f.ClaimFenced(ctx(t), key, "", ttl); err == nil {
		t.Error("ClaimFenced with an empty owner succeeded")
	}
}

// testFenceSharesClaim: Claim and ClaimFenced are one lock.
func testFenceSharesClaim(t *testing.T, s access.Store, f access.Fencer) {
	const key, ttl = "request:r-shared23", time.Minute
	l := mustClaimFenced(t, f, key, "worker-a", ttl)
	if claim(t, s, key, "worker-b", ttl) {
		t.Fatal("Claim by another owner took a key held through ClaimFenced")
	}
	if !claim(t, s, key, "worker-a", ttl) {
		t.Fatal("Claim by the holder did not renew its ClaimFenced holding")
	}
	if again := mustClaimFenced(t, f, key, "worker-a", ttl); again.Token != l.Token {
		t.Errorf("token after a Claim renewal = %d, want %d", again.Token, l.Token)
	}
	release(t, s, key, "worker-a")
	if releaseFenced(t, f, key, "worker-a") {
		t.Error("Release did not end the ClaimFenced holding")
	}

	if !claim(t, s, key, "worker-b", ttl) {
		t.Fatal("Claim after Release = false")
	}
	if _, ok := claimFenced(t, f, key, "worker-a", ttl); ok {
		t.Fatal("ClaimFenced by another owner took a key held through Claim")
	}
	// The Claim acquisition drew a token too: the holder's ClaimFenced
	// reports one greater than the one before.
	if b := mustClaimFenced(t, f, key, "worker-b", ttl); b.Token <= l.Token {
		t.Errorf("token of a Claim acquisition = %d, want more than %d", b.Token, l.Token)
	}
}

func testFenceLapse(t *testing.T, s access.Store, f access.Fencer) {
	const key, short = "job:lapse", 150 * time.Millisecond
	a := mustClaimFenced(t, f, key, "replica-a", short)
	sleepPast(short)
	if releaseFenced(t, f, key, "replica-a") {
		t.Error("ReleaseFenced of a lapsed holding reported a release")
	}
	b := mustClaimFenced(t, f, key, "replica-b", time.Minute)
	if b.Token <= a.Token {
		t.Errorf("token after the lapse = %d, want more than %d", b.Token, a.Token)
	}
	if b.Lapsed == nil || *b.Lapsed != (access.Holder{Owner: "replica-a", Token: a.Token}) {
		t.Errorf("takeover reports lapsed %+v, want replica-a with token %d", b.Lapsed, a.Token)
	}
	if _, ok := claimFenced(t, f, key, "replica-a", time.Minute); ok {
		t.Error("the lapsed holder took the lease back from its new holder")
	}
	if releaseFenced(t, f, key, "replica-a") {
		t.Error("the lapsed holder released the new holder's lease")
	}
	if again := mustClaimFenced(t, f, key, "replica-b", time.Minute); again.Lapsed != nil || again.Token != b.Token {
		t.Errorf("renewal after a takeover = %+v, want token %d and nothing lapsed", again, b.Token)
	}

	// A lapse also shows when the same owner takes the key again: its
	// renewal came too late, and it gets a new token.
	const key2 = "request:r-lapse234"
	c := mustClaimFenced(t, f, key2, "worker-c", short)
	sleepPast(short)
	c2 := mustClaimFenced(t, f, key2, "worker-c", time.Minute)
	if c2.Token <= c.Token || c2.Lapsed == nil || c2.Lapsed.Token != c.Token {
		t.Errorf("late renewal = %+v, want a new token above %d reporting the lapse of %d", c2, c.Token, c.Token)
	}
}

func fenced(t *testing.T, key string, l access.Lease) context.Context {
	return access.WithFence(ctx(t), l.Fence(key))
}

func wantFenced(t *testing.T, what string, err error) {
	t.Helper()
	if !errors.Is(err, access.ErrFenced) {
		t.Errorf("%s = %v, want ErrFenced", what, err)
	}
}

func testFencedWrites(t *testing.T, s access.Store, f access.Fencer) {
	const key, ttl = "job:reconcile", time.Minute
	a := mustClaimFenced(t, f, key, "replica-a", ttl)
	actx := fenced(t, key, a)

	// The holder writes.
	r := simple("r-fence234", "alice@example.com", "prod-admin", access.StatePending, base)
	if err := s.Create(actx, r.Clone(), event(r.ID, access.ActSubmitted, "alice@example.com", base)); err != nil {
		t.Fatalf("fenced Create by the holder: %v", err)
	}
	if _, err := s.Update(actx, r.ID, func(c *access.Request) ([]access.AuditEvent, error) {
		c.Reason = "by the holder"
		return []access.AuditEvent{event(r.ID, access.ActApproved, "a", base)}, nil
	}); err != nil {
		t.Fatalf("fenced Update by the holder: %v", err)
	}
	if err := s.AppendAudit(actx, event("", access.ActDriftRemoved, "a", base)); err != nil {
		t.Fatalf("fenced AppendAudit by the holder: %v", err)
	}
	if err := s.CreateMany(actx, bundleOf("r-f", 2, base)); err != nil { // several roles in one request
		t.Fatalf("fenced CreateMany by the holder: %v", err)
	}
	want := mustGet(t, s, r.ID)
	nAudit := len(mustAudit(t, s, time.Time{}))

	// A stale fence writes nothing, whatever made it stale.
	staleWrites := func(when string, sctx context.Context) {
		t.Helper()
		nr := simple("r-stale234", "bob@example.com", "prod-admin", access.StatePending, base)
		wantFenced(t, when+": Create", s.Create(sctx, nr, event(nr.ID, access.ActSubmitted, "bob@example.com", base)))
		many := bundleOf("r-s", 2, base)
		wantFenced(t, when+": CreateMany", s.CreateMany(sctx, many, event(many[0].ID, access.ActSubmitted, "alice@example.com", base)))
		if _, err := s.Get(ctx(t), many[1].ID); !errors.Is(err, access.ErrNotFound) {
			t.Errorf("%s: the refused CreateMany stored a request (Get = %v)", when, err)
		}
		calls := 0
		_, err := s.Update(sctx, r.ID, func(c *access.Request) ([]access.AuditEvent, error) {
			calls++
			c.Reason = "by a stale holder"
			return []access.AuditEvent{event(r.ID, access.ActRevoked, "stale", base)}, nil
		})
		wantFenced(t, when+": Update", err)
		wantFenced(t, when+": AppendAudit", s.AppendAudit(sctx, event("", access.ActDriftRemoved, "stale", base)))
		if _, err := s.Get(ctx(t), nr.ID); !errors.Is(err, access.ErrNotFound) {
			t.Errorf("%s: the refused Create stored the request (Get = %v)", when, err)
		}
		sameRequest(t, mustGet(t, s, r.ID), want)
		if got := mustAudit(t, s, time.Time{}); len(got) != nAudit {
			t.Errorf("%s: audit has %d events after refused writes, want %d: %+v", when, len(got), nAudit, got)
		}
	}

	// Taken over: a's token is older than the holder's.
	if !releaseFenced(t, f, key, "replica-a") {
		t.Fatal("release reported no release")
	}
	b := mustClaimFenced(t, f, key, "replica-b", ttl)
	staleWrites("after a takeover", actx)
	// The new holder writes.
	if err := s.AppendAudit(fenced(t, key, b), event("", access.ActDriftRemoved, "b", base)); err != nil {
		t.Fatalf("fenced AppendAudit by the new holder: %v", err)
	}
	nAudit++
	// Released, nobody holds it.
	if !releaseFenced(t, f, key, "replica-b") {
		t.Fatal("release reported no release")
	}
	staleWrites("after a release", fenced(t, key, b))
	// A token from the future, another key's, a key never claimed.
	c := mustClaimFenced(t, f, key, "replica-c", ttl)
	staleWrites("with a token not handed out", access.WithFence(ctx(t), access.Fence{Key: key, Token: c.Token + 1000}))
	o := mustClaimFenced(t, f, "job:other", "replica-c", ttl)
	staleWrites("with another key's token", access.WithFence(ctx(t), access.Fence{Key: key, Token: o.Token}))
	staleWrites("for a key never claimed", access.WithFence(ctx(t), access.Fence{Key: "job:never", Token: c.Token}))

	// Lapsed, nobody took it over.
	const short = 150 * time.Millisecond
	d := mustClaimFenced(t, f, "job:short", "replica-d", short)
	sleepPast(short)
	staleWrites("after a lapse", fenced(t, "job:short", d))

	// Writes without a fence are not affected.
	if _, err := s.Update(ctx(t), r.ID, func(c *access.Request) ([]access.AuditEvent, error) {
		c.Reason = "unfenced"
		return nil, nil
	}); err != nil {
		t.Errorf("unfenced Update: %v", err)
	}
}

// testFenceTakeoverOrder: a fenced write either lands before the lease
// changes hands or not at all, never after the new holder's first write.
func testFenceTakeoverOrder(t *testing.T, s access.Store, f access.Fencer) {
	const key, ttl = "job:race", time.Minute
	a := mustClaimFenced(t, f, key, "replica-a", ttl)
	actx := fenced(t, key, a)
	var (
		wg      sync.WaitGroup
		landed  int
		lastErr error
	)
	started := make(chan struct{})
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 0; ; i++ {
			err := s.AppendAudit(actx, event("", access.ActDriftRemoved, "replica-a", base))
			if i == 0 {
				close(started)
			}
			if err != nil {
				lastErr = err
				return
			}
			landed++
		}
	}()
	<-started
	// Let a few writes land, then take over and write at once.
	for len(mustAudit(t, s, time.Time{})) < 3 {
		time.Sleep(time.Millisecond)
	}
	if !releaseFenced(t, f, key, "replica-a") {
		t.Fatal("release reported no release")
	}
	b := mustClaimFenced(t, f, key, "replica-b", ttl)
	if err := s.AppendAudit(fenced(t, key, b), event("", access.ActDriftRemoved, "replica-b", base)); err != nil {
		t.Fatalf("new holder's AppendAudit: %v", err)
	}
	wg.Wait()
	wantFenced(t, "the old holder's write after the takeover", lastErr)

	evs := mustAudit(t, s, time.Time{})
	if len(evs) != landed+1 {
		t.Errorf("audit has %d events, want the old holder's %d and the new holder's", len(evs), landed)
	}
	// Equal times: the audit is in write order.
	for i, ev := range evs {
		if ev.Actor == "replica-b" && i != len(evs)-1 {
			t.Errorf("the old holder's writes landed after the new holder's: %d of %d events follow it", len(evs)-1-i, len(evs))
		}
	}
}

func testFenceRestart(t *testing.T, open Open, reopen Reopen) {
	s := open(t)
	const key = "job:restart"
	a := mustClaimFenced(t, fencer(t, s), key, "replica-a", time.Minute)
	if !releaseFenced(t, fencer(t, s), key, "replica-a") {
		t.Fatal("release reported no release")
	}
	s = reopen(t, s)
	b := mustClaimFenced(t, fencer(t, s), key, "replica-b", time.Minute)
	if b.Token <= a.Token {
		t.Errorf("token after a restart = %d, want more than %d", b.Token, a.Token)
	}
	s = reopen(t, s)
	c := mustClaimFenced(t, fencer(t, s), "job:restart-other", "replica-c", time.Minute)
	if c.Token <= b.Token {
		t.Errorf("token after a second restart = %d, want more than %d", c.Token, b.Token)
	}
}
