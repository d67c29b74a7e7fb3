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

// In a request of several roles, each role whose auto_approve rule the
// requester meets is approved by accessbot and granted at once; the
// others wait for their approvers, and all end together.
func TestBundleAutoApprovesEachRoleItsRuleMeets(t *testing.T) {
	e, _ := gateEnv(t)
	ctx := context.Background()
	rs, err := e.svc.SubmitRoles(ctx, access.SubmitInput{Requester: "bob@example.com", Duration: time.Hour, Reason: "fixing checkout"},
		[]string{"auto", "prod-admin"})
	if err != nil {
		t.Fatal(err)
	}
	byRole := map[string]*access.Request{}
	for _, r := range rs {
		byRole[r.Role] = r
	}
	auto, other := byRole["auto"], byRole["prod-admin"]
	if auto == nil || other == nil || auto.Bundle == "" || auto.Bundle != other.Bundle {
		t.Fatalf("bundle %+v", rs)
	}
	if auto.State != access.StateActive || auto.AutoApproved == "" || !auto.EndsAt.Equal(t0.Add(time.Hour)) {
		t.Fatalf("auto role: %s by %q until %v", auto.State, auto.AutoApproved, auto.EndsAt)
	}
	if other.State != access.StatePending || other.AutoApproved != "" {
		t.Fatalf("other role: %s by %q", other.State, other.AutoApproved)
	}
	if m, _ := e.prov.Members(ctx, auto.Group); len(m) != 1 || m[0] != "bob@example.com" {
		t.Fatalf("members of the auto role's group: %v", m)
	}
	if m, _ := e.prov.Members(ctx, other.Group); len(m) != 0 {
		t.Fatalf("the other role was granted without approval: %v", m)
	}
	evs, _ := e.store.Audit(ctx, time.Time{})
	approvals := 0
	for _, ev := range evs {
		if ev.Action == access.ActApproved {
			approvals++
			if ev.RequestID != auto.ID || ev.Actor != access.SystemActor || ev.Detail != "auto-approved: "+auto.AutoApproved {
				t.Fatalf("approval event %+v", ev)
			}
		}
	}
	if approvals != 1 {
		t.Fatalf("%d approval events, want the auto role's one", approvals)
	}
	// dave approves the other role: it ends with the first.
	e.clock.Advance(10 * time.Minute)
	if _, err := e.svc.Decide(ctx, other.ID, "dave@example.com", true, ""); err != nil {
		t.Fatal(err)
	}
	got, _ := e.store.Get(ctx, other.ID)
	if got.State != access.StateActive || !got.EndsAt.Equal(auto.EndsAt) {
		t.Fatalf("other role after dave: %s until %v, want until %v", got.State, got.EndsAt, auto.EndsAt)
	}
}
