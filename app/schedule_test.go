package app

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/accessbot/accessbot/access"
	"github.com/accessbot/accessbot/store/bolt"
)

// TestConsoleScheduledAccess: the demo policy on the console (UTC): a
// request "at 22:00" approved in advance is granted by the scheduler at
// 22:00, not before; db-admin's max_schedule_ahead (7d) is kept.
func TestConsoleScheduledAccess(t *testing.T) {
	st, err := bolt.Open(filepath.Join(t.TempDir(), "a.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	s := newStack(t, st)
	s.lines(t, "alice: /access db-admin 1h at 2026-11-26T10:00 too far ahead")
	if !strings.Contains(s.out.String(), "db-admin may be scheduled at most 7d ahead") {
		t.Fatalf("too far ahead not refused:\n%s", s.out)
	}
	s.lines(t, "alice: /access db-admin 1h at 22:00 database maintenance", "bob: approve", "dave: approve")
	r, err := s.svc.Get(context.Background(), lastID(t, s))
	if err != nil {
		t.Fatal(err)
	}
	start := time.Date(2026, 11, 18, 22, 0, 0, 0, time.UTC)
	if !r.Scheduled() || !r.StartsAt.Equal(start) {
		t.Fatalf("state %s starts %v:\n%s", r.State, r.StartsAt, s.out)
	}
	s.clock.Set(start.Add(-time.Second))
	if _, err := s.sched.Drain(context.Background()); err != nil {
		t.Fatal(err)
	}
	if s.prov.IsMember("db-admins", "alice@example.com") {
		t.Fatal("granted before the start")
	}
	s.clock.Set(start)
	if _, err := s.sched.Drain(context.Background()); err != nil {
		t.Fatal(err)
	}
	if !s.prov.IsMember("db-admins", "alice@example.com") {
		t.Fatalf("not granted at the start:\n%s", s.out)
	}
	r, _ = s.svc.Get(context.Background(), r.ID)
	if r.State != access.StateActive || !r.EndsAt.Equal(start.Add(time.Hour)) {
		t.Fatalf("state %s ends %v", r.State, r.EndsAt)
	}
	for _, want := range []string{"scheduled: starts at 2026-11-18 22:00 UTC", "You have db-admin until 2026-11-18 23:00 UTC"} {
		if !strings.Contains(s.out.String(), want) {
			t.Errorf("missing %q in\n%s", want, s.out)
		}
	}
}
