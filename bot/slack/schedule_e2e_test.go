package slack_test

import (
	"context"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/accessbot/accessbot/access"
	"github.com/accessbot/accessbot/bot/slack/slackfake"
	"github.com/accessbot/accessbot/handlers"
	"github.com/accessbot/accessbot/scheduler"
)

// TestE2EScheduledGrant: alice (Slack profile in Berlin) asks for
// prod-admin "at 12:00"; bob approves in advance; the running scheduler
// grants it at the start, not before, and the card and DMs say so.
func TestE2EScheduledGrant(t *testing.T) {
	w := newWorld(t, slackfake.Options{})
	w.fake.AddUser(slackfake.User{ID: "UALICE", Name: "alice", Email: alice, TZ: "Europe/Berlin"})

	// The scheduler runs as in production; Loop counts its turns.
	var turns atomic.Int64
	sched := scheduler.New(w.svc.Store(), w.svc, w.clk, testLogger(t), scheduler.Options{
		Hooks: scheduler.Hooks{Loop: func() { turns.Add(1) }}})
	w.svc.SetWaker(sched)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- sched.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })

	// 10:00 UTC is 11:00 in Berlin: "at 12:00" is 11:00 UTC today.
	start := time.Date(2031, 3, 4, 11, 0, 0, 0, time.UTC)
	w.command(t, "UALICE", "prod-admin 1h at 12:00 database maintenance")
	card, id := w.card(t, 1)
	if txt := slackfake.BlockText(card.Blocks); !strings.Contains(txt, "2031-03-04 11:00 UTC (2031-03-04 12:00 Europe/Berlin)") {
		t.Errorf("card does not say when it starts:\n%s", txt)
	}
	waitFor(t, w.fake, "alice's confirmation", func() bool { return len(w.fake.EphemeralsFor("UALICE")) == 1 })
	if e := w.fake.EphemeralsFor("UALICE")[0]; !strings.Contains(e.Text, "1h from 2031-03-04 11:00 UTC (2031-03-04 12:00 Europe/Berlin)") {
		t.Errorf("confirmation %q", e.Text)
	}

	w.click(t, "UBOB", "", handlers.ActionApprove, id, false)
	waitFor(t, w.fake, "card shows it scheduled", func() bool {
		m, _ := w.fake.Message(card.Channel, card.TS)
		return m.Updates > 0 && !slackfake.HasButtons(m.Blocks) && strings.Contains(slackfake.BlockText(m.Blocks), "scheduled: starts at 2031-03-04 11:00 UTC")
	})
	waitFor(t, w.fake, "scheduled DM", func() bool {
		for _, m := range w.fake.Messages(w.fake.DMChannel("UALICE")) {
			if strings.Contains(m.Text, "is approved: prod-admin starts at 2031-03-04 11:00 UTC") {
				return true
			}
		}
		return false
	})
	if w.prov.IsMember(groupAdmin, alice) {
		t.Fatal("granted at approval, before the start")
	}

	// One second before the start the scheduler looks (woken as by its
	// timer) and grants nothing.
	w.clk.Advance(start.Add(-time.Second).Sub(w.clk.Now()))
	seen := turns.Load()
	sched.Wake(w.clk.Now())
	waitFor(t, w.fake, "two scheduler turns", func() bool { return turns.Load() >= seen+2 })
	if w.prov.IsMember(groupAdmin, alice) || w.prov.Count("grant", alice) != 0 || w.state(t, id) != access.StateApproved {
		t.Fatalf("granted before the start: state %s", w.state(t, id))
	}

	// At the start: granted within a second.
	w.clk.Advance(time.Second)
	at := time.Now()
	sched.Wake(w.clk.Now())
	wctx, wcancel := context.WithTimeout(context.Background(), time.Second)
	defer wcancel()
	if err := w.fake.Wait(wctx, func() bool { return w.prov.IsMember(groupAdmin, alice) }); err != nil {
		t.Fatalf("not granted within 1s of the start: %v", err)
	}
	t.Logf("granted %v after the start", time.Since(at))
	// The membership lands before the grant is recorded: wait (within
	// the same second) for the record.
	if err := w.fake.Wait(wctx, func() bool { return w.state(t, id) == access.StateActive }); err != nil {
		t.Fatalf("grant not recorded within 1s of the start: state %s", w.state(t, id))
	}
	r, err := w.svc.Get(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	if r.State != access.StateActive || !r.EndsAt.Equal(start.Add(time.Hour)) {
		t.Fatalf("state %s ends %v, want active until %v", r.State, r.EndsAt, start.Add(time.Hour))
	}
	waitFor(t, w.fake, "grant DM", func() bool {
		for _, m := range w.fake.Messages(w.fake.DMChannel("UALICE")) {
			if strings.Contains(m.Text, "You have prod-admin until 2031-03-04 12:00 UTC") {
				return true
			}
		}
		return false
	})
	if n := w.prov.Count("grant", alice); n != 1 {
		t.Errorf("%d grants", n)
	}
}

