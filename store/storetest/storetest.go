// Package storetest is the conformance suite for access.Store
// implementations. A store package runs it from its tests:
//
//	func TestStore(t *testing.T) {
//		storetest.Run(t, openFresh, reopenSame)
//	}
//
// Open returns a new, empty store and arranges for it to be closed when the
// test ends. Reopen closes a store and returns a new one over the same data,
// as a process restart would.
//
// Times in the suite are whole milliseconds unless a subtest is about
// precision: a store may keep the due index at millisecond precision, in
// which case an entry becomes due at most one millisecond late, never early.
package storetest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/accessbot/accessbot/access"
)

// Open returns a fresh, empty store that is closed when t ends.
type Open func(t *testing.T) access.Store

// Reopen closes s and returns a store over the same data.
type Reopen func(t *testing.T, s access.Store) access.Store

// base is the suite's reference time; nothing depends on the wall clock
// except the expiry of claims and seen ids.
var base = time.Date(2030, 3, 14, 9, 26, 53, 0, time.UTC)

// Run runs every conformance subtest, each against a fresh store.
func Run(t *testing.T, open Open, reopen Reopen) {
	tests := []struct {
		name string
		fn   func(t *testing.T, s access.Store)
	}{
		{"CreateGetRoundTrip", testCreateGet},
		{"CreateAndGetCopy", testCopies},
		{"CreateExists", testCreateExists},
		{"CreateConcurrentSameID", testCreateConcurrent},
		{"CreateInvalid", testCreateInvalid},
		{"NotFound", testNotFound},
		{"UpdateAppliesAndAudits", testUpdate},
		{"UpdateIgnoresVersionAndID", testUpdateVersion},
		{"UpdateFnErrorWritesNothing", testUpdateFnError},
		{"List", testList},
		{"ListFollowsUpdates", testListAfterUpdate},
		{"ListSameCreatedAt", testListTies},
		{"DuePending", testDuePending},
		{"DueActive", testDueActive},
		{"DueRemovedWhenTerminal", testDueTerminal},
		{"DueMoved", testDueMoved},
		{"DueOrderAndLimit", testDueOrder},
		{"DueFollowsDueAt", testDueAllStates},
		{"DueSubMillisecond", testDueSubMilli},
		{"Claim", testClaim},
		{"ClaimExpiry", testClaimExpiry},
		{"Seen", testSeen},
		{"SeenExpiry", testSeenExpiry},
		{"Counter", testCounter},
		{"CounterExpiry", testCounterExpiry},
		{"Audit", testAudit},
		{"AppendAudit", testAppendAudit},
		{"ConcurrentApprove", testConcurrentApprove},
		{"ConcurrentDecisions", testConcurrentDecisions},
		{"CreateManyAllOrNothing", testCreateMany},
		{"CreateManyExists", testCreateManyExists},
		{"CreateManyConcurrent", testCreateManyConcurrent},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) { tc.fn(t, open(t)) })
	}
	t.Run("Restart", func(t *testing.T) { testRestart(t, open, reopen) })
}

// ctx returns a context bounded well beyond any subtest's needs.
func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), time.Minute)
	t.Cleanup(cancel)
	return c
}

// fullRequest has every field set to a non-zero value.
func fullRequest(id string) *access.Request {
	at := base.Add(123456789 * time.Nanosecond)
	berlin := time.FixedZone("CET", 3600)
	return &access.Request{
		ID:           id,
		Version:      7, // the store sets it
		Kind:         access.KindExtension,
		Requester:    "alice@example.com",
		Role:         "prod-admin",
		Provider:     "aws",
		Group:        "90677f8d-1234-5678-9abc-def012345678",
		Duration:     2*time.Hour + 30*time.Minute + 1,
		Reason:       "fixing the checkout outage: \"quoted\", <b>markup</b>, ünïcødé, 🚨\nsecond line",
		State:        access.StateActive,
		Rotation:     "platform",
		Target:       "r-target23",
		CreatedAt:    at,
		UpdatedAt:    at.Add(time.Minute),
		PendingUntil: at.Add(15 * time.Minute),
		Approvers:    []string{"bob@example.com", "carol@example.com"},
		Needed:       2,
		Decisions: []access.Decision{
			{By: "bob@example.com", Approve: true, Reason: "ok", At: at.Add(2 * time.Minute)},
			{By: "carol@example.com", Approve: true, At: at.Add(3 * time.Minute).In(berlin)},
		},
		GrantedAt:      at.Add(4 * time.Minute),
		EndsAt:         at.Add(2*time.Hour + 4*time.Minute),
		EndedAt:        at.Add(5 * time.Minute),
		EndReason:      access.EndRevoked,
		EndedBy:        "dave@example.com",
		Failure:        "the provider refused",
		RetryAt:        at.Add(6 * time.Minute),
		Attempts:       3,
		FailingSince:   at.Add(7 * time.Minute),
		Alerted:        true,
		LastError:      "ThrottlingException: Rate exceeded",
		KeepMembership: true,
		Extensions:     2,
		AckBy:          "erin@example.com",
		AckAt:          at.Add(8 * time.Minute).In(berlin),
		Messages: []access.MessageRef{
			{Platform: "slack", Purpose: "approval", Channel: "C0APPROVALS", ID: "1700000000.000100"},
			{Platform: "discord", Purpose: "requester", Channel: "D0DM", ID: "1234567890123456789", For: "alice@example.com"},
		},
		Cleanup: true,
		Outbox: []access.Announcement{{ID: "revoke_alert", Type: access.EvRevokeAlert, Actor: "accessbot", Reason: "Throttling",
			At: at.Add(9 * time.Minute), Tries: 2, NextTry: at.Add(10 * time.Minute).In(berlin), LastError: "not_in_channel"}},
		// Reminders and escalation.
		RemindEvery: 10*time.Minute + 1,
		Reminders:   2,
		RemindAt:    at.Add(11 * time.Minute),
		EscalateAt:  at.Add(12 * time.Minute).In(berlin),
		EscalatedAt: at.Add(13 * time.Minute),
		EscalatedTo: []string{"heidi@example.com", "frank@example.com"},
		// Scheduled access.
		StartsAt: at.Add(30 * time.Minute).In(berlin), StartZone: "Europe/Berlin", StartedAt: at.Add(30*time.Minute + time.Second),
		Bundle:  "b-full2345",
		Members: []string{id, "r-other234"},
		// Request gate.
		AutoApproved: "on call for platform during mon-fri 09:00-18:00 Europe/Berlin",
	}
}

