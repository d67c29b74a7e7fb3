package access_test

import (
	"context"
	"errors"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/accessbot/accessbot/access"
	"github.com/accessbot/accessbot/internal/testclock"
	"github.com/accessbot/accessbot/providers/dryrun"
	"github.com/accessbot/accessbot/providers/static"
	"github.com/accessbot/accessbot/store/bolt"
)

func berlin(t *testing.T) *time.Location {
	t.Helper()
	loc, err := time.LoadLocation("Europe/Berlin")
	if err != nil {
		t.Fatal(err)
	}
	return loc
}

func TestParseStart(t *testing.T) {
	ber := berlin(t)
	utc := func(s string) time.Time {
		v, err := time.Parse(time.RFC3339, s)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	cases := []struct {
		name string
		in   string
		now  string // UTC
		loc  *time.Location
		want string // UTC; "" for a refusal
		code access.RefusalCode
	}{
		{"clock time later today", "22:00", "2026-12-01T10:00:00Z", ber, "2026-12-01T21:00:00Z", ""},
		{"clock time passed: tomorrow", "09:00", "2026-12-01T10:00:00Z", ber, "2026-12-02T08:00:00Z", ""},
		{"clock time now: tomorrow", "11:00", "2026-12-01T10:00:00Z", ber, "2026-12-02T10:00:00Z", ""},
		{"clock time in UTC", "22:00", "2026-12-01T10:00:00Z", time.UTC, "2026-12-01T22:00:00Z", ""},
		{"single-digit hour", "9:30", "2026-12-01T10:00:00Z", time.UTC, "2026-12-02T09:30:00Z", ""},
		{"local date-time", "2026-12-01T22:00", "2026-12-01T10:00:00Z", ber, "2026-12-01T21:00:00Z", ""},
		{"local date-time with seconds", "2026-12-01T22:00:30", "2026-12-01T10:00:00Z", ber, "2026-12-01T21:00:30Z", ""},
		{"local date and time with a space", "2026-12-01 22:00", "2026-12-01T10:00:00Z", ber, "2026-12-01T21:00:00Z", ""},
		{"with a zone offset", "2026-12-01T22:00+05:30", "2026-12-01T10:00:00Z", ber, "2026-12-01T16:30:00Z", ""},
		{"RFC 3339 in UTC", "2026-12-01T22:00:00Z", "2026-12-01T10:00:00Z", ber, "2026-12-01T22:00:00Z", ""},
		{"summer time", "2027-06-01T22:00", "2026-12-01T10:00:00Z", ber, "2027-06-01T20:00:00Z", ""},
		// 2027-03-28 02:00-03:00 does not exist in Berlin (clocks go forward).
		{"in the DST gap", "2027-03-28T02:30", "2027-03-20T10:00:00Z", ber, "", access.RefuseStartInGap},
		// 2026-10-25 02:30 happens twice in Berlin: the earlier (CEST) counts.
		{"in the DST overlap: the earlier", "2026-10-25T02:30", "2026-10-20T10:00:00Z", ber, "2026-10-25T00:30:00Z", ""},
		// 23:00 CEST on the 24th: 22:00 tomorrow is after the change, in CET.
		{"rolling to tomorrow across the DST change", "22:00", "2026-10-24T21:00:00Z", ber, "2026-10-25T21:00:00Z", ""},
		// 01:00 CET on the day of the gap: today's 02:30 does not exist, tomorrow's does.
		{"clock time in today's gap: tomorrow", "02:30", "2027-03-28T00:00:00Z", ber, "2027-03-29T00:30:00Z", ""},
		{"not a time", "banana", "2026-12-01T10:00:00Z", ber, "", access.RefuseBadStart},
		{"hour 25", "25:00", "2026-12-01T10:00:00Z", ber, "", access.RefuseBadStart},
		{"no such day", "2026-02-30T10:00", "2026-01-01T10:00:00Z", ber, "", access.RefuseBadStart},
		{"empty", " ", "2026-12-01T10:00:00Z", ber, "", access.RefuseBadStart},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := access.ParseStart(c.in, utc(c.now), c.loc)
			if c.want == "" {
				var rf *access.Refusal
				if !errors.As(err, &rf) || rf.Code != c.code || !errors.Is(err, access.ErrBadStart) {
					t.Fatalf("ParseStart(%q) = %v, %v; want refusal %s", c.in, got, err, c.code)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParseStart(%q): %v", c.in, err)
			}
			if !got.Equal(utc(c.want)) {
				t.Fatalf("ParseStart(%q) = %s, want %s", c.in, got.UTC().Format(time.RFC3339), c.want)
			}
		})
	}
}

