package access_test

import (
	"context"
	"errors"
	"path/filepath"
	"reflect"
	"regexp"
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

// groupDir is a provisioner with the GroupMembership capability: the
// dry-run provider plus a directory of groups, answering or failing as
// told, counting its lookups.
type groupDir struct {
	*dryrun.Provider
	mu      sync.Mutex
	members map[string][]string // group -> identities
	fail    error
	asked   int
}

func (g *groupDir) IsMember(_ context.Context, identity, group string) (bool, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.asked++
	if g.fail != nil {
		return false, g.fail
	}
	for _, m := range g.members[group] {
		if m == identity {
			return true, nil
		}
	}
	return false, nil
}

func (g *groupDir) lookups() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.asked
}

func mustHours(t *testing.T, s string) access.Hours {
	t.Helper()
	h, err := access.ParseHours(s)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// gateEnv builds a service whose roles use the request gate. t0 is
// Wednesday 11:00 in Berlin; bob is on call for platform.
func gateEnv(t *testing.T) (*env, *groupDir) {
	t.Helper()
	st, err := bolt.Open(filepath.Join(t.TempDir(), "gate.db"))
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
	base := p.Roles["prod-admin"]
	gated := base
	gated.Name, gated.Group = "gated", "g-gated"
	gated.Requesters = &access.Requesters{Users: []string{"alice@example.com"},
		Groups:    []access.GroupRef{{Provider: "dir", Group: "00g-sre", Name: "sre"}},
		Rotations: []string{"platform"}}
	p.Roles["gated"] = gated
	pat := base
	pat.Name, pat.Group = "incident", "g-incident"
	pat.ReasonPattern = regexp.MustCompile(`^(INC|CHG)-[0-9]+ `)
	pat.ReasonHint = "start with the incident or change id, e.g. INC-1234 checkout down"
	p.Roles["incident"] = pat
	auto := base
	auto.Name, auto.Group = "auto", "g-auto"
	auto.AutoApprove = &access.AutoApprove{Rotations: []string{"platform"}, Hours: mustHours(t, "mon-fri 09:00-18:00 Europe/Berlin")}
	p.Roles["auto"] = auto
	named := base
	named.Name, named.Group = "auto-named", "g-auto-named"
	named.AutoApprove = &access.AutoApprove{Users: []string{"gina@example.com"}}
	p.Roles["auto-named"] = named
	c := testclock.New(t0)
	dir := &groupDir{Provider: dryrun.New(nil), members: map[string][]string{"00g-sre": {"gina@example.com"}}}
	notes := &recorder{}
	svc, err := access.NewService(access.Deps{Store: st, Policy: p,
		Providers: map[string]access.Provisioner{"dryrun": dir.Provider, "dir": dir},
		OnCall:    access.OnCallRouter{"platform": rot}, Notifier: notes, Clock: c})
	if err != nil {
		t.Fatal(err)
	}
	return &env{svc: svc, store: st, prov: dir.Provider, clock: c, notes: notes}, dir
}

// untouched fails unless nothing was stored, audited, granted or told.
func (e *env) untouched(t *testing.T) {
	t.Helper()
	ctx := context.Background()
	all, _ := e.store.List(ctx, access.Filter{})
	evs, _ := e.store.Audit(ctx, time.Time{})
	if len(all) != 0 || len(evs) != 0 || len(e.prov.Changes()) != 0 || len(e.notes.types()) != 0 {
		t.Fatalf("a refusal changed something: %d requests, %d audit events, %d provider calls, events %v",
			len(all), len(evs), len(e.prov.Changes()), e.notes.types())
	}
}

func refusalOf(t *testing.T, err error, want error) access.Refusal {
	t.Helper()
	var rf *access.Refusal
	if !errors.Is(err, want) || !errors.As(err, &rf) {
		t.Fatalf("got %v, want a refusal wrapping %v", err, want)
	}
	got := *rf
	got.Err = nil
	return got
}

func TestRequestersGate(t *testing.T) {
	cases := []struct {
		name string
		who  string
		at   time.Time
		fail error
		ok   bool
		want access.Refusal
		err  error
	}{
		{name: "named user", who: "alice@example.com", at: t0, ok: true},
		{name: "on call now", who: "bob@example.com", at: t0, ok: true},
		{name: "group member", who: "gina@example.com", at: t0, ok: true},
		{name: "named user while the provider fails", who: "Alice@Example.com", at: t0, fail: errors.New("okta: 503"), ok: true},
		{name: "on call next week only", who: "carol@example.com", at: t0, err: access.ErrNotAllowed,
			want: access.Refusal{Code: access.RefuseNotRequester, Role: "gated", People: []string{"alice@example.com"},
				Groups: []string{"sre"}, Rotations: []string{"platform"}}},
		{name: "nobody of them", who: "zed@example.com", at: t0, err: access.ErrNotAllowed,
			want: access.Refusal{Code: access.RefuseNotRequester, Role: "gated", People: []string{"alice@example.com"},
				Groups: []string{"sre"}, Rotations: []string{"platform"}}},
		{name: "group member while the provider fails", who: "gina@example.com", at: t0, fail: errors.New("okta: timeout"),
			err:  access.ErrRequesterUnchecked,
			want: access.Refusal{Code: access.RefuseRequesterUnchecked, Role: "gated", Provider: "dir", Groups: []string{"sre"}}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			e, dir := gateEnv(t)
			e.clock.Set(c.at)
			dir.fail = c.fail
			r, err := e.svc.Submit(context.Background(), access.SubmitInput{Requester: c.who, Role: "gated", Duration: time.Hour, Reason: "fixing checkout"})
			if c.ok {
				if err != nil || r.State != access.StatePending {
					t.Fatalf("submit: %v %+v", err, r)
				}
				return
			}
			if got := refusalOf(t, err, c.err); !reflect.DeepEqual(got, c.want) {
				t.Fatalf("refusal %+v, want %+v", got, c.want)
			}
			e.untouched(t)
		})
	}
}

