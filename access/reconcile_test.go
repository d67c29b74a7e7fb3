package access_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/accessbot/accessbot/access"
)

// A member whose grant ended but whose removal keeps failing is not a
// "member without a grant": the drift says removal failing since T after N
// attempts, does not remove them behind the revocation's back, and raises
// no second alert (the revocation alert covers them).
func TestReconcileReportsFailingRemoval(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	pol := e.svc.Policy()
	role := pol.Roles["prod-admin"]
	role.Reconcile = "remove"
	pol.Roles["prod-admin"] = role
	r := e.submit(t, "alice@example.com", "prod-admin", time.Hour)
	if _, err := e.svc.Decide(ctx, r.ID, "bob@example.com", true, ""); err != nil {
		t.Fatal(err)
	}
	e.prov.FailNext("revoke", 1000, errors.New("provider down"))
	e.clock.Advance(time.Hour)
	since := e.clock.Now()
	e.process(t)
	for range 2 {
		cur, _ := e.store.Get(ctx, r.ID)
		due, _ := cur.DueAt()
		e.clock.Advance(due.Sub(e.clock.Now()))
		e.process(t)
	}
	cur, _ := e.store.Get(ctx, r.ID)
	if cur.State != access.StateRevoking || cur.Attempts != 3 {
		t.Fatalf("setup: %s after %d attempts, want revoking after 3", cur.State, cur.Attempts)
	}
	e.prov.FailNext("revoke", 0, nil)
	before := e.notes.count(access.EvDrift)

	d, err := e.svc.Reconcile(ctx)
	if err != nil || len(d) != 1 {
		t.Fatalf("Reconcile = %+v, %v; want one group", d, err)
	}
	got := d[0]
	if len(got.Unexpected) != 0 || len(got.Removed) != 0 {
		t.Errorf("failing removal reported as unexpected %v / removed %v", got.Unexpected, got.Removed)
	}
	if len(got.RemovalFailing) != 1 {
		t.Fatalf("RemovalFailing = %+v, want alice's request", got.RemovalFailing)
	}
	if f := got.RemovalFailing[0]; f.User != "alice@example.com" || f.RequestID != r.ID ||
		!f.FailingSince.Equal(since) || f.Attempts != 3 {
		t.Errorf("RemovalFailing[0] = %+v, want alice, %s, since %s, 3 attempts", f, r.ID, since)
	}
	want := "removal failing: alice@example.com (request " + r.ID + ") since " + since.UTC().Format(time.RFC3339) + ", 3 attempts"
	if s := got.String(); !strings.Contains(s, want) || strings.Contains(s, "without a grant") {
		t.Errorf("drift text %q, want it to contain %q and no 'without a grant'", s, want)
	}
	if !got.Empty() {
		t.Error("a failing removal alone counts as drift")
	}
	if n := e.notes.count(access.EvDrift) - before; n != 0 {
		t.Errorf("%d drift reports for a removal the revocation alert covers, want 0", n)
	}
	if !e.prov.IsMember("g-admin", "alice@example.com") {
		t.Error("reconcile removed the member behind the revocation's back")
	}

	// Real drift in the same group is reported, with the failing removal
	// said for what it is, not as a member without a grant.
	e.prov.AddMember("g-admin", "mallory@example.com")
	if d, err = e.svc.Reconcile(ctx); err != nil || len(d) != 1 {
		t.Fatalf("Reconcile = %+v, %v; want one group", d, err)
	}
	if got := d[0]; strings.Join(got.Unexpected, ",") != "mallory@example.com" || strings.Join(got.Removed, ",") != "mallory@example.com" ||
		len(got.RemovalFailing) != 1 {
		t.Errorf("drift %+v: want mallory unexpected and removed, alice's removal failing", got)
	}
	var reason string
	for _, ev := range e.notes.evs {
		if ev.Type == access.EvDrift {
			reason = ev.Reason
		}
	}
	if !strings.Contains(reason, "members without a grant: mallory@example.com (removed") || !strings.Contains(reason, want) {
		t.Errorf("drift report %q, want mallory without a grant and %q", reason, want)
	}
}

// A member removed by `reconcile: remove` has no request, yet the removal is
// in the audit log: actor accessbot, the member, the group and why.
func TestReconcileRemovalAudited(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	pol := e.svc.Policy()
	role := pol.Roles["db-admin"]
	role.Reconcile = "remove"
	pol.Roles["db-admin"] = role
	e.prov.AddMember("g-db", "mallory@example.com")
	if _, err := e.svc.Reconcile(ctx); err != nil {
		t.Fatal(err)
	}
	evs, err := e.svc.Audit(ctx, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	var got []access.AuditEvent
	for _, ev := range evs {
		if ev.Action == access.ActDriftRemoved {
			got = append(got, ev)
		}
	}
	if len(got) != 1 {
		t.Fatalf("%d drift removal events, want 1: %+v", len(got), evs)
	}
	ev := got[0]
	if ev.Actor != access.SystemActor || ev.Subject != "mallory@example.com" || ev.Role != "db-admin" ||
		!ev.At.Equal(e.clock.Now()) || ev.RequestID != "" ||
		!strings.Contains(ev.Detail, "group g-db") || !strings.Contains(ev.Detail, "without a grant") {
		t.Errorf("drift removal event %+v", ev)
	}
}