func TestScheduledSubmitRefusals(t *testing.T) {
	e := newEnv(t)
	in := func(start string, at time.Time) access.SubmitInput {
		return access.SubmitInput{Requester: "alice@example.com", Role: "prod-admin", Duration: 2 * time.Hour,
			Reason: "maintenance", Start: start, StartsAt: at, Zone: berlin(t)}
	}
	cases := []struct {
		name string
		in   access.SubmitInput
		code access.RefusalCode
	}{
		{"in the past", in("2026-11-18T09:00", time.Time{}), access.RefuseStartPast},
		{"now", in("", t0), access.RefuseStartPast},
		{"too far ahead", in("", t0.Add(access.DefaultMaxScheduleAhead+time.Minute)), access.RefuseStartTooFar},
		{"unreadable", in("tonight", time.Time{}), access.RefuseBadStart},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := e.svc.Submit(context.Background(), c.in)
			var rf *access.Refusal
			if !errors.As(err, &rf) || rf.Code != c.code || !errors.Is(err, access.ErrBadStart) {
				t.Fatalf("got %v, want refusal %s", err, c.code)
			}
		})
	}
	mine, err := e.svc.Mine(context.Background(), "alice@example.com")
	if err != nil || len(mine) != 0 {
		t.Fatalf("refused submits stored requests: %v %v", mine, err)
	}
	// Exactly the limit is fine.
	r, err := e.svc.Submit(context.Background(), in("", t0.Add(access.DefaultMaxScheduleAhead)))
	if err != nil {
		t.Fatalf("start at the limit: %v", err)
	}
	if !r.StartsAt.Equal(t0.Add(access.DefaultMaxScheduleAhead)) {
		t.Fatalf("StartsAt = %v", r.StartsAt)
	}
}

// TestScheduledRoleLimit: a role's own max_schedule_ahead counts.
func TestScheduledRoleLimit(t *testing.T) {
	e := newEnvPolicy(t, func(p *access.Policy) {
		r := p.Roles["prod-admin"]
		r.MaxScheduleAhead = 24 * time.Hour
		p.Roles["prod-admin"] = r
	})
	_, err := e.svc.Submit(context.Background(), access.SubmitInput{Requester: "alice@example.com", Role: "prod-admin",
		Duration: time.Hour, Reason: "x", StartsAt: t0.Add(25 * time.Hour)})
	var rf *access.Refusal
	if !errors.As(err, &rf) || rf.Code != access.RefuseStartTooFar || rf.Max != 24*time.Hour {
		t.Fatalf("got %v, want start_too_far with Max 24h", err)
	}
}

// submitAt submits prod-admin for 2h from start.
func (e *env) submitAt(t *testing.T, who string, start time.Time) *access.Request {
	t.Helper()
	r, err := e.svc.Submit(context.Background(), access.SubmitInput{Requester: who, Role: "prod-admin", Duration: 2 * time.Hour,
		Reason: "maintenance window", StartsAt: start, Zone: berlin(t)})
	if err != nil {
		t.Fatalf("submit: %v", err)
	}
	return r
}

