package access_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/accessbot/accessbot/access"
)

// Several roles in one request pass the request gate role by role: one
// role the requester may not ask for, or whose reason pattern the reason
// does not match, refuses the whole request and changes nothing.
func TestBundleHonoursTheGate(t *testing.T) {
	e, _ := gateEnv(t)
	ctx := context.Background()
	// carol is neither named, in the group, nor on call now: "gated" refuses her.
	_, err := e.svc.SubmitRoles(ctx, access.SubmitInput{Requester: "carol@example.com", Duration: time.Hour, Reason: "INC-1 checkout"},
		[]string{"prod-admin", "gated"})
	if rf := refusalOf(t, err, access.ErrNotAllowed); rf.Code != access.RefuseNotRequester || rf.Role != "gated" {
		t.Fatalf("refusal %+v", rf)
	}
	_, err = e.svc.SubmitRoles(ctx, access.SubmitInput{Requester: "alice@example.com", Duration: time.Hour, Reason: "fixing checkout"},
		[]string{"prod-admin", "incident"})
	if rf := refusalOf(t, err, access.ErrReasonPattern); rf.Code != access.RefuseReasonPattern || rf.Role != "incident" {
		t.Fatalf("refusal %+v", rf)
	}
	e.untouched(t)
}

// An auto-approved request with a start ahead is approved at once and
// granted at its start, not before.
func TestAutoApprovedScheduled(t *testing.T) {
	e, _ := gateEnv(t)
	ctx := context.Background()
	start := t0.Add(3 * time.Hour) // still in office hours; the rule is checked at submit
	r, err := e.svc.Submit(ctx, access.SubmitInput{Requester: "bob@example.com", Role: "auto", Duration: time.Hour,
		Reason: "fixing checkout", StartsAt: start})
	if err != nil {
		t.Fatal(err)
	}
	if r.State != access.StateApproved || !r.Scheduled() || r.AutoApproved == "" || len(e.prov.Changes()) != 0 {
		t.Fatalf("submitted: %s scheduled=%v auto=%q, %d provider calls", r.State, r.Scheduled(), r.AutoApproved, len(e.prov.Changes()))
	}
	if at, ok := r.DueAt(); !ok || at.After(start) {
		t.Fatalf("due at %v, %v; want by the start %v", at, ok, start)
	}
	e.clock.Set(start.Add(-time.Second))
	if err := e.svc.Process(ctx, r.ID); err != nil && !errors.Is(err, context.Canceled) {
		t.Fatal(err)
	}
	if got, _ := e.prov.Members(ctx, r.Group); len(got) != 0 {
		t.Fatalf("granted before the start: %v", got)
	}
	e.clock.Set(start)
	if err := e.svc.Process(ctx, r.ID); err != nil {
		t.Fatal(err)
	}
	got, err := e.store.Get(ctx, r.ID)
	if err != nil {
		t.Fatal(err)
	}
	if m, _ := e.prov.Members(ctx, r.Group); got.State != access.StateActive || len(m) != 1 || !got.EndsAt.Equal(start.Add(time.Hour)) {
		t.Fatalf("at the start: %s until %v, members %v", got.State, got.EndsAt, m)
	}
	if n := e.notes.count(access.EvScheduled); n != 1 {
		t.Fatalf("requester told of the schedule %d times", n)
	}
}