func TestRequestersGroupAnswersCached(t *testing.T) {
	e, dir := gateEnv(t)
	ctx := context.Background()
	role, _ := e.svc.Policy().Role("gated")
	ask := func() error { return e.svc.MayRequest(ctx, role, "gina@example.com") }
	if err := ask(); err != nil || dir.lookups() != 1 {
		t.Fatalf("first: %v, %d lookups", err, dir.lookups())
	}
	e.clock.Advance(4*time.Minute + 59*time.Second)
	if err := ask(); err != nil || dir.lookups() != 1 {
		t.Fatalf("within 5m: %v, %d lookups (want the cached answer)", err, dir.lookups())
	}
	// gina leaves the group: the old answer holds until it expires.
	dir.mu.Lock()
	dir.members["00g-sre"] = nil
	dir.mu.Unlock()
	e.clock.Advance(time.Second)
	if err := ask(); !errors.Is(err, access.ErrNotAllowed) || dir.lookups() != 2 {
		t.Fatalf("after 5m: %v, %d lookups (want a fresh no)", err, dir.lookups())
	}
	// A failure is never kept: the next ask goes to the provider again.
	e.clock.Advance(10 * time.Minute)
	dir.fail = errors.New("down")
	if err := ask(); !errors.Is(err, access.ErrRequesterUnchecked) {
		t.Fatalf("failing: %v", err)
	}
	dir.fail = nil
	if err := ask(); !errors.Is(err, access.ErrNotAllowed) || dir.lookups() != 4 {
		t.Fatalf("after the failure: %v, %d lookups", err, dir.lookups())
	}
}

func TestReasonPattern(t *testing.T) {
	cases := []struct {
		reason string
		ok     bool
	}{
		{"INC-1234 checkout down", true},
		{"CHG-9 rotate keys", true},
		{"checkout down INC-1234", false},
		{"INC-x checkout", false},
		{"inc-1234 checkout", false},
	}
	for _, c := range cases {
		t.Run(c.reason, func(t *testing.T) {
			e, _ := gateEnv(t)
			r, err := e.svc.Submit(context.Background(), access.SubmitInput{Requester: "alice@example.com", Role: "incident", Duration: time.Hour, Reason: c.reason})
			if c.ok {
				if err != nil || r.State != access.StatePending {
					t.Fatalf("submit: %v", err)
				}
				return
			}
			want := access.Refusal{Code: access.RefuseReasonPattern, Role: "incident", Pattern: `^(INC|CHG)-[0-9]+ `,
				Hint: "start with the incident or change id, e.g. INC-1234 checkout down"}
			if got := refusalOf(t, err, access.ErrReasonPattern); !reflect.DeepEqual(got, want) {
				t.Fatalf("refusal %+v, want %+v", got, want)
			}
			e.untouched(t)
		})
	}
}

