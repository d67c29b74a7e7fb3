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

// recorder is a Notifier that keeps the events it was told about.
type recorder struct {
	mu  sync.Mutex
	evs []access.Event
}

func (r *recorder) Notify(_ context.Context, ev access.Event) ([]access.MessageRef, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.evs = append(r.evs, ev)
	if ev.Type == access.EvSubmitted {
		return []access.MessageRef{{Platform: "test", Purpose: "approval", Channel: "approvals", ID: "m1"}}, nil
	}
	return nil, nil
}

func (r *recorder) types() []access.EventType {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []access.EventType
	for _, e := range r.evs {
		out = append(out, e.Type)
	}
	return out
}

func (r *recorder) count(t access.EventType) int {
	n := 0
	for _, x := range r.types() {
		if x == t {
			n++
		}
	}
	return n
}

// Monday 16 November 2026 09:00 Berlin is a handoff: bob holds the week
// from then, carol the week after.
var t0 = time.Date(2026, 11, 18, 10, 0, 0, 0, time.UTC)

type env struct {
	svc   *access.Service
	store access.Store
	prov  *dryrun.Provider
	clock *testclock.Clock
	notes *recorder
}

func policy() *access.Policy {
	roles := map[string]access.Role{
		"prod-admin": {Name: "prod-admin", Description: "admin", Provider: "dryrun", Group: "g-admin",
			MaxDuration: 4 * time.Hour, DefaultDuration: time.Hour, ApproverRotations: []string{"platform"},
			ApproverUsers: []string{"dave@example.com"}, Approvals: 1, BreakGlass: true, PendingTTL: 30 * time.Minute},
		"db-admin": {Name: "db-admin", Description: "db", Provider: "dryrun", Group: "g-db",
			MaxDuration: 2 * time.Hour, DefaultDuration: time.Hour, ApproverRotations: []string{"platform"},
			ApproverUsers: []string{"dave@example.com"}, Approvals: 2, PendingTTL: time.Hour},
		"self-ok": {Name: "self-ok", Description: "self", Provider: "dryrun", Group: "g-self",
			MaxDuration: time.Hour, DefaultDuration: time.Hour, ApproverUsers: []string{"alice@example.com"},
			Approvals: 1, SelfApprove: true, PendingTTL: time.Hour},
		"admin-alias": {Name: "admin-alias", Description: "same group as prod-admin", Provider: "dryrun", Group: "g-admin",
			MaxDuration: 4 * time.Hour, DefaultDuration: time.Hour, ApproverUsers: []string{"dave@example.com"},
			Approvals: 1, PendingTTL: time.Hour},
	}
	return &access.Policy{Roles: roles,
		Rotations:     map[string]access.Rotation{"platform": {Name: "platform", Source: "static"}},
		BreakGlass:    []string{"erin@example.com"},
		Acknowledgers: []string{"dave@example.com"},
		Admins:        []string{"frank@example.com"}}
}

func newEnv(t *testing.T) *env {
	t.Helper()
	st, err := bolt.Open(filepath.Join(t.TempDir(), "test.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	rot, errs := static.New(static.Config{Name: "platform", Timezone: "Europe/Berlin", Handoff: "monday 09:00",
		Start: "2026-11-16", Members: []string{"bob@example.com", "carol@example.com"}})
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	c := testclock.New(t0)
	prov := dryrun.New(nil)
	notes := &recorder{}
	svc, err := access.NewService(access.Deps{Store: st, Policy: policy(),
		Providers: map[string]access.Provisioner{"dryrun": prov},
		OnCall:    access.OnCallRouter{"platform": rot}, Notifier: notes, Clock: c})
	if err != nil {
		t.Fatal(err)
	}
	return &env{svc: svc, store: st, prov: prov, clock: c, notes: notes}
}

