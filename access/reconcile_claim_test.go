package access_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/accessbot/accessbot/access"
	"github.com/accessbot/accessbot/internal/testclock"
)

// drainStarted forgets the provider calls begun so far.
func (e *hangEnv) drainStarted() {
	for len(e.prov.started) > 0 {
		<-e.prov.started
	}
}

// waitStarted waits for a provider call of op to begin.
func (e *hangEnv) waitStarted(t *testing.T, op string) {
	t.Helper()
	timeout := time.After(10 * time.Second)
	for {
		select {
		case got := <-e.prov.started:
			if got == op {
				return
			}
		case <-timeout:
			t.Fatalf("no %s call began", op)
		}
	}
}

func (e *hangEnv) reconcileRemove(role string) {
	pol := e.svc.Policy()
	r := pol.Roles[role]
	r.Reconcile = "remove"
	pol.Roles[role] = r
}

// A missing membership is added back under the membership's claim: a
// revocation of the same grant that comes while the re-apply is in flight
// waits for it, so the member is not added back after the revocation went
// through.
func TestReconcileReapplyHoldsMembershipClaim(t *testing.T) {
	e := newHangEnv(t, boltStore(t), testclock.New(t0), access.Options{MemberWait: 50 * time.Millisecond})
	ctx := context.Background()
	r := e.approve(t, "alice@example.com", "prod-admin", time.Hour)
	if r.State != access.StateActive {
		t.Fatalf("setup: %s", r.State)
	}
	// Removed out of band: the grant's membership is missing.
	if err := e.prov.Provider.Revoke(ctx, access.Grant{Group: "g-admin", User: "alice@example.com"}); err != nil {
		t.Fatal(err)
	}
	e.drainStarted()
	let := e.prov.hold("grant")
	defer let()
	type result struct {
		d   []access.Drift
		err error
	}
	done := make(chan result, 1)
	go func() {
		d, err := e.svc.Reconcile(ctx)
		done <- result{d, err}
	}()
	e.waitStarted(t, "grant") // the re-apply is in flight
	e.clock.Advance(time.Hour)
	e.sweep(t, 5*time.Second) // the grant ends meanwhile
	let()
	res := <-done
	if res.err != nil || len(res.d) != 1 || strings.Join(res.d[0].Reapplied, ",") != r.ID {
		t.Fatalf("Reconcile = %+v, %v; want %s re-applied", res.d, res.err, r.ID)
	}
	for i := 0; i < 5 && e.get(t, r.ID).State != access.StateEnded; i++ {
		e.toNextDue(t, r.ID)
		e.sweep(t, 5*time.Second)
	}
	cur := e.get(t, r.ID)
	member := e.prov.IsMember("g-admin", "alice@example.com")
	t.Logf("after the re-apply and the revocation: %s, member=%v, revoke calls %d", cur.State, member, e.prov.count("revoke"))
	if cur.State != access.StateEnded || member {
		t.Fatalf("grant %s and alice member=%v: the re-apply landed after the revocation", cur.State, member)
	}
}

// A member without a grant is removed under the membership's claim: a
// grant of the same membership that becomes active while the removal is in
// flight waits for it, so the removal never cuts the new grant.
func TestReconcileRemovalHoldsMembershipClaim(t *testing.T) {
	e := newHangEnv(t, boltStore(t), testclock.New(t0), access.Options{MemberWait: 50 * time.Millisecond})
	e.reconcileRemove("prod-admin")
	e.prov.AddMember("g-admin", "alice@example.com") // left over, no grant
	let := e.prov.hold("revoke")
	defer let()
	done := make(chan error, 1)
	go func() {
		_, err := e.svc.Reconcile(context.Background())
		done <- err
	}()
	e.waitStarted(t, "revoke") // the drift removal is in flight
	r := e.approve(t, "alice@example.com", "prod-admin", time.Hour)
	let()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 5 && e.get(t, r.ID).State != access.StateActive; i++ {
		e.toNextDue(t, r.ID)
		e.sweep(t, 5*time.Second)
	}
	cur := e.get(t, r.ID)
	member := e.prov.IsMember("g-admin", "alice@example.com")
	t.Logf("after the drift removal and the grant: %s, member=%v, grant calls %d", cur.State, member, e.prov.count("grant"))
	if cur.State != access.StateActive || !member {
		t.Fatalf("grant %s and alice member=%v: the drift removal cut a live grant", cur.State, member)
	}
}