// TestScheduledLifecycle: approved in advance, not granted before the
// start, granted at it, ended Duration later.
func TestScheduledLifecycle(t *testing.T) {
	e := newEnv(t)
	start := t0.Add(3 * time.Hour)
	r := e.submitAt(t, "alice@example.com", start)
	if r.State != access.StatePending || !r.StartsAt.Equal(start) || r.StartZone != "Europe/Berlin" {
		t.Fatalf("submitted: %s starts %v zone %q", r.State, r.StartsAt, r.StartZone)
	}
	evs, _ := e.store.Audit(context.Background(), time.Time{})
	if len(evs) == 0 || evs[0].Action != access.ActSubmitted || !strings.Contains(evs[0].Detail, "starts at 2026-11-18T13:00:00Z (2026-11-18 14:00 Europe/Berlin)") {
		t.Fatalf("submit audit detail does not name the start: %+v", evs)
	}
	e.clock.Advance(10 * time.Minute)
	got, err := e.svc.Decide(context.Background(), r.ID, "bob@example.com", true, "")
	if err != nil {
		t.Fatal(err)
	}
	if got.State != access.StateApproved || !got.Scheduled() {
		t.Fatalf("approved in advance: state %s scheduled %v", got.State, got.Scheduled())
	}
	if due, ok := got.DueAt(); !ok || !due.Equal(start) {
		t.Fatalf("due %v %v, want the start %v", due, ok, start)
	}
	if e.notes.count(access.EvScheduled) != 1 {
		t.Fatalf("requester not told it is scheduled: %v", e.notes.types())
	}
	// Every step up to the start: the sweep looks, nothing is granted.
	for _, at := range []time.Time{t0.Add(20 * time.Minute), start.Add(-time.Minute), start.Add(-time.Nanosecond)} {
		e.clock.Set(at)
		e.process(t)
		if n := e.prov.Count("grant", "alice@example.com"); n != 0 || e.prov.IsMember("g-admin", "alice@example.com") {
			t.Fatalf("granted %d times before the start (at %v)", n, at)
		}
		if e.get(t, r.ID).State != access.StateApproved {
			t.Fatalf("state changed before the start")
		}
	}
	e.clock.Set(start)
	e.process(t)
	got = e.get(t, r.ID)
	if got.State != access.StateActive || !e.prov.IsMember("g-admin", "alice@example.com") {
		t.Fatalf("at the start: state %s, member %v", got.State, e.prov.IsMember("g-admin", "alice@example.com"))
	}
	if !got.GrantedAt.Equal(start) || !got.EndsAt.Equal(start.Add(2*time.Hour)) || !got.StartedAt.Equal(start) {
		t.Fatalf("granted %v, ends %v, started %v; want %v to %v", got.GrantedAt, got.EndsAt, got.StartedAt, start, start.Add(2*time.Hour))
	}
	if e.notes.count(access.EvActive) != 1 {
		t.Fatalf("requester not told at the start: %v", e.notes.types())
	}
	acts := e.audit(t, r.ID)
	if !slices.Equal(acts, []access.Action{access.ActSubmitted, access.ActApproved, access.ActStarted, access.ActGranted}) {
		t.Fatalf("audit %v", acts)
	}
	e.clock.Set(start.Add(2*time.Hour - time.Second))
	e.process(t)
	if !e.prov.IsMember("g-admin", "alice@example.com") {
		t.Fatal("removed before start+duration")
	}
	e.clock.Set(start.Add(2 * time.Hour))
	e.process(t)
	got = e.get(t, r.ID)
	if got.State != access.StateEnded || got.EndReason != access.EndExpired || e.prov.IsMember("g-admin", "alice@example.com") {
		t.Fatalf("at start+duration: %s %s member %v", got.State, got.EndReason, e.prov.IsMember("g-admin", "alice@example.com"))
	}
}

// TestScheduledGrantLate: a grant made after the start (the sweep came
// late) lasts the full duration from the grant.
func TestScheduledGrantLate(t *testing.T) {
	e := newEnv(t)
	start := t0.Add(time.Hour)
	r := e.submitAt(t, "alice@example.com", start)
	if _, err := e.svc.Decide(context.Background(), r.ID, "bob@example.com", true, ""); err != nil {
		t.Fatal(err)
	}
	e.clock.Set(start.Add(5 * time.Minute))
	e.process(t)
	got := e.get(t, r.ID)
	if got.State != access.StateActive || !got.EndsAt.Equal(start.Add(5*time.Minute+2*time.Hour)) {
		t.Fatalf("late grant: %s ends %v", got.State, got.EndsAt)
	}
}

// TestScheduledApprovedAfterStart: approval after the start grants at once.
func TestScheduledApprovedAfterStart(t *testing.T) {
	e := newEnv(t)
	start := t0.Add(10 * time.Minute)
	r := e.submitAt(t, "alice@example.com", start)
	e.clock.Set(start)
	e.process(t) // the start passes while pending: nothing happens
	if got := e.get(t, r.ID); got.State != access.StatePending {
		t.Fatalf("pending at the start became %s", got.State)
	}
	e.clock.Set(start.Add(15 * time.Minute))
	got, err := e.svc.Decide(context.Background(), r.ID, "bob@example.com", true, "")
	if err != nil {
		t.Fatal(err)
	}
	if got.State != access.StateActive || !got.EndsAt.Equal(start.Add(15*time.Minute+2*time.Hour)) {
		t.Fatalf("approved after the start: %s ends %v", got.State, got.EndsAt)
	}
	if e.notes.count(access.EvScheduled) != 0 {
		t.Fatal("told it is scheduled although it started at once")
	}
}

