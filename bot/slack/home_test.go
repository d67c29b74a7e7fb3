package slack_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/accessbot/accessbot/access"
	slackbot "github.com/accessbot/accessbot/bot/slack"
	"github.com/accessbot/accessbot/bot/slack/slackfake"
	"github.com/accessbot/accessbot/handlers"
)

// homeStub is a recorder that also builds a fixed Home.
type homeStub struct {
	*recorder
	mu    sync.Mutex
	home  handlers.Home
	asked []string
}

func (h *homeStub) Home(_ context.Context, chatUser string) (handlers.Home, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.asked = append(h.asked, chatUser)
	return h.home, nil
}

// startHome runs a bot with h against f; pause, when set, holds each batch
// of Home refreshes.
func startHome(t *testing.T, f *slackfake.Server, h slackbot.Handler, pause func(context.Context)) *slackbot.Bot {
	t.Helper()
	b, err := slackbot.New(botConfig(f), h, nil, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	if pause != nil {
		slackbot.SetHomePause(b, pause)
	} else {
		slackbot.SetHomeDebounce(b, 0)
	}
	runBot(t, b)
	waitFor(t, f, "first connection", func() bool { return f.LiveConnections() == 1 })
	return b
}

// fakeHome builds a Home with n items in each list (n rotations too),
// each text long, the newest first.
func fakeHome(n int) handlers.Home {
	var h handlers.Home
	long := strings.Repeat("a reason that goes on <and on> & on ", 40) // > 1000 bytes escaped
	for i := range n {
		id := fmt.Sprintf("r-%03d", i)
		h.Grants = append(h.Grants, handlers.HomeItem{RequestID: "g" + id, Text: "g" + id + " *prod-admin* active " + long,
			Buttons: []handlers.Button{{Label: "Revoke", Action: handlers.ActionRevoke, Value: "g" + id, Style: "danger"}}})
		h.Pending = append(h.Pending, handlers.HomeItem{RequestID: "p" + id, Text: "p" + id + " *prod-read* waiting " + long,
			Buttons: []handlers.Button{{Label: "Cancel", Action: handlers.ActionCancel, Value: "p" + id}}})
		h.Waiting = append(h.Waiting, handlers.HomeItem{RequestID: "w" + id, Text: "w" + id + " bob asks " + long,
			Buttons: []handlers.Button{{Label: "Approve", Action: handlers.ActionApprove, Value: "w" + id, Style: "primary"},
				{Label: "Deny", Action: handlers.ActionDeny, Value: "w" + id, Style: "danger"}}})
		h.OnCall = append(h.OnCall, handlers.HomeItem{Text: fmt.Sprintf("*rotation-%02d*: carol@example.com until 2031-03-09 08:00 UTC %s", i, long[:200])})
	}
	return h
}

// buttons lists action_id=value of every button of blocks, accessories
// included.
func buttons(blocks []map[string]any) []string {
	var out []string
	for _, b := range blocks {
		var els []any
		if acc, ok := b["accessory"].(map[string]any); ok {
			els = append(els, acc)
		}
		if l, ok := b["elements"].([]any); ok && b["type"] == "actions" {
			els = append(els, l...)
		}
		for _, e := range els {
			em := e.(map[string]any)
			if em["type"] == "button" {
				out = append(out, fmt.Sprint(em["action_id"], "=", em["value"]))
			}
		}
	}
	return out
}

func has(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// The Home tab of a person with 0, 3, 60 and 180 items (a third in each
// list, and as many rotations as items in a list), as
// published through the fake, which refuses what Slack refuses: at most
// 100 blocks, under 250 kB, the newest items with their buttons and a
// line counting the rest.
func TestHomeTabWithinLimits(t *testing.T) {
	for _, n := range []int{0, 1, 20, 60} {
		t.Run(fmt.Sprintf("%d_items", 3*n), func(t *testing.T) {
			f := newFake(t, slackfake.Options{})
			stub := &homeStub{recorder: &recorder{}, home: fakeHome(n)}
			startHome(t, f, stub, nil)
			if _, err := f.AppHomeOpened(tctx(t), "UALICE", "", "home"); err != nil {
				t.Fatal(err)
			}
			waitFor(t, f, "home published", func() bool { return f.HomePublishes("UALICE") == 1 })
			h, _ := f.Home("UALICE")
			text := slackfake.BlockText(h.Blocks)
			btns := buttons(h.Blocks)
			t.Logf("%d items: %d blocks, %d bytes, %d buttons", 3*n, len(h.Blocks), h.Size, len(btns))
			if len(h.Blocks) > 100 || h.Size >= 250000 {
				t.Fatalf("%d blocks, %d bytes", len(h.Blocks), h.Size)
			}
			if h.CallbackID == "" {
				t.Error("home view without callback id")
			}
			switch n {
			case 0:
				for _, want := range []string{"You hold no access right now.", "You have no pending requests.", "Nothing waits for your decision.", "No rotations are configured."} {
					if !strings.Contains(text, want) {
						t.Errorf("empty home lacks %q:\n%s", want, text)
					}
				}
				if len(btns) != 0 || strings.Contains(text, "more:") {
					t.Errorf("empty home has buttons %v or a more line", btns)
				}
			case 1:
				for _, want := range []string{"revoke=gr-000", "cancel=pr-000", "approve=wr-000", "deny=wr-000"} {
					if !has(btns, want) {
						t.Errorf("no button %s in %v", want, btns)
					}
				}
				if len(btns) != 4 || strings.Contains(text, "more:") {
					t.Errorf("buttons %v; text:\n%s", btns, text)
				}
				if !strings.Contains(text, "&lt;and on&gt; &amp; on") {
					t.Errorf("item text not escaped:\n%.400s", text)
				}
			case 20:
				// 60 items: every one fits, with its buttons.
				if len(btns) != 80 || strings.Contains(text, "more: `/access list") {
					t.Errorf("%d buttons (want 80); text has a more line: %v", len(btns), strings.Contains(text, "more: `/access list"))
				}
			case 60:
				// The newest of each list are shown, with their buttons.
				for _, want := range []string{"revoke=gr-000", "cancel=pr-000", "approve=wr-000", "deny=wr-000"} {
					if !has(btns, want) {
						t.Errorf("newest item's button %s missing", want)
					}
				}
				if has(btns, "revoke=gr-059") || has(btns, "approve=wr-059") {
					t.Error("the oldest items are shown although they cannot all fit")
				}
				shown := map[string]int{}
				for _, b := range btns {
					shown[b[:strings.Index(b, "=")]]++
				}
				for _, l := range []struct{ action, list string }{{"revoke", "grants"}, {"cancel", "pending"}, {"approve", "waiting"}} {
					k := shown[l.action]
					if k == 0 {
						t.Fatalf("no %s buttons", l.action)
					}
					want := fmt.Sprintf("and %d more: `/access list %s`", 60-k, l.list)
					if !strings.Contains(text, want) {
						t.Errorf("%s: %d shown, no line %q", l.list, k, want)
					}
				}
				if !strings.Contains(text, "more: `/access oncall`") {
					t.Errorf("no more line for the rotations")
				}
			}
		})
	}
}

// app_home_opened publishes the Home of the person who opened the Home
// tab; the Messages tab and foreign workspaces publish nothing.
func TestHomeOpened(t *testing.T) {
	f := newFake(t, slackfake.Options{})
	stub := &homeStub{recorder: &recorder{}, home: fakeHome(1)}
	startHome(t, f, stub, nil)
	if _, err := f.AppHomeOpened(tctx(t), "UALICE", "", "messages"); err != nil {
		t.Fatal(err)
	}
	if _, err := f.AppHomeOpened(tctx(t), "UMALLORY", otherTeam, "home"); err != nil {
		t.Fatal(err)
	}
	res, err := f.AppHomeOpened(tctx(t), "UALICE", "", "home")
	if err != nil {
		t.Fatal(err)
	}
	if res.Ack.Payload != nil {
		t.Errorf("events_api ack with payload %s", res.Ack.Payload)
	}
	waitFor(t, f, "alice's home", func() bool { return f.HomePublishes("UALICE") == 1 })
	// A second opening re-publishes (the view may be stale).
	if _, err := f.AppHomeOpened(tctx(t), "UALICE", "", "home"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, f, "alice's home again", func() bool { return f.HomePublishes("UALICE") == 2 })
	if n := f.HomePublishes("UMALLORY"); n != 0 {
		t.Errorf("a foreign workspace's user got %d homes", n)
	}
	stub.mu.Lock()
	defer stub.mu.Unlock()
	if len(stub.asked) != 2 || stub.asked[0] != "UALICE" {
		t.Errorf("homes built for %v", stub.asked)
	}
}

// A burst of changes concerning one person publishes their Home once.
func TestHomeBurstPublishesOnce(t *testing.T) {
	f := newFake(t, slackfake.Options{})
	stub := &homeStub{recorder: &recorder{}, home: fakeHome(1)}
	entered, release := make(chan struct{}), make(chan struct{})
	b := startHome(t, f, stub, func(ctx context.Context) {
		select {
		case entered <- struct{}{}:
		case <-ctx.Done():
			return
		}
		select {
		case <-release:
		case <-ctx.Done():
		}
	})
	for range 50 {
		b.RefreshHome(alice)
	}
	if _, err := f.AppHomeOpened(tctx(t), "UALICE", "", "home"); err != nil { // the same person by user id
		t.Fatal(err)
	}
	<-entered
	release <- struct{}{}
	waitFor(t, f, "alice's home", func() bool { return f.HomePublishes("UALICE") == 1 })
	// The marks that came in while the batch was held leave at most an
	// empty batch behind; bob's refresh is the barrier after it.
	<-entered
	b.RefreshHome("bob@example.com")
	release <- struct{}{}
	select {
	case <-entered:
		release <- struct{}{}
	default:
	}
	waitFor(t, f, "bob's home", func() bool { return f.HomePublishes("UBOB") == 1 })
	if n := f.HomePublishes("UALICE"); n != 1 {
		t.Errorf("51 refreshes of alice published %d times, want 1", n)
	}
	if n := f.Calls("users.lookupByEmail"); n > 2 {
		t.Errorf("%d email lookups for 2 people", n)
	}
}

// A Home tab disabled in the app's settings: Slack answers not_enabled;
// changes then stop publishing until someone opens the tab.
func TestHomeNotEnabled(t *testing.T) {
	f := newFake(t, slackfake.Options{HomeTabDisabled: true})
	stub := &homeStub{recorder: &recorder{}, home: fakeHome(1)}
	b := startHome(t, f, stub, nil)
	b.RefreshHome(alice)
	waitFor(t, f, "refused publish", func() bool { return slackbot.HomeOff(b) })
	if n := f.Calls("views.publish"); n != 1 {
		t.Fatalf("%d views.publish calls", n)
	}
	b.RefreshHome(alice)
	b.RefreshHome("bob@example.com")
	// The Messages tab says nothing about the Home tab; an opening of the
	// Home tab does (and publishes, refused again here).
	if _, err := f.AppHomeOpened(tctx(t), "UBOB", "", "home"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, f, "publish after opening", func() bool { return f.Calls("views.publish") == 2 && slackbot.HomeOff(b) })
	stub.mu.Lock()
	asked := append([]string(nil), stub.asked...)
	stub.mu.Unlock()
	if len(asked) != 2 || asked[1] != "UBOB" {
		t.Errorf("homes built for %v, want alice's then bob's after he opened the tab", asked)
	}
}

// End to end with the engine: a request shows in the requester's Home as
// pending and in the approver's as waiting; the approver approves from
// the Home (the click has no channel or message: the answer goes by DM);
// both Homes refresh; the requester revokes from the Home.
func TestHomeFollowsRequest(t *testing.T) {
	w := newWorld(t, slackfake.Options{})
	w.command(t, "UALICE", "prod-admin 1h fixing checkout")
	_, id := w.card(t, 1)

	homeText := func(user string) string {
		h, _ := w.fake.Home(user)
		return slackfake.BlockText(h.Blocks)
	}
	homeHas := func(user, button string) bool {
		h, _ := w.fake.Home(user)
		return has(buttons(h.Blocks), button)
	}
	waitFor(t, w.fake, "alice's home shows the request pending", func() bool { return homeHas("UALICE", "cancel="+id) })
	if txt := homeText("UALICE"); !strings.Contains(txt, "Your pending requests") || !strings.Contains(txt, id+" *prod-admin*") {
		t.Errorf("alice's home:\n%s", txt)
	}
	waitFor(t, w.fake, "bob's home shows it waiting", func() bool { return homeHas("UBOB", "approve="+id) && homeHas("UBOB", "deny="+id) })
	if txt := homeText("UBOB"); !strings.Contains(txt, "alice@example.com asks for *prod-admin*") || !strings.Contains(txt, "fixing checkout") {
		t.Errorf("bob's home:\n%s", txt)
	}

	if _, err := w.fake.ClickHome(tctx(t), slackfake.HomeClick{User: "UBOB", ActionID: handlers.ActionApprove, Value: id}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, w.fake, "grant", func() bool { return w.prov.IsMember(groupAdmin, alice) })
	waitFor(t, w.fake, "bob's answer by DM", func() bool {
		for _, m := range w.fake.Messages(w.fake.DMChannel("UBOB")) {
			if strings.Contains(m.Text, "You approved "+id) {
				return true
			}
		}
		return false
	})
	if es := w.fake.EphemeralsFor("UBOB"); len(es) != 0 {
		t.Errorf("bob got ephemerals %v for a Home click", ephemeralTexts(es))
	}
	waitFor(t, w.fake, "bob's home refreshed", func() bool {
		return !homeHas("UBOB", "approve="+id) && strings.Contains(homeText("UBOB"), "Nothing waits for your decision.")
	})
	waitFor(t, w.fake, "alice's home shows the grant", func() bool { return homeHas("UALICE", "revoke="+id) })
	if txt := homeText("UALICE"); !strings.Contains(txt, "active until") || !strings.Contains(txt, "You have no pending requests.") {
		t.Errorf("alice's home after approval:\n%s", txt)
	}

	if _, err := w.fake.ClickHome(tctx(t), slackfake.HomeClick{User: "UALICE", ActionID: handlers.ActionRevoke, Value: id}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, w.fake, "revoked", func() bool { return !w.prov.IsMember(groupAdmin, alice) })
	if got := w.state(t, id); got != access.StateEnded {
		t.Errorf("request %s after the Home's Revoke", got)
	}
	waitFor(t, w.fake, "alice's home after the revocation", func() bool {
		return !homeHas("UALICE", "revoke="+id) && strings.Contains(homeText("UALICE"), "You hold no access right now.")
	})
	waitFor(t, w.fake, "alice's answer by DM", func() bool {
		for _, m := range w.fake.Messages(w.fake.DMChannel("UALICE")) {
			if strings.Contains(m.Text, "Request "+id) && strings.Contains(m.Text, "has ended") {
				return true
			}
		}
		return false
	})
	w.reportAcks(t)
}
