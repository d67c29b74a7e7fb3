package access_test

import (
	"context"
	"errors"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/accessbot/accessbot/access"
	"github.com/accessbot/accessbot/internal/testclock"
	"github.com/accessbot/accessbot/providers/dryrun"
	"github.com/accessbot/accessbot/providers/static"
	"github.com/accessbot/accessbot/store/bolt"
)

// hungChecker is a provider whose user check never answers: it returns
// only when its context ends (a network blackhole).
type hungChecker struct {
	*dryrun.Provider
}

func (h *hungChecker) CheckUser(ctx context.Context, _ string) error {
	<-ctx.Done()
	return ctx.Err()
}

// hungOnCall is an on-call source that never answers.
type hungOnCall struct{}

func (hungOnCall) OnCall(ctx context.Context, _ string, _ time.Time) (access.Shift, error) {
	<-ctx.Done()
	return access.Shift{}, ctx.Err()
}

func newEnvWith(t *testing.T, prov access.Provisioner, oncall access.OnCall, opt access.Options) *env {
	t.Helper()
	st, err := bolt.Open(filepath.Join(t.TempDir(), "test.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	if oncall == nil {
		rot, errs := static.New(static.Config{Name: "platform", Timezone: "Europe/Berlin", Handoff: "monday 09:00",
			Start: "2026-11-16", Members: []string{"bob@example.com", "carol@example.com"}})
		if len(errs) > 0 {
			t.Fatal(errs)
		}
		oncall = access.OnCallRouter{"platform": rot}
	}
	c := testclock.New(t0)
	notes := &recorder{}
	svc, err := access.NewService(access.Deps{Store: st, Policy: policy(),
		Providers: map[string]access.Provisioner{"dryrun": prov},
		OnCall:    oncall, Notifier: notes, Clock: c, Options: opt})
	if err != nil {
		t.Fatal(err)
	}
	dr, _ := prov.(*dryrun.Provider)
	return &env{svc: svc, store: st, prov: dr, clock: c, notes: notes}
}

// TestHungProviderDoesNotSwallowRequests: with a user check and an on-call
// source that never answer, Submit still stores a pending request (named
// approvers only), tells people, and returns within the short lookup
// deadlines, not the caller's 30 s.
func TestHungProviderDoesNotSwallowRequests(t *testing.T) {
	const short = 200 * time.Millisecond
	e := newEnvWith(t, &hungChecker{Provider: dryrun.New(nil)}, access.OnCallRouter{"platform": hungOnCall{}},
		access.Options{CheckUserTimeout: short, OnCallTimeout: short})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	start := time.Now()
	r, err := e.svc.Submit(ctx, access.SubmitInput{Requester: "alice@example.com", Role: "prod-admin", Duration: time.Hour, Reason: "checkout"})
	took := time.Since(start)
	if err != nil {
		t.Fatalf("submit: %v", err)
	}
	if took > 5*time.Second {
		t.Fatalf("submit took %v with a 30 s caller deadline; the lookups must give up after %v each", took, short)
	}
	if r.State != access.StatePending || strings.Join(r.Approvers, ",") != "dave@example.com" {
		t.Fatalf("request %s %v, want pending with the named approver only", r.State, r.Approvers)
	}
	if n := e.notes.count(access.EvSubmitted); n != 1 {
		t.Fatalf("%d submitted notifications, want 1", n)
	}
	t.Logf("submit with a hung user check and on-call source took %v", took.Round(time.Millisecond))
}

// TestRequestStoredAfterLookupsUsedTheDeadline: the caller's deadline runs
// out inside the user check (default timeouts, longer than what the caller
// has left); the request is still stored with a fresh deadline of its own,
// the approvers are told, and the person gets the request back.
func TestRequestStoredAfterLookupsUsedTheDeadline(t *testing.T) {
	e := newEnvWith(t, &hungChecker{Provider: dryrun.New(nil)}, access.OnCallRouter{"platform": hungOnCall{}}, access.Options{})
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	r, err := e.svc.Submit(ctx, access.SubmitInput{Requester: "alice@example.com", Role: "prod-admin", Duration: time.Hour, Reason: "checkout"})
	if err != nil {
		t.Fatalf("submit after the lookups used up the deadline: %v", err)
	}
	got, err := e.store.Get(context.Background(), r.ID)
	if err != nil || got.State != access.StatePending {
		t.Fatalf("stored %v, %v", got, err)
	}
	if n := e.notes.count(access.EvSubmitted); n != 1 {
		t.Fatalf("%d submitted notifications, want 1", n)
	}
}

// TestPendingLimitPerUser: at most MaxPendingPerUser requests wait for
// approval at once, even when they are submitted concurrently.
func TestPendingLimitPerUser(t *testing.T) {
	e := newEnvWith(t, dryrun.New(nil), nil, access.Options{MaxPendingPerUser: 2})
	roles := []string{"prod-admin", "db-admin", "self-ok", "admin-alias"}
	var wg sync.WaitGroup
	errs := make([]error, len(roles))
	for i, role := range roles {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, errs[i] = e.svc.Submit(context.Background(), access.SubmitInput{Requester: "alice@example.com", Role: role, Duration: time.Hour, Reason: "x"})
		}()
	}
	wg.Wait()
	pend, err := e.store.List(context.Background(), access.Filter{Requester: "alice@example.com", States: []access.State{access.StatePending}})
	if err != nil {
		t.Fatal(err)
	}
	if len(pend) != 2 {
		t.Fatalf("%d pending requests after 4 concurrent submits with a limit of 2 (errors %v)", len(pend), errs)
	}
	limited := 0
	for _, err := range errs {
		var rf *access.Refusal
		switch {
		case err == nil:
		case errors.Is(err, access.ErrRateLimited) && errors.As(err, &rf) && rf.Code == access.RefuseTooManyPending && rf.Count == 2:
			limited++
		case errors.Is(err, access.ErrConflict):
		default:
			t.Errorf("unexpected refusal %v", err)
		}
	}
	if limited == 0 {
		t.Errorf("no refusal said the limit was reached: %v", errs)
	}
	// Someone else is not affected.
	e.submit(t, "bob@example.com", "self-ok", time.Hour)
}