// TestScheduledPendingTimesOut: a request still pending at its start times
// out by its pending_ttl like any other.
func TestScheduledPendingTimesOut(t *testing.T) {
	e := newEnv(t)
	r := e.submitAt(t, "alice@example.com", t0.Add(10*time.Minute))
	e.clock.Set(t0.Add(30 * time.Minute)) // prod-admin pending_ttl
	e.process(t)
	if got := e.get(t, r.ID); got.State != access.StateTimedOut {
		t.Fatalf("state %s, want timed_out", got.State)
	}
	if e.prov.Count("grant", "alice@example.com") != 0 {
		t.Fatal("granted")
	}
}

// TestScheduledCancelAndRevokeBeforeStart: neither calls the provider.
func TestScheduledCancelAndRevokeBeforeStart(t *testing.T) {
	for _, by := range []string{"cancel", "alice@example.com", "frank@example.com", "dave@example.com"} {
		t.Run(by, func(t *testing.T) {
			e := newEnv(t)
			start := t0.Add(2 * time.Hour)
			r := e.submitAt(t, "alice@example.com", start)
			want := access.StateEnded
			if by == "cancel" {
				if _, err := e.svc.Cancel(context.Background(), r.ID, "alice@example.com"); err != nil {
					t.Fatal(err)
				}
				want = access.StateCancelled
			} else {
				if _, err := e.svc.Decide(context.Background(), r.ID, "bob@example.com", true, ""); err != nil {
					t.Fatal(err)
				}
				e.clock.Advance(time.Minute)
				got, err := e.svc.Revoke(context.Background(), r.ID, by, "window moved")
				if err != nil {
					t.Fatal(err)
				}
				if got.State != access.StateEnded || got.EndReason != access.EndRevoked || got.EndedBy != by || !got.GrantedAt.IsZero() {
					t.Fatalf("revoked: %s %s by %s granted %v", got.State, got.EndReason, got.EndedBy, got.GrantedAt)
				}
				if e.notes.count(access.EvEnded) != 1 {
					t.Fatalf("cards not updated / requester not told: %v", e.notes.types())
				}
				acts := e.audit(t, r.ID)
				if acts[len(acts)-1] != access.ActRevokedBeforeStart {
					t.Fatalf("audit %v", acts)
				}
			}
			e.clock.Set(start)
			e.process(t)
			e.clock.Set(start.Add(3 * time.Hour))
			e.process(t)
			if got := e.get(t, r.ID); got.State != want {
				t.Fatalf("state %s, want %s", got.State, want)
			}
			if n := len(e.prov.Changes()); n != 0 {
				t.Fatalf("provider called %d times: %v", n, e.prov.Changes())
			}
		})
	}
}

// TestScheduledRevokeNotAllowed: someone uninvolved cannot revoke it.
func TestScheduledRevokeNotAllowed(t *testing.T) {
	e := newEnv(t)
	r := e.submitAt(t, "alice@example.com", t0.Add(time.Hour))
	if _, err := e.svc.Decide(context.Background(), r.ID, "bob@example.com", true, ""); err != nil {
		t.Fatal(err)
	}
	if _, err := e.svc.Revoke(context.Background(), r.ID, "mallory@example.com", ""); !errors.Is(err, access.ErrNotAllowed) {
		t.Fatalf("got %v, want ErrNotAllowed", err)
	}
	if got := e.get(t, r.ID); !got.Scheduled() {
		t.Fatalf("changed: %s", got.State)
	}
}