func (e *env) submit(t *testing.T, who, role string, d time.Duration) *access.Request {
	t.Helper()
	r, err := e.svc.Submit(context.Background(), access.SubmitInput{Requester: who, Role: role, Duration: d, Reason: "fixing checkout"})
	if err != nil {
		t.Fatalf("submit: %v", err)
	}
	return r
}

func (e *env) audit(t *testing.T, id string) []access.Action {
	t.Helper()
	evs, err := e.store.Audit(context.Background(), time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	var out []access.Action
	for _, ev := range evs {
		if ev.RequestID == id {
			out = append(out, ev.Action)
		}
	}
	return out
}

func (e *env) process(t *testing.T) {
	t.Helper()
	ids, err := e.store.Due(context.Background(), e.clock.Now(), 1000)
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range ids {
		if err := e.svc.Process(context.Background(), id); err != nil {
			t.Fatalf("process %s: %v", id, err)
		}
	}
}

func TestSubmitValidation(t *testing.T) {
	e := newEnv(t)
	long := strings.Repeat("x", access.MaxReasonLen+1)
	cases := []struct {
		name string
		in   access.SubmitInput
		want error
		// what the refusal says (its wording: handlers.TestRefusalWording)
		says access.Refusal
	}{
		{"unknown role", access.SubmitInput{Requester: "alice@example.com", Role: "prod-god", Duration: time.Hour, Reason: "x"}, access.ErrUnknownRole,
			access.Refusal{Code: access.RefuseUnknownRole, Role: "prod-god"}},
		{"too long", access.SubmitInput{Requester: "alice@example.com", Role: "prod-admin", Duration: 5 * time.Hour, Reason: "x"}, access.ErrTooLong,
			access.Refusal{Code: access.RefuseTooLong, Role: "prod-admin", Duration: 5 * time.Hour, Max: 4 * time.Hour}},
		{"too short", access.SubmitInput{Requester: "alice@example.com", Role: "prod-admin", Duration: time.Second, Reason: "x"}, access.ErrBadDuration,
			access.Refusal{Code: access.RefuseTooShort, Duration: time.Second, Max: time.Minute}},
		{"no reason", access.SubmitInput{Requester: "alice@example.com", Role: "prod-admin", Duration: time.Hour, Reason: "  "}, access.ErrNoReason,
			access.Refusal{Code: access.RefuseNoReason, Role: "prod-admin", Duration: time.Hour}},
		{"reason too long", access.SubmitInput{Requester: "alice@example.com", Role: "prod-admin", Duration: time.Hour, Reason: long}, access.ErrReasonTooLong,
			access.Refusal{Code: access.RefuseReasonTooLong, Count: 1001, Limit: access.MaxReasonLen}},
		{"no identity", access.SubmitInput{Requester: "", Role: "prod-admin", Duration: time.Hour, Reason: "x"}, access.ErrNoIdentity,
			access.Refusal{Code: access.RefuseNoIdentity}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := e.svc.Submit(context.Background(), c.in)
			var rf *access.Refusal
			if !errors.Is(err, c.want) || !errors.As(err, &rf) {
				t.Fatalf("got %v, want a refusal wrapping %v", err, c.want)
			}
			got := *rf
			got.Err = nil
			if !reflect.DeepEqual(got, c.says) {
				t.Fatalf("refusal %+v, want %+v", got, c.says)
			}
		})
	}
	all, _ := e.store.List(context.Background(), access.Filter{})
	if len(all) != 0 || len(e.notes.types()) != 0 {
		t.Fatalf("bad input changed something: %d requests, events %v", len(all), e.notes.types())
	}
}