// simple returns a minimal request.
func simple(id, requester, role string, state access.State, created time.Time) *access.Request {
	return &access.Request{
		ID:        id,
		Kind:      access.KindRequest,
		Requester: requester,
		Role:      role,
		Provider:  "aws",
		Group:     "g-" + role,
		Duration:  time.Hour,
		Reason:    "work",
		State:     state,
		CreatedAt: created,
		UpdatedAt: created,
	}
}

// normalise returns a copy of r with every time in UTC and without a
// monotonic reading, so equal instants compare equal.
func normalise(r *access.Request) *access.Request {
	c := r.Clone()
	normaliseValue(reflect.ValueOf(c).Elem())
	return c
}

var timeType = reflect.TypeOf(time.Time{})

func normaliseValue(v reflect.Value) {
	switch {
	case v.Type() == timeType:
		if v.CanSet() {
			v.Set(reflect.ValueOf(v.Interface().(time.Time).UTC()))
		}
	case v.Kind() == reflect.Struct:
		for i := 0; i < v.NumField(); i++ {
			if v.Type().Field(i).IsExported() {
				normaliseValue(v.Field(i))
			}
		}
	case v.Kind() == reflect.Slice:
		for i := 0; i < v.Len(); i++ {
			normaliseValue(v.Index(i))
		}
	}
}

func sameRequest(t *testing.T, got, want *access.Request) {
	t.Helper()
	if got == nil {
		t.Fatalf("got nil request, want %s", want.ID)
	}
	g, w := normalise(got), normalise(want)
	if !reflect.DeepEqual(g, w) {
		gj, _ := json.MarshalIndent(g, "", "  ")
		wj, _ := json.MarshalIndent(w, "", "  ")
		t.Fatalf("request differs\n got: %s\nwant: %s", gj, wj)
	}
}

func mustCreate(t *testing.T, s access.Store, r *access.Request, events ...access.AuditEvent) {
	t.Helper()
	if err := s.Create(ctx(t), r, events...); err != nil {
		t.Fatalf("Create(%s): %v", r.ID, err)
	}
}

func mustGet(t *testing.T, s access.Store, id string) *access.Request {
	t.Helper()
	r, err := s.Get(ctx(t), id)
	if err != nil {
		t.Fatalf("Get(%s): %v", id, err)
	}
	return r
}

func mustUpdate(t *testing.T, s access.Store, id string, fn func(r *access.Request)) *access.Request {
	t.Helper()
	r, err := s.Update(ctx(t), id, func(r *access.Request) ([]access.AuditEvent, error) {
		fn(r)
		return nil, nil
	})
	if err != nil {
		t.Fatalf("Update(%s): %v", id, err)
	}
	return r
}

func mustAudit(t *testing.T, s access.Store, since time.Time) []access.AuditEvent {
	t.Helper()
	evs, err := s.Audit(ctx(t), since)
	if err != nil {
		t.Fatalf("Audit(%v): %v", since, err)
	}
	return evs
}

func event(id string, action access.Action, actor string, at time.Time) access.AuditEvent {
	return access.AuditEvent{At: at, RequestID: id, Action: action, Actor: actor, Subject: "alice@example.com", Role: "prod-admin"}
}

func testCreateGet(t *testing.T, s access.Store) {
	want := fullRequest("r-full2345")
	v := reflect.ValueOf(*want)
	for i := 0; i < v.NumField(); i++ {
		if v.Field(i).IsZero() {
			t.Fatalf("fixture leaves Request.%s zero: extend fullRequest", v.Type().Field(i).Name)
		}
	}
	in := want.Clone()
	mustCreate(t, s, in)
	if in.Version != 1 {
		t.Errorf("Create left the caller's Version at %d, want 1", in.Version)
	}
	want.Version = 1
	sameRequest(t, mustGet(t, s, want.ID), want)
}

func testCopies(t *testing.T, s access.Store) {
	want := fullRequest("r-copy2345")
	in := want.Clone()
	mustCreate(t, s, in)
	want.Version = 1
	in.Reason = "changed by the caller"
	in.Approvers[0] = "mallory@example.com"
	in.Decisions[0].Approve = false
	got := mustGet(t, s, want.ID)
	got.State = access.StateEnded
	got.Messages[0].ID = "changed"
	got.Decisions = append(got.Decisions, access.Decision{By: "x"})
	sameRequest(t, mustGet(t, s, want.ID), want)

	upd := mustUpdate(t, s, want.ID, func(r *access.Request) {})
	upd.Approvers[1] = "changed"
	want.Version = 2
	sameRequest(t, mustGet(t, s, want.ID), want)

	list, err := s.List(ctx(t), access.Filter{})
	if err != nil || len(list) != 1 {
		t.Fatalf("List = %d requests, %v; want 1", len(list), err)
	}
	list[0].Messages[1].Channel = "changed"
	sameRequest(t, mustGet(t, s, want.ID), want)
}

func testCreateExists(t *testing.T, s access.Store) {
	first := simple("r-exists23", "alice@example.com", "prod-admin", access.StatePending, base)
	mustCreate(t, s, first.Clone(), event(first.ID, access.ActSubmitted, "alice@example.com", base))
	second := simple("r-exists23", "bob@example.com", "prod-read", access.StateActive, base.Add(time.Hour))
	second.EndsAt = base.Add(2 * time.Hour)
	err := s.Create(ctx(t), second, event(second.ID, access.ActBreakGlass, "bob@example.com", base.Add(time.Hour)))
	if !errors.Is(err, access.ErrExists) {
		t.Fatalf("second Create = %v, want ErrExists", err)
	}
	first.Version = 1
	sameRequest(t, mustGet(t, s, first.ID), first)
	if evs := mustAudit(t, s, time.Time{}); len(evs) != 1 || evs[0].Action != access.ActSubmitted {
		t.Fatalf("audit after failed Create = %+v, want only the submitted event", evs)
	}
	if ids, err := s.Due(ctx(t), base.Add(24*time.Hour), 10); err != nil || len(ids) != 0 {
		t.Fatalf("Due after failed Create = %v, %v; want none", ids, err)
	}
	if list, err := s.List(ctx(t), access.Filter{Requester: "bob@example.com"}); err != nil || len(list) != 0 {
		t.Fatalf("List(bob) after failed Create = %d, %v; want none", len(list), err)
	}
}

