package handlers_test

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/accessbot/accessbot/access"
	"github.com/accessbot/accessbot/handlers"
	"github.com/accessbot/accessbot/internal/testclock"
	"github.com/accessbot/accessbot/providers/dryrun"
	"github.com/accessbot/accessbot/store/bolt"
)

// Several roles with a start: "/access a,b 2h at 22:00 …" schedules every
// role for that start (read in the requester's zone), each role keeps its
// own approvers and reminders, nothing is granted before the start, and
// both roles are granted at it and end together.
func TestScheduledSeveralRoles(t *testing.T) {
	st, err := bolt.Open(filepath.Join(t.TempDir(), "h.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	role := func(name, approver string) access.Role {
		return access.Role{Name: name, Provider: "dryrun", Group: "g-" + name, MaxDuration: 4 * time.Hour, DefaultDuration: time.Hour,
			ApproverUsers: []string{approver}, Approvals: 1, PendingTTL: 24 * time.Hour, MaxScheduleAhead: 7 * 24 * time.Hour,
			RemindAfter: 10 * time.Minute}
	}
	pol := &access.Policy{Roles: map[string]access.Role{"prod-admin": role("prod-admin", "bob@example.com"),
		"db-admin": role("db-admin", "carol@example.com")}}
	prov := dryrun.New(nil)
	clock := testclock.New(schedNow)
	svc, err := access.NewService(access.Deps{Store: st, Policy: pol, Providers: map[string]access.Provisioner{"dryrun": prov}, Clock: clock})
	if err != nil {
		t.Fatal(err)
	}
	c := &chat{dms: map[string][]handlers.Message{}, channel: "approvals", security: "sec"}
	svc.SetNotifier(handlers.NewNotifier(c, nil))
	h := handlers.New(svc, zonedChat{c}, nil)
	ctx := context.Background()

	r := cmd(h, "alice", "prod-admin,db-admin 2h at 22:00 maintenance window")
	if !strings.Contains(r.Text, "They start at 2026-12-01 21:00 UTC (2026-12-01 22:00 Europe/Berlin)") {
		t.Fatalf("reply %q", r.Text)
	}
	mine, err := svc.Mine(ctx, "alice@example.com")
	if err != nil || len(mine) != 2 {
		t.Fatalf("stored %d requests, %v", len(mine), err)
	}
	start := time.Date(2026, 12, 1, 21, 0, 0, 0, time.UTC)
	bundle := mine[0].Bundle
	for _, m := range mine {
		if !m.StartsAt.Equal(start) || m.Bundle == "" || m.Bundle != bundle || m.RemindAt.IsZero() {
			t.Fatalf("%s: starts %v bundle %q remind at %v", m.Role, m.StartsAt, m.Bundle, m.RemindAt)
		}
	}
	if _, err := svc.DecideBundle(ctx, bundle, "bob@example.com", true, ""); err != nil {
		t.Fatal(err)
	}
	if _, err := svc.DecideBundle(ctx, bundle, "carol@example.com", true, ""); err != nil {
		t.Fatal(err)
	}
	process := func() {
		ids, err := st.Due(ctx, clock.Now(), 100)
		if err != nil {
			t.Fatal(err)
		}
		for _, id := range ids {
			if err := svc.Process(ctx, id); err != nil {
				t.Fatalf("process %s: %v", id, err)
			}
		}
	}
	clock.Set(start.Add(-time.Second))
	process()
	if prov.IsMember("g-prod-admin", "alice@example.com") || prov.IsMember("g-db-admin", "alice@example.com") {
		t.Fatal("granted before the start")
	}
	clock.Set(start)
	process()
	if !prov.IsMember("g-prod-admin", "alice@example.com") || !prov.IsMember("g-db-admin", "alice@example.com") {
		t.Fatal("not granted at the start")
	}
	rs, err := svc.Bundle(ctx, bundle)
	if err != nil {
		t.Fatal(err)
	}
	if len(rs) != 2 || !rs[0].EndsAt.Equal(start.Add(2*time.Hour)) || !rs[1].EndsAt.Equal(rs[0].EndsAt) {
		t.Fatalf("ends: %v / %v", rs[0].EndsAt, rs[1].EndsAt)
	}
}