func TestLifecycleApproveExpire(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	r := e.submit(t, "Alice@Example.com", "prod-admin", 30*time.Minute)
	if r.State != access.StatePending || r.Requester != "alice@example.com" {
		t.Fatalf("submitted: %+v", r)
	}
	if got := strings.Join(r.Approvers, ","); got != "dave@example.com,bob@example.com" {
		t.Fatalf("approvers = %s", got)
	}
	if len(r.Messages) != 1 {
		t.Fatalf("approval message ref not kept: %+v", r.Messages)
	}
	// Self-approval and a non-approver are refused and change nothing.
	if _, err := e.svc.Decide(ctx, r.ID, "alice@example.com", true, ""); !errors.Is(err, access.ErrSelfApproval) {
		t.Fatalf("self-approval: %v", err)
	}
	if _, err := e.svc.Decide(ctx, r.ID, "carol@example.com", true, ""); !errors.Is(err, access.ErrNotAllowed) {
		t.Fatalf("non-approver: %v", err)
	}
	got, err := e.svc.Decide(ctx, r.ID, "bob@example.com", true, "")
	if err != nil {
		t.Fatal(err)
	}
	if got.State != access.StateActive || !got.EndsAt.Equal(t0.Add(30*time.Minute)) {
		t.Fatalf("after approval: state %s ends %v", got.State, got.EndsAt)
	}
	if !e.prov.IsMember("g-admin", "alice@example.com") {
		t.Fatal("alice not added")
	}
	// A second click is told what happened.
	_, err = e.svc.Decide(ctx, r.ID, "dave@example.com", true, "")
	var se *access.StateError
	if !errors.As(err, &se) || !errors.Is(err, access.ErrAlreadyDecided) || se.State != access.StateActive {
		t.Fatalf("stale click: %v", err)
	}
	// Not yet due: nothing happens.
	e.clock.Advance(29 * time.Minute)
	e.process(t)
	if !e.prov.IsMember("g-admin", "alice@example.com") {
		t.Fatal("revoked early")
	}
	e.clock.Advance(time.Minute)
	e.process(t)
	if e.prov.IsMember("g-admin", "alice@example.com") {
		t.Fatal("not revoked at expiry")
	}
	end, _ := e.store.Get(ctx, r.ID)
	if end.State != access.StateEnded || end.EndReason != access.EndExpired {
		t.Fatalf("ended: %s %s", end.State, end.EndReason)
	}
	want := []access.Action{access.ActSubmitted, access.ActApproved, access.ActGranted, access.ActRevokeStart, access.ActRevoked}
	if got := e.audit(t, r.ID); !equalActions(got, want) {
		t.Fatalf("audit %v, want %v", got, want)
	}
	wantEv := []access.EventType{access.EvSubmitted, access.EvApproval, access.EvActive, access.EvEnded}
	if got := e.notes.types(); !equalEvents(got, wantEv) {
		t.Fatalf("events %v, want %v", got, wantEv)
	}
	// Ended requests cannot be decided.
	if _, err := e.svc.Decide(ctx, r.ID, "bob@example.com", false, ""); !errors.Is(err, access.ErrAlreadyDecided) {
		t.Fatalf("decision on ended request: %v", err)
	}
}

func equalActions(a, b []access.Action) bool {
	return strings.Join(toStrings(a), ",") == strings.Join(toStrings(b), ",")
}

func equalEvents(a, b []access.EventType) bool {
	return strings.Join(toStrings(a), ",") == strings.Join(toStrings(b), ",")
}

func toStrings[T ~string](l []T) []string {
	out := make([]string, len(l))
	for i, v := range l {
		out[i] = string(v)
	}
	return out
}

func TestNofMAndDenyWins(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	r := e.submit(t, "alice@example.com", "db-admin", time.Hour)
	got, err := e.svc.Decide(ctx, r.ID, "bob@example.com", true, "")
	if err != nil || got.State != access.StatePending || got.Approvals() != 1 {
		t.Fatalf("first approval: %v %+v", err, got)
	}
	if _, err := e.svc.Decide(ctx, r.ID, "bob@example.com", true, ""); !errors.Is(err, access.ErrAlreadyDecided) {
		t.Fatalf("same approver twice: %v", err)
	}
	got, err = e.svc.Decide(ctx, r.ID, "dave@example.com", true, "")
	if err != nil || got.State != access.StateActive {
		t.Fatalf("second approval: %v %s", err, got.State)
	}

	r2 := e.submit(t, "carol@example.com", "db-admin", time.Hour)
	// carol is not on call this week: approvers are dave and bob.
	if _, err := e.svc.Decide(ctx, r2.ID, "bob@example.com", true, ""); err != nil {
		t.Fatal(err)
	}
	got, err = e.svc.Decide(ctx, r2.ID, "dave@example.com", false, "change freeze")
	if err != nil || got.State != access.StateDenied {
		t.Fatalf("deny after an approval: %v %s", err, got.State)
	}
	if e.prov.IsMember("g-db", "carol@example.com") {
		t.Fatal("denied request granted")
	}
}