// TestScheduledOverlap: a second request for a scheduled role is refused,
// and a scheduled grant keeps no membership of another grant alive.
func TestScheduledOverlap(t *testing.T) {
	e := newEnv(t)
	r := e.submitAt(t, "alice@example.com", t0.Add(5*time.Hour))
	if _, err := e.svc.Decide(context.Background(), r.ID, "bob@example.com", true, ""); err != nil {
		t.Fatal(err)
	}
	_, err := e.svc.Submit(context.Background(), access.SubmitInput{Requester: "alice@example.com", Role: "prod-admin", Duration: time.Hour, Reason: "now"})
	var rf *access.Refusal
	if !errors.As(err, &rf) || rf.Code != access.RefuseAlreadyScheduled || rf.ID != r.ID || !rf.At.Equal(r.StartsAt) {
		t.Fatalf("got %v, want already_scheduled", err)
	}
	// admin-alias has the same group: its grant now, ended, must leave the
	// group although the scheduled prod-admin grant has the same group.
	now := e.submit(t, "alice@example.com", "admin-alias", time.Hour)
	if _, err := e.svc.Decide(context.Background(), now.ID, "dave@example.com", true, ""); err != nil {
		t.Fatal(err)
	}
	if !e.prov.IsMember("g-admin", "alice@example.com") {
		t.Fatal("not granted")
	}
	if _, err := e.svc.Revoke(context.Background(), now.ID, "alice@example.com", ""); err != nil {
		t.Fatal(err)
	}
	if e.prov.IsMember("g-admin", "alice@example.com") {
		t.Fatal("membership kept for a grant that has not started")
	}
}

// newEnvPolicy is newEnv with the test policy changed by edit.
func newEnvPolicy(t *testing.T, edit func(*access.Policy)) *env {
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
	p := policy()
	edit(p)
	c := testclock.New(t0)
	prov := dryrun.New(nil)
	notes := &recorder{}
	svc, err := access.NewService(access.Deps{Store: st, Policy: p,
		Providers: map[string]access.Provisioner{"dryrun": prov},
		OnCall:    access.OnCallRouter{"platform": rot}, Notifier: notes, Clock: c})
	if err != nil {
		t.Fatal(err)
	}
	return &env{svc: svc, store: st, prov: prov, clock: c, notes: notes}
}

// TestScheduledIsNoMemberForReconcile: a member of the group whose only
// request is scheduled (not started) is unexpected drift.
func TestScheduledIsNoMemberForReconcile(t *testing.T) {
	e := newEnv(t)
	r := e.submitAt(t, "alice@example.com", t0.Add(2*time.Hour))
	if _, err := e.svc.Decide(context.Background(), r.ID, "bob@example.com", true, ""); err != nil {
		t.Fatal(err)
	}
	e.prov.AddMember("g-admin", "alice@example.com") // added out of band
	drifts, err := e.svc.Reconcile(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, d := range drifts {
		if d.Group == "g-admin" && slices.Contains(d.Unexpected, "alice@example.com") {
			found = true
		}
	}
	if !found {
		t.Fatalf("scheduled request hid an unexpected member: %+v", drifts)
	}
}

// TestScheduledRevokeAroundTheStart: at the start but before the engine
// granted it, a revoke still needs no provider call; once granted, it is
// an ordinary revocation.
func TestScheduledRevokeAroundTheStart(t *testing.T) {
	e := newEnv(t)
	start := t0.Add(time.Hour)
	a := e.submitAt(t, "alice@example.com", start)
	if _, err := e.svc.Decide(context.Background(), a.ID, "bob@example.com", true, ""); err != nil {
		t.Fatal(err)
	}
	e.clock.Set(start.Add(time.Second)) // due, not processed yet
	got, err := e.svc.Revoke(context.Background(), a.ID, "alice@example.com", "")
	if err != nil {
		t.Fatal(err)
	}
	e.process(t)
	if got.State != access.StateEnded || len(e.prov.Changes()) != 0 {
		t.Fatalf("state %s, provider changes %v", got.State, e.prov.Changes())
	}

	e.clock.Set(start.Add(time.Minute))
	b := e.submitAt(t, "alice@example.com", start.Add(2*time.Hour))
	if _, err := e.svc.Decide(context.Background(), b.ID, "bob@example.com", true, ""); err != nil {
		t.Fatal(err)
	}
	e.clock.Set(start.Add(2 * time.Hour))
	e.process(t)
	if !e.prov.IsMember("g-admin", "alice@example.com") {
		t.Fatal("not granted at the start")
	}
	got, err = e.svc.Revoke(context.Background(), b.ID, "frank@example.com", "done early")
	if err != nil {
		t.Fatal(err)
	}
	if got.State != access.StateEnded || e.prov.IsMember("g-admin", "alice@example.com") || e.prov.Count("revoke", "alice@example.com") != 1 {
		t.Fatalf("state %s, member %v", got.State, e.prov.IsMember("g-admin", "alice@example.com"))
	}
	if acts := e.audit(t, b.ID); acts[len(acts)-1] != access.ActRevoked {
		t.Fatalf("audit %v", acts)
	}
}
