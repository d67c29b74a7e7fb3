package handlers_test

import (
	"context"
	"errors"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/accessbot/accessbot/access"
	"github.com/accessbot/accessbot/handlers"
	"github.com/accessbot/accessbot/internal/testclock"
	"github.com/accessbot/accessbot/providers/dryrun"
	"github.com/accessbot/accessbot/store/bolt"
)

// zonedChat is chat whose users have profile time zones (ZoneDirectory):
// alice in Berlin; "nozone" has none; "broken" fails the lookup.
type zonedChat struct{ *chat }

func (z zonedChat) TimeZone(_ context.Context, u string) (*time.Location, error) {
	switch u {
	case "alice":
		return time.LoadLocation("Europe/Berlin")
	case "broken":
		return nil, errors.New("users.info: internal_error")
	}
	return nil, nil
}

// 2026-12-01 10:00 UTC is 11:00 in Berlin.
var schedNow = time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)

func scheduleSetup(t *testing.T) (*handlers.Handler, *chat, *dryrun.Provider, *access.Service, *testclock.Clock) {
	t.Helper()
	st, err := bolt.Open(filepath.Join(t.TempDir(), "h.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	pol := &access.Policy{Roles: map[string]access.Role{
		"prod-admin": {Name: "prod-admin", Description: "Production admin", Provider: "dryrun", Group: "g",
			MaxDuration: 4 * time.Hour, DefaultDuration: time.Hour, ApproverUsers: []string{"bob@example.com", "dave@example.com"},
			Approvals: 1, PendingTTL: time.Hour, MaxScheduleAhead: 7 * 24 * time.Hour},
	}, Admins: []string{"frank@example.com"}}
	prov := dryrun.New(nil)
	clock := testclock.New(schedNow)
	svc, err := access.NewService(access.Deps{Store: st, Policy: pol, Providers: map[string]access.Provisioner{"dryrun": prov}, Clock: clock})
	if err != nil {
		t.Fatal(err)
	}
	c := &chat{dms: map[string][]handlers.Message{}, channel: "approvals", security: "sec"}
	svc.SetNotifier(handlers.NewNotifier(c, nil))
	return handlers.New(svc, zonedChat{c}, nil), c, prov, svc, clock
}