func TestTimeoutAndNoDecisionAfter(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	r := e.submit(t, "alice@example.com", "prod-admin", time.Hour)
	e.clock.Advance(30 * time.Minute)
	// Past the TTL but before the sweep ran: still refused.
	if _, err := e.svc.Decide(ctx, r.ID, "bob@example.com", true, ""); !errors.Is(err, access.ErrTimedOut) {
		t.Fatalf("decision after TTL: %v", err)
	}
	e.process(t)
	got, _ := e.store.Get(ctx, r.ID)
	if got.State != access.StateTimedOut {
		t.Fatalf("state %s", got.State)
	}
	if _, err := e.svc.Decide(ctx, r.ID, "bob@example.com", true, ""); !errors.Is(err, access.ErrTimedOut) {
		t.Fatalf("decision on timed-out request: %v", err)
	}
	if e.notes.count(access.EvTimedOut) != 1 || e.prov.Count("grant", "alice@example.com") != 0 {
		t.Fatal("timeout not announced once, or something was granted")
	}
}

func TestApproverEligibleAtDecisionTime(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	// Monday 08:50 Berlin: bob is on call; the handoff to carol is at 09:00 Berlin (08:00 UTC).
	e.clock.Advance(time.Date(2026, 11, 23, 7, 50, 0, 0, time.UTC).Sub(t0))
	r, err := e.svc.Submit(ctx, access.SubmitInput{Requester: "alice@example.com", Role: "db-admin", Duration: time.Hour, Reason: "x"})
	if err != nil {
		t.Fatal(err)
	}
	e.clock.Advance(15 * time.Minute) // 09:05 Berlin: carol's shift
	if _, err := e.svc.Decide(ctx, r.ID, "bob@example.com", true, ""); !errors.Is(err, access.ErrNotAllowed) {
		t.Fatalf("old on-call approved: %v", err)
	}
	if _, err := e.svc.Decide(ctx, r.ID, "carol@example.com", true, ""); err != nil {
		t.Fatalf("new on-call refused: %v", err)
	}
}

func TestSelfApproveAllowedByRole(t *testing.T) {
	e := newEnv(t)
	r := e.submit(t, "alice@example.com", "self-ok", time.Hour)
	got, err := e.svc.Decide(context.Background(), r.ID, "alice@example.com", true, "")
	if err != nil || got.State != access.StateActive {
		t.Fatalf("self-approval on a role that allows it: %v", err)
	}
}

func TestOverlapRefused(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	r := e.submit(t, "alice@example.com", "prod-admin", time.Hour)
	if _, err := e.svc.Submit(ctx, access.SubmitInput{Requester: "alice@example.com", Role: "prod-admin", Duration: time.Hour, Reason: "x"}); !errors.Is(err, access.ErrDuplicate) {
		t.Fatalf("second pending: %v", err)
	}
	if _, err := e.svc.Decide(ctx, r.ID, "bob@example.com", true, ""); err != nil {
		t.Fatal(err)
	}
	_, err := e.svc.Submit(ctx, access.SubmitInput{Requester: "alice@example.com", Role: "prod-admin", Duration: time.Hour, Reason: "x"})
	var rf *access.Refusal // it suggests extending (handlers.TestRefusalWording)
	if !errors.Is(err, access.ErrDuplicate) || !errors.As(err, &rf) || rf.Code != access.RefuseAlreadyHeld || rf.ID != r.ID {
		t.Fatalf("request while active: %v", err)
	}
}