func TestAutoApprove(t *testing.T) {
	sat := time.Date(2026, 11, 21, 11, 0, 0, 0, time.UTC)     // Saturday noon in Berlin
	evening := time.Date(2026, 11, 18, 17, 0, 0, 0, time.UTC) // Wednesday 18:00 in Berlin: the window has closed
	cases := []struct {
		name, who, role string
		at              time.Time
		rule            string // "" : waits for approval
	}{
		{"on call in hours", "bob@example.com", "auto", t0, "on call for platform during mon-fri 09:00-18:00 Europe/Berlin"},
		{"on call at the window's last minute", "bob@example.com", "auto", evening.Add(-time.Minute), "on call for platform during mon-fri 09:00-18:00 Europe/Berlin"},
		{"on call after hours", "bob@example.com", "auto", evening, ""},
		{"on call on saturday", "bob@example.com", "auto", sat, ""},
		{"not on call", "carol@example.com", "auto", t0, ""},
		{"named user, any time", "gina@example.com", "auto-named", sat, "listed for auto-approval"},
		{"not named", "alice@example.com", "auto-named", t0, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			e, _ := gateEnv(t)
			e.clock.Set(c.at)
			ctx := context.Background()
			r, err := e.svc.Submit(ctx, access.SubmitInput{Requester: c.who, Role: c.role, Duration: time.Hour, Reason: "fixing checkout"})
			if err != nil {
				t.Fatal(err)
			}
			if c.rule == "" {
				if r.State != access.StatePending || r.AutoApproved != "" || len(e.prov.Changes()) != 0 {
					t.Fatalf("want a pending request, got %s (%q)", r.State, r.AutoApproved)
				}
				return
			}
			if r.State != access.StateActive || r.AutoApproved != c.rule || !r.EndsAt.Equal(c.at.Add(time.Hour)) {
				t.Fatalf("want active until %s by %q, got %s until %s by %q", c.at.Add(time.Hour), c.rule, r.State, r.EndsAt, r.AutoApproved)
			}
			if got, _ := e.prov.Members(ctx, r.Group); len(got) != 1 || got[0] != c.who {
				t.Fatalf("members %v", got)
			}
			evs, _ := e.store.Audit(ctx, time.Time{})
			var acts []string
			for _, ev := range evs {
				acts = append(acts, string(ev.Action)+"/"+ev.Actor)
				if ev.Action == access.ActApproved && (ev.Detail != "auto-approved: "+c.rule || ev.To != access.StateApproved) {
					t.Fatalf("approval event %+v", ev)
				}
			}
			want := []string{"submitted/" + c.who, "approved/accessbot", "granted/accessbot"}
			if !reflect.DeepEqual(acts, want) {
				t.Fatalf("audit %v, want %v", acts, want)
			}
			if len(r.Decisions) != 1 || r.Decisions[0].By != access.SystemActor {
				t.Fatalf("decisions %+v", r.Decisions)
			}
			if n := e.notes.count(access.EvSubmitted); n != 1 {
				t.Fatalf("%d card events", n)
			}
			// Nobody can decide it any more: it is not pending.
			if _, err := e.svc.Decide(ctx, r.ID, "dave@example.com", false, "no"); err == nil {
				t.Fatal("an auto-approved request was denied afterwards")
			}
		})
	}
}

// A requester outside requesters is never auto-approved, and the
// reason pattern still holds for those who would be.
func TestAutoApproveAfterGate(t *testing.T) {
	e, _ := gateEnv(t)
	p := e.svc.Policy()
	role := p.Roles["auto"]
	role.Requesters = &access.Requesters{Users: []string{"alice@example.com"}}
	role.ReasonPattern = regexp.MustCompile(`^INC-`)
	p.Roles["auto"] = role
	_, err := e.svc.Submit(context.Background(), access.SubmitInput{Requester: "bob@example.com", Role: "auto", Duration: time.Hour, Reason: "x"})
	if !errors.Is(err, access.ErrNotAllowed) {
		t.Fatalf("got %v", err)
	}
	role.Requesters = nil
	p.Roles["auto"] = role
	_, err = e.svc.Submit(context.Background(), access.SubmitInput{Requester: "bob@example.com", Role: "auto", Duration: time.Hour, Reason: "x"})
	if !errors.Is(err, access.ErrReasonPattern) {
		t.Fatalf("got %v", err)
	}
	e.untouched(t)
}

