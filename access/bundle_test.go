package access_test

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/accessbot/accessbot/access"
	"github.com/accessbot/accessbot/internal/testclock"
	"github.com/accessbot/accessbot/providers/dryrun"
	"github.com/accessbot/accessbot/store/bolt"
)

// bundlePolicy has roles with different approvers: prod-admin is dave's
// (one approval), db-admin erin's and frank's (two approvals), prod-read
// dave's or erin's; r1..r6 exist to reach the cap.
func bundlePolicy() *access.Policy {
	role := func(name, group string, max, def, pending time.Duration, approvals int, approvers ...string) access.Role {
		return access.Role{Name: name, Description: name, Provider: "dryrun", Group: group, MaxDuration: max,
			DefaultDuration: def, ApproverUsers: approvers, Approvals: approvals, PendingTTL: pending}
	}
	roles := map[string]access.Role{
		"prod-admin": role("prod-admin", "g-admin", 4*time.Hour, 2*time.Hour, time.Hour, 1, "dave@example.com"),
		"db-admin":   role("db-admin", "g-db", 2*time.Hour, time.Hour, 3*time.Hour, 2, "erin@example.com", "frank@example.com"),
		"prod-read":  role("prod-read", "g-read", 8*time.Hour, time.Hour, time.Hour, 1, "dave@example.com", "erin@example.com"),
	}
	for _, n := range []string{"r1", "r2", "r3", "r4", "r5", "r6"} {
		roles[n] = role(n, "g-"+n, time.Hour, time.Hour, time.Hour, 1, "dave@example.com")
	}
	return &access.Policy{Roles: roles}
}

