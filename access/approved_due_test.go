package access_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/accessbot/accessbot/access"
	"github.com/accessbot/accessbot/internal/testclock"
)

// An approved request waiting for its grant is due again once a live
// worker's lease would have been renewed or given back (LeaseTTL, 10 s by
// default), so the expiry engine brings it back within seconds when its
// worker died between the decision and the grant; not after 30 s.
func TestApprovedRequestDueAfterLeaseTTL(t *testing.T) {
	r := &access.Request{ID: "r-approved2", State: access.StateApproved, UpdatedAt: t0}
	due, ok := r.DueAt()
	if !ok {
		t.Fatal("approved request has no due time")
	}
	if want := t0.Add(access.DefaultLeaseTTL); !due.Equal(want) {
		t.Fatalf("approved request due %v after its decision, want %v (the lease TTL)", due.Sub(t0), access.DefaultLeaseTTL)
	}
	// A scheduled retry keeps its own time.
	r.RetryAt = t0.Add(3 * time.Second)
	if due, _ := r.DueAt(); !due.Equal(r.RetryAt) {
		t.Fatalf("approved request with a retry due at %v, want its RetryAt", due)
	}
}

// A replica killed in the middle of the grant that follows an approval
// leaves its lease behind and the request approved. The request is in the
// due index once the lease has lapsed, and the other replica grants it
// then: about 10 s after the click, within the 15 s the grant may take.
func TestApprovedGrantTakenOverAfterLeaseTTL(t *testing.T) {
	c := testclock.New(t0)
	st := testClockClaims(t, c)
	prov := newHangProvider()
	a := newReplica(t, "a", st, prov, c, access.Options{})
	b := newReplica(t, "b", st, prov, c, access.Options{})
	ctx := context.Background()
	r, err := a.svc.Submit(ctx, access.SubmitInput{Requester: "alice@example.com", Role: "prod-admin", Duration: time.Hour, Reason: "x"})
	if err != nil {
		t.Fatal(err)
	}

	prov.setHang("grant", true)
	actx, kill := context.WithCancel(ctx)
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		_, _ = a.svc.Decide(actx, r.ID, "bob@example.com", true, "")
	}()
	<-prov.started
	a.store.kill()
	kill()
	select {
	case <-stopped:
	case <-time.After(10 * time.Second):
		t.Fatal("the killed replica's work did not stop")
	}
	prov.setHang("grant", false)
	if got := getReq(t, st, r.ID); got.State != access.StateApproved {
		t.Fatalf("after the kill: %s, want approved", got.State)
	}

	c.Advance(access.DefaultLeaseTTL + time.Millisecond)
	due, err := st.Due(ctx, c.Now(), 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(due) != 1 || due[0] != r.ID {
		t.Fatalf("%v after the click the due index holds %v; want the approved request %s", access.DefaultLeaseTTL, due, r.ID)
	}
	if err := b.svc.Process(ctx, r.ID); err != nil {
		t.Fatal(err)
	}
	got := getReq(t, st, r.ID)
	if got.State != access.StateActive || !prov.IsMember("g-admin", "alice@example.com") {
		t.Fatalf("%v after the click: %s, member %v; want active and granted", access.DefaultLeaseTTL, got.State, prov.IsMember("g-admin", "alice@example.com"))
	}
	if took := got.GrantedAt.Sub(t0); took > 15*time.Second {
		t.Fatalf("granted %v after the click, want within 15 s", took)
	}
	if !strings.Contains(b.logs.String(), "taking over work its last worker left unfinished") {
		t.Fatalf("takeover not logged:\n%s", b.logs.String())
	}
}