func testCreateConcurrent(t *testing.T, s access.Store) {
	const n = 20
	var (
		wg      sync.WaitGroup
		mu      sync.Mutex
		ok      int
		unknown []error
	)
	start := make(chan struct{})
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			r := simple("r-race2345", fmt.Sprintf("user%d@example.com", i), "prod-admin", access.StatePending, base)
			err := s.Create(context.Background(), r, event(r.ID, access.ActSubmitted, r.Requester, base))
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err == nil:
				ok++
			case !errors.Is(err, access.ErrExists):
				unknown = append(unknown, err)
			}
		}()
	}
	close(start)
	wg.Wait()
	if ok != 1 || len(unknown) > 0 {
		t.Fatalf("%d of %d concurrent Creates succeeded (want 1); other errors: %v", ok, n, unknown)
	}
	r := mustGet(t, s, "r-race2345")
	evs := mustAudit(t, s, time.Time{})
	if len(evs) != 1 || evs[0].Actor != r.Requester {
		t.Fatalf("audit = %+v, want one event by %s", evs, r.Requester)
	}
}

func testCreateInvalid(t *testing.T, s access.Store) {
	if err := s.Create(ctx(t), nil); err == nil {
		t.Error("Create(nil) succeeded")
	}
	if err := s.Create(ctx(t), simple("", "a@example.com", "r", access.StatePending, base)); err == nil {
		t.Error("Create without id succeeded")
	}
	if _, err := s.Claim(ctx(t), "r-x", "owner", 0); err == nil {
		t.Error("Claim with ttl 0 succeeded")
	}
	if _, err := s.Seen(ctx(t), "ev-1", -time.Second); err == nil {
		t.Error("Seen with a negative ttl succeeded")
	}
}

func testNotFound(t *testing.T, s access.Store) {
	if _, err := s.Get(ctx(t), "r-missing2"); !errors.Is(err, access.ErrNotFound) {
		t.Errorf("Get(missing) = %v, want ErrNotFound", err)
	}
	called := false
	_, err := s.Update(ctx(t), "r-missing2", func(r *access.Request) ([]access.AuditEvent, error) {
		called = true
		return nil, nil
	})
	if !errors.Is(err, access.ErrNotFound) {
		t.Errorf("Update(missing) = %v, want ErrNotFound", err)
	}
	if called {
		t.Error("Update(missing) called fn")
	}
}

func testUpdate(t *testing.T, s access.Store) {
	r := simple("r-update23", "alice@example.com", "prod-admin", access.StatePending, base)
	r.PendingUntil = base.Add(15 * time.Minute)
	r.Needed = 1
	mustCreate(t, s, r.Clone(), event(r.ID, access.ActSubmitted, "alice@example.com", base))

	decided := base.Add(time.Minute)
	got, err := s.Update(ctx(t), r.ID, func(c *access.Request) ([]access.AuditEvent, error) {
		if c.Version != 1 || c.State != access.StatePending {
			return nil, fmt.Errorf("fn got version %d state %s, want 1 pending", c.Version, c.State)
		}
		c.Decisions = append(c.Decisions, access.Decision{By: "bob@example.com", Approve: true, At: decided})
		c.State = access.StateActive
		c.UpdatedAt = decided
		c.GrantedAt = decided
		c.EndsAt = decided.Add(time.Hour)
		return []access.AuditEvent{
			{At: decided, RequestID: c.ID, Action: access.ActApproved, Actor: "bob@example.com", From: access.StatePending, To: access.StateApproved},
			{At: decided, RequestID: c.ID, Action: access.ActGranted, Actor: access.SystemActor, From: access.StateApproved, To: access.StateActive},
		}, nil
	})
	if err != nil {
		t.Fatalf("Update: %v", err)
	}
	want := r.Clone()
	want.Version = 2
	want.Decisions = []access.Decision{{By: "bob@example.com", Approve: true, At: decided}}
	want.State = access.StateActive
	want.UpdatedAt, want.GrantedAt, want.EndsAt = decided, decided, decided.Add(time.Hour)
	sameRequest(t, got, want)
	sameRequest(t, mustGet(t, s, r.ID), want)

	evs := mustAudit(t, s, time.Time{})
	var actions []access.Action
	ids := map[string]bool{}
	for _, ev := range evs {
		actions = append(actions, ev.Action)
		if ev.ID == "" || ids[ev.ID] {
			t.Errorf("audit event id %q empty or repeated", ev.ID)
		}
		ids[ev.ID] = true
	}
	if !slices.Equal(actions, []access.Action{access.ActSubmitted, access.ActApproved, access.ActGranted}) {
		t.Fatalf("audit actions = %v", actions)
	}
	if evs[2].From != access.StateApproved || evs[2].To != access.StateActive || evs[2].Actor != access.SystemActor {
		t.Errorf("granted event = %+v", evs[2])
	}

	// UpdatedAt is fn's business: an update that does not set it keeps it.
	got = mustUpdate(t, s, r.ID, func(c *access.Request) { c.Attempts = 1 })
	if !got.UpdatedAt.Equal(decided) || got.Version != 3 {
		t.Errorf("after an update not touching UpdatedAt: UpdatedAt %v version %d, want %v 3", got.UpdatedAt, got.Version, decided)
	}
}

func testUpdateVersion(t *testing.T, s access.Store) {
	r := simple("r-version2", "alice@example.com", "prod-admin", access.StatePending, base)
	mustCreate(t, s, r)
	got := mustUpdate(t, s, r.ID, func(c *access.Request) {
		c.Version = 99
		c.ID = "r-other234"
		c.Reason = "new reason"
	})
	if got.Version != 2 || got.ID != r.ID || got.Reason != "new reason" {
		t.Fatalf("Update returned version %d id %s reason %q; want 2 %s %q", got.Version, got.ID, got.Reason, r.ID, "new reason")
	}
	if stored := mustGet(t, s, r.ID); stored.Version != 2 || stored.ID != r.ID {
		t.Fatalf("stored version %d id %s; want 2 %s", stored.Version, stored.ID, r.ID)
	}
	if _, err := s.Get(ctx(t), "r-other234"); !errors.Is(err, access.ErrNotFound) {
		t.Fatalf("Get(r-other234) = %v, want ErrNotFound", err)
	}
}

func testUpdateFnError(t *testing.T, s access.Store) {
	r := simple("r-fnerror2", "alice@example.com", "prod-admin", access.StatePending, base)
	r.PendingUntil = base.Add(time.Hour)
	mustCreate(t, s, r.Clone())
	r.Version = 1
	sentinel := errors.New("not pending any more")
	_, err := s.Update(ctx(t), r.ID, func(c *access.Request) ([]access.AuditEvent, error) {
		c.State = access.StateDenied
		c.Reason = "changed"
		return []access.AuditEvent{event(c.ID, access.ActDenied, "bob@example.com", base)}, sentinel
	})
	if err != sentinel { //nolint:errorlint // the error must come back as it is
		t.Fatalf("Update = %v, want fn's error unchanged", err)
	}
	sameRequest(t, mustGet(t, s, r.ID), r)
	if evs := mustAudit(t, s, time.Time{}); len(evs) != 0 {
		t.Fatalf("audit after failed fn = %+v, want none", evs)
	}
	if ids, err := s.Due(ctx(t), base.Add(time.Hour), 10); err != nil || !slices.Equal(ids, []string{r.ID}) {
		t.Fatalf("Due after failed fn = %v, %v; want [%s]", ids, err, r.ID)
	}
}