func TestScheduledCommandParsing(t *testing.T) {
	cases := []struct {
		user, text string
		form       bool
		contains   string
		start      time.Time // of the stored request; zero: none stored
		prefill    handlers.Form
	}{
		{"alice", "prod-admin 2h at 22:00 maintenance window", false, "from 2026-12-01 21:00 UTC (2026-12-01 22:00 Europe/Berlin)",
			time.Date(2026, 12, 1, 21, 0, 0, 0, time.UTC), handlers.Form{}},
		{"alice", "prod-admin 2h at 09:00 early maintenance", false, "2026-12-02 08:00 UTC",
			time.Date(2026, 12, 2, 8, 0, 0, 0, time.UTC), handlers.Form{}},
		{"alice", "prod-admin at 2026-12-03T22:00 2h maintenance", false, "2026-12-03 21:00 UTC",
			time.Date(2026, 12, 3, 21, 0, 0, 0, time.UTC), handlers.Form{}},
		{"alice", "prod-admin 1h AT 2026-12-03 06:30 db upgrade", false, "2026-12-03 05:30 UTC",
			time.Date(2026, 12, 3, 5, 30, 0, 0, time.UTC), handlers.Form{}},
		{"alice", "prod-admin 2h at 2026-12-01T22:00+05:30 india window", false, "2026-12-01 16:30 UTC",
			time.Date(2026, 12, 1, 16, 30, 0, 0, time.UTC), handlers.Form{}},
		{"nozone", "prod-admin 2h at 22:00 maintenance", false, "(2h from 2026-12-01 22:00 UTC) sent",
			time.Date(2026, 12, 1, 22, 0, 0, 0, time.UTC), handlers.Form{}},
		{"broken", "prod-admin 2h at 22:00 maintenance", false, "(2h from 2026-12-01 22:00 UTC) sent",
			time.Date(2026, 12, 1, 22, 0, 0, 0, time.UTC), handlers.Form{}},
		// No reason or no duration: the form, with what was typed.
		{"alice", "prod-admin 2h at 22:00", true, "", time.Time{}, handlers.Form{Role: "prod-admin", Duration: "2h", Start: "22:00", MaxRoles: 5}},
		{"alice", "prod-admin at 22:00 patching", true, "", time.Time{}, handlers.Form{Role: "prod-admin", Start: "22:00", Reason: "patching", MaxRoles: 5}},
		// Refusals change nothing.
		{"alice", "prod-admin 2h at 2026-11-30T22:00 too late", false, "has passed", time.Time{}, handlers.Form{}},
		{"alice", "prod-admin 2h at 2026-12-09T22:00 far away", false, "at most 7d ahead", time.Time{}, handlers.Form{}},
		{"alice", "prod-admin 2h at 9pm tonight", false, `"9pm" is not a start time`, time.Time{}, handlers.Form{}},
		{"alice", "prod-admin 2h at 2027-03-28T02:30 dst", false, "does not exist in Europe/Berlin on 2027-03-28", time.Time{}, handlers.Form{}},
		{"alice", "prod-admin 2x at 22:00 oops", false, `"2x" is not a duration`, time.Time{}, handlers.Form{}},
		// "at" followed by words is a reason.
		{"alice", "prod-admin 2h at the office", false, "(2h) sent for approval", time.Time{}, handlers.Form{}},
	}
	for _, tc := range cases {
		t.Run(tc.text, func(t *testing.T) {
			h, c, _, svc, _ := scheduleSetup(t)
			r := cmd(h, tc.user, tc.text)
			if (r.Form != nil) != tc.form || !strings.Contains(r.Text, tc.contains) {
				t.Fatalf("form=%v text=%q, want %q", r.Form != nil, r.Text, tc.contains)
			}
			if tc.form {
				f := *r.Form
				f.Roles = nil
				if !reflect.DeepEqual(f, tc.prefill) {
					t.Fatalf("prefill %+v, want %+v", f, tc.prefill)
				}
			}
			mine, err := svc.Mine(context.Background(), tc.user+"@example.com")
			if err != nil {
				t.Fatal(err)
			}
			if tc.start.IsZero() {
				for _, m := range mine {
					if !m.StartsAt.IsZero() {
						t.Fatalf("stored a scheduled request: %+v", m)
					}
				}
				if tc.contains != "(2h) sent for approval" && len(c.posts) != 0 {
					t.Fatalf("posted %d cards", len(c.posts))
				}
				return
			}
			if len(mine) != 1 || !mine[0].StartsAt.Equal(tc.start) {
				t.Fatalf("stored %+v, want start %v", mine, tc.start)
			}
		})
	}
}

// TestScheduledThroughTheHandlers: card, list, approval, DMs and revoke
// of a scheduled request as people see them.
func TestScheduledThroughTheHandlers(t *testing.T) {
	h, c, prov, svc, clock := scheduleSetup(t)
	cmd(h, "alice", "prod-admin 2h at 22:00 maintenance window")
	if len(c.posts) != 1 || field(c.posts[0], "Starts") != "2026-12-01 21:00 UTC (2026-12-01 22:00 Europe/Berlin)" {
		t.Fatalf("card %+v", c.posts)
	}
	if dm := c.dms["alice@example.com"]; len(dm) != 1 || !strings.Contains(dm[0].Text, "to start at 2026-12-01 21:00 UTC") {
		t.Fatalf("pending DM %+v", dm)
	}
	if r := cmd(h, "alice", "list"); !strings.Contains(r.Text, "waiting for approval") || !strings.Contains(r.Text, "starts at 2026-12-01 21:00 UTC") {
		t.Fatalf("list %q", r.Text)
	}
	id := c.posts[0].Buttons[0].Value
	r := h.Action(context.Background(), handlers.Action{User: "bob", Action: handlers.ActionApprove, RequestID: id})
	if !strings.Contains(r.Text, "alice@example.com gets prod-admin at 2026-12-01 21:00 UTC") {
		t.Fatalf("approve reply %q", r.Text)
	}
	if prov.IsMember("g", "alice@example.com") {
		t.Fatal("granted before the start")
	}
	last := c.updates[len(c.updates)-1]
	if !strings.Contains(field(last, "Status"), "scheduled: starts at 2026-12-01 21:00 UTC") {
		t.Fatalf("card status %q", field(last, "Status"))
	}
	dms := c.dms["alice@example.com"]
	notice := dms[len(dms)-1]
	if !strings.Contains(notice.Title, "is approved: prod-admin starts at 2026-12-01 21:00 UTC") || len(notice.Buttons) != 1 ||
		notice.Buttons[0].Action != handlers.ActionRevoke {
		t.Fatalf("scheduled DM %+v", notice)
	}
	if r := cmd(h, "alice", "list"); !strings.Contains(r.Text, "scheduled: starts at") {
		t.Fatalf("list %q", r.Text)
	}
	if r := cmd(h, "alice", "cancel "+id); !strings.Contains(r.Text, "scheduled: starts at") {
		t.Fatalf("cancel after approval %q", r.Text)
	}
	// Revoke by role name finds the scheduled grant.
	clock.Advance(time.Hour)
	if r := cmd(h, "alice", "revoke prod-admin plans changed"); !strings.Contains(r.Text, "revoked before its start; nothing was granted") {
		t.Fatalf("revoke %q", r.Text)
	}
	got, _ := svc.Get(context.Background(), id)
	if got.State != access.StateEnded || len(prov.Changes()) != 0 {
		t.Fatalf("state %s, provider changes %v", got.State, prov.Changes())
	}
	last = c.updates[len(c.updates)-1]
	if !strings.Contains(field(c.updates[len(c.updates)-2], "Status")+field(last, "Status")+last.Title, "before its start") {
		t.Fatalf("card not updated: %+v", c.updates[len(c.updates)-2:])
	}
	dms = c.dms["alice@example.com"]
	if end := dms[len(dms)-1]; end.Title != "Your scheduled prod-admin access was revoked" || !strings.Contains(end.Text, "nothing was granted") {
		t.Fatalf("end DM %+v", end)
	}
}