func TestSharedGroupNotCutShort(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	a := e.submit(t, "alice@example.com", "prod-admin", 30*time.Minute)
	if _, err := e.svc.Decide(ctx, a.ID, "bob@example.com", true, ""); err != nil {
		t.Fatal(err)
	}
	b := e.submit(t, "alice@example.com", "admin-alias", 2*time.Hour) // same group, longer
	if _, err := e.svc.Decide(ctx, b.ID, "dave@example.com", true, ""); err != nil {
		t.Fatal(err)
	}
	e.clock.Advance(31 * time.Minute)
	e.process(t)
	got, _ := e.store.Get(ctx, a.ID)
	if got.State != access.StateEnded || !got.KeepMembership {
		t.Fatalf("first grant: %s keep=%v", got.State, got.KeepMembership)
	}
	if !e.prov.IsMember("g-admin", "alice@example.com") || e.prov.Count("revoke", "alice@example.com") != 0 {
		t.Fatal("the newer grant was cut short")
	}
	e.clock.Advance(2 * time.Hour)
	e.process(t)
	if e.prov.IsMember("g-admin", "alice@example.com") {
		t.Fatal("membership left after the last grant ended")
	}
}

func TestRevocationRetriedAndAlerted(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	r := e.submit(t, "alice@example.com", "prod-admin", time.Hour)
	if _, err := e.svc.Decide(ctx, r.ID, "bob@example.com", true, ""); err != nil {
		t.Fatal(err)
	}
	e.prov.FailNext("revoke", 1000, errors.New("provider down"))
	e.clock.Advance(time.Hour)
	e.process(t)
	got, _ := e.store.Get(ctx, r.ID)
	if got.State != access.StateRevoking || got.Attempts != 1 || got.RetryAt.IsZero() {
		t.Fatalf("after first failure: %+v", got)
	}
	// Retries follow the due index with capped backoff; after five minutes
	// of failures the security channel hears about it exactly once.
	var waits []time.Duration
	for i := 0; i < 30; i++ {
		cur, _ := e.store.Get(ctx, r.ID)
		due, ok := cur.DueAt()
		if !ok {
			t.Fatal("revoking request left the due index")
		}
		waits = append(waits, due.Sub(e.clock.Now()))
		e.clock.Advance(due.Sub(e.clock.Now()))
		e.process(t)
	}
	for _, w := range waits {
		if w > 66*time.Second {
			t.Fatalf("backoff %v over the cap", w)
		}
	}
	if waits[len(waits)-1] < 50*time.Second {
		t.Fatalf("backoff did not grow to the cap: %v", waits)
	}
	if n := e.notes.count(access.EvRevokeAlert); n != 1 {
		t.Fatalf("%d alerts, want 1", n)
	}
	e.prov.FailNext("revoke", 0, nil)
	cur, _ := e.store.Get(ctx, r.ID)
	due, _ := cur.DueAt()
	e.clock.Advance(due.Sub(e.clock.Now()))
	e.process(t)
	got, _ = e.store.Get(ctx, r.ID)
	if got.State != access.StateEnded || e.prov.IsMember("g-admin", "alice@example.com") {
		t.Fatalf("not revoked after recovery: %s", got.State)
	}
	acts := e.audit(t, r.ID)
	// The removal is followed by the delivered all-clear of the alert.
	if !contains(acts, access.ActRevokeRetry) || !contains(acts, access.ActRevokeAlert) ||
		!equalActions(acts[len(acts)-2:], []access.Action{access.ActRevoked, access.ActAnnounced}) {
		t.Fatalf("audit %v", acts)
	}
}

func contains[T comparable](l []T, v T) bool {
	for _, x := range l {
		if x == v {
			return true
		}
	}
	return false
}

