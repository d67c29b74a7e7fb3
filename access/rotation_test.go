package access_test

import (
	"context"
	"errors"
	"path/filepath"
	"slices"
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

// The rotation of these tests: bob holds the week from Monday 16 November
// 2026 09:00 Berlin (08:00 UTC), carol the week from 23 November, and so on.
var (
	rotT0      = time.Date(2026, 11, 18, 10, 0, 0, 0, time.UTC) // Wednesday, bob on call
	rotHandoff = time.Date(2026, 11, 23, 8, 0, 0, 0, time.UTC)  // bob -> carol
	rotNext    = time.Date(2026, 11, 30, 8, 0, 0, 0, time.UTC)  // carol -> bob
	rotGrace   = access.DefaultRotationGrace
)

const (
	rotBob   = "bob@example.com"
	rotCarol = "carol@example.com"
	rotDave  = "dave@example.com"
)

// rotNotes keeps the events the service told the notifier about.
type rotNotes struct {
	mu  sync.Mutex
	evs []access.Event
}

func (n *rotNotes) Notify(_ context.Context, ev access.Event) ([]access.MessageRef, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	c := ev
	c.Request = ev.Request.Clone()
	n.evs = append(n.evs, c)
	return nil, nil
}

// of returns the events of type t, optionally only those about who.
func (n *rotNotes) of(t access.EventType, who string) []access.Event {
	n.mu.Lock()
	defer n.mu.Unlock()
	var out []access.Event
	for _, e := range n.evs {
		if e.Type == t && (who == "" || e.Request.Requester == who) {
			out = append(out, e)
		}
	}
	return out
}

// rotSource is the on-call source of the tests: a static rotation that
// can be swapped (an override added or removed), fail, or answer a fixed
// list of people (nobody, someone without an email).
type rotSource struct {
	mu     sync.Mutex
	rot    *static.Rotation
	err    error
	fixed  bool
	people []string
}

func (s *rotSource) OnCall(ctx context.Context, rotation string, at time.Time) (access.Shift, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.err != nil {
		return access.Shift{}, s.err
	}
	sh, err := s.rot.OnCall(ctx, rotation, at)
	if s.fixed {
		sh.People = slices.Clone(s.people)
	}
	return sh, err
}

func (s *rotSource) set(f func(s *rotSource)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	f(s)
}

func rotStatic(t *testing.T, overrides ...static.Override) *static.Rotation {
	t.Helper()
	r, errs := static.New(static.Config{Name: "platform", Timezone: "Europe/Berlin", Handoff: "monday 09:00",
		Start: "2026-11-16", Members: []string{rotBob, rotCarol}, Overrides: overrides})
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	return r
}

func rotPolicy() *access.Policy {
	role := func(name, group string, approvers ...string) access.Role {
		return access.Role{Name: name, Description: name, Provider: "dryrun", Group: group, MaxDuration: 24 * time.Hour,
			DefaultDuration: time.Hour, ApproverUsers: approvers, Approvals: 1, PendingTTL: time.Hour}
	}
	admin := role("prod-admin", "g-admin", rotDave)
	admin.ApproverRotations = []string{"platform"}
	return &access.Policy{
		Roles: map[string]access.Role{
			"prod-read":  role("prod-read", "g-read", rotDave),
			"read-alias": role("read-alias", "g-read", rotDave), // same group, requested
			"prod-admin": admin,
		},
		Rotations: map[string]access.Rotation{"platform": {Name: "platform", Source: "static", Grant: []string{"prod-read"}}},
		Admins:    []string{"frank@example.com"},
	}
}

type rotEnv struct {
	svc   *access.Service
	store access.Store
	prov  *dryrun.Provider
	clock *testclock.Clock
	notes *rotNotes
	src   *rotSource
}

func newRotEnv(t *testing.T) *rotEnv {
	t.Helper()
	st, err := bolt.Open(filepath.Join(t.TempDir(), "rot.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	e := &rotEnv{store: st, prov: dryrun.New(nil), clock: testclock.New(rotT0), notes: &rotNotes{},
		src: &rotSource{rot: rotStatic(t)}}
	e.svc, err = access.NewService(access.Deps{Store: st, Policy: rotPolicy(),
		Providers: map[string]access.Provisioner{"dryrun": e.prov},
		OnCall:    access.OnCallRouter{"platform": e.src}, Notifier: e.notes, Clock: e.clock})
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func (e *rotEnv) sync(t *testing.T) time.Time {
	t.Helper()
	next, err := e.svc.SyncRotation(context.Background(), "platform")
	if err != nil {
		t.Fatalf("sync at %s: %v", e.clock.Now(), err)
	}
	return next
}

// drain processes everything due now, as the expiry engine does.
func (e *rotEnv) drain(t *testing.T) {
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

// shiftGrants returns who's shift grants, newest first.
func (e *rotEnv) shiftGrants(t *testing.T, who string) []*access.Request {
	t.Helper()
	all, err := e.store.List(context.Background(), access.Filter{Requester: who})
	if err != nil {
		t.Fatal(err)
	}
	var out []*access.Request
	for _, r := range all {
		if r.Kind == access.KindRotation {
			out = append(out, r)
		}
	}
	return out
}

func (e *rotEnv) only(t *testing.T, who string) *access.Request {
	t.Helper()
	gs := e.shiftGrants(t, who)
	if len(gs) != 1 {
		t.Fatalf("%s has %d shift grants, want 1", who, len(gs))
	}
	return gs[0]
}

func (e *rotEnv) actions(t *testing.T, id string) []access.AuditEvent {
	t.Helper()
	evs, err := e.store.Audit(context.Background(), time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	var out []access.AuditEvent
	for _, ev := range evs {
		if ev.RequestID == id {
			out = append(out, ev)
		}
	}
	return out
}

func (e *rotEnv) calls(op, who string) int { return e.prov.Count(op, who) }

func TestRotationGrantsCurrentShiftAtStart(t *testing.T) {
	e := newRotEnv(t)
	ctx := context.Background()
	if next := e.sync(t); !next.Equal(rotHandoff) {
		t.Fatalf("next = %s, want the handoff %s", next, rotHandoff)
	}
	g := e.only(t, rotBob)
	if g.State != access.StateActive || g.Rotation != "platform" || g.Role != "prod-read" || !g.GrantedAt.Equal(rotT0) ||
		!g.EndsAt.Equal(rotHandoff.Add(rotGrace)) {
		t.Fatalf("grant: state %s rotation %q role %s granted %s ends %s", g.State, g.Rotation, g.Role, g.GrantedAt, g.EndsAt)
	}
	if !e.prov.IsMember("g-read", rotBob) || e.prov.IsMember("g-read", rotCarol) {
		t.Fatal("membership does not follow the on-call person")
	}
	evs := e.actions(t, g.ID)
	if len(evs) != 2 || evs[0].Action != access.ActHandoff || evs[0].Actor != access.SystemActor ||
		evs[0].To != access.StateApproved || !strings.Contains(evs[0].Detail, "shift of platform") ||
		evs[1].Action != access.ActGranted {
		t.Fatalf("audit: %+v", evs)
	}
	if len(e.notes.of(access.EvActive, rotBob)) != 1 || len(e.notes.of(access.EvHandoffIn, rotBob)) != 1 {
		t.Fatalf("bob was not told: %+v", e.notes.evs)
	}

	// Checking again changes nothing and calls nobody.
	e.clock.Set(rotT0.Add(5 * time.Minute))
	e.sync(t)
	if e.calls("grant", rotBob) != 1 || len(e.shiftGrants(t, rotBob)) != 1 || len(e.actions(t, g.ID)) != 2 {
		t.Fatal("a second check granted again or wrote to the audit log")
	}
	// The shift grant counts as held: the same role cannot be requested on top.
	_, err := e.svc.Submit(ctx, access.SubmitInput{Requester: rotBob, Role: "prod-read", Duration: time.Hour, Reason: "more"})
	if !errors.Is(err, access.ErrDuplicate) {
		t.Fatalf("request on top of the shift grant: %v", err)
	}
	// It ends at the handoff, not on request.
	if _, err := e.svc.Extend(ctx, g.ID, rotBob, time.Hour, "longer"); !errors.Is(err, access.ErrNotAllowed) {
		t.Fatalf("extend a shift grant: %v", err)
	}
	// The on-call person approves prod-admin (approvers.rotation).
	approvers, err := e.svc.Approvers(ctx, e.svc.Policy().Roles["prod-admin"], "alice@example.com")
	if err != nil || !slices.Equal(approvers, []string{rotDave, rotBob}) {
		t.Fatalf("approvers %v, %v", approvers, err)
	}
}

func TestRotationHandoff(t *testing.T) {
	for _, grace := range []time.Duration{0, 40 * time.Minute} {
		want := grace
		if want == 0 {
			want = access.DefaultRotationGrace
		}
		t.Run("grace="+want.String(), func(t *testing.T) {
			e := newRotEnv(t)
			e.svc.SetRotationOptions("platform", access.RotationOptions{Grace: grace})
			e.sync(t)
			bob := e.only(t, rotBob)
			if !bob.EndsAt.Equal(rotHandoff.Add(want)) {
				t.Fatalf("bob's grant ends %s, want %s", bob.EndsAt, rotHandoff.Add(want))
			}

			// The handoff run: exactly at the handoff.
			e.clock.Set(rotHandoff)
			if next := e.sync(t); !next.Equal(rotNext) {
				t.Fatalf("next = %s, want %s", next, rotNext)
			}
			e.drain(t)
			carol := e.only(t, rotCarol)
			if carol.State != access.StateActive || !carol.GrantedAt.Equal(rotHandoff) || !carol.EndsAt.Equal(rotNext.Add(want)) {
				t.Fatalf("carol: %s granted %s ends %s", carol.State, carol.GrantedAt, carol.EndsAt)
			}
			bob = e.only(t, rotBob)
			if bob.State != access.StateActive || !bob.EndsAt.Equal(rotHandoff.Add(want)) || !e.prov.IsMember("g-read", rotBob) {
				t.Fatalf("bob lost access at the handoff: %s ends %s", bob.State, bob.EndsAt)
			}
			if evs := e.actions(t, carol.ID); evs[0].Action != access.ActHandoff || !strings.Contains(evs[0].Detail, "takes over from "+rotBob) {
				t.Fatalf("handoff not audited: %+v", evs)
			}
			in, out := e.notes.of(access.EvHandoffIn, rotCarol), e.notes.of(access.EvHandoffOut, rotBob)
			if len(in) != 1 || len(out) != 1 || !strings.Contains(in[0].Reason, "taking over from "+rotBob) ||
				!out[0].Request.EndsAt.Equal(rotHandoff.Add(want)) || !strings.Contains(out[0].Reason, rotCarol) {
				t.Fatalf("handoff DMs: in %+v out %+v", in, out)
			}

			// Checks during the grace change nothing.
			e.clock.Set(rotHandoff.Add(want - time.Second))
			e.sync(t)
			e.drain(t)
			if !e.prov.IsMember("g-read", rotBob) || e.calls("revoke", rotBob) != 0 {
				t.Fatal("bob's access ended before handoff + grace")
			}
			if len(e.notes.of(access.EvHandoffIn, "")) != 2 || len(e.notes.of(access.EvHandoffOut, "")) != 1 {
				t.Fatal("handoff told twice")
			}

			e.clock.Set(rotHandoff.Add(want))
			e.drain(t)
			bob = e.only(t, rotBob)
			if bob.State != access.StateEnded || bob.EndReason != access.EndShiftOver || e.prov.IsMember("g-read", rotBob) {
				t.Fatalf("bob after handoff + grace: %s (%s), member %v", bob.State, bob.EndReason, e.prov.IsMember("g-read", rotBob))
			}
			if !e.prov.IsMember("g-read", rotCarol) {
				t.Fatal("carol lost access")
			}
			for who, want := range map[string][2]int{rotBob: {1, 1}, rotCarol: {1, 0}} {
				if g, r := e.calls("grant", who), e.calls("revoke", who); g != want[0] || r != want[1] {
					t.Errorf("%s: %d grant and %d revoke calls, want %v", who, g, r, want)
				}
			}
			if len(e.notes.of(access.EvEnded, rotBob)) != 1 {
				t.Fatal("bob not told his access ended")
			}
		})
	}
}

// TestRotationOverrideMovesGrants adds an override (dave for a day in
// bob's week), then removes it again while dave is on call.
func TestRotationOverrideMovesGrants(t *testing.T) {
	e := newRotEnv(t)
	e.sync(t)
	from := time.Date(2026, 11, 19, 8, 0, 0, 0, time.UTC) // 09:00 Berlin
	until := time.Date(2026, 11, 20, 8, 0, 0, 0, time.UTC)
	e.src.set(func(s *rotSource) {
		s.rot = rotStatic(t, static.Override{From: "2026-11-19 09:00", Until: "2026-11-20 09:00", Member: rotDave})
	})

	// The next check sees bob's shift end at the override: his grant is
	// shortened (to the override plus grace, still in the future).
	e.clock.Set(rotT0.Add(5 * time.Minute))
	if next := e.sync(t); !next.Equal(from) {
		t.Fatalf("next = %s, want the override's start %s", next, from)
	}
	bob := e.only(t, rotBob)
	if !bob.EndsAt.Equal(from.Add(rotGrace)) {
		t.Fatalf("bob's grant ends %s, want %s", bob.EndsAt, from.Add(rotGrace))
	}
	if evs := e.actions(t, bob.ID); evs[len(evs)-1].Action != access.ActShiftMoved {
		t.Fatalf("move not audited: %+v", evs)
	}

	// The override starts: dave in, bob out after the grace.
	e.clock.Set(from)
	if next := e.sync(t); !next.Equal(until) {
		t.Fatalf("next = %s, want %s", next, until)
	}
	dave := e.only(t, rotDave)
	if !dave.GrantedAt.Equal(from) || !dave.EndsAt.Equal(until.Add(rotGrace)) || !e.prov.IsMember("g-read", rotDave) {
		t.Fatalf("dave: granted %s ends %s", dave.GrantedAt, dave.EndsAt)
	}
	e.clock.Set(from.Add(rotGrace))
	e.drain(t)
	if e.prov.IsMember("g-read", rotBob) {
		t.Fatal("bob kept access during the override")
	}

	// The override is removed again at noon: dave is no longer on call
	// (his grant ends one grace from now), bob is again and gets a new
	// grant for the rest of his shift.
	noon := time.Date(2026, 11, 19, 12, 0, 0, 0, time.UTC)
	e.src.set(func(s *rotSource) { s.rot = rotStatic(t) })
	e.clock.Set(noon)
	if next := e.sync(t); !next.Equal(rotHandoff) {
		t.Fatalf("next = %s, want %s", next, rotHandoff)
	}
	dave = e.only(t, rotDave)
	if !dave.EndsAt.Equal(noon.Add(rotGrace)) {
		t.Fatalf("dave's grant ends %s, want %s", dave.EndsAt, noon.Add(rotGrace))
	}
	gs := e.shiftGrants(t, rotBob)
	if len(gs) != 2 || gs[0].State != access.StateActive || !gs[0].EndsAt.Equal(rotHandoff.Add(rotGrace)) || gs[0].ID == gs[1].ID {
		t.Fatalf("bob's grants after the override was removed: %d", len(gs))
	}
	if len(e.notes.of(access.EvHandoffOut, rotDave)) != 1 || len(e.notes.of(access.EvHandoffIn, rotBob)) != 2 {
		t.Fatal("the change back was not told")
	}
	e.clock.Set(noon.Add(rotGrace))
	e.drain(t)
	if e.prov.IsMember("g-read", rotDave) || !e.prov.IsMember("g-read", rotBob) {
		t.Fatal("membership does not follow the schedule change")
	}
	for who, want := range map[string][2]int{rotBob: {2, 1}, rotDave: {1, 1}, rotCarol: {0, 0}} {
		if g, r := e.calls("grant", who), e.calls("revoke", who); g != want[0] || r != want[1] {
			t.Errorf("%s: %d grant and %d revoke calls, want %v", who, g, r, want)
		}
	}
}

// TestRotationKeepsRequestedGrantOfSameGroup: the on-call person also
// holds the group through a requested grant; membership lasts until the
// later of the two ends, whichever that is.
func TestRotationKeepsRequestedGrantOfSameGroup(t *testing.T) {
	ctx := context.Background()
	request := func(t *testing.T, e *rotEnv, d time.Duration) *access.Request {
		t.Helper()
		r, err := e.svc.Submit(ctx, access.SubmitInput{Requester: rotBob, Role: "read-alias", Duration: d, Reason: "migration"})
		if err != nil {
			t.Fatal(err)
		}
		if r, err = e.svc.Decide(ctx, r.ID, rotDave, true, ""); err != nil || r.State != access.StateActive {
			t.Fatalf("approve: %v", err)
		}
		return r
	}

	t.Run("requested grant ends later", func(t *testing.T) {
		e := newRotEnv(t)
		e.sync(t)
		e.clock.Set(rotHandoff.Add(-time.Hour))
		req := request(t, e, 2*time.Hour) // until handoff + 1h
		e.clock.Set(rotHandoff)
		e.sync(t)
		e.clock.Set(rotHandoff.Add(rotGrace))
		e.drain(t)
		shift := e.only(t, rotBob)
		if shift.State != access.StateEnded || !shift.KeepMembership || !e.prov.IsMember("g-read", rotBob) || e.calls("revoke", rotBob) != 0 {
			t.Fatalf("shift grant %s keep=%v: membership cut although a request still holds it", shift.State, shift.KeepMembership)
		}
		e.clock.Set(req.EndsAt)
		e.drain(t)
		if e.prov.IsMember("g-read", rotBob) || e.calls("revoke", rotBob) != 1 {
			t.Fatal("membership left after the requested grant ended")
		}
	})
	t.Run("shift grant ends later", func(t *testing.T) {
		e := newRotEnv(t)
		e.sync(t)
		req := request(t, e, time.Hour)
		e.clock.Set(req.EndsAt)
		e.drain(t)
		if got, _ := e.store.Get(ctx, req.ID); got.State != access.StateEnded || !got.KeepMembership || !e.prov.IsMember("g-read", rotBob) {
			t.Fatal("the request's end cut the shift grant's membership")
		}
		e.clock.Set(rotHandoff)
		e.sync(t)
		e.clock.Set(rotHandoff.Add(rotGrace))
		e.drain(t)
		if e.prov.IsMember("g-read", rotBob) || e.calls("revoke", rotBob) != 1 {
			t.Fatal("membership not removed once at the end of the shift grant")
		}
	})
}

func TestRotationProblemsAnnouncedOnce(t *testing.T) {
	e := newRotEnv(t)
	e.sync(t)
	bob := e.only(t, rotBob)
	problems := func() []access.Event { return e.notes.of(access.EvRotationProblem, "") }
	check := func(step time.Duration) {
		e.clock.Set(e.clock.Now().Add(step))
		_, _ = e.svc.SyncRotation(context.Background(), "platform")
	}

	// The source fails: announced once, and nothing changes.
	e.src.set(func(s *rotSource) { s.err = errors.New("pagerduty: on-call service unavailable") })
	if _, err := e.svc.SyncRotation(context.Background(), "platform"); err == nil {
		t.Fatal("a failing source is no error")
	}
	check(5 * time.Minute)
	check(5 * time.Minute)
	if p := problems(); len(p) != 1 || p[0].Request.Rotation != "platform" || !strings.Contains(p[0].Reason, "cannot be asked") {
		t.Fatalf("problems: %+v", p)
	}
	if got := e.only(t, rotBob); got.State != access.StateActive || !got.EndsAt.Equal(bob.EndsAt) {
		t.Fatal("a failing source changed the shift grant")
	}

	// It recovers: the all-clear is announced once.
	e.src.set(func(s *rotSource) { s.err = nil })
	check(5 * time.Minute)
	check(5 * time.Minute)
	if ok := e.notes.of(access.EvRotationOK, ""); len(ok) != 1 || !strings.Contains(ok[0].Reason, "cannot be asked") {
		t.Fatalf("all-clear: %+v", ok)
	}

	// Nobody on call: announced once; bob's grant ends one grace from now.
	e.src.set(func(s *rotSource) { s.fixed, s.people = true, nil })
	check(5 * time.Minute)
	gap := e.clock.Now()
	check(5 * time.Minute)
	if p := problems(); len(p) != 2 || !strings.Contains(p[1].Reason, "nobody is on call") {
		t.Fatalf("problems: %+v", p)
	}
	if got := e.only(t, rotBob); !got.EndsAt.Equal(gap.Add(rotGrace)) {
		t.Fatalf("bob's grant ends %s, want %s", got.EndsAt, gap.Add(rotGrace))
	}

	// A person without an email is on call: a new problem, announced once.
	e.src.set(func(s *rotSource) { s.people = []string{"bob"} })
	check(time.Minute)
	check(time.Minute)
	if p := problems(); len(p) != 3 || !strings.Contains(p[2].Reason, `"bob" is on call but has no email`) {
		t.Fatalf("problems: %+v", p)
	}
	if len(e.shiftGrants(t, "bob")) != 0 {
		t.Fatal("a grant was made for an identity that is not an email")
	}
	if n := len(e.notes.of(access.EvRotationOK, "")); n != 1 {
		t.Fatalf("%d all-clears, want 1", n)
	}
}

// TestRotationSamePersonConsecutiveShifts: an override keeps bob on call
// for the first day of carol's week. His grant simply continues (its end
// moves), so the two shifts cost one grant and one revoke call, and no
// handoff is announced between them.
func TestRotationSamePersonConsecutiveShifts(t *testing.T) {
	e := newRotEnv(t)
	e.src.set(func(s *rotSource) {
		s.rot = rotStatic(t, static.Override{From: "2026-11-23 09:00", Until: "2026-11-24 09:00", Member: rotBob})
	})
	if next := e.sync(t); !next.Equal(rotHandoff) {
		t.Fatalf("next = %s, want %s", next, rotHandoff)
	}
	overrideEnd := rotHandoff.Add(24 * time.Hour)
	e.clock.Set(rotHandoff)
	if next := e.sync(t); !next.Equal(overrideEnd) {
		t.Fatalf("next = %s, want %s", next, overrideEnd)
	}
	e.clock.Set(rotHandoff.Add(rotGrace))
	e.drain(t)
	bob := e.only(t, rotBob)
	if bob.State != access.StateActive || !bob.EndsAt.Equal(overrideEnd.Add(rotGrace)) || !e.prov.IsMember("g-read", rotBob) {
		t.Fatalf("bob's grant across his two shifts: %s until %s", bob.State, bob.EndsAt)
	}
	if len(e.notes.of(access.EvHandoffOut, "")) != 0 {
		t.Fatal("a handoff from bob to bob was announced")
	}
	e.clock.Set(overrideEnd)
	e.sync(t)
	e.clock.Set(overrideEnd.Add(rotGrace))
	e.drain(t)
	if e.prov.IsMember("g-read", rotBob) || !e.prov.IsMember("g-read", rotCarol) {
		t.Fatal("membership does not follow the handoff after the override")
	}
	if g, r := e.calls("grant", rotBob), e.calls("revoke", rotBob); g != 1 || r != 1 {
		t.Fatalf("bob: %d grant and %d revoke calls for two consecutive shifts, want 1 and 1", g, r)
	}
}

// TestRotationRevokedShiftGrantStaysRevoked: an admin's early revocation
// of a shift grant holds for the rest of that shift; the next shift of the
// same person is granted again.
func TestRotationRevokedShiftGrantStaysRevoked(t *testing.T) {
	e := newRotEnv(t)
	e.sync(t)
	g := e.only(t, rotBob)
	if _, err := e.svc.Revoke(context.Background(), g.ID, "frank@example.com", "laptop lost"); err != nil {
		t.Fatal(err)
	}
	e.clock.Set(rotT0.Add(5 * time.Minute))
	e.sync(t)
	if e.prov.IsMember("g-read", rotBob) || len(e.shiftGrants(t, rotBob)) != 1 {
		t.Fatal("a revoked shift grant was made again in the same shift")
	}
	e.clock.Set(rotNext)
	e.sync(t)
	if !e.prov.IsMember("g-read", rotBob) {
		t.Fatal("bob's next shift was not granted")
	}
}