func TestScheduledFormStart(t *testing.T) {
	h, c, _, _, _ := scheduleSetup(t)
	_, errs := h.SubmitForm(context.Background(), handlers.FormInput{User: "alice", Role: "prod-admin", Duration: "2h", Reason: "x", Start: "tonight"})
	if !strings.Contains(errs[handlers.FieldStart], `"tonight" is not a start time`) || len(errs) != 1 {
		t.Fatalf("errors %v", errs)
	}
	_, errs = h.SubmitForm(context.Background(), handlers.FormInput{User: "alice", Role: "prod-admin", Duration: "2h", Reason: "x", Start: "2026-11-01T10:00"})
	if !strings.Contains(errs[handlers.FieldStart], "has passed") {
		t.Fatalf("errors %v", errs)
	}
	if len(c.posts) != 0 {
		t.Fatal("refused form submitted")
	}
	r, errs := h.SubmitForm(context.Background(), handlers.FormInput{User: "alice", Role: "prod-admin", Duration: "2h", Reason: "x", Start: "22:00"})
	if len(errs) != 0 || !strings.Contains(r.Text, "from 2026-12-01 21:00 UTC (2026-12-01 22:00 Europe/Berlin)") {
		t.Fatalf("%v %q", errs, r.Text)
	}
}

func TestScheduledRefusalTexts(t *testing.T) {
	at := time.Date(2026, 12, 1, 21, 0, 0, 0, time.UTC)
	for _, c := range []struct {
		r    access.Refusal
		want string
	}{
		{access.Refusal{Code: access.RefuseBadStart, Other: "soon"}, `"soon" is not a start time; use 22:00 (the next 22:00), 2026-12-01T22:00 (in your time zone) or 2026-12-01T22:00+01:00`},
		{access.Refusal{Code: access.RefuseStartInGap, Other: "02:30", Zone: "Europe/Berlin", At: time.Date(2027, 3, 28, 0, 0, 0, 0, time.UTC)}, `"02:30" does not exist in Europe/Berlin on 2027-03-28: the clocks skip that hour; pick another time`},
		{access.Refusal{Code: access.RefuseStartPast, At: at, Zone: "Europe/Berlin"}, "the start 2026-12-01 21:00 UTC (2026-12-01 22:00 Europe/Berlin) has passed; leave the start out to ask for access now"},
		{access.Refusal{Code: access.RefuseStartTooFar, At: at, Zone: "UTC", Role: "db", Max: 14 * 24 * time.Hour}, "the start 2026-12-01 21:00 UTC is too far ahead: db may be scheduled at most 14d ahead"},
		{access.Refusal{Code: access.RefuseAlreadyScheduled, At: at, Role: "db", ID: "r-1"}, "you already have db scheduled from 2026-12-01 21:00 UTC (request r-1); revoke it with `/access revoke r-1` first"},
	} {
		r := c.r
		if got := handlers.RefusalText(&r); got != c.want {
			t.Errorf("%s:\n got %q\nwant %q", c.r.Code, got, c.want)
		}
	}
}

func field(m handlers.Message, label string) string {
	for _, f := range m.Fields {
		if f.Label == label {
			return f.Value
		}
	}
	return ""
}
