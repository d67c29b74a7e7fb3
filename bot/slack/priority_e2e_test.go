package slack_test

import (
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/accessbot/accessbot/access"
	slackbot "github.com/accessbot/accessbot/bot/slack"
	"github.com/accessbot/accessbot/bot/slack/slackfake"
	"github.com/accessbot/accessbot/handlers"
	"github.com/accessbot/accessbot/providers/dryrun"
	"github.com/accessbot/accessbot/store/bolt"
)

// floodWorld is the engine behind the transport with 50 extra roles
// svc-00…svc-49 (one request each, so one person can flood), no per-user
// limits, the security channel set to the approvals channel, and the
// approvals channel's pace driven by the test: while held is set, a slot
// is handed out only for each value sent on slots.
type floodWorld struct {
	*world
	held    *atomic.Bool
	slots   chan struct{}
	release func() // stop holding for good (the backlog drains)
}

const flood = 50

func newFloodWorld(t *testing.T, workers int) *floodWorld {
	t.Helper()
	f := newFake(t, slackfake.Options{})
	f.AddUser(slackfake.User{ID: "UCAROL", Name: "carol", Email: "carol@example.com"})
	log := testLogger(t)
	st, err := bolt.Open(filepath.Join(t.TempDir(), "accessbot.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	bob := []string{"bob@example.com"}
	roles := map[string]access.Role{
		"prod-admin": {Name: "prod-admin", Description: "Administrator on production", Provider: "dryrun", Group: groupAdmin,
			MaxDuration: 4 * time.Hour, DefaultDuration: time.Hour, ApproverUsers: bob, Approvals: 1, PendingTTL: time.Hour, BreakGlass: true},
		"prod-read": {Name: "prod-read", Description: "Read-only on production", Provider: "dryrun", Group: groupRead,
			MaxDuration: 8 * time.Hour, DefaultDuration: time.Hour, ApproverUsers: bob, Approvals: 1, PendingTTL: time.Hour},
	}
	for i := range flood {
		name := fmt.Sprintf("svc-%02d", i)
		roles[name] = access.Role{Name: name, Description: "Service " + name, Provider: "dryrun", Group: "g-" + name,
			MaxDuration: 4 * time.Hour, DefaultDuration: time.Hour, ApproverUsers: bob, Approvals: 1, PendingTTL: time.Hour}
	}
	prov := dryrun.New(log)
	clk := &clock{now: time.Date(2031, 3, 4, 10, 0, 0, 0, time.UTC)}
	svc, err := access.NewService(access.Deps{Store: st, Policy: &access.Policy{Roles: roles, BreakGlass: bob},
		Providers: map[string]access.Provisioner{"dryrun": prov}, Clock: clk, Logger: log,
		Options: access.Options{MaxPendingPerUser: -1, CommandsPerMinute: -1}})
	if err != nil {
		t.Fatal(err)
	}
	cfg := botConfig(f)
	cfg.Workers = workers
	cfg.SecurityChannel = chApprove // announcements compete with the cards for the same channel
	b, err := slackbot.New(cfg, nil, st, log)
	if err != nil {
		t.Fatal(err)
	}
	held := &atomic.Bool{}
	slots, stop := make(chan struct{}), make(chan struct{})
	slackbot.SetPostPause(b, func(channel string, _ time.Duration) {
		if channel == chApprove && held.Load() {
			select {
			case <-slots:
			case <-stop:
			}
		}
	})
	svc.SetNotifier(handlers.NewNotifier(b, log))
	b.SetHandler(handlers.New(svc, b, log))
	runBot(t, b)
	var once sync.Once
	release := func() { once.Do(func() { close(stop) }) }
	t.Cleanup(release) // before the bot stops: let the backlog drain
	waitFor(t, f, "first connection", func() bool { return f.LiveConnections() == 1 })
	return &floodWorld{world: &world{fake: f, bot: b, svc: svc, prov: prov, clk: clk}, held: held, slots: slots, release: release}
}

// A flood of requests from one person (50 approval cards waiting for the
// approvals channel, which Slack lets the bot post to about once a
// second) must not delay anyone else's decision, revocation or break-glass
// announcement: a Deny click and a revoke are handled and answered while
// the whole card backlog is still waiting, and the break-glass
// announcement, posted to the same channel, takes the channel's very next
// slot ahead of every waiting card.
//
// The channel's pacing is driven by hand: while the flood is on, a slot
// of the approvals channel is handed out only when the test says so, so
// the assertions are about order, not time.
func TestE2ECardFloodDoesNotDelayDecisionsRevokesOrBreakGlass(t *testing.T) {
	const workers = 4
	fw := newFloodWorld(t, workers)
	w, f, b, prov, slots, held, release := fw.world, fw.fake, fw.bot, fw.prov, fw.slots, fw.held, fw.release

	// Before the flood: carol has access (approved by bob) and a second
	// request waiting for bob.
	w.command(t, "UCAROL", "prod-admin 1h fixing checkout")
	_, granted := w.card(t, 1)
	w.click(t, "UBOB", "", handlers.ActionApprove, granted, false)
	waitFor(t, f, "carol's grant", func() bool { return prov.IsMember(groupAdmin, "carol@example.com") })
	w.command(t, "UCAROL", "prod-read 1h reading logs")
	card2, pending := w.card(t, 2)

	// The flood: 50 requests from alice, each posting a card.
	held.Store(true)
	for i := range flood {
		w.command(t, "UALICE", fmt.Sprintf("svc-%02d 1h flood %d", i, i))
	}
	waitFor(t, f, "every request worker waiting to post a card", func() bool {
		urgent, bulk := slackbot.PostsWaiting(b, chApprove)
		return urgent+bulk == workers
	})
	posted := len(f.Messages(chApprove))
	cards := func() int {
		n := 0
		for _, m := range f.Messages(chApprove) {
			if strings.Contains(slackfake.BlockText(m.Blocks), "alice@example.com asks for svc-") {
				n++
			}
		}
		return n
	}
	backlog := func() int { return flood - cards() }
	t.Logf("flood: %d of %d cards posted, %d waiting for a slot, the rest queued", cards(), flood, workers)
	unchanged := func(what string) {
		t.Helper()
		if n := len(f.Messages(chApprove)); n != posted {
			t.Fatalf("%s: %d posts in the approvals channel, want still %d (the backlog drained first)", what, n, posted)
		}
	}

	// A decision: bob's Deny click is handled, the card updated, carol told
	// and bob answered, while the cards still wait.
	w.click(t, "UBOB", "", handlers.ActionDeny, pending, false)
	waitFor(t, f, "the denial", func() bool {
		m, _ := f.Message(card2.Channel, card2.TS)
		return w.state(t, pending) == access.StateDenied && m.Updates > 0 && !hasAction(m.Blocks, handlers.ActionApprove)
	})
	waitFor(t, f, "bob's answer", func() bool { return len(f.EphemeralsFor("UBOB")) == 2 })
	waitFor(t, f, "carol told of the denial", func() bool { return dmContains(f, "UCAROL", "was denied") })
	unchanged("after the Deny click")

	// A revocation: carol ends her access herself.
	w.command(t, "UCAROL", "revoke "+granted+" done")
	waitFor(t, f, "the revocation", func() bool {
		return !prov.IsMember(groupAdmin, "carol@example.com") && w.state(t, granted) == access.StateEnded
	})
	waitFor(t, f, "carol told her access ended", func() bool { return dmContains(f, "UCAROL", "access has ended") })
	unchanged("after the revoke")

	// Break-glass: announced (then granted) at once; the announcement
	// waits for the approvals channel (the security channel here) ahead
	// of every card.
	w.command(t, "UBOB", "breakglass prod-admin 30m database on fire")
	waitFor(t, f, "the announcement waiting for a slot", func() bool {
		urgent, bulk := slackbot.PostsWaiting(b, chApprove)
		return urgent+bulk == workers+1
	})
	unchanged("before the next slot")
	if got := backlog(); got < flood-1 {
		t.Fatalf("only %d cards were left waiting", got)
	}

	slots <- struct{}{}
	waitFor(t, f, "the next post", func() bool { return len(f.Messages(chApprove)) == posted+1 })
	if txt := f.Messages(chApprove)[posted].Text; !strings.Contains(txt, "Break-glass") {
		t.Fatalf("the slot after the flood went to %q, want the break-glass announcement", txt)
	}
	waitFor(t, f, "bob's break-glass grant", func() bool { return prov.IsMember(groupAdmin, "bob@example.com") })
	waitFor(t, f, "bob's answer", func() bool { return len(f.EphemeralsFor("UBOB")) == 3 })
	for range 2 {
		slots <- struct{}{}
	}
	waitFor(t, f, "two more cards", func() bool { return len(f.Messages(chApprove)) == posted+3 })
	for _, m := range f.Messages(chApprove)[posted+1:] {
		if !strings.Contains(slackfake.BlockText(m.Blocks), "asks for svc-") {
			t.Errorf("after the announcement: %q, want alice's cards", m.Text)
		}
	}
	t.Logf("decision, revocation and break-glass done with %d of %d cards still waiting", backlog(), flood)

	release()
	waitFor(t, f, "the backlog drained", func() bool { return cards() == flood })
}

func dmContains(f *slackfake.Server, user, text string) bool {
	ch := f.DMChannel(user)
	if ch == "" {
		return false
	}
	for _, m := range f.Messages(ch) {
		if strings.Contains(m.Text, text) {
			return true
		}
	}
	return false
}

func hasAction(blocks []map[string]any, action string) bool {
	for _, b := range blocks {
		els, _ := b["elements"].([]any)
		for _, e := range els {
			if el, ok := e.(map[string]any); ok && el["action_id"] == action {
				return true
			}
		}
	}
	return false
}

// When even the queue of the request workers is full, the next requests
// are refused with a clear answer rather than holding up the socket
// reader, so clicks, decisions and revocations still reach their own
// workers.
func TestE2ERequestQueueOverflowRefusedNotWaitedFor(t *testing.T) {
	fw := newFloodWorld(t, 1)
	w, f, b := fw.world, fw.fake, fw.bot
	w.command(t, "UCAROL", "prod-read 1h reading logs")
	_, pending := w.card(t, 1)

	fw.held.Store(true)
	w.command(t, "UALICE", "svc-00 1h flood")
	waitFor(t, f, "the request worker waiting to post a card", func() bool {
		u, bk := slackbot.PostsWaiting(b, chApprove)
		return u+bk == 1
	})
	const queued, refused = 64, 3 // the queue holds 64 per request worker
	for i := 1; i <= queued+refused; i++ {
		w.command(t, "UALICE", fmt.Sprintf("svc-%02d 1h flood %d", i%flood, i))
	}
	waitFor(t, f, "the refusals", func() bool { return len(f.EphemeralsFor("UALICE")) == refused })
	for _, e := range f.EphemeralsFor("UALICE") {
		if !strings.Contains(e.Text, "too many requests waiting") || e.Channel != chGeneral {
			t.Errorf("refusal %+v", e)
		}
	}

	w.click(t, "UBOB", "", handlers.ActionDeny, pending, false)
	waitFor(t, f, "the denial", func() bool { return w.state(t, pending) == access.StateDenied })
	waitFor(t, f, "bob's answer", func() bool { return len(f.EphemeralsFor("UBOB")) == 1 })
	if n := len(f.Messages(chApprove)); n != 1 {
		t.Errorf("%d posts in the approvals channel, want only carol's card", n)
	}
	fw.release()
	waitFor(t, f, "the queued requests handled", func() bool {
		return len(f.EphemeralsFor("UALICE")) == refused+1+queued
	})
}