func listIDs(t *testing.T, s access.Store, f access.Filter) []string {
	t.Helper()
	rs, err := s.List(ctx(t), f)
	if err != nil {
		t.Fatalf("List(%+v): %v", f, err)
	}
	ids := []string{}
	for _, r := range rs {
		ids = append(ids, r.ID)
	}
	return ids
}

func seedList(t *testing.T, s access.Store) {
	for _, r := range []*access.Request{
		simple("r-1", "alice@example.com", "prod-admin", access.StatePending, base.Add(1*time.Second)),
		simple("r-2", "bob@example.com", "prod-admin", access.StateActive, base.Add(2*time.Second)),
		simple("r-3", "alice@example.com", "prod-read", access.StateActive, base.Add(3*time.Second)),
		simple("r-4", "alice@example.com", "prod-admin", access.StateEnded, base.Add(4*time.Second)),
		simple("r-5", "carol@example.com", "prod-read", access.StateDenied, base.Add(5*time.Second)),
	} {
		mustCreate(t, s, r)
	}
}

func testList(t *testing.T, s access.Store) {
	seedList(t, s)
	const (
		alice = "alice@example.com"
	)
	for _, tc := range []struct {
		f    access.Filter
		want []string
	}{
		{access.Filter{}, []string{"r-5", "r-4", "r-3", "r-2", "r-1"}},
		{access.Filter{Limit: 2}, []string{"r-5", "r-4"}},
		{access.Filter{Requester: alice}, []string{"r-4", "r-3", "r-1"}},
		{access.Filter{Requester: alice, Limit: 1}, []string{"r-4"}},
		{access.Filter{Requester: alice, States: []access.State{access.StateActive, access.StatePending}}, []string{"r-3", "r-1"}},
		{access.Filter{Requester: alice, Role: "prod-read"}, []string{"r-3"}},
		{access.Filter{States: []access.State{access.StateActive}}, []string{"r-3", "r-2"}},
		{access.Filter{States: []access.State{access.StateActive, access.StatePending}, Limit: 2}, []string{"r-3", "r-2"}},
		{access.Filter{States: []access.State{access.StatePending, access.StateEnded, access.StateActive}}, []string{"r-4", "r-3", "r-2", "r-1"}},
		{access.Filter{States: []access.State{access.StateActive, access.StateActive}}, []string{"r-3", "r-2"}},
		{access.Filter{Role: "prod-read"}, []string{"r-5", "r-3"}},
		{access.Filter{Role: "prod-admin", States: []access.State{access.StatePending, access.StateEnded}}, []string{"r-4", "r-1"}},
		{access.Filter{Requester: "nobody@example.com"}, []string{}},
		{access.Filter{Requester: "ALICE@example.com"}, []string{}},
		{access.Filter{States: []access.State{access.StateRevoking}}, []string{}},
		{access.Filter{Role: "missing"}, []string{}},
	} {
		if got := listIDs(t, s, tc.f); !slices.Equal(got, tc.want) {
			t.Errorf("List(%+v) = %v, want %v", tc.f, got, tc.want)
		}
	}
}

func testListAfterUpdate(t *testing.T, s access.Store) {
	seedList(t, s)
	mustUpdate(t, s, "r-1", func(r *access.Request) {
		r.State = access.StateActive
		r.EndsAt = base.Add(time.Hour)
	})
	mustUpdate(t, s, "r-5", func(r *access.Request) {
		r.Requester = "dave@example.com"
		r.Role = "prod-admin"
	})
	for _, tc := range []struct {
		f    access.Filter
		want []string
	}{
		{access.Filter{States: []access.State{access.StatePending}}, []string{}},
		{access.Filter{States: []access.State{access.StateActive}}, []string{"r-3", "r-2", "r-1"}},
		{access.Filter{Requester: "carol@example.com"}, []string{}},
		{access.Filter{Requester: "dave@example.com"}, []string{"r-5"}},
		{access.Filter{Role: "prod-read"}, []string{"r-3"}},
		{access.Filter{Role: "prod-admin"}, []string{"r-5", "r-4", "r-2", "r-1"}},
		{access.Filter{}, []string{"r-5", "r-4", "r-3", "r-2", "r-1"}},
	} {
		if got := listIDs(t, s, tc.f); !slices.Equal(got, tc.want) {
			t.Errorf("List(%+v) = %v, want %v", tc.f, got, tc.want)
		}
	}
}

func testListTies(t *testing.T, s access.Store) {
	for _, id := range []string{"r-b", "r-c", "r-a"} {
		mustCreate(t, s, simple(id, "alice@example.com", "prod-admin", access.StatePending, base))
	}
	if got, want := listIDs(t, s, access.Filter{}), []string{"r-c", "r-b", "r-a"}; !slices.Equal(got, want) {
		t.Errorf("List with equal CreatedAt = %v, want %v (ties: id descending)", got, want)
	}
}

func due(t *testing.T, s access.Store, at time.Time, limit int) []string {
	t.Helper()
	ids, err := s.Due(ctx(t), at, limit)
	if err != nil {
		t.Fatalf("Due(%v, %d): %v", at, limit, err)
	}
	if ids == nil {
		ids = []string{}
	}
	return ids
}

func nextDue(t *testing.T, s access.Store) (time.Time, bool) {
	t.Helper()
	at, ok, err := s.NextDue(ctx(t))
	if err != nil {
		t.Fatalf("NextDue: %v", err)
	}
	return at, ok
}

func wantNextDue(t *testing.T, s access.Store, want time.Time) {
	t.Helper()
	at, ok := nextDue(t, s)
	if !ok || !at.Equal(want) {
		t.Fatalf("NextDue = %v, %v; want %v", at, ok, want)
	}
}

func wantNoneDue(t *testing.T, s access.Store) {
	t.Helper()
	if at, ok := nextDue(t, s); ok {
		t.Fatalf("NextDue = %v, want an empty index", at)
	}
	if ids := due(t, s, base.Add(1000*time.Hour), 0); len(ids) != 0 {
		t.Fatalf("Due(far future) = %v, want none", ids)
	}
}