func newBundleEnv(t *testing.T) *env {
	t.Helper()
	st, err := bolt.Open(filepath.Join(t.TempDir(), "test.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	c := testclock.New(t0)
	prov := dryrun.New(nil)
	notes := &recorder{}
	svc, err := access.NewService(access.Deps{Store: st, Policy: bundlePolicy(),
		Providers: map[string]access.Provisioner{"dryrun": prov}, Notifier: notes, Clock: c})
	if err != nil {
		t.Fatal(err)
	}
	return &env{svc: svc, store: st, prov: prov, clock: c, notes: notes}
}

func (e *env) submitRoles(t *testing.T, d time.Duration, roles ...string) []*access.Request {
	t.Helper()
	rs, err := e.svc.SubmitRoles(context.Background(), access.SubmitInput{Requester: "alice@example.com", Duration: d,
		Reason: "fixing checkout"}, roles)
	if err != nil {
		t.Fatalf("SubmitRoles(%v): %v", roles, err)
	}
	return rs
}

func (e *env) get(t *testing.T, id string) *access.Request {
	t.Helper()
	r, err := e.store.Get(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// One bad role refuses the whole request, naming the role, and stores
// nothing; duplicates are folded.
func TestBundleSubmitAllOrNothing(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		name  string
		roles []string
		d     time.Duration
		code  access.RefusalCode
		role  string
		err   error
	}{
		{"unknown role", []string{"prod-admin, nope"}, time.Hour, access.RefuseUnknownRole, "nope", access.ErrUnknownRole},
		{"over one role's max", []string{"prod-admin,db-admin"}, 3 * time.Hour, access.RefuseTooLong, "db-admin", access.ErrTooLong},
		{"over the cap", []string{"r1,r2,r3", "r4,r5,r6"}, time.Hour, access.RefuseTooManyRoles, "", access.ErrTooManyRoles},
		{"already pending", []string{"prod-read,db-admin"}, time.Hour, access.RefuseAlreadyPending, "prod-read", access.ErrDuplicate},
		{"no role", []string{" , ,"}, time.Hour, access.RefuseNoRole, "", access.ErrUnknownRole},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newBundleEnv(t)
			held := e.submit(t, "alice@example.com", "prod-read", time.Hour) // pending already
			_, err := e.svc.SubmitRoles(ctx, access.SubmitInput{Requester: "alice@example.com", Duration: tc.d, Reason: "fixing"}, tc.roles)
			var rf *access.Refusal
			if !errors.As(err, &rf) || rf.Code != tc.code || rf.Role != tc.role || !errors.Is(err, tc.err) {
				t.Fatalf("SubmitRoles(%v) = %v; want refusal %s naming %q", tc.roles, err, tc.code, tc.role)
			}
			if tc.code == access.RefuseTooManyRoles && (rf.Count != 6 || rf.Limit != 5) {
				t.Errorf("cap refusal counts %d of %d, want 6 of 5", rf.Count, rf.Limit)
			}
			all, _ := e.store.List(ctx, access.Filter{Requester: "alice@example.com"})
			if len(all) != 1 || all[0].ID != held.ID {
				t.Fatalf("stored after a refused request: %d requests", len(all))
			}
			if n := e.notes.count(access.EvSubmitted); n != 1 {
				t.Errorf("%d approval cards, want only the earlier request's", n)
			}
		})
	}

	e := newBundleEnv(t)
	rs := e.submitRoles(t, 0, "Prod-Admin, db-admin", "prod-admin")
	if len(rs) != 2 || rs[0].Role != "prod-admin" || rs[1].Role != "db-admin" {
		t.Fatalf("duplicates not folded: %v", rs)
	}
	if rs[0].Duration != time.Hour || rs[1].Duration != time.Hour {
		t.Errorf("no duration given: %v and %v, want the shortest default (1h) for both", rs[0].Duration, rs[1].Duration)
	}
}

// Each member keeps its own approvers and count; the bundle has one card.
func TestBundleSubmitPerRoleApprovers(t *testing.T) {
	e := newBundleEnv(t)
	rs := e.submitRoles(t, time.Hour, "prod-admin,db-admin")
	a, b := rs[0], rs[1]
	if a.Bundle == "" || a.Bundle != b.Bundle || a.Bundle != access.BundleID(a.ID) || !access.IsBundleID(a.Bundle) {
		t.Fatalf("bundles %q %q", a.Bundle, b.Bundle)
	}
	if strings.Join(a.Members, ",") != a.ID+","+b.ID || strings.Join(b.Members, ",") != a.ID+","+b.ID {
		t.Errorf("members %v %v", a.Members, b.Members)
	}
	if strings.Join(a.Approvers, ",") != "dave@example.com" || a.Needed != 1 ||
		strings.Join(b.Approvers, ",") != "erin@example.com,frank@example.com" || b.Needed != 2 {
		t.Errorf("approvers %v/%d and %v/%d", a.Approvers, a.Needed, b.Approvers, b.Needed)
	}
	if n := e.notes.count(access.EvSubmitted); n != 1 {
		t.Fatalf("%d approval cards for one bundle, want 1", n)
	}
	ev := e.notes.evs[0]
	if ev.Request.ID != a.ID || len(ev.Bundle) != 2 || ev.Bundle[1].ID != b.ID {
		t.Errorf("card event for %s with bundle %v", ev.Request.ID, ev.Bundle)
	}
	got, err := e.svc.Bundle(context.Background(), a.Bundle)
	if err != nil || len(got) != 2 || got[0].ID != a.ID {
		t.Fatalf("Bundle(%s) = %v, %v", a.Bundle, got, err)
	}
	if _, err := e.svc.Bundle(context.Background(), "b-nothere"); !errors.Is(err, access.ErrNotFound) {
		t.Errorf("unknown bundle: %v", err)
	}
	// The bundle counts as one request waiting for approval.
	pend, _ := e.store.List(context.Background(), access.Filter{Requester: "alice@example.com", States: []access.State{access.StatePending}})
	if len(pend) != 2 {
		t.Fatalf("%d pending", len(pend))
	}
}

// An Approve click approves only what the clicker may approve; each role
// is granted when its own approvals are met; all end at the same time,
// and the memberships are removed then.
func TestBundleApproveEligibleSharedEnd(t *testing.T) {
	e := newBundleEnv(t)
	ctx := context.Background()
	rs := e.submitRoles(t, 2*time.Hour, "prod-admin,db-admin")
	admin, db := rs[0].ID, rs[1].ID

	out, err := e.svc.DecideBundle(ctx, rs[0].Bundle, "dave@example.com", true, "")
	if err != nil {
		t.Fatal(err)
	}
	if len(out.Done) != 1 || out.Done[0].ID != admin || out.Done[0].State != access.StateActive {
		t.Fatalf("dave's click did %v", out.Done)
	}
	var rf *access.Refusal
	if len(out.Skipped) != 1 || out.Skipped[0].Request.ID != db || !errors.As(out.Skipped[0].Err, &rf) || rf.Code != access.RefuseNotApprover {
		t.Fatalf("dave's click skipped %+v", out.Skipped)
	}
	end := t0.Add(2 * time.Hour)
	if got := e.get(t, admin); !got.EndsAt.Equal(end) || !e.prov.IsMember("g-admin", "alice@example.com") {
		t.Fatalf("prod-admin ends %v", got.EndsAt)
	}
	if e.get(t, db).State != access.StatePending || e.prov.IsMember("g-db", "alice@example.com") {
		t.Fatal("db-admin granted by an approver of prod-admin")
	}
	// A second click by dave finds nothing left to approve.
	if _, err := e.svc.DecideBundle(ctx, rs[0].Bundle, "dave@example.com", true, ""); !errors.Is(err, access.ErrNotAllowed) {
		t.Fatalf("dave again: %v", err)
	}

	e.clock.Advance(30 * time.Minute)
	out, err = e.svc.DecideBundle(ctx, rs[0].Bundle, "erin@example.com", true, "")
	if err != nil || len(out.Done) != 1 || out.Done[0].State != access.StatePending || out.Done[0].Approvals() != 1 {
		t.Fatalf("erin: %v %+v", err, out)
	}
	out, err = e.svc.DecideBundle(ctx, rs[0].Bundle, "frank@example.com", true, "")
	if err != nil || len(out.Done) != 1 || out.Done[0].State != access.StateActive {
		t.Fatalf("frank: %v %+v", err, out)
	}
	if got := e.get(t, db); !got.EndsAt.Equal(end) || !got.GrantedAt.Equal(t0.Add(30*time.Minute)) {
		t.Fatalf("db-admin granted %v ends %v; want the shared end %v", got.GrantedAt, got.EndsAt, end)
	}

	e.clock.Set(end)
	e.process(t)
	for _, id := range []string{admin, db} {
		if got := e.get(t, id); got.State != access.StateEnded || got.EndReason != access.EndExpired {
			t.Errorf("%s at the shared end: %s %s", id, got.State, got.EndReason)
		}
	}
	if e.prov.IsMember("g-admin", "alice@example.com") || e.prov.IsMember("g-db", "alice@example.com") {
		t.Error("memberships left after the shared end")
	}
}

// A role approved after the other roles ended is not granted.
func TestBundleLateMemberNotGranted(t *testing.T) {
	e := newBundleEnv(t)
	ctx := context.Background()
	rs := e.submitRoles(t, time.Hour, "prod-admin,db-admin")
	if _, err := e.svc.DecideBundle(ctx, rs[0].Bundle, "dave@example.com", true, ""); err != nil {
		t.Fatal(err)
	}
	e.clock.Advance(90 * time.Minute) // db-admin is pending for 3h; prod-admin ended at 1h
	e.process(t)
	if _, err := e.svc.Decide(ctx, rs[1].ID, "erin@example.com", true, ""); err != nil {
		t.Fatal(err)
	}
	r, err := e.svc.Decide(ctx, rs[1].ID, "frank@example.com", true, "")
	if err != nil {
		t.Fatal(err)
	}
	if r.State != access.StateFailed || !strings.Contains(r.Failure, "ended") || e.prov.IsMember("g-db", "alice@example.com") {
		t.Fatalf("late member: %s %q member=%v", r.State, r.Failure, e.prov.IsMember("g-db", "alice@example.com"))
	}
}

// Deny by an approver of one role denies every pending role; someone who
// may decide none of them changes nothing.
func TestBundleDenyDeniesAll(t *testing.T) {
	e := newBundleEnv(t)
	ctx := context.Background()
	rs := e.submitRoles(t, time.Hour, "prod-admin,db-admin,prod-read")
	if _, err := e.svc.Decide(ctx, rs[2].ID, "erin@example.com", true, ""); err != nil { // prod-read active
		t.Fatal(err)
	}
	if _, err := e.svc.DecideBundle(ctx, rs[0].Bundle, "mallory@example.com", false, "no"); !errors.Is(err, access.ErrNotAllowed) {
		t.Fatalf("deny by a stranger: %v", err)
	}
	if e.get(t, rs[0].ID).State != access.StatePending {
		t.Fatal("a stranger's deny changed the request")
	}
	out, err := e.svc.DecideBundle(ctx, rs[0].Bundle, "frank@example.com", false, "not now")
	if err != nil || len(out.Done) != 2 {
		t.Fatalf("frank's deny: %v %+v", err, out)
	}
	for i, want := range []access.State{access.StateDenied, access.StateDenied, access.StateActive} {
		if got := e.get(t, rs[i].ID); got.State != want {
			t.Errorf("%s is %s, want %s", got.Role, got.State, want)
		}
	}
	if acts := e.audit(t, rs[0].ID); acts[len(acts)-1] != access.ActDenied {
		t.Errorf("prod-admin audit %v", acts)
	}
}

// Revoke and extend work on one role (its request id) and on the whole
// request (the bundle id).
func TestBundleRevokeAndExtend(t *testing.T) {
	e := newBundleEnv(t)
	ctx := context.Background()
	rs := e.submitRoles(t, time.Hour, "prod-admin,prod-read,db-admin")
	b := rs[0].Bundle
	for _, who := range []string{"dave@example.com", "erin@example.com", "frank@example.com"} {
		if _, err := e.svc.DecideBundle(ctx, b, who, true, ""); err != nil {
			t.Fatalf("%s: %v", who, err)
		}
	}
	for _, r := range rs {
		if got := e.get(t, r.ID); got.State != access.StateActive || !got.EndsAt.Equal(t0.Add(time.Hour)) {
			t.Fatalf("%s %s until %v", got.Role, got.State, got.EndsAt)
		}
	}

	// Extend the whole request: one extension per role, one card.
	cards := e.notes.count(access.EvSubmitted)
	if _, err := e.svc.ExtendBundle(ctx, b, "alice@example.com", 3*time.Hour, "more"); !errors.Is(err, access.ErrTooLong) {
		t.Fatalf("extension past db-admin's max: %v", err)
	}
	exts, err := e.svc.ExtendBundle(ctx, b, "alice@example.com", 30*time.Minute, "still fixing")
	if err != nil || len(exts) != 3 || exts[0].Kind != access.KindExtension || exts[0].Bundle == b || exts[0].Bundle != exts[2].Bundle {
		t.Fatalf("ExtendBundle: %v %+v", err, exts)
	}
	if n := e.notes.count(access.EvSubmitted); n != cards+1 {
		t.Errorf("%d new cards for the extension, want 1", n-cards)
	}
	for _, who := range []string{"dave@example.com", "erin@example.com", "frank@example.com"} {
		if _, err := e.svc.DecideBundle(ctx, exts[0].Bundle, who, true, ""); err != nil {
			t.Fatalf("extension, %s: %v", who, err)
		}
	}
	for _, r := range rs {
		if got := e.get(t, r.ID); !got.EndsAt.Equal(t0.Add(90 * time.Minute)) {
			t.Errorf("%s ends %v after the extension", got.Role, got.EndsAt)
		}
	}
	// Extend one role by its own id.
	one, err := e.svc.Extend(ctx, rs[1].ID, "alice@example.com", 30*time.Minute, "read longer")
	if err != nil || one.Bundle != "" {
		t.Fatalf("Extend one: %v %+v", err, one)
	}

	// Revoke one role, then the rest.
	if _, err := e.svc.Revoke(ctx, rs[0].ID, "alice@example.com", ""); err != nil {
		t.Fatal(err)
	}
	if e.prov.IsMember("g-admin", "alice@example.com") || !e.prov.IsMember("g-read", "alice@example.com") {
		t.Fatal("revoking one role touched another")
	}
	if _, err := e.svc.RevokeBundle(ctx, b, "mallory@example.com", ""); !errors.Is(err, access.ErrNotAllowed) {
		t.Fatalf("revoke by a stranger: %v", err)
	}
	out, err := e.svc.RevokeBundle(ctx, b, "alice@example.com", "done")
	if err != nil || len(out.Done) != 2 {
		t.Fatalf("RevokeBundle: %v %+v", err, out)
	}
	for _, r := range rs {
		if got := e.get(t, r.ID); got.State != access.StateEnded {
			t.Errorf("%s is %s after revoking all", got.Role, got.State)
		}
	}
	if e.prov.IsMember("g-read", "alice@example.com") || e.prov.IsMember("g-db", "alice@example.com") {
		t.Error("memberships left after revoking all")
	}
	if _, err := e.svc.RevokeBundle(ctx, b, "alice@example.com", ""); !errors.Is(err, access.ErrNotActive) {
		t.Errorf("revoking an ended bundle again: %v", err)
	}
	// Someone not involved learns nothing, not even that it ended.
	var rf *access.Refusal
	if _, err := e.svc.RevokeBundle(ctx, b, "mallory@example.com", ""); !errors.As(err, &rf) || rf.Code != access.RefuseNoRequest {
		t.Errorf("a stranger revoking an ended bundle: %v", err)
	}
	if _, err := e.svc.ExtendBundle(ctx, b, "mallory@example.com", time.Hour, "x"); !errors.As(err, &rf) || rf.Code != access.RefuseNoRequest {
		t.Errorf("a stranger extending an ended bundle: %v", err)
	}
}

// Cancelling the bundle withdraws every pending role; a bundle counts as
// one request against the pending limit.
func TestBundleCancelAndPendingLimit(t *testing.T) {
	e := newBundleEnv(t)
	ctx := context.Background()
	rs := e.submitRoles(t, time.Hour, "r1,r2,r3,r4,r5")
	for _, role := range []string{"prod-admin", "prod-read", "db-admin"} {
		e.submit(t, "alice@example.com", role, time.Hour) // 4 waiting: the bundle counts once
	}
	if _, err := e.svc.CancelBundle(ctx, rs[0].Bundle, "dave@example.com"); !errors.Is(err, access.ErrNotAllowed) {
		t.Fatalf("cancel by an approver: %v", err)
	}
	out, err := e.svc.CancelBundle(ctx, rs[0].Bundle, "alice@example.com")
	if err != nil || len(out.Done) != 5 {
		t.Fatalf("CancelBundle: %v %+v", err, out)
	}
	for _, r := range rs {
		if got := e.get(t, r.ID); got.State != access.StateCancelled {
			t.Errorf("%s is %s", got.Role, got.State)
		}
	}
}

// steppingClock moves on by a millisecond at every reading, so that two
// grants recorded at once read different times.
type steppingClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *steppingClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(time.Millisecond)
	return c.now
}

