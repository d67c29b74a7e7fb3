package app

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/accessbot/accessbot/access"
	"github.com/accessbot/accessbot/bot/console"
	"github.com/accessbot/accessbot/config"
	"github.com/accessbot/accessbot/internal/redistest"
	"github.com/accessbot/accessbot/internal/testclock"
	"github.com/accessbot/accessbot/providers/dryrun"
	"github.com/accessbot/accessbot/providers/opsgenie/ogfake"
	"github.com/accessbot/accessbot/providers/pagerduty/pdfake"
	"github.com/accessbot/accessbot/scheduler"
	"github.com/accessbot/accessbot/store/bolt"
	redisstore "github.com/accessbot/accessbot/store/redis"
)

func rotConfig(t *testing.T, text string) *config.Loaded {
	t.Helper()
	l, err := config.Parse([]byte(text), os.LookupEnv)
	if err != nil {
		t.Fatalf("config:\n%v", err)
	}
	return l
}

const tenHandoffsConfig = `
chat:
  console:
    users: {ann: ann@example.com, ben: ben@example.com, cat: cat@example.com, dave: dave@example.com}
providers:
  dryrun: {}
rotations:
  sre:
    timezone: UTC
    shift: daily
    handoff: "09:00"
    start: "2026-11-16"
    members: [ann@example.com, ben@example.com, cat@example.com]
    grant: [prod-read]
roles:
  prod-read:
    description: Read-only access to production
    provider: dryrun
    group: prod-readers
    max_duration: 1d
    approvers: {users: [dave@example.com]}
`

// rotReplica is one accessbot process of the two-replica test: its own
// Redis client, store, service and scheduler with a Redis job lock.
type rotReplica struct {
	svc   *access.Service
	sched *scheduler.Scheduler
}

// newRotReplica builds one replica with New, which also runs its start
// sync of the shift grants under the job lock.
func newRotReplica(ctx context.Context, l *config.Loaded, st access.Store, owner string, prov access.Provisioner, clock access.Clock) (*rotReplica, error) {
	a, err := New(ctx, l, Deps{Store: st, Providers: map[string]access.Provisioner{"dryrun": prov}, Clock: clock, Owner: owner})
	if err != nil {
		return nil, err
	}
	return &rotReplica{svc: a.Service(), sched: a.Scheduler()}, nil
}

