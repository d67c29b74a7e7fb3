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

// remindRole is a role with reminders and escalation: dave approves,
// heidi and the on-call person of "secondary" (carol this week) are
// asked at escalation.
func remindRole(remind, escalate, ttl time.Duration) access.Role {
	return access.Role{Name: "remind", Description: "reminded", Provider: "dryrun", Group: "g-remind",
		MaxDuration: 4 * time.Hour, DefaultDuration: time.Hour, ApproverUsers: []string{"dave@example.com"},
		Approvals: 1, PendingTTL: ttl, RemindAfter: remind, EscalateAfter: escalate,
		EscalateUsers: []string{"heidi@example.com"}, EscalateRotations: []string{"secondary"}}
}

// newRemindEnv is newEnv with role added to the policy and a rotation
// "secondary" on which carol holds this week.
func newRemindEnv(t *testing.T, role access.Role) *env {
	t.Helper()
	st, err := bolt.Open(filepath.Join(t.TempDir(), "test.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	rot := func(name string, members ...string) access.OnCall {
		r, errs := static.New(static.Config{Name: name, Timezone: "Europe/Berlin", Handoff: "monday 09:00",
			Start: "2026-11-16", Members: members})
		if len(errs) > 0 {
			t.Fatal(errs)
		}
		return r
	}
	p := policy()
	p.Roles[role.Name] = role
	p.Rotations["secondary"] = access.Rotation{Name: "secondary", Source: "static"}
	c := testclock.New(t0)
	prov := dryrun.New(nil)
	notes := &recorder{}
	svc, err := access.NewService(access.Deps{Store: st, Policy: p,
		Providers: map[string]access.Provisioner{"dryrun": prov},
		OnCall: access.OnCallRouter{"platform": rot("platform", "bob@example.com", "carol@example.com"),
			"secondary": rot("secondary", "carol@example.com", "bob@example.com")},
		Notifier: notes, Clock: c})
	if err != nil {
		t.Fatal(err)
	}
	return &env{svc: svc, store: st, prov: prov, clock: c, notes: notes}
}

// runUntil moves the clock from due time to due time of request id (as
// the expiry engine does) until end, processing at each, and returns the
// times (offsets from the submit) at which each audited action of the
// request happened.
func (e *env) runUntil(t *testing.T, id string, end time.Time) map[access.Action][]time.Duration {
	t.Helper()
	ctx := context.Background()
	for range 50 {
		r, err := e.store.Get(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		at, ok := r.DueAt()
		if !ok || at.After(end) {
			break
		}
		if at.After(e.clock.Now()) {
			e.clock.Set(at)
		}
		e.process(t)
	}
	return e.actionTimes(t, id)
}

func (e *env) actionTimes(t *testing.T, id string) map[access.Action][]time.Duration {
	t.Helper()
	evs, err := e.store.Audit(context.Background(), time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	out := map[access.Action][]time.Duration{}
	for _, ev := range evs {
		if ev.RequestID == id {
			out[ev.Action] = append(out[ev.Action], ev.At.Sub(t0))
		}
	}
	return out
}

func TestReminderSchedule(t *testing.T) {
	m := time.Minute
	for name, tc := range map[string]struct {
		remind, escalate, ttl time.Duration
		reminders             []time.Duration
		escalated             []time.Duration
		timedOut              time.Duration
	}{
		"backoff, at most three": {10 * m, 0, 3 * time.Hour, []time.Duration{10 * m, 30 * m, 70 * m}, nil, 3 * time.Hour},
		"cut short by the ttl":   {10 * m, 0, 40 * m, []time.Duration{10 * m, 30 * m}, nil, 40 * m},
		"none at the ttl":        {30 * m, 0, 30 * m, nil, nil, 30 * m},
		"with escalation":        {10 * m, 30 * m, time.Hour, []time.Duration{10 * m, 30 * m}, []time.Duration{30 * m}, time.Hour},
		"escalation only":        {0, 20 * m, time.Hour, nil, []time.Duration{20 * m}, time.Hour},
		"escalation after ttl":   {0, time.Hour, time.Hour, nil, nil, time.Hour},
	} {
		t.Run(name, func(t *testing.T) {
			e := newRemindEnv(t, remindRole(tc.remind, tc.escalate, tc.ttl))
			r := e.submit(t, "alice@example.com", "remind", time.Hour)
			got := e.runUntil(t, r.ID, t0.Add(24*time.Hour))
			if !slices.Equal(got[access.ActReminded], tc.reminders) {
				t.Errorf("reminders at %v, want %v", got[access.ActReminded], tc.reminders)
			}
			if !slices.Equal(got[access.ActEscalated], tc.escalated) {
				t.Errorf("escalated at %v, want %v", got[access.ActEscalated], tc.escalated)
			}
			if want := []time.Duration{tc.timedOut}; !slices.Equal(got[access.ActTimedOut], want) {
				t.Errorf("timed out at %v, want %v", got[access.ActTimedOut], want)
			}
			if n := e.notes.count(access.EvReminder); n != len(tc.reminders) {
				t.Errorf("%d reminder notifications, want %d", n, len(tc.reminders))
			}
			if n := e.notes.count(access.EvEscalated); n != len(tc.escalated) {
				t.Errorf("%d escalation notifications, want %d", n, len(tc.escalated))
			}
			// Processing again at any time repeats nothing.
			e.process(t)
			if again := e.actionTimes(t, r.ID); len(again[access.ActReminded]) != len(tc.reminders) {
				t.Errorf("a second pass reminded again: %v", again[access.ActReminded])
			}
		})
	}
}

func TestReminderDetailNamesTheUndecided(t *testing.T) {
	role := remindRole(10*time.Minute, 0, time.Hour)
	role.ApproverUsers = []string{"dave@example.com", "heidi@example.com"}
	role.Approvals = 2
	e := newRemindEnv(t, role)
	ctx := context.Background()
	r := e.submit(t, "alice@example.com", "remind", time.Hour)
	e.clock.Advance(5 * time.Minute)
	if _, err := e.svc.Decide(ctx, r.ID, "dave@example.com", true, ""); err != nil {
		t.Fatal(err)
	}
	e.clock.Advance(5 * time.Minute)
	e.process(t)
	evs, _ := e.store.Audit(ctx, time.Time{})
	var detail string
	for _, ev := range evs {
		if ev.Action == access.ActReminded {
			detail = ev.Detail
		}
	}
	if detail != "reminder 1 of 3 to heidi@example.com" {
		t.Fatalf("reminder detail %q", detail)
	}
	got, _ := e.store.Get(ctx, r.ID)
	if u := got.Undecided(); !slices.Equal(u, []string{"heidi@example.com"}) {
		t.Fatalf("undecided %v", u)
	}
}

func TestEscalation(t *testing.T) {
	ctx := context.Background()
	for name, tc := range map[string]struct {
		who     string
		advance time.Duration
		allowed bool
	}{
		"named escalation user before":     {"heidi@example.com", 29 * time.Minute, false},
		"named escalation user after":      {"heidi@example.com", 30 * time.Minute, true},
		"on-call of the rotation after":    {"carol@example.com", 31 * time.Minute, true},
		"on-call of the rotation before":   {"carol@example.com", 10 * time.Minute, false},
		"a stranger after escalation":      {"mallory@example.com", 31 * time.Minute, false},
		"off-call rotation member after":   {"bob@example.com", 31 * time.Minute, false},
		"the requester after escalation":   {"alice@example.com", 31 * time.Minute, false},
		"the original approver throughout": {"dave@example.com", 31 * time.Minute, true},
	} {
		t.Run(name, func(t *testing.T) {
			e := newRemindEnv(t, remindRole(0, 30*time.Minute, time.Hour))
			r := e.submit(t, "alice@example.com", "remind", time.Hour)
			e.runUntil(t, r.ID, t0.Add(tc.advance))
			e.clock.Set(t0.Add(tc.advance))
			before, _ := e.store.Get(ctx, r.ID)
			got, err := e.svc.Decide(ctx, r.ID, tc.who, true, "")
			if tc.allowed {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				if got.State != access.StateActive || !e.prov.IsMember("g-remind", "alice@example.com") {
					t.Fatalf("state %s, member %v", got.State, e.prov.IsMember("g-remind", "alice@example.com"))
				}
				return
			}
			if !errors.Is(err, access.ErrNotAllowed) && !errors.Is(err, access.ErrSelfApproval) {
				t.Fatalf("not refused: %v", err)
			}
			after, _ := e.store.Get(ctx, r.ID)
			if after.Version != before.Version || after.State != access.StatePending {
				t.Fatalf("a refusal changed the request: v%d -> v%d, %s", before.Version, after.Version, after.State)
			}
		})
	}
}

func TestEscalationRecorded(t *testing.T) {
	e := newRemindEnv(t, remindRole(0, 30*time.Minute, time.Hour))
	ctx := context.Background()
	r := e.submit(t, "alice@example.com", "remind", time.Hour)
	if r.Escalated() || !r.EscalateAt.Equal(t0.Add(30*time.Minute)) {
		t.Fatalf("new request: escalated %v, escalate at %v", r.Escalated(), r.EscalateAt)
	}
	if at, _ := r.DueAt(); !at.Equal(r.EscalateAt) {
		t.Fatalf("due at %v, want the escalation %v", at, r.EscalateAt)
	}
	if w, _ := e.svc.AwaitingDecision(ctx, "heidi@example.com"); len(w) != 0 {
		t.Fatalf("waiting for heidi before the escalation: %d", len(w))
	}
	e.runUntil(t, r.ID, t0.Add(30*time.Minute))
	got, _ := e.store.Get(ctx, r.ID)
	if !got.Escalated() || !slices.Equal(got.EscalatedTo, []string{"heidi@example.com", "carol@example.com"}) {
		t.Fatalf("escalated %v to %v", got.Escalated(), got.EscalatedTo)
	}
	// Their Home and /access list show it waiting for their decision.
	if w, _ := e.svc.AwaitingDecision(ctx, "heidi@example.com"); len(w) != 1 || w[0].ID != r.ID {
		t.Fatalf("waiting for heidi after the escalation: %v", w)
	}
	if at, _ := got.DueAt(); !at.Equal(got.PendingUntil) {
		t.Fatalf("due at %v after the escalation, want the time-out %v", at, got.PendingUntil)
	}
	evs, _ := e.store.Audit(ctx, time.Time{})
	i := slices.IndexFunc(evs, func(ev access.AuditEvent) bool { return ev.Action == access.ActEscalated })
	if i < 0 || !strings.Contains(evs[i].Detail, "escalated to heidi@example.com, carol@example.com") || evs[i].Actor != access.SystemActor {
		t.Fatalf("escalation audit: %+v", evs)
	}
	// The escalated people now learn about the request (involved).
	if _, err := e.svc.Cancel(ctx, r.ID, "heidi@example.com"); !errors.Is(err, access.ErrNotAllowed) {
		t.Fatalf("cancel by heidi: %v", err)
	}
	var ref *access.Refusal
	if _, err := e.svc.Cancel(ctx, r.ID, "heidi@example.com"); !errors.As(err, &ref) || ref.Code != access.RefuseCancelNotYours {
		t.Fatalf("heidi is told the request is not hers, got %v", err)
	}
}

func TestNoReminderAfterTheEnd(t *testing.T) {
	ctx := context.Background()
	for name, end := range map[string]func(e *env, id string) error{
		"approved": func(e *env, id string) error {
			_, err := e.svc.Decide(ctx, id, "dave@example.com", true, "")
			return err
		},
		"denied": func(e *env, id string) error {
			_, err := e.svc.Decide(ctx, id, "dave@example.com", false, "no")
			return err
		},
		"cancelled": func(e *env, id string) error {
			_, err := e.svc.Cancel(ctx, id, "alice@example.com")
			return err
		},
	} {
		t.Run(name, func(t *testing.T) {
			e := newRemindEnv(t, remindRole(10*time.Minute, 30*time.Minute, time.Hour))
			r := e.submit(t, "alice@example.com", "remind", time.Hour)
			e.clock.Advance(5 * time.Minute)
			if err := end(e, r.ID); err != nil {
				t.Fatal(err)
			}
			for range 12 { // every 10 minutes for two hours
				e.clock.Advance(10 * time.Minute)
				e.process(t)
			}
			got := e.actionTimes(t, r.ID)
			if len(got[access.ActReminded])+len(got[access.ActEscalated]) > 0 || e.notes.count(access.EvReminder)+e.notes.count(access.EvEscalated) > 0 {
				t.Fatalf("reminded %v, escalated %v after the end", got[access.ActReminded], got[access.ActEscalated])
			}
		})
	}
	t.Run("timed out", func(t *testing.T) {
		e := newRemindEnv(t, remindRole(10*time.Minute, 0, 15*time.Minute))
		r := e.submit(t, "alice@example.com", "remind", time.Hour)
		e.clock.Advance(20 * time.Minute) // the engine was down past the reminder and the ttl
		e.process(t)
		got := e.actionTimes(t, r.ID)
		if len(got[access.ActReminded]) > 0 || len(got[access.ActTimedOut]) != 1 {
			t.Fatalf("reminded %v, timed out %v", got[access.ActReminded], got[access.ActTimedOut])
		}
	})
}

// TestReminderAfterDowntime: an engine that was down past several
// reminder times sends one reminder, not a burst, and schedules the next
// from now.
func TestReminderAfterDowntime(t *testing.T) {
	e := newRemindEnv(t, remindRole(10*time.Minute, 0, 3*time.Hour))
	r := e.submit(t, "alice@example.com", "remind", time.Hour)
	e.clock.Advance(45 * time.Minute) // past the first two reminder times
	e.process(t)
	e.process(t)
	got, _ := e.store.Get(context.Background(), r.ID)
	if got.Reminders != 1 || !got.RemindAt.Equal(t0.Add(65*time.Minute)) {
		t.Fatalf("%d reminders, next at %v", got.Reminders, got.RemindAt.Sub(t0))
	}
}