func TestGrantFailurePermanent(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	r := e.submit(t, "alice@example.com", "prod-admin", time.Hour)
	e.prov.FailNext("grant", 1, access.Permanent(errors.New("GROUP not found")))
	got, err := e.svc.Decide(ctx, r.ID, "bob@example.com", true, "")
	if err != nil || got.State != access.StateFailed || !strings.Contains(got.Failure, "GROUP not found") {
		t.Fatalf("permanent failure: %v %+v", err, got)
	}
	if e.prov.IsMember("g-admin", "alice@example.com") || e.notes.count(access.EvFailed) != 1 {
		t.Fatal("failed grant left something behind or was not told")
	}
}

func TestGrantTransientRetried(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	r := e.submit(t, "alice@example.com", "prod-admin", time.Hour)
	e.prov.FailNext("grant", 2, nil)
	got, err := e.svc.Decide(ctx, r.ID, "bob@example.com", true, "")
	if err != nil || got.State != access.StateApproved {
		t.Fatalf("after transient failure: %v %s", err, got.State)
	}
	for i := 0; i < 5 && got.State == access.StateApproved; i++ {
		due, _ := got.DueAt()
		e.clock.Advance(due.Sub(e.clock.Now()))
		e.process(t)
		got, _ = e.store.Get(ctx, r.ID)
	}
	if got.State != access.StateActive || !e.prov.IsMember("g-admin", "alice@example.com") {
		t.Fatalf("grant not retried to success: %s", got.State)
	}
	if !got.EndsAt.Equal(got.GrantedAt.Add(time.Hour)) {
		t.Fatal("end time not counted from the grant")
	}
}

func TestRevokeEarlyWhoMay(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	r := e.submit(t, "alice@example.com", "prod-admin", time.Hour)
	if _, err := e.svc.Decide(ctx, r.ID, "bob@example.com", true, ""); err != nil {
		t.Fatal(err)
	}
	if _, err := e.svc.Revoke(ctx, r.ID, "mallory@example.com", ""); !errors.Is(err, access.ErrNotAllowed) {
		t.Fatalf("stranger revoked: %v", err)
	}
	got, err := e.svc.Revoke(ctx, r.ID, "frank@example.com", "incident over")
	if err != nil || got.State != access.StateEnded || got.EndedBy != "frank@example.com" || got.EndReason != access.EndRevoked {
		t.Fatalf("admin revoke: %v %+v", err, got)
	}
	if _, err := e.svc.Revoke(ctx, r.ID, "alice@example.com", ""); !errors.Is(err, access.ErrNotActive) {
		t.Fatalf("revoke twice: %v", err)
	}
}

func TestCancel(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	r := e.submit(t, "alice@example.com", "prod-admin", time.Hour)
	if _, err := e.svc.Cancel(ctx, r.ID, "bob@example.com"); !errors.Is(err, access.ErrNotAllowed) {
		t.Fatalf("cancel by another: %v", err)
	}
	got, err := e.svc.Cancel(ctx, r.ID, "alice@example.com")
	if err != nil || got.State != access.StateCancelled {
		t.Fatalf("cancel: %v", err)
	}
	if _, err := e.svc.Decide(ctx, r.ID, "bob@example.com", true, ""); !errors.Is(err, access.ErrAlreadyDecided) {
		t.Fatalf("approve cancelled: %v", err)
	}
}