func testDuePending(t *testing.T, s access.Store) {
	wantNoneDue(t, s)
	// Pending without a timeout: nothing scheduled.
	mustCreate(t, s, simple("r-nopend2", "alice@example.com", "prod-admin", access.StatePending, base))
	wantNoneDue(t, s)

	r := simple("r-pending2", "alice@example.com", "prod-admin", access.StatePending, base)
	r.PendingUntil = base.Add(10 * time.Minute)
	mustCreate(t, s, r)
	wantNextDue(t, s, r.PendingUntil)
	if ids := due(t, s, r.PendingUntil.Add(-time.Nanosecond), 10); len(ids) != 0 {
		t.Errorf("Due just before PendingUntil = %v, want none", ids)
	}
	if ids := due(t, s, r.PendingUntil, 10); !slices.Equal(ids, []string{r.ID}) {
		t.Errorf("Due(PendingUntil) = %v, want [%s]", ids, r.ID)
	}
}

func testDueActive(t *testing.T, s access.Store) {
	r := simple("r-active23", "alice@example.com", "prod-admin", access.StateActive, base)
	r.GrantedAt = base
	r.EndsAt = base.Add(2 * time.Hour)
	mustCreate(t, s, r)
	wantNextDue(t, s, r.EndsAt)
	if ids := due(t, s, r.EndsAt.Add(-time.Millisecond), 10); len(ids) != 0 {
		t.Errorf("Due before EndsAt = %v, want none", ids)
	}
	if ids := due(t, s, r.EndsAt, 10); !slices.Equal(ids, []string{r.ID}) {
		t.Errorf("Due(EndsAt) = %v, want [%s]", ids, r.ID)
	}
	if ids := due(t, s, r.EndsAt.Add(time.Hour), 10); !slices.Equal(ids, []string{r.ID}) {
		t.Errorf("Due(after EndsAt) = %v, want [%s]", ids, r.ID)
	}
}

func testDueTerminal(t *testing.T, s access.Store) {
	a := simple("r-term-a2", "alice@example.com", "prod-admin", access.StateActive, base)
	a.EndsAt = base.Add(time.Hour)
	p := simple("r-term-p2", "bob@example.com", "prod-admin", access.StatePending, base)
	p.PendingUntil = base.Add(30 * time.Minute)
	mustCreate(t, s, a)
	mustCreate(t, s, p)
	if ids := due(t, s, base.Add(2*time.Hour), 10); !slices.Equal(ids, []string{p.ID, a.ID}) {
		t.Fatalf("Due = %v, want [%s %s]", ids, p.ID, a.ID)
	}
	// Revoking is still scheduled (retries), ended is not.
	mustUpdate(t, s, a.ID, func(r *access.Request) {
		r.State = access.StateRevoking
		r.UpdatedAt = base.Add(time.Hour)
	})
	if ids := due(t, s, base.Add(2*time.Hour), 10); !slices.Equal(ids, []string{p.ID, a.ID}) {
		t.Fatalf("Due with a revoking request = %v, want [%s %s]", ids, p.ID, a.ID)
	}
	mustUpdate(t, s, a.ID, func(r *access.Request) {
		r.State = access.StateEnded
		r.EndedAt = base.Add(time.Hour)
		r.EndReason = access.EndExpired
	})
	mustUpdate(t, s, p.ID, func(r *access.Request) { r.State = access.StateDenied })
	wantNoneDue(t, s)
}

func testDueMoved(t *testing.T, s access.Store) {
	r := simple("r-moved234", "alice@example.com", "prod-admin", access.StateActive, base)
	r.EndsAt = base.Add(time.Hour)
	mustCreate(t, s, r)
	mustUpdate(t, s, r.ID, func(r *access.Request) { r.EndsAt = base.Add(3 * time.Hour); r.Extensions++ })
	if ids := due(t, s, base.Add(2*time.Hour), 10); len(ids) != 0 {
		t.Fatalf("Due at the old end = %v, want none (entry must move)", ids)
	}
	wantNextDue(t, s, base.Add(3*time.Hour))
	mustUpdate(t, s, r.ID, func(r *access.Request) { r.EndsAt = base.Add(30 * time.Minute) })
	wantNextDue(t, s, base.Add(30*time.Minute))
	if ids := due(t, s, base.Add(5*time.Hour), 0); !slices.Equal(ids, []string{r.ID}) {
		t.Fatalf("Due(far) = %v, want exactly one entry for %s", ids, r.ID)
	}
}

func testDueOrder(t *testing.T, s access.Store) {
	offsets := map[string]time.Duration{
		"r-o3": 3 * time.Hour, "r-o1": time.Hour, "r-o5": 5 * time.Hour,
		"r-o2": 2 * time.Hour, "r-o4": 4 * time.Hour,
	}
	for _, id := range []string{"r-o3", "r-o1", "r-o5", "r-o2", "r-o4"} {
		r := simple(id, "alice@example.com", "prod-admin", access.StateActive, base)
		r.EndsAt = base.Add(offsets[id])
		mustCreate(t, s, r)
	}
	all := []string{"r-o1", "r-o2", "r-o3", "r-o4", "r-o5"}
	if ids := due(t, s, base.Add(10*time.Hour), 100); !slices.Equal(ids, all) {
		t.Errorf("Due(all) = %v, want %v", ids, all)
	}
	if ids := due(t, s, base.Add(10*time.Hour), 0); !slices.Equal(ids, all) {
		t.Errorf("Due(all, no limit) = %v, want %v", ids, all)
	}
	if ids := due(t, s, base.Add(10*time.Hour), 2); !slices.Equal(ids, all[:2]) {
		t.Errorf("Due(all, 2) = %v, want %v", ids, all[:2])
	}
	if ids := due(t, s, base.Add(3*time.Hour), 10); !slices.Equal(ids, all[:3]) {
		t.Errorf("Due(+3h) = %v, want %v", ids, all[:3])
	}
	if ids := due(t, s, base, 10); len(ids) != 0 {
		t.Errorf("Due(base) = %v, want none", ids)
	}
	wantNextDue(t, s, base.Add(time.Hour))
}