// rotStep runs, on every replica at once, the sync job (under the Redis
// lock), the sync without the lock (what a handoff timer does when a
// scheduled run holds the lock) and the expiry drain, as their ticks,
// timers and sweeps would at the same instant.
func rotStep(t *testing.T, ctx context.Context, job string, rs ...*rotReplica) {
	t.Helper()
	var wg sync.WaitGroup
	errs := make(chan error, 3*len(rs))
	for _, r := range rs {
		wg.Add(3)
		go func() {
			defer wg.Done()
			if err := r.sched.RunJob(ctx, job); err != nil && !errors.Is(err, scheduler.ErrNotObtained) {
				errs <- err
			}
		}()
		go func() {
			defer wg.Done()
			if _, err := r.svc.SyncRotation(ctx, strings.TrimPrefix(job, "rotation:")); err != nil {
				errs <- err
			}
		}()
		go func() {
			defer wg.Done()
			if _, err := r.sched.Drain(ctx); err != nil {
				errs <- err
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

// TestTwoReplicasTenHandoffs is the acceptance test "two scheduler
// instances on one Redis across ten simulated handoffs: each shift is
// granted once and revoked once (count provider calls)". The daily
// rotation of three people hands off at 09:00 UTC, so consecutive shifts
// are always different people and "once" is exact: one Grant call for the
// shift's person at the handoff (the start shift: at start), and one
// Revoke call at the next handoff plus the 15 minute grace.
func TestTwoReplicasTenHandoffs(t *testing.T) {
	l := rotConfig(t, tenHandoffsConfig)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	prefix := redistest.Prefix(t)
	prov := dryrun.New(nil)
	start := time.Date(2026, 11, 16, 12, 0, 0, 0, time.UTC)
	clock := testclock.New(start)
	members := []string{"ann@example.com", "ben@example.com", "cat@example.com"}
	grace := access.DefaultRotationGrace
	handoff := func(k int) time.Time { return time.Date(2026, 11, 16+k, 9, 0, 0, 0, time.UTC) }

	// Both processes start at once; each runs the start sync under the lock.
	var wg sync.WaitGroup
	errs := make(chan error, 2)
	replicas := make([]*rotReplica, 2)
	for i, owner := range []string{"replica-a", "replica-b"} {
		st := redisstore.New(redistest.Client(t), prefix) // each its own client
		wg.Add(1)
		go func() {
			defer wg.Done()
			r, err := newRotReplica(ctx, l, st, owner, prov, clock)
			replicas[i] = r
			errs <- err
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	a, b := replicas[0], replicas[1]
	const job = "rotation:sre"
	if !prov.IsMember("prod-readers", members[0]) {
		t.Fatal("the current shift was not granted at start")
	}

	for k := 1; k <= 10; k++ {
		in, out := members[k%3], members[(k-1)%3]
		clock.Set(handoff(k))
		rotStep(t, ctx, job, a, b)
		if !prov.IsMember("prod-readers", in) || !prov.IsMember("prod-readers", out) {
			t.Fatalf("handoff %d: %s in %v, %s in %v; want both during the grace", k, in, prov.IsMember("prod-readers", in),
				out, prov.IsMember("prod-readers", out))
		}
		clock.Set(handoff(k).Add(grace - time.Second))
		rotStep(t, ctx, job, a, b)
		if !prov.IsMember("prod-readers", out) {
			t.Fatalf("handoff %d: %s removed before the grace ended", k, out)
		}
		clock.Set(handoff(k).Add(grace))
		rotStep(t, ctx, job, a, b)
		if prov.IsMember("prod-readers", out) {
			t.Fatalf("handoff %d: %s not removed at handoff + grace", k, out)
		}
		clock.Set(handoff(k).Add(6 * time.Hour)) // a regular check mid-shift
		rotStep(t, ctx, job, a, b)
		if got, _ := prov.Members(ctx, "prod-readers"); !slices.Equal(got, []string{in}) {
			t.Fatalf("mid-shift %d: members %v, want only %s", k, got, in)
		}
	}

	// Count the provider calls per shift.
	calls := map[string]map[string]int{} // request id -> op -> calls
	for _, c := range prov.Changes() {
		if c.Err != nil {
			t.Errorf("failed call %+v", c)
		}
		if calls[c.Grant.RequestID] == nil {
			calls[c.Grant.RequestID] = map[string]int{}
		}
		calls[c.Grant.RequestID][c.Op]++
	}
	all, err := a.svc.Store().List(ctx, access.Filter{})
	if err != nil {
		t.Fatal(err)
	}
	slices.SortFunc(all, func(x, y *access.Request) int { return x.GrantedAt.Compare(y.GrantedAt) })
	if len(all) != 11 {
		t.Fatalf("%d shift grants, want 11 (the start shift and ten handoffs)", len(all))
	}
	totalGrants, totalRevokes := 0, 0
	for k, r := range all {
		wantStart := handoff(k)
		if k == 0 {
			wantStart = start
		}
		g, rv := calls[r.ID]["grant"], calls[r.ID]["revoke"]
		totalGrants += g
		totalRevokes += rv
		t.Logf("shift %2d %s from %s: %d grant call(s), %d revoke call(s), state %s", k, r.Requester,
			r.GrantedAt.Format("Jan 02 15:04"), g, rv, r.State)
		wantRevokes, wantState := 1, access.StateEnded
		if k == 10 {
			wantRevokes, wantState = 0, access.StateActive // the shift running now
		}
		if r.Kind != access.KindRotation || r.Requester != members[k%3] || !r.GrantedAt.Equal(wantStart) || g != 1 ||
			rv != wantRevokes || r.State != wantState {
			t.Errorf("shift %d: %s %s granted at %s (want %s), %d grant and %d revoke calls, state %s", k, r.Kind, r.Requester,
				r.GrantedAt, wantStart, g, rv, r.State)
		}
		if k < 10 && (!r.EndedAt.Equal(handoff(k+1).Add(grace)) || r.EndReason != access.EndShiftOver || r.KeepMembership) {
			t.Errorf("shift %d ended at %s (%s, keep=%v), want %s", k, r.EndedAt, r.EndReason, r.KeepMembership, handoff(k+1).Add(grace))
		}
	}
	if n := len(prov.Changes()); totalGrants != 11 || totalRevokes != 10 || n != 21 {
		t.Errorf("%d grant and %d revoke calls of %d in all; want 11, 10 and 21", totalGrants, totalRevokes, n)
	}
	for i, m := range members {
		t.Logf("%s: %d grant call(s), %d revoke call(s)", m, prov.Count("grant", m), prov.Count("revoke", m))
		wantG, wantR := []int{4, 4, 3}[i], []int{4, 3, 3}[i]
		if prov.Count("grant", m) != wantG || prov.Count("revoke", m) != wantR {
			t.Errorf("%s: %d grants, %d revokes; want %d and %d", m, prov.Count("grant", m), prov.Count("revoke", m), wantG, wantR)
		}
	}
	evs, err := a.svc.Store().Audit(ctx, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	handoffs := 0
	for _, e := range evs {
		if e.Action == access.ActHandoff {
			handoffs++
		}
	}
	if handoffs != 11 {
		t.Errorf("%d handoff audit events, want 11", handoffs)
	}
}

const rotConsoleConfig = `
chat:
  console:
    users: {alice: alice@example.com, bob: bob@example.com, carol: carol@example.com, dave: dave@example.com}
    approvals_channel: approvals
    security_channel: security
providers:
  dryrun: {}
rotations:
  platform:
    source: static
    timezone: Europe/Berlin
    handoff: "monday 09:00"
    start: "2026-11-16"
    members: [bob@example.com, carol@example.com]
    grant: [prod-read]
roles:
  prod-admin:
    description: Administrator on the production account
    provider: dryrun
    group: prod-admins
    max_duration: 4h
    approvers: {rotation: platform, users: [dave@example.com]}
  prod-read:
    description: Read-only access to production
    provider: dryrun
    group: prod-readers
    max_duration: 1d
    approvers: {users: [dave@example.com]}
`

// rotConsole is the console stack as cmdRun wires it (tap store with audit
// lines, handlers, notifier, scheduler, addJobs) with an injected clock.
type rotConsole struct {
	svc   *access.Service
	con   *console.Console
	sched *scheduler.Scheduler
	prov  *dryrun.Provider
	clock *testclock.Clock
	out   *syncBuffer
}

func newRotConsole(t *testing.T, ctx context.Context, cfg string, clock *testclock.Clock, oncall access.OnCall) *rotConsole {
	t.Helper()
	l := rotConfig(t, cfg)
	st, err := bolt.Open(filepath.Join(t.TempDir(), "rot.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	s := &rotConsole{clock: clock, out: &syncBuffer{}}
	a, err := New(ctx, l, Deps{Clock: clock, Store: st, Stdout: s.out, OnCall: oncall})
	if err != nil {
		t.Fatal(err)
	}
	s.prov = a.Provider("dryrun").(*dryrun.Provider)
	s.svc, s.con, s.sched = a.Service(), a.Console(), a.Scheduler()
	return s
}

func (s *rotConsole) line(t *testing.T, l string) {
	t.Helper()
	if err := s.con.Line(context.Background(), l); err != nil {
		t.Fatal(err)
	}
}

// at sets the clock and does what the bot would do then: the rotation
// checks and the expiry drain.
func (s *rotConsole) at(t *testing.T, ctx context.Context, when time.Time, jobs ...string) {
	t.Helper()
	s.clock.Set(when)
	for _, j := range jobs {
		if err := s.sched.RunJob(ctx, j); err != nil {
			t.Logf("job %s at %s: %v", j, when.Format(time.RFC3339), err)
		}
	}
	if _, err := s.sched.Drain(ctx); err != nil {
		t.Fatal(err)
	}
}

// TestConsoleShiftHandoff drives the bot through the console while time
// passes a handoff: bob's shift grant is there from the start, carol's is
// added at the handoff, bob's removed fifteen minutes later, exactly once
// each, and both are told by DM.
func TestConsoleShiftHandoff(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	clock := testclock.New(time.Date(2026, 11, 18, 10, 0, 0, 0, time.UTC))
	s := newRotConsole(t, ctx, rotConsoleConfig, clock, nil)
	const bob, carol = "bob@example.com", "carol@example.com"
	if !s.prov.IsMember("prod-readers", bob) || s.prov.IsMember("prod-readers", carol) {
		t.Fatalf("start: bob's shift not granted:\n%s", s.out)
	}
	// The shift grant is held: bob cannot request the role on top.
	s.line(t, "bob: /access prod-read 1h reading logs")
	// bob approves prod-admin as the on-call person.
	s.line(t, "alice: /access prod-admin 1h fixing checkout")
	s.line(t, "bob: approve")
	if !s.prov.IsMember("prod-admins", "alice@example.com") {
		t.Fatalf("the on-call person could not approve:\n%s", s.out)
	}

	handoff := time.Date(2026, 11, 23, 8, 0, 0, 0, time.UTC) // Monday 09:00 Berlin
	s.at(t, ctx, handoff.Add(-time.Minute), "rotation:platform")
	if s.prov.IsMember("prod-readers", carol) {
		t.Fatal("carol granted before her shift")
	}
	before := len(s.out.String())
	s.at(t, ctx, handoff, "rotation:platform")
	if !s.prov.IsMember("prod-readers", carol) || !s.prov.IsMember("prod-readers", bob) {
		t.Fatalf("at the handoff: carol %v, bob %v; want both", s.prov.IsMember("prod-readers", carol), s.prov.IsMember("prod-readers", bob))
	}
	s.at(t, ctx, handoff.Add(10*time.Minute), "rotation:platform")
	s.at(t, ctx, handoff.Add(access.DefaultRotationGrace))
	if s.prov.IsMember("prod-readers", bob) || !s.prov.IsMember("prod-readers", carol) {
		t.Fatalf("after the grace: bob %v, carol %v", s.prov.IsMember("prod-readers", bob), s.prov.IsMember("prod-readers", carol))
	}
	s.at(t, ctx, handoff.Add(time.Hour), "rotation:platform")
	for who, want := range map[string][2]int{bob: {1, 1}, carol: {1, 0}} {
		var g, r int
		for _, c := range s.prov.Changes() {
			if c.Grant.User == who && c.Grant.Group == "prod-readers" {
				if c.Op == "grant" {
					g++
				} else {
					r++
				}
			}
		}
		if g != want[0] || r != want[1] {
			t.Errorf("%s: %d grant and %d revoke calls on prod-readers, want %v", who, g, r, want)
		}
	}

	o := s.out.String()
	after := o[before:]
	for _, want := range []string{
		"you already hold prod-read until 08:15 UTC",
		"[dm to bob] message",
		"You are on call for platform until 2026-11-23 08:00 UTC",
		"[dm to carol] message",
		"You are on call for platform until 2026-11-30 08:00 UTC, taking over from bob@example.com.",
		"You handed platform over",
		"You handed platform over to carol@example.com. Your prod-read access stays until 2026-11-23 08:15 UTC",
		"You have prod-read until 2026-11-30 08:15 UTC",
		"Your prod-read access has ended",
		"handoff role=prod-read by=accessbot state=approved",
		"revoke_started role=prod-read by=accessbot active->revoking (shift_over)",
	} {
		if !strings.Contains(o, want) {
			t.Errorf("missing %q", want)
		}
	}
	if strings.Count(after, "[dm to carol]") < 2 || !strings.Contains(after, "[dm to bob]") {
		t.Errorf("both were not told by DM at the handoff")
	}
	if strings.Count(o, "You handed platform over to") != 1 || strings.Count(o, "taking over from") != 1 {
		t.Errorf("handoff told more than once")
	}
	if t.Failed() {
		t.Logf("output:\n%s", o)
	}
}

// TestOnCallServicesDriveApproversAndShiftGrants is the acceptance test
// "PagerDuty and Opsgenie fakes: on-call answers drive approvers and shift
// grants; with the fake down, the fallback rules hold". The rotation
// clients are built as buildServiceRotations builds them, plus the test
// clock (so cache ages follow it).
//
// What holds with the source down: within stale_for the last answer is
// served; past it, approval falls back to the role's named approvers only
// (a role without any refuses the request; nobody else may decide), the
// problem is announced once, and no shift grant is revoked or moved
// because of the outage: each runs to the end last known (the shift's
// end plus grace for PagerDuty; for Opsgenie, whose shifts are polling
// windows, the rolling window of the last good check).
func TestOnCallServicesDriveApproversAndShiftGrants(t *testing.T) {
	pd := pdfake.New("pd-token")
	defer pd.Close()
	og := ogfake.New("og-key")
	defer og.Close()
	const bob, carol, dave, alice = "bob@example.com", "carol@example.com", "dave@example.com", "alice@example.com"
	h0 := time.Date(2026, 11, 18, 10, 0, 0, 0, time.UTC)
	h1 := h0.Add(30 * time.Minute) // bob -> carol in both services
	h2 := h1.Add(2 * time.Hour)    // carol -> bob
	pd.Set(
		pdfake.OnCall{UserID: "PBOB", Name: "Bob", Email: bob, ScheduleID: "PSCHED", PolicyID: "PPOL", Level: 1, Start: h0.Add(-8 * time.Hour), End: h1},
		pdfake.OnCall{UserID: "PCAROL", Name: "Carol", Email: carol, ScheduleID: "PSCHED", PolicyID: "PPOL", Level: 1, Start: h1, End: h2},
		pdfake.OnCall{UserID: "PBOB", Name: "Bob", Email: bob, ScheduleID: "PSCHED", PolicyID: "PPOL", Level: 1, Start: h2, End: h2.Add(24 * time.Hour)},
	)
	og.Set("9a1e3b52-6a0c-4e1f-9a55-0d2c1f5e7b10", "ops-primary",
		ogfake.Turn{Email: bob, Start: h0.Add(-8 * time.Hour), End: h1},
		ogfake.Turn{Email: carol, Start: h1, End: h2},
		ogfake.Turn{Email: bob, Start: h2})

	cfg := fmt.Sprintf(`
chat:
  console:
    users: {alice: %s, bob: %s, carol: %s, dave: %s}
    security_channel: security
providers:
  dryrun: {}
  pagerduty: {api_url: "%s", token: pd-token}
  opsgenie: {api_url: "%s", api_key: og-key}
rotations:
  pd:
    source: pagerduty
    schedule_ids: [PSCHED]
    grant: [pd-read]
    cache_for: 1m
    stale_for: 30m
  og:
    source: opsgenie
    schedule_id: ops-primary
    grant: [og-read]
    cache_for: 1m
    stale_for: 30m
roles:
  pd-admin:
    description: admin, approved by the PagerDuty on-call or dave
    provider: dryrun
    group: pd-admins
    max_duration: 4h
    approvers: {rotation: pd, users: [%s]}
  pd-only:
    description: approved by the PagerDuty on-call only
    provider: dryrun
    group: pd-only
    max_duration: 4h
    approvers: {rotation: pd}
  og-admin:
    description: admin, approved by the Opsgenie on-call or dave
    provider: dryrun
    group: og-admins
    max_duration: 4h
    approvers: {rotation: og, users: [%s]}
  pd-read:
    description: read, for the PagerDuty on-call
    provider: dryrun
    group: pd-readers
    max_duration: 1d
    approvers: {users: [%s]}
  og-read:
    description: read, for the Opsgenie on-call
    provider: dryrun
    group: og-readers
    max_duration: 1d
    approvers: {users: [%s]}
`, alice, bob, carol, dave, pd.URL(), og.URL(), dave, dave, dave, dave)
	clock := testclock.New(h0)
	// New builds the PagerDuty and Opsgenie rotations on the test clock.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	s := newRotConsole(t, ctx, cfg, clock, nil)
	jobs := []string{"rotation:og", "rotation:pd"}
	approvers := func(role string) ([]string, error) {
		return s.svc.Approvers(ctx, s.svc.Policy().Roles[role], alice)
	}
	member := func(group, who string) bool { return s.prov.IsMember(group, who) }
	grantOf := func(rotation, who string) *access.Request {
		t.Helper()
		rs, err := s.svc.Store().List(ctx, access.Filter{Requester: who, States: []access.State{access.StateActive}})
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range rs {
			if r.Kind == access.KindRotation && r.Rotation == rotation {
				return r
			}
		}
		return nil
	}

	// Up: the on-call answers are the approvers and hold the shift grants.
	for role, want := range map[string][]string{"pd-admin": {dave, bob}, "og-admin": {dave, bob}, "pd-only": {bob}} {
		if got, err := approvers(role); err != nil || !slices.Equal(got, want) {
			t.Fatalf("%s approvers %v (%v), want %v", role, got, err, want)
		}
	}
	if !member("pd-readers", bob) || !member("og-readers", bob) || member("pd-readers", carol) {
		t.Fatalf("start: shift grants do not follow the services:\n%s", s.out)
	}
	if g := grantOf("pd", bob); g == nil || !g.EndsAt.Equal(h1.Add(access.DefaultRotationGrace)) {
		t.Fatalf("pd shift grant: %+v", g)
	}
	if g := grantOf("og", bob); g == nil || !g.EndsAt.Equal(h0.Add(access.RollingWindow)) {
		t.Fatalf("og shift grant (rolling window): %+v", g)
	}

	// Five-minute checks up to and across the handoff.
	for at := h0.Add(5 * time.Minute); !at.After(h1.Add(25 * time.Minute)); at = at.Add(5 * time.Minute) {
		s.at(t, ctx, at, jobs...)
		if at.Equal(h1) {
			if !member("pd-readers", carol) || !member("og-readers", carol) || !member("pd-readers", bob) || !member("og-readers", bob) {
				t.Fatalf("at the handoff: want carol added and bob kept for the grace\n%s", s.out)
			}
			if g := grantOf("og", bob); g == nil || !g.EndsAt.Equal(h1.Add(access.DefaultRotationGrace)) {
				t.Fatalf("og: bob's grant after the handoff: %+v", g)
			}
		}
	}
	if member("pd-readers", bob) || member("og-readers", bob) {
		t.Fatal("bob kept the shift grants after the grace")
	}
	for role, want := range map[string][]string{"pd-admin": {dave, carol}, "og-admin": {dave, carol}} {
		if got, err := approvers(role); err != nil || !slices.Equal(got, want) {
			t.Fatalf("%s approvers %v (%v), want %v", role, got, err, want)
		}
	}
	pdCarol, ogCarol := grantOf("pd", carol), grantOf("og", carol)
	if pdCarol == nil || !pdCarol.EndsAt.Equal(h2.Add(access.DefaultRotationGrace)) || ogCarol == nil {
		t.Fatalf("carol's shift grants: %+v %+v", pdCarol, ogCarol)
	}

	// Down. Within stale_for the last answer still counts.
	pd.Down(pdfake.Refused)
	og.Down(ogfake.Refused)
	downAt := h1.Add(30 * time.Minute)
	s.at(t, ctx, downAt, jobs...)
	if got, err := approvers("pd-admin"); err != nil || !slices.Equal(got, []string{dave, carol}) {
		t.Fatalf("within stale_for: pd-admin approvers %v (%v)", got, err)
	}
	// Past stale_for: named approvers only, never anyone.
	late := h1.Add(65 * time.Minute)
	s.at(t, ctx, late, jobs...)
	s.at(t, ctx, late.Add(5*time.Minute), jobs...)
	for role, want := range map[string][]string{"pd-admin": {dave}, "og-admin": {dave}, "pd-only": nil} {
		got, err := approvers(role)
		if err == nil || !slices.Equal(got, want) {
			t.Fatalf("down: %s approvers %v (%v), want %v and an error", role, got, err, want)
		}
	}
	if _, err := s.svc.Submit(ctx, access.SubmitInput{Requester: alice, Role: "pd-only", Duration: time.Hour, Reason: "x"}); !errors.Is(err, access.ErrNoApprovers) {
		t.Fatalf("pd-only while down: %v", err)
	}
	s.line(t, "alice: /access pd-admin 1h fixing checkout")
	s.line(t, "carol: approve")
	if member("pd-admins", alice) {
		t.Fatal("the on-call of a stale answer approved")
	}
	s.line(t, "dave: approve")
	if !member("pd-admins", alice) {
		t.Fatalf("the named approver could not approve:\n%s", s.out)
	}
	// No shift grant moved or revoked because of the outage.
	if g := grantOf("pd", carol); g == nil || !g.EndsAt.Equal(pdCarol.EndsAt) || !member("pd-readers", carol) {
		t.Fatalf("pd shift grant changed while the source was down: %+v", g)
	}
	ogEnd := grantOf("og", carol)
	if ogEnd == nil || !member("og-readers", carol) {
		t.Fatal("og shift grant revoked while the source was down")
	}
	o := s.out.String()
	for _, r := range []string{"pd", "og"} {
		if n := strings.Count(o, "Rotation "+r+": shift grants need attention"); n != 1 {
			t.Errorf("rotation %s problem announced %d times, want 1", r, n)
		}
	}
	// The last known grants run to their ends, not beyond.
	s.at(t, ctx, ogEnd.EndsAt)
	if member("og-readers", carol) || !member("pd-readers", carol) {
		t.Fatal("og grant not ended at its last known end, or pd grant ended early")
	}
	s.at(t, ctx, pdCarol.EndsAt)
	if member("pd-readers", carol) {
		t.Fatal("pd grant not ended at its last known end")
	}

	// Back up: the all-clear is announced and grants follow the answer again.
	if err := pd.Up(); err != nil {
		t.Fatal(err)
	}
	if err := og.Up(); err != nil {
		t.Fatal(err)
	}
	s.at(t, ctx, pdCarol.EndsAt.Add(time.Minute), jobs...)
	if !member("pd-readers", bob) || !member("og-readers", bob) || member("pd-readers", carol) || member("og-readers", carol) {
		t.Fatalf("after the outage the grants do not follow the services:\n%s", s.out)
	}
	o = s.out.String()
	for _, r := range []string{"pd", "og"} {
		if n := strings.Count(o, "Rotation "+r+": resolved"); n != 1 {
			t.Errorf("rotation %s all-clear announced %d times, want 1", r, n)
		}
	}
	if rej := pd.Rejected(); len(rej) > 0 {
		t.Errorf("pagerduty fake refused requests: %v", rej)
	}
	if rej := og.Rejected(); len(rej) > 0 {
		t.Errorf("opsgenie fake refused requests: %v", rej)
	}
	if t.Failed() {
		t.Logf("output:\n%s", o)
	}
}

// TestHandoffTimer checks the handoff run of addRotationJobs: the timer
// armed for the handoff runs the sync, also when the job's lock is held
// (a scheduled run keeps it until just before its next tick), and no
// timer is left once ctx ends.
func TestHandoffTimer(t *testing.T) {
	l := rotConfig(t, rotConsoleConfig)
	st, err := bolt.Open(filepath.Join(t.TempDir(), "timer.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	clock := testclock.New(time.Date(2026, 11, 18, 10, 0, 0, 0, time.UTC))
	prov := dryrun.New(nil)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	a, err := New(ctx, l, Deps{Clock: clock, Store: st, Providers: map[string]access.Provisioner{"dryrun": prov}})
	if err != nil {
		t.Fatal(err)
	}
	if !prov.IsMember("prod-readers", "bob@example.com") {
		t.Fatal("start run did not grant the current shift")
	}
	locker := scheduler.NewStoreLocker(st, "", nil)
	key := rotationJob("platform")

	// The handoff has come (the clock is the test's, so the timer is
	// armed here for "now"); another run holds the job lock.
	handoff := time.Date(2026, 11, 23, 8, 0, 0, 0, time.UTC)
	clock.Set(handoff)
	lock, err := locker.Obtain(ctx, "job:"+key, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	defer lock.Release(context.Background())
	a.armHandoff(ctx, "platform", handoff)
	deadline := time.After(20 * time.Second)
	for !prov.IsMember("prod-readers", "carol@example.com") {
		select {
		case <-deadline:
			t.Fatal("the handoff run did not grant carol")
		case <-time.After(5 * time.Millisecond):
		}
	}
	// It armed itself for the next handoff; ending ctx stops that timer.
	next := time.Date(2026, 11, 30, 8, 0, 0, 0, time.UTC)
	for armed := false; !armed; {
		at, ok := a.sched.ArmedAt(key)
		armed = ok && at.Equal(next)
		if !armed {
			select {
			case <-deadline:
				t.Fatal("not armed for the next handoff")
			case <-time.After(5 * time.Millisecond):
			}
		}
	}
	cancel()
	for stopped := false; !stopped; {
		_, armed := a.sched.ArmedAt(key)
		stopped = !armed
		if !stopped {
			select {
			case <-deadline:
				t.Fatal("timer left after ctx ended")
			case <-time.After(5 * time.Millisecond):
			}
		}
	}
	a.armHandoff(ctx, "platform", next.Add(time.Hour))
	if _, armed := a.sched.ArmedAt(key); armed {
		t.Fatal("armed after ctx ended")
	}
}