func TestExtend(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	r := e.submit(t, "alice@example.com", "prod-admin", 2*time.Hour)
	if _, err := e.svc.Decide(ctx, r.ID, "bob@example.com", true, ""); err != nil {
		t.Fatal(err)
	}
	e.clock.Advance(time.Hour)
	// 1h left; +4h would be 5h from now: over max_duration 4h.
	if _, err := e.svc.Extend(ctx, r.ID, "alice@example.com", 4*time.Hour, "more"); !errors.Is(err, access.ErrTooLong) {
		t.Fatalf("over the maximum: %v", err)
	}
	if _, err := e.svc.Extend(ctx, r.ID, "bob@example.com", time.Hour, "more"); !errors.Is(err, access.ErrNotAllowed) {
		t.Fatalf("extend by another: %v", err)
	}
	ext, err := e.svc.Extend(ctx, r.ID, "alice@example.com", time.Hour, "still fixing")
	if err != nil || ext.Kind != access.KindExtension || ext.State != access.StatePending {
		t.Fatalf("extend: %v %+v", err, ext)
	}
	if _, err := e.svc.Decide(ctx, ext.ID, "alice@example.com", true, ""); !errors.Is(err, access.ErrSelfApproval) {
		t.Fatalf("self-approved extension: %v", err)
	}
	if _, err := e.svc.Decide(ctx, ext.ID, "bob@example.com", true, ""); err != nil {
		t.Fatal(err)
	}
	got, _ := e.store.Get(ctx, r.ID)
	if !got.EndsAt.Equal(t0.Add(3*time.Hour)) || got.Extensions != 1 {
		t.Fatalf("ends %v after extension", got.EndsAt)
	}
	e.clock.Advance(time.Hour + time.Minute) // the old end passed: still active
	e.process(t)
	if !e.prov.IsMember("g-admin", "alice@example.com") {
		t.Fatal("revoked at the old end time")
	}
	e.clock.Advance(time.Hour)
	e.process(t)
	if e.prov.IsMember("g-admin", "alice@example.com") {
		t.Fatal("not revoked at the new end time")
	}
}

func TestBreakGlass(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	in := access.SubmitInput{Requester: "alice@example.com", Role: "prod-admin", Duration: time.Hour, Reason: "outage"}
	if _, err := e.svc.BreakGlass(ctx, in); !errors.Is(err, access.ErrNotAllowed) {
		t.Fatalf("break-glass by a user not on the list: %v", err)
	}
	in.Requester, in.Role = "erin@example.com", "db-admin"
	if _, err := e.svc.BreakGlass(ctx, in); !errors.Is(err, access.ErrNotAllowed) {
		t.Fatalf("break-glass on a role that forbids it: %v", err)
	}
	in.Role = "prod-admin"
	r, err := e.svc.BreakGlass(ctx, in)
	if err != nil || r.State != access.StateActive || r.Kind != access.KindBreakGlass {
		t.Fatalf("break-glass: %v %+v", err, r)
	}
	if !e.prov.IsMember("g-admin", "erin@example.com") || e.notes.count(access.EvBreakGlass) != 1 {
		t.Fatal("not granted at once or not announced")
	}
	if _, err := e.svc.Acknowledge(ctx, r.ID, "erin@example.com"); !errors.Is(err, access.ErrSelfApproval) {
		t.Fatalf("self-acknowledge: %v", err)
	}
	if _, err := e.svc.Acknowledge(ctx, r.ID, "bob@example.com"); !errors.Is(err, access.ErrNotAllowed) {
		t.Fatalf("acknowledge by a non-acknowledger: %v", err)
	}
	got, err := e.svc.Acknowledge(ctx, r.ID, "dave@example.com")
	if err != nil || got.AckBy != "dave@example.com" {
		t.Fatalf("acknowledge: %v", err)
	}
	if _, err := e.svc.Acknowledge(ctx, r.ID, "dave@example.com"); !errors.Is(err, access.ErrAlreadyDecided) {
		t.Fatalf("acknowledge twice: %v", err)
	}
	acts := e.audit(t, r.ID)
	if !equalActions(acts, []access.Action{access.ActBreakGlass, access.ActAnnounced, access.ActGranted, access.ActAcknowledged}) {
		t.Fatalf("audit %v", acts)
	}
}