func TestGroupProviderWithoutCapability(t *testing.T) {
	st, err := bolt.Open(filepath.Join(t.TempDir(), "x.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	p := policy()
	r := p.Roles["prod-admin"]
	r.Requesters = &access.Requesters{Groups: []access.GroupRef{{Provider: "dryrun", Group: "x"}}}
	p.Roles["prod-admin"] = r
	_, err = access.NewService(access.Deps{Store: st, Policy: p, Providers: map[string]access.Provisioner{"dryrun": dryrun.New(nil)}})
	if err == nil || !strings.Contains(err.Error(), "cannot tell group membership") {
		t.Fatalf("got %v", err)
	}
}

func TestParseHours(t *testing.T) {
	berlin, _ := time.LoadLocation("Europe/Berlin")
	at := func(day, h, m int) time.Time { return time.Date(2026, 11, day, h, m, 0, 0, berlin) } // 16 Nov 2026 is a Monday
	cases := []struct {
		in      string
		bad     string // part of the error
		inside  []time.Time
		outside []time.Time
	}{
		{in: "mon-fri 09:00-18:00 Europe/Berlin", inside: []time.Time{at(16, 9, 0), at(20, 17, 59)},
			outside: []time.Time{at(16, 8, 59), at(16, 18, 0), at(21, 12, 0), at(22, 12, 0)}},
		{in: "sat,sun 00:00-24:00 Europe/Berlin", inside: []time.Time{at(21, 0, 0), at(22, 23, 59)}, outside: []time.Time{at(20, 23, 59), at(23, 0, 0)}},
		{in: "wed 10:00-11:00 UTC", inside: []time.Time{time.Date(2026, 11, 18, 10, 30, 0, 0, time.UTC)},
			outside: []time.Time{time.Date(2026, 11, 18, 11, 0, 0, 0, time.UTC), time.Date(2026, 11, 19, 10, 30, 0, 0, time.UTC)}},
		{in: "fri-mon 08:00-09:00 Europe/Berlin", inside: []time.Time{at(20, 8, 0), at(22, 8, 30), at(23, 8, 59)}, outside: []time.Time{at(24, 8, 30)}},
		{in: "09:00-10:00 Europe/Berlin", inside: []time.Time{at(18, 9, 30), at(22, 9, 30)}, outside: []time.Time{at(18, 10, 0)}},
		{in: "Mon-Fri 09:00-18:00 America/New_York", inside: []time.Time{time.Date(2026, 11, 16, 14, 0, 0, 0, time.UTC)}},
		{in: "mon-fry 09:00-18:00 UTC", bad: `"fry" is not a day`},
		{in: "mon-fri 9-18 UTC", bad: `"9" is not a time of day HH:MM`},
		{in: "mon-fri 18:00-09:00 UTC", bad: "ends before it starts"},
		{in: "mon-fri 09:00-25:00 UTC", bad: `"25:00" is not a time of day`},
		{in: "mon-fri 09:00-18:00 Mars/Olympus", bad: `"Mars/Olympus" is not an IANA time zone`},
		{in: "mon-fri 09:00-18:00", bad: "not both a time range and a zone"},
		{in: "", bad: "[days] HH:MM-HH:MM zone"},
	}
	for _, c := range cases {
		t.Run(c.in, func(t *testing.T) {
			h, err := access.ParseHours(c.in)
			if c.bad != "" {
				if !errors.Is(err, access.ErrBadHours) || !strings.Contains(err.Error(), c.bad) {
					t.Fatalf("got %v, want an error saying %q", err, c.bad)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			for _, x := range c.inside {
				if !h.Contains(x) {
					t.Errorf("%s not inside", x)
				}
			}
			for _, x := range c.outside {
				if h.Contains(x) {
					t.Errorf("%s inside", x)
				}
			}
		})
	}
}

// An extension is a request too: the role's requesters and reason
// pattern hold for it.
func TestGateHoldsForExtensions(t *testing.T) {
	e, _ := gateEnv(t)
	ctx := context.Background()
	p := e.svc.Policy()
	role := p.Roles["incident"]
	role.Requesters = &access.Requesters{Users: []string{"alice@example.com"}}
	p.Roles["incident"] = role
	r, err := e.svc.Submit(ctx, access.SubmitInput{Requester: "alice@example.com", Role: "incident", Duration: time.Hour, Reason: "INC-1 checkout"})
	if err != nil {
		t.Fatal(err)
	}
	if r, err = e.svc.Decide(ctx, r.ID, "dave@example.com", true, ""); err != nil || r.State != access.StateActive {
		t.Fatalf("decide: %v", err)
	}
	if _, err := e.svc.Extend(ctx, r.ID, "alice@example.com", time.Hour, "more time"); !errors.Is(err, access.ErrReasonPattern) {
		t.Fatalf("extension off the pattern: %v", err)
	}
	role.Requesters = &access.Requesters{Users: []string{"zed@example.com"}}
	p.Roles["incident"] = role
	if _, err := e.svc.Extend(ctx, r.ID, "alice@example.com", time.Hour, "INC-1 more time"); !errors.Is(err, access.ErrNotAllowed) {
		t.Fatalf("extension by someone no longer among the requesters: %v", err)
	}
	if pend, _ := e.store.List(ctx, access.Filter{States: []access.State{access.StatePending}}); len(pend) != 0 {
		t.Fatalf("%d extensions stored", len(pend))
	}
	role.Requesters = nil
	p.Roles["incident"] = role
	if x, err := e.svc.Extend(ctx, r.ID, "alice@example.com", time.Hour, "INC-1 more time"); err != nil || x.State != access.StatePending {
		t.Fatalf("extension: %v", err)
	}
}
