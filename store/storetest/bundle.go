package storetest

import (
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/accessbot/accessbot/access"
)

// bundleOf returns n pending requests of alice that form one bundle.
func bundleOf(prefix string, n int, created time.Time) []*access.Request {
	var rs []*access.Request
	var ids []string
	for i := range n {
		id := prefix + string(rune('a'+i)) + "234567"
		ids = append(ids, id)
		r := simple(id, "alice@example.com", "role-"+string(rune('a'+i)), access.StatePending, created)
		r.PendingUntil = created.Add(time.Duration(i+1) * time.Hour)
		rs = append(rs, r)
	}
	for _, r := range rs {
		r.Bundle = "b-" + ids[0][2:]
		r.Members = ids
	}
	return rs
}

// CreateMany stores every request with its fields, its due and list
// index entries and the audit events of all of them, at version 1 (also
// on the caller's copies).
func testCreateMany(t *testing.T, s access.Store) {
	rs := bundleOf("r-m", 3, base)
	want := make([]*access.Request, len(rs))
	var evs []access.AuditEvent
	for i, r := range rs {
		want[i] = r.Clone()
		want[i].Version = 1
		evs = append(evs, event(r.ID, access.ActSubmitted, "alice@example.com", base))
	}
	if err := s.CreateMany(ctx(t), rs, evs...); err != nil {
		t.Fatalf("CreateMany: %v", err)
	}
	for i, r := range rs {
		if r.Version != 1 {
			t.Errorf("CreateMany left the caller's Version of %s at %d, want 1", r.ID, r.Version)
		}
		sameRequest(t, mustGet(t, s, r.ID), want[i])
	}
	got := mustAudit(t, s, time.Time{})
	if len(got) != 3 {
		t.Fatalf("audit after CreateMany = %+v, want 3 events", got)
	}
	for i, e := range got {
		if e.RequestID != rs[i].ID || e.Action != access.ActSubmitted {
			t.Errorf("audit event %d = %+v, want submitted of %s", i, e, rs[i].ID)
		}
	}
	ids, err := s.Due(ctx(t), base.Add(2*time.Hour), 10)
	if err != nil || len(ids) != 2 || ids[0] != rs[0].ID || ids[1] != rs[1].ID {
		t.Fatalf("Due(+2h) = %v, %v; want the first two members in order", ids, err)
	}
	list, err := s.List(ctx(t), access.Filter{Requester: "alice@example.com", States: []access.State{access.StatePending}})
	if err != nil || len(list) != 3 {
		t.Fatalf("List(alice, pending) = %d, %v; want 3", len(list), err)
	}
	if list, err := s.List(ctx(t), access.Filter{Role: "role-b"}); err != nil || len(list) != 1 || list[0].ID != rs[1].ID {
		t.Fatalf("List(role-b) = %v, %v; want %s", list, err, rs[1].ID)
	}
	// Each member is an ordinary request from now on.
	upd := mustUpdate(t, s, rs[1].ID, func(r *access.Request) { r.State = access.StateDenied })
	if upd.Version != 2 || upd.Bundle != rs[0].Bundle || len(upd.Members) != 3 {
		t.Errorf("updated member = version %d, bundle %q, members %v", upd.Version, upd.Bundle, upd.Members)
	}
}

// A CreateMany of which one id is taken (or given twice) fails with
// ErrExists and stores nothing: no request, index entry, due entry or
// audit event of any member; the existing request stays as it was.
func testCreateManyExists(t *testing.T, s access.Store) {
	old := simple("r-mb234567", "bob@example.com", "prod-read", access.StateActive, base)
	old.EndsAt = base.Add(3 * time.Hour)
	mustCreate(t, s, old.Clone(), event(old.ID, access.ActBreakGlass, "bob@example.com", base))
	rs := bundleOf("r-m", 3, base.Add(time.Minute)) // its second member is r-mb234567
	var evs []access.AuditEvent
	for _, r := range rs {
		evs = append(evs, event(r.ID, access.ActSubmitted, "alice@example.com", base))
	}
	if err := s.CreateMany(ctx(t), rs, evs...); !errors.Is(err, access.ErrExists) {
		t.Fatalf("CreateMany over a taken id = %v, want ErrExists", err)
	}
	dup := bundleOf("r-n", 2, base)
	dup[1].ID = dup[0].ID
	if err := s.CreateMany(ctx(t), dup); !errors.Is(err, access.ErrExists) {
		t.Fatalf("CreateMany with one id twice = %v, want ErrExists", err)
	}
	for _, id := range []string{rs[0].ID, rs[2].ID, dup[0].ID} {
		if _, err := s.Get(ctx(t), id); !errors.Is(err, access.ErrNotFound) {
			t.Errorf("Get(%s) after failed CreateMany = %v, want ErrNotFound", id, err)
		}
	}
	old.Version = 1
	sameRequest(t, mustGet(t, s, old.ID), old)
	if evs := mustAudit(t, s, time.Time{}); len(evs) != 1 {
		t.Fatalf("audit after failed CreateMany = %+v, want only the first request's event", evs)
	}
	if list, err := s.List(ctx(t), access.Filter{Requester: "alice@example.com"}); err != nil || len(list) != 0 {
		t.Fatalf("List(alice) after failed CreateMany = %d, %v; want none", len(list), err)
	}
	if ids, err := s.Due(ctx(t), base.Add(24*time.Hour), 10); err != nil || len(ids) != 1 || ids[0] != old.ID {
		t.Fatalf("Due after failed CreateMany = %v, %v; want only %s", ids, err, old.ID)
	}
	if err := s.CreateMany(ctx(t), nil); err == nil {
		t.Error("CreateMany of nothing succeeded")
	}
	if err := s.CreateMany(ctx(t), []*access.Request{simple("", "a@example.com", "r", access.StatePending, base)}); err == nil {
		t.Error("CreateMany of a request without id succeeded")
	}
}

// Concurrent CreateMany calls of overlapping bundles: exactly one wins,
// and each bundle is stored whole or not at all.
func testCreateManyConcurrent(t *testing.T, s access.Store) {
	const n = 10
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rs := bundleOf("r-c", 3, base)
			rs[i%3].Reason = "writer " + string(rune('0'+i))
			errs[i] = s.CreateMany(ctx(t), rs)
		}()
	}
	wg.Wait()
	won := 0
	for _, err := range errs {
		switch {
		case err == nil:
			won++
		case !errors.Is(err, access.ErrExists):
			t.Errorf("CreateMany: %v", err)
		}
	}
	if won != 1 {
		t.Fatalf("%d of %d concurrent CreateMany calls succeeded, want 1", won, n)
	}
	for _, r := range bundleOf("r-c", 3, base) {
		if got := mustGet(t, s, r.ID); got.Version != 1 || got.Bundle != r.Bundle {
			t.Errorf("%s = version %d bundle %q", r.ID, got.Version, got.Bundle)
		}
	}
}