func TestConcurrentApprovalsOneGrant(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	r := e.submit(t, "alice@example.com", "prod-admin", time.Hour)
	var wg sync.WaitGroup
	var mu sync.Mutex
	ok := 0
	for i := 0; i < 50; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := e.svc.Decide(ctx, r.ID, "bob@example.com", true, ""); err == nil {
				mu.Lock()
				ok++
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if ok != 1 {
		t.Fatalf("%d decisions succeeded, want 1", ok)
	}
	if n := e.prov.Count("grant", "alice@example.com"); n != 1 {
		t.Fatalf("%d grants, want 1", n)
	}
	if acts := e.audit(t, r.ID); !equalActions(acts, []access.Action{access.ActSubmitted, access.ActApproved, access.ActGranted}) {
		t.Fatalf("audit %v", acts)
	}
}

func TestParseDuration(t *testing.T) {
	good := map[string]time.Duration{"30m": 30 * time.Minute, "2h": 2 * time.Hour, "1d": 24 * time.Hour,
		"1h30m": 90 * time.Minute, "1d12h": 36 * time.Hour, " 2H ": 2 * time.Hour}
	for in, want := range good {
		if got, err := access.ParseDuration(in); err != nil || got != want {
			t.Errorf("%q: %v %v", in, got, err)
		}
	}
	for _, in := range []string{"", "2", "h", "2x", "-1h", "0m", "1.5h", "99999999999h"} {
		if _, err := access.ParseDuration(in); !errors.Is(err, access.ErrBadDuration) {
			t.Errorf("%q accepted", in)
		}
	}
	for _, d := range []time.Duration{time.Minute, 90 * time.Minute, 26 * time.Hour} {
		if got, _ := access.ParseDuration(access.FormatDuration(d)); got != d {
			t.Errorf("round trip %v", d)
		}
	}
}

func TestReconcile(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	r := e.submit(t, "alice@example.com", "prod-admin", time.Hour)
	if _, err := e.svc.Decide(ctx, r.ID, "bob@example.com", true, ""); err != nil {
		t.Fatal(err)
	}
	// In sync: nothing to report.
	if d, err := e.svc.Reconcile(ctx); err != nil || len(d) != 0 {
		t.Fatalf("in sync: %v %+v", err, d)
	}
	// Someone is added behind the bot's back, and alice's membership is lost.
	e.prov.AddMember("g-admin", "mallory@example.com")
	if err := e.prov.Revoke(ctx, access.Grant{Group: "g-admin", User: "alice@example.com"}); err != nil {
		t.Fatal(err)
	}
	d, err := e.svc.Reconcile(ctx)
	if err != nil || len(d) != 1 {
		t.Fatalf("drift: %v %+v", err, d)
	}
	if got := d[0]; strings.Join(got.Unexpected, ",") != "mallory@example.com" || len(got.Removed) != 0 ||
		strings.Join(got.Missing, ",") != r.ID || strings.Join(got.Reapplied, ",") != r.ID {
		t.Fatalf("drift %+v", got)
	}
	// Reported only (the roles say nothing about removal), alice re-applied.
	if !e.prov.IsMember("g-admin", "mallory@example.com") || !e.prov.IsMember("g-admin", "alice@example.com") {
		t.Fatal("report-only reconcile changed the wrong thing")
	}
	if e.notes.count(access.EvDrift) != 1 {
		t.Fatal("drift not reported")
	}
	if acts := e.audit(t, r.ID); acts[len(acts)-1] != access.ActDriftReapplied {
		t.Fatalf("re-apply not audited: %v", acts)
	}
}

func TestReconcileRemove(t *testing.T) {
	e := newEnv(t)
	pol := e.svc.Policy()
	role := pol.Roles["db-admin"]
	role.Reconcile = "remove"
	pol.Roles["db-admin"] = role
	e.prov.AddMember("g-db", "mallory@example.com")
	d, err := e.svc.Reconcile(context.Background())
	if err != nil || len(d) != 1 || strings.Join(d[0].Removed, ",") != "mallory@example.com" {
		t.Fatalf("%v %+v", err, d)
	}
	if e.prov.IsMember("g-db", "mallory@example.com") {
		t.Fatal("out-of-band member not removed")
	}
}