// A failed grant whose clean-up removal keeps failing is not "a member
// without a grant": the drift says clean-up failing since T after N
// attempts, reconcile does not remove the member behind the clean-up's
// back and raises no second alert.
func TestReconcileReportsFailingCleanup(t *testing.T) {
	e := newHangEnv(t, boltStore(t), testclock.New(t0), access.Options{})
	ctx := context.Background()
	e.reconcileRemove("prod-admin")
	// The grant reached the provider but answered with an error; the
	// clean-up removal fails too.
	e.prov.AddMember("g-admin", "alice@example.com")
	e.prov.FailNext("grant", 1, access.Permanent(errors.New("403 forbidden")))
	e.prov.FailNext("revoke", 1000, errors.New("provider down"))
	since := e.clock.Now()
	r := e.approve(t, "alice@example.com", "prod-admin", time.Hour)
	if r.State != access.StateFailed || !r.Cleanup || r.Attempts != 1 {
		t.Fatalf("setup: %s cleanup=%v attempts=%d, want failed with a clean-up pending after 1 attempt", r.State, r.Cleanup, r.Attempts)
	}
	before, revokes := e.notes.count(access.EvDrift), e.prov.count("revoke")

	d, err := e.svc.Reconcile(ctx)
	if err != nil || len(d) != 1 {
		t.Fatalf("Reconcile = %+v, %v; want one group", d, err)
	}
	got := d[0]
	t.Logf("drift: %s", got.String())
	if len(got.Unexpected) != 0 || len(got.Removed) != 0 {
		t.Errorf("clean-up pending reported as unexpected %v / removed %v", got.Unexpected, got.Removed)
	}
	if len(got.RemovalFailing) != 1 {
		t.Fatalf("RemovalFailing = %+v, want alice's request", got.RemovalFailing)
	}
	if f := got.RemovalFailing[0]; f.User != "alice@example.com" || f.RequestID != r.ID || !f.Cleanup ||
		!f.FailingSince.Equal(since) || f.Attempts != 1 {
		t.Errorf("RemovalFailing[0] = %+v, want alice's clean-up of %s since %s, 1 attempt", f, r.ID, since)
	}
	want := "clean-up failing: alice@example.com (request " + r.ID
	if s := got.String(); !strings.Contains(s, want) || strings.Contains(s, "without a grant") {
		t.Errorf("drift text %q, want %q and no 'without a grant'", s, want)
	}
	if !got.Empty() {
		t.Error("a failing clean-up alone counts as drift")
	}
	if n := e.notes.count(access.EvDrift) - before; n != 0 {
		t.Errorf("%d drift reports for a clean-up its own alert covers, want 0", n)
	}
	if n := e.prov.count("revoke") - revokes; n != 0 {
		t.Errorf("reconcile called Revoke %d times behind the clean-up's back", n)
	}
}

// Reconcile's provider calls have AttemptTimeout: a hung Grant gives up
// after it, not at the caller's (or no) deadline.
func TestReconcileCallsHaveAttemptTimeout(t *testing.T) {
	e := newHangEnv(t, boltStore(t), testclock.New(t0), access.Options{AttemptTimeout: 100 * time.Millisecond})
	r := e.approve(t, "alice@example.com", "prod-admin", time.Hour)
	if err := e.prov.Provider.Revoke(context.Background(), access.Grant{Group: "g-admin", User: "alice@example.com"}); err != nil {
		t.Fatal(err)
	}
	e.prov.setHang("grant", true)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	start := time.Now()
	d, err := e.svc.Reconcile(ctx)
	took := time.Since(start)
	if err != nil || len(d) != 1 {
		t.Fatalf("Reconcile = %+v, %v", d, err)
	}
	t.Logf("hung re-apply gave up after %s: %v", took.Round(time.Millisecond), d[0].Errors)
	if took > 2*time.Second {
		t.Errorf("hung re-apply took %s, want about AttemptTimeout (100ms)", took)
	}
	if len(d[0].Errors) != 1 || !strings.Contains(d[0].Errors[0], "re-apply "+r.ID) {
		t.Errorf("errors %q, want the re-apply of %s", d[0].Errors, r.ID)
	}
}

// A drift removal that the provider confirms after the caller's deadline
// is still audited: the bookkeeping has a fresh context.
func TestReconcileRemovalAuditedAfterDeadline(t *testing.T) {
	e := newHangEnv(t, boltStore(t), testclock.New(t0), access.Options{})
	e.reconcileRemove("prod-admin")
	e.prov.AddMember("g-admin", "mallory@example.com")
	let := e.prov.hold("revoke")
	defer let()
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	type result struct {
		d   []access.Drift
		err error
	}
	done := make(chan result, 1)
	go func() {
		d, err := e.svc.Reconcile(ctx)
		done <- result{d, err}
	}()
	e.waitStarted(t, "revoke")
	<-ctx.Done()
	let() // the provider answers, late
	res := <-done
	// The groups after g-admin find the caller's deadline used up: that
	// is the caller's to see; g-admin's removal must be whole.
	if len(res.d) != 1 || res.d[0].Group != "g-admin" {
		t.Fatalf("Reconcile = %+v, %v", res.d, res.err)
	}
	t.Logf("drift: %s (then: %v)", res.d[0].String(), res.err)
	if strings.Join(res.d[0].Removed, ",") != "mallory@example.com" || len(res.d[0].Errors) != 0 {
		t.Errorf("removed %v, errors %q; want mallory removed and no error", res.d[0].Removed, res.d[0].Errors)
	}
	evs, err := e.store.Audit(context.Background(), time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, ev := range evs {
		if ev.Action == access.ActDriftRemoved && ev.Subject == "mallory@example.com" {
			n++
		}
	}
	if n != 1 {
		t.Errorf("%d audit events for the removal of mallory, want 1", n)
	}
}