// TestE2EScheduledRevokedBeforeStart: the Revoke button of the scheduled
// DM ends it without a provider call, and the card says so.
func TestE2EScheduledRevokedBeforeStart(t *testing.T) {
	w := newWorld(t, slackfake.Options{})
	w.command(t, "UALICE", "prod-admin 1h at 2031-03-05T09:00Z patch window")
	card, id := w.card(t, 1)
	w.click(t, "UBOB", "", handlers.ActionApprove, id, false)
	waitFor(t, w.fake, "card shows it scheduled", func() bool {
		m, _ := w.fake.Message(card.Channel, card.TS)
		return strings.Contains(slackfake.BlockText(m.Blocks), "scheduled: starts at 2031-03-05 09:00 UTC")
	})
	waitFor(t, w.fake, "scheduled DM with its Revoke button", func() bool {
		for _, m := range w.fake.Messages(w.fake.DMChannel("UALICE")) {
			if strings.Contains(m.Text, "is approved: prod-admin starts at") && slackfake.HasButtons(m.Blocks) {
				return true
			}
		}
		return false
	})
	if _, err := w.fake.Click(tctx(t), slackfake.Click{User: "UALICE", Channel: w.fake.DMChannel("UALICE"),
		ActionID: handlers.ActionRevoke, Value: id}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, w.fake, "card shows the revocation", func() bool {
		m, _ := w.fake.Message(card.Channel, card.TS)
		return strings.Contains(slackfake.BlockText(m.Blocks), "before its start; nothing was granted")
	})
	w.clk.Advance(24 * time.Hour)
	if _, err := w.sched.Drain(tctx(t)); err != nil {
		t.Fatal(err)
	}
	if w.state(t, id) != access.StateEnded || len(w.prov.Changes()) != 0 {
		t.Fatalf("state %s, provider changes %v", w.state(t, id), w.prov.Changes())
	}
}

// TestTimeZoneFromProfile: the zone comes from users.info, shared with the
// identity lookup (one call for both), and Slack's default zone when the
// profile sets none.
func TestTimeZoneFromProfile(t *testing.T) {
	w := newWorld(t, slackfake.Options{})
	w.fake.AddUser(slackfake.User{ID: "UERIN", Name: "erin", Email: "erin@example.com", TZ: "Asia/Kolkata"})
	before := w.fake.Calls("users.info")
	if _, err := w.bot.Identity(tctx(t), "UERIN"); err != nil {
		t.Fatal(err)
	}
	loc, err := w.bot.TimeZone(tctx(t), "UERIN")
	if err != nil || loc == nil || loc.String() != "Asia/Kolkata" {
		t.Fatalf("zone %v, %v", loc, err)
	}
	if n := w.fake.Calls("users.info") - before; n != 1 {
		t.Errorf("users.info called %d times for identity and zone, want 1", n)
	}
	loc, err = w.bot.TimeZone(tctx(t), "UCAROL") // no identity lookup before: a call of its own
	if err != nil || loc == nil || loc.String() != "America/Los_Angeles" {
		t.Fatalf("default zone %v, %v", loc, err)
	}
	if _, err := w.bot.TimeZone(tctx(t), "UNOBODY"); err == nil {
		t.Fatal("no error for an unknown user")
	}
}