// testDueAllStates checks the index against Request.DueAt for every state.
func testDueAllStates(t *testing.T, s access.Store) {
	var rs []*access.Request
	add := func(id string, st access.State, set func(r *access.Request)) {
		r := simple(id, "alice@example.com", "prod-admin", st, base)
		set(r)
		rs = append(rs, r)
		mustCreate(t, s, r)
	}
	add("r-s-pend", access.StatePending, func(r *access.Request) { r.PendingUntil = base.Add(7 * time.Minute) })
	add("r-s-appr", access.StateApproved, func(r *access.Request) { r.UpdatedAt = base.Add(time.Minute) })
	add("r-s-aret", access.StateApproved, func(r *access.Request) { r.RetryAt = base.Add(3 * time.Minute) })
	// Scheduled access: approved in advance, due at its start.
	add("r-s-schd", access.StateApproved, func(r *access.Request) { r.StartsAt = base.Add(11 * time.Minute) })
	add("r-s-actv", access.StateActive, func(r *access.Request) { r.EndsAt = base.Add(9 * time.Minute) })
	add("r-s-revk", access.StateRevoking, func(r *access.Request) { r.UpdatedAt = base.Add(2 * time.Minute) })
	add("r-s-rret", access.StateRevoking, func(r *access.Request) { r.RetryAt = base.Add(5 * time.Minute) })
	for _, st := range []access.State{access.StateEnded, access.StateDenied, access.StateCancelled, access.StateTimedOut, access.StateFailed} {
		add("r-s-"+string(st), st, func(r *access.Request) {
			r.PendingUntil = base.Add(time.Minute)
			r.EndsAt = base.Add(time.Minute)
			r.RetryAt = base.Add(time.Minute)
		})
	}
	type entry struct {
		id string
		at time.Time
	}
	var want []entry
	for _, r := range rs {
		if at, ok := r.DueAt(); ok {
			want = append(want, entry{r.ID, at})
		}
	}
	sort.Slice(want, func(i, j int) bool { return want[i].at.Before(want[j].at) })
	var wantIDs []string
	for _, e := range want {
		wantIDs = append(wantIDs, e.id)
	}
	if ids := due(t, s, base.Add(time.Hour), 0); !slices.Equal(ids, wantIDs) {
		t.Errorf("Due = %v, want %v (from DueAt)", ids, wantIDs)
	}
	wantNextDue(t, s, want[0].at)
}

func testDueSubMilli(t *testing.T, s access.Store) {
	r := simple("r-submilli", "alice@example.com", "prod-admin", access.StateActive, base)
	r.EndsAt = base.Add(time.Hour + 500*time.Microsecond + 7)
	mustCreate(t, s, r)
	at, ok := nextDue(t, s)
	if !ok || at.Before(r.EndsAt) || !at.Before(r.EndsAt.Add(time.Millisecond)) {
		t.Fatalf("NextDue = %v, %v; want within [%v, +1ms)", at, ok, r.EndsAt)
	}
	if ids := due(t, s, at, 10); !slices.Equal(ids, []string{r.ID}) {
		t.Errorf("Due(NextDue) = %v, want [%s]", ids, r.ID)
	}
	if ids := due(t, s, r.EndsAt.Add(-time.Nanosecond), 10); len(ids) != 0 {
		t.Errorf("Due(1ns before EndsAt) = %v, want none (never early)", ids)
	}
	if ids := due(t, s, r.EndsAt.Add(time.Millisecond), 10); !slices.Equal(ids, []string{r.ID}) {
		t.Errorf("Due(EndsAt+1ms) = %v, want [%s]", ids, r.ID)
	}
}

func claim(t *testing.T, s access.Store, id, owner string, ttl time.Duration) bool {
	t.Helper()
	ok, err := s.Claim(ctx(t), id, owner, ttl)
	if err != nil {
		t.Fatalf("Claim(%s, %s): %v", id, owner, err)
	}
	return ok
}

func release(t *testing.T, s access.Store, id, owner string) {
	t.Helper()
	if err := s.Release(ctx(t), id, owner); err != nil {
		t.Fatalf("Release(%s, %s): %v", id, owner, err)
	}
}

func testClaim(t *testing.T, s access.Store) {
	const ttl = time.Minute
	if !claim(t, s, "r-claim234", "replica-a", ttl) {
		t.Fatal("first Claim = false")
	}
	if claim(t, s, "r-claim234", "replica-b", ttl) {
		t.Fatal("Claim by another owner = true while held")
	}
	if !claim(t, s, "r-claim234", "replica-a", ttl) {
		t.Fatal("Claim again by the holder = false")
	}
	if !claim(t, s, "r-other234", "replica-b", ttl) {
		t.Fatal("Claim of another id = false")
	}
	release(t, s, "r-claim234", "replica-b") // not b's: no effect
	if claim(t, s, "r-claim234", "replica-b", ttl) {
		t.Fatal("Release by a non-owner freed the claim")
	}
	release(t, s, "r-claim234", "replica-a")
	release(t, s, "r-claim234", "replica-a") // idempotent
	release(t, s, "r-never234", "replica-a")
	if !claim(t, s, "r-claim234", "replica-b", ttl) {
		t.Fatal("Claim after Release = false")
	}
	if claim(t, s, "r-claim234", "replica-a", ttl) {
		t.Fatal("former holder reclaimed a claim now held by another")
	}

	// Concurrent claims: exactly one winner.
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		wins int
		errs []error
	)
	start := make(chan struct{})
	for i := range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			ok, err := s.Claim(context.Background(), "r-contest2", fmt.Sprintf("replica-%d", i), ttl)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				errs = append(errs, err)
			} else if ok {
				wins++
			}
		}()
	}
	close(start)
	wg.Wait()
	if wins != 1 || len(errs) > 0 {
		t.Fatalf("%d concurrent claims won (want 1), errors %v", wins, errs)
	}
}

// sleepPast waits until d has certainly passed; only lower bounds on time
// are asserted, so a slow machine cannot make this flaky.
func sleepPast(d time.Duration) { time.Sleep(d + 100*time.Millisecond) }

func testClaimExpiry(t *testing.T, s access.Store) {
	const short = 50 * time.Millisecond
	if !claim(t, s, "r-expire23", "replica-a", short) {
		t.Fatal("first Claim = false")
	}
	sleepPast(short)
	if !claim(t, s, "r-expire23", "replica-b", time.Minute) {
		t.Fatal("Claim after the holder's ttl passed = false")
	}
	// A's late Release must not free B's claim.
	release(t, s, "r-expire23", "replica-a")
	if claim(t, s, "r-expire23", "replica-c", time.Minute) {
		t.Fatal("expired holder's Release freed the new holder's claim")
	}
}

func counterOf(t *testing.T, s access.Store) access.Counter {
	t.Helper()
	c, ok := s.(access.Counter)
	if !ok {
		t.Skip("the store has no access.Counter capability")
	}
	return c
}

func incr(t *testing.T, c access.Counter, key string, ttl time.Duration) int64 {
	t.Helper()
	n, err := c.Incr(ctx(t), key, ttl)
	if err != nil {
		t.Fatalf("Incr(%s): %v", key, err)
	}
	return n
}