// TestThrottleCommandsPerMinute: the 21st command within a minute is
// refused; the next minute is free again.
func TestThrottleCommandsPerMinute(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	e.clock.Set(t0.Truncate(time.Minute))
	for i := 0; i < 20; i++ {
		if err := e.svc.Throttle(ctx, "alice@example.com"); err != nil {
			t.Fatalf("command %d: %v", i+1, err)
		}
		e.clock.Advance(time.Second)
	}
	err := e.svc.Throttle(ctx, "Alice@example.com")
	var rf *access.Refusal
	if !errors.Is(err, access.ErrRateLimited) || !errors.As(err, &rf) || rf.Code != access.RefuseThrottled || rf.Limit != 20 {
		t.Fatalf("21st command: %v", err)
	}
	if err := e.svc.Throttle(ctx, "bob@example.com"); err != nil {
		t.Fatalf("another user: %v", err)
	}
	e.clock.Advance(40 * time.Second)
	if err := e.svc.Throttle(ctx, "alice@example.com"); err != nil {
		t.Fatalf("next minute: %v", err)
	}
}

// TestExtensionMaxRecheckedWhenApplied: two extensions pending at once
// (asked before either was applied, so each passed the check at asking
// time) cannot together take the grant past max_duration: the second one
// fails when applied and the grant keeps its end.
func TestExtensionMaxRecheckedWhenApplied(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	r := e.submit(t, "alice@example.com", "prod-admin", time.Hour)
	if _, err := e.svc.Decide(ctx, r.ID, "dave@example.com", true, ""); err != nil {
		t.Fatal(err)
	}
	x1, err := e.svc.Extend(ctx, r.ID, "alice@example.com", 3*time.Hour, "more")
	if err != nil {
		t.Fatal(err)
	}
	// A second extension that slipped past the duplicate check (a replica
	// without the submit guard): stored directly.
	x2 := x1.Clone()
	x2.ID, x2.Version, x2.Messages = access.NewID(), 0, nil
	if err := e.store.Create(ctx, x2); err != nil {
		t.Fatal(err)
	}
	for _, x := range []*access.Request{x1, x2} {
		if _, err := e.svc.Decide(ctx, x.ID, "dave@example.com", true, ""); err != nil {
			t.Fatalf("approve %s: %v", x.ID, err)
		}
	}
	g, _ := e.store.Get(ctx, r.ID)
	if max := e.clock.Now().Add(4 * time.Hour); g.EndsAt.After(max) {
		t.Fatalf("grant ends %v, past the maximum %v", g.EndsAt, max)
	}
	if g.Extensions != 1 {
		t.Fatalf("%d extensions applied, want 1", g.Extensions)
	}
	f, _ := e.store.Get(ctx, x2.ID)
	if f.State != access.StateFailed || !strings.Contains(f.Failure, "more than the maximum of 4h") {
		t.Fatalf("second extension %s: %q", f.State, f.Failure)
	}
}

// TestAcknowledgeRefusalToStrangers: someone who may not acknowledge and is
// not involved learns nothing (not even that the request is break-glass or
// who acknowledged it); the refusal reads like the one for an unknown id.
func TestAcknowledgeRefusalToStrangers(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	r, err := e.svc.BreakGlass(ctx, access.SubmitInput{Requester: "erin@example.com", Role: "prod-admin", Duration: time.Hour, Reason: "fire"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.svc.Acknowledge(ctx, r.ID, "dave@example.com"); err != nil {
		t.Fatal(err)
	}
	_, err = e.svc.Acknowledge(ctx, r.ID, "mallory@example.com")
	_, unknown := e.svc.Acknowledge(ctx, "r-zzzzzzzz", "mallory@example.com")
	// The two refusals carry the same (the request id only), so they read
	// the same (handlers.TestRefusalWording) and leak nothing.
	var ue, uu *access.Refusal
	if !errors.As(err, &ue) || !errors.Is(err, access.ErrNotAllowed) || !errors.As(unknown, &uu) ||
		!reflect.DeepEqual(*ue, access.Refusal{Code: access.RefuseNoRequest, Err: access.ErrNotAllowed, ID: r.ID}) ||
		!reflect.DeepEqual(*uu, access.Refusal{Code: access.RefuseNoRequest, Err: access.ErrNotFound, ID: "r-zzzzzzzz"}) {
		t.Fatalf("stranger: %v; unknown id: %v", err, unknown)
	}
}

// TestBreakGlassWithHungUserCheck: break-glass is not held up by a user
// check that never answers beyond its short deadline.
func TestBreakGlassWithHungUserCheck(t *testing.T) {
	e := newEnvWith(t, &hungChecker{Provider: dryrun.New(nil)}, nil, access.Options{CheckUserTimeout: 200 * time.Millisecond})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	start := time.Now()
	r, err := e.svc.BreakGlass(ctx, access.SubmitInput{Requester: "erin@example.com", Role: "prod-admin", Duration: time.Hour, Reason: "fire"})
	if err != nil || r.State != access.StateActive {
		t.Fatalf("break-glass: %v %v", r, err)
	}
	if took := time.Since(start); took > 5*time.Second {
		t.Fatalf("break-glass took %v", took)
	}
}