// meetingProvisioner holds every Grant until n of them are in flight.
type meetingProvisioner struct {
	*dryrun.Provider
	n    int
	mu   sync.Mutex
	in   int
	meet chan struct{}
}

func (p *meetingProvisioner) Grant(ctx context.Context, g access.Grant) error {
	p.mu.Lock()
	p.in++
	if p.in == p.n {
		close(p.meet)
	}
	p.mu.Unlock()
	select {
	case <-p.meet:
	case <-ctx.Done():
		return ctx.Err()
	}
	return p.Provider.Grant(ctx, g)
}

// Two roles granted at the same moment still share one end time.
func TestBundleConcurrentGrantsShareEnd(t *testing.T) {
	st, err := bolt.Open(filepath.Join(t.TempDir(), "test.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	prov := &meetingProvisioner{Provider: dryrun.New(nil), n: 2, meet: make(chan struct{})}
	svc, err := access.NewService(access.Deps{Store: st, Policy: bundlePolicy(),
		Providers: map[string]access.Provisioner{"dryrun": prov}, Clock: &steppingClock{now: t0}})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	rs, err := svc.SubmitRoles(ctx, access.SubmitInput{Requester: "alice@example.com", Duration: time.Hour, Reason: "x"}, []string{"prod-admin", "prod-read"})
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for _, r := range rs {
		wg.Go(func() {
			if _, err := svc.Decide(ctx, r.ID, "dave@example.com", true, ""); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	a, _ := st.Get(ctx, rs[0].ID)
	b, _ := st.Get(ctx, rs[1].ID)
	if a.State != access.StateActive || b.State != access.StateActive || !a.EndsAt.Equal(b.EndsAt) || a.GrantedAt.Equal(b.GrantedAt) {
		t.Fatalf("granted at %v and %v, ending %v and %v; want one end time", a.GrantedAt, b.GrantedAt, a.EndsAt, b.EndsAt)
	}
}