// testCounter: counts start at 1, are per key, and concurrent increments
// are never lost (a per-user rate limit shared by replicas relies on it).
func testCounter(t *testing.T, s access.Store) {
	c := counterOf(t, s)
	if n := incr(t, c, "cmds:alice", time.Minute); n != 1 {
		t.Fatalf("first Incr = %d, want 1", n)
	}
	if n := incr(t, c, "cmds:alice", time.Minute); n != 2 {
		t.Fatalf("second Incr = %d, want 2", n)
	}
	if n := incr(t, c, "cmds:bob", time.Minute); n != 1 {
		t.Fatalf("Incr of another key = %d, want 1", n)
	}
	if _, err := c.Incr(ctx(t), "cmds:x", 0); err == nil {
		t.Error("Incr with ttl 0 succeeded")
	}
	const workers, each = 8, 25
	var wg sync.WaitGroup
	seenN := make([]bool, workers*each+1)
	var mu sync.Mutex
	var errs []error
	for i := 0; i < workers; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := 0; j < each; j++ {
				n, err := c.Incr(context.Background(), "cmds:contest", time.Minute)
				mu.Lock()
				if err != nil {
					errs = append(errs, err)
				} else if n >= 1 && n <= workers*each {
					if seenN[n] {
						errs = append(errs, fmt.Errorf("count %d returned twice", n))
					}
					seenN[n] = true
				} else {
					errs = append(errs, fmt.Errorf("count %d out of range", n))
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if len(errs) > 0 {
		t.Fatalf("concurrent Incr: %v", errs)
	}
	if n := incr(t, c, "cmds:contest", time.Minute); n != workers*each+1 {
		t.Fatalf("after %d concurrent Incr the count is %d", workers*each, n-1)
	}
}

func testCounterExpiry(t *testing.T, s access.Store) {
	c := counterOf(t, s)
	const short = 50 * time.Millisecond
	incr(t, c, "cmds:expire", short)
	incr(t, c, "cmds:expire", short)
	sleepPast(short)
	if n := incr(t, c, "cmds:expire", time.Minute); n != 1 {
		t.Fatalf("Incr after the ttl passed = %d, want 1", n)
	}
}

func seen(t *testing.T, s access.Store, id string, ttl time.Duration) bool {
	t.Helper()
	ok, err := s.Seen(ctx(t), id, ttl)
	if err != nil {
		t.Fatalf("Seen(%s): %v", id, err)
	}
	return ok
}

func testSeen(t *testing.T, s access.Store) {
	if seen(t, s, "Ev0001", time.Minute) {
		t.Fatal("first Seen = true")
	}
	if !seen(t, s, "Ev0001", time.Minute) {
		t.Fatal("second Seen = false")
	}
	if !seen(t, s, "Ev0001", time.Minute) {
		t.Fatal("third Seen = false")
	}
	if seen(t, s, "Ev0002", time.Minute) {
		t.Fatal("Seen of another id = true")
	}
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		first int
		errs  []error
	)
	start := make(chan struct{})
	for range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			ok, err := s.Seen(context.Background(), "Ev0003", time.Minute)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				errs = append(errs, err)
			} else if !ok {
				first++
			}
		}()
	}
	close(start)
	wg.Wait()
	if first != 1 || len(errs) > 0 {
		t.Fatalf("%d concurrent Seen calls were first (want 1), errors %v", first, errs)
	}
}

func testSeenExpiry(t *testing.T, s access.Store) {
	const short = 50 * time.Millisecond
	if seen(t, s, "Ev0100", short) {
		t.Fatal("first Seen = true")
	}
	sleepPast(short)
	if seen(t, s, "Ev0100", time.Minute) {
		t.Fatal("Seen after the ttl passed = true")
	}
	if !seen(t, s, "Ev0100", time.Minute) {
		t.Fatal("Seen after re-recording = false")
	}
}

func testAudit(t *testing.T, s access.Store) {
	r := simple("r-audit234", "alice@example.com", "prod-admin", access.StatePending, base)
	e1 := event(r.ID, access.ActSubmitted, "alice@example.com", base.Add(2*time.Second))
	e2 := event(r.ID, access.ActApproved, "bob@example.com", base)
	e3 := event(r.ID, access.ActGranted, access.SystemActor, base.Add(time.Second))
	e3.From, e3.To, e3.Reason, e3.Detail = access.StateApproved, access.StateActive, "approved", "group g-1"
	e4 := event(r.ID, access.ActRevokeStart, access.SystemActor, base.Add(time.Second))
	e5 := event(r.ID, access.ActExtended, "alice@example.com", base.Add(-time.Hour).In(time.FixedZone("X", -7*3600)))
	e5.ID = "ignored: the store assigns ids"
	mustCreate(t, s, r, e1)
	mustUpdate(t, s, r.ID, func(r *access.Request) {})
	if _, err := s.Update(ctx(t), r.ID, func(r *access.Request) ([]access.AuditEvent, error) {
		return []access.AuditEvent{e2, e3}, nil
	}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Update(ctx(t), r.ID, func(r *access.Request) ([]access.AuditEvent, error) {
		return []access.AuditEvent{e4, e5}, nil
	}); err != nil {
		t.Fatal(err)
	}
	check := func(since time.Time, want ...access.AuditEvent) {
		t.Helper()
		got := mustAudit(t, s, since)
		if len(got) != len(want) {
			t.Fatalf("Audit(%v) = %d events, want %d: %+v", since, len(got), len(want), got)
		}
		ids := map[string]bool{}
		for i := range got {
			if got[i].ID == "" || got[i].ID == e5.ID || ids[got[i].ID] {
				t.Errorf("Audit(%v)[%d].ID = %q: empty, not the store's or repeated", since, i, got[i].ID)
			}
			ids[got[i].ID] = true
			g, w := got[i], want[i]
			g.ID, w.ID = "", ""
			g.At, w.At = g.At.UTC(), w.At.UTC()
			g = unchain(t, g)
			if g != w {
				t.Errorf("Audit(%v)[%d] = %+v, want %+v", since, i, g, w)
			}
		}
	}
	check(time.Time{}, e5, e2, e3, e4, e1)
	check(base, e2, e3, e4, e1)
	check(base.Add(time.Second), e3, e4, e1)
	check(base.Add(time.Second+time.Nanosecond), e1)
	check(base.Add(3 * time.Second))
}

// testAppendAudit: events with no request are appended, get store ids and
// come back in time order among the events of requests.
func testAppendAudit(t *testing.T, s access.Store) {
	r := simple("r-append23", "alice@example.com", "prod-admin", access.StatePending, base)
	e1 := event(r.ID, access.ActSubmitted, "alice@example.com", base)
	mustCreate(t, s, r, e1)
	d1 := access.AuditEvent{At: base.Add(time.Second), Action: access.ActDriftRemoved, Actor: access.SystemActor,
		Subject: "mallory@example.com", Role: "prod-admin", Detail: "member of okta group g-1 without a grant; removed"}
	d2 := d1
	d2.At, d2.Subject, d2.ID = base.Add(-time.Second), "eve@example.com", "ignored: the store assigns ids"
	if err := s.AppendAudit(ctx(t), d1, d2); err != nil {
		t.Fatalf("AppendAudit: %v", err)
	}
	if err := s.AppendAudit(ctx(t)); err != nil {
		t.Fatalf("AppendAudit of nothing: %v", err)
	}
	got := mustAudit(t, s, time.Time{})
	want := []access.AuditEvent{d2, e1, d1}
	if len(got) != len(want) {
		t.Fatalf("Audit = %d events, want %d: %+v", len(got), len(want), got)
	}
	ids := map[string]bool{}
	for i := range got {
		if got[i].ID == "" || got[i].ID == d2.ID || ids[got[i].ID] {
			t.Errorf("Audit[%d].ID = %q: empty, not the store's or repeated", i, got[i].ID)
		}
		ids[got[i].ID] = true
		g, w := got[i], want[i]
		g.ID, w.ID = "", ""
		g.At, w.At = g.At.UTC(), w.At.UTC()
		g = unchain(t, g)
		if g != w {
			t.Errorf("Audit[%d] = %+v, want %+v", i, g, w)
		}
	}
}

var errDecided = errors.New("already decided")

func testConcurrentApprove(t *testing.T, s access.Store) {
	r := simple("r-approve2", "alice@example.com", "prod-admin", access.StatePending, base)
	r.PendingUntil = base.Add(time.Hour)
	r.Needed = 1
	mustCreate(t, s, r)
	const n = 50
	var (
		wg      sync.WaitGroup
		mu      sync.Mutex
		won     []string
		unknown []error
	)
	start := make(chan struct{})
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			by := fmt.Sprintf("approver%02d@example.com", i)
			<-start
			_, err := s.Update(context.Background(), r.ID, func(c *access.Request) ([]access.AuditEvent, error) {
				if c.State != access.StatePending {
					return nil, errDecided
				}
				c.Decisions = append(c.Decisions, access.Decision{By: by, Approve: true, At: base})
				c.State = access.StateApproved
				c.UpdatedAt = base.Add(time.Minute)
				return []access.AuditEvent{event(c.ID, access.ActApproved, by, base.Add(time.Minute))}, nil
			})
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err == nil:
				won = append(won, by)
			case !errors.Is(err, errDecided):
				unknown = append(unknown, err)
			}
		}()
	}
	close(start)
	wg.Wait()
	if len(won) != 1 || len(unknown) > 0 {
		t.Fatalf("%d approvals succeeded (want 1): %v; unexpected errors: %v", len(won), won, unknown)
	}
	got := mustGet(t, s, r.ID)
	if got.State != access.StateApproved || got.Version != 2 || len(got.Decisions) != 1 || got.Decisions[0].By != won[0] {
		t.Fatalf("stored state %s version %d decisions %+v; want approved, 2, one by %s", got.State, got.Version, got.Decisions, won[0])
	}
	evs := mustAudit(t, s, time.Time{})
	if len(evs) != 1 || evs[0].Actor != won[0] {
		t.Fatalf("audit = %+v, want exactly one event by %s", evs, won[0])
	}
}

func testConcurrentDecisions(t *testing.T, s access.Store) {
	r := simple("r-decide23", "alice@example.com", "prod-admin", access.StatePending, base)
	r.PendingUntil = base.Add(time.Hour)
	r.Needed = 50
	mustCreate(t, s, r)
	const n = 50
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		errs []error
	)
	start := make(chan struct{})
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			by := fmt.Sprintf("approver%02d@example.com", i)
			<-start
			_, err := s.Update(context.Background(), r.ID, func(c *access.Request) ([]access.AuditEvent, error) {
				c.Decisions = append(c.Decisions, access.Decision{By: by, Approve: true, At: base})
				return []access.AuditEvent{event(c.ID, access.ActApproved, by, base)}, nil
			})
			if err != nil {
				mu.Lock()
				errs = append(errs, err)
				mu.Unlock()
			}
		}()
	}
	close(start)
	wg.Wait()
	if len(errs) > 0 {
		t.Fatalf("%d of %d updates failed: %v", len(errs), n, errs)
	}
	got := mustGet(t, s, r.ID)
	var by []string
	for _, d := range got.Decisions {
		by = append(by, d.By)
	}
	slices.Sort(by)
	if got.Version != n+1 || len(slices.Compact(by)) != n || len(by) != n {
		t.Fatalf("stored version %d with %d decisions (%d distinct); want version %d and %d distinct", got.Version, len(got.Decisions), len(slices.Compact(slices.Clone(by))), n+1, n)
	}
	evs := mustAudit(t, s, time.Time{})
	var actors []string
	for _, ev := range evs {
		actors = append(actors, ev.Actor)
	}
	slices.Sort(actors)
	if !slices.Equal(actors, by) {
		t.Fatalf("audit actors = %v, want one per decision %v", actors, by)
	}
}

func testRestart(t *testing.T, open Open, reopen Reopen) {
	s := open(t)
	now := time.Now()
	r := simple("r-restart2", "alice@example.com", "prod-admin", access.StateActive, now.Add(-2*time.Hour))
	r.GrantedAt = now.Add(-2 * time.Hour)
	r.EndsAt = now.Add(-time.Minute)
	mustCreate(t, s, r.Clone(), event(r.ID, access.ActGranted, access.SystemActor, r.GrantedAt))
	f := simple("r-future23", "bob@example.com", "prod-admin", access.StateActive, now)
	f.EndsAt = now.Add(time.Hour)
	mustCreate(t, s, f)

	s = reopen(t, s)
	if ids := due(t, s, now, 100); !slices.Equal(ids, []string{r.ID}) {
		t.Fatalf("after reopen Due(now) = %v, want [%s]", ids, r.ID)
	}
	r.Version = 1
	sameRequest(t, mustGet(t, s, r.ID), r)
	if evs := mustAudit(t, s, time.Time{}); len(evs) != 1 || evs[0].Action != access.ActGranted {
		t.Fatalf("after reopen audit = %+v, want the granted event", evs)
	}
	mustUpdate(t, s, r.ID, func(c *access.Request) { c.State = access.StateEnded })
	if ids := due(t, s, now, 100); len(ids) != 0 {
		t.Fatalf("after reopen and end Due(now) = %v, want none", ids)
	}
}
