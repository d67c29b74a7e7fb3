package discord_test

import (
	"strings"
	"sync"
	"testing"

	"github.com/accessbot/accessbot/access"
	"github.com/accessbot/accessbot/bot/discord/discordfake"
	"github.com/accessbot/accessbot/handlers"
	"github.com/accessbot/accessbot/internal/redistest"
	redisstore "github.com/accessbot/accessbot/store/redis"
)

// everyAnsweredOnce waits until each interaction has its answer and checks
// that each was acknowledged exactly once, in time.
func everyAnsweredOnce(t *testing.T, w *world, ins []*discordfake.Interaction) {
	t.Helper()
	for _, in := range ins {
		w.answer(t, in)
	}
	for _, in := range ins {
		got := w.fake.Interaction(in.ID)
		if got.Callbacks != 1 {
			t.Errorf("interaction %s (%s): %d callbacks, want 1", in.ID, in.Type, got.Callbacks)
		}
	}
}

// (4) op 7 and a dropped socket mid-run: the session is resumed, what was
// dispatched meanwhile is replayed, nothing is lost or handled twice; a
// redelivered interaction is dropped; after op 9 the bot identifies again.
func TestE2EGatewayResumeLosesNothing(t *testing.T) {
	w := newWorld(t, discordfake.Options{})
	w.command(t, uAlice, "request", discordfake.Option{Name: "role", Value: "prod-admin"},
		discordfake.Option{Name: "duration", Value: "1h"}, discordfake.Option{Name: "reason", Value: "deploy"})
	card, id := w.card(t, 1)

	// op 7: everything dispatched while the bot reconnects is replayed.
	w.fake.Reconnect()
	var ins []*discordfake.Interaction
	req, err := w.fake.DispatchCommand(in(uAlice), "request", discordfake.Option{Name: "role", Value: "prod-read"},
		discordfake.Option{Name: "duration", Value: "1h"}, discordfake.Option{Name: "reason", Value: "read logs"})
	if err != nil {
		t.Fatal(err)
	}
	ins = append(ins, req)
	click, err := w.fake.DispatchClick(in(uBob), card, "access:approve:"+id)
	if err != nil {
		t.Fatal(err)
	}
	ins = append(ins, click)
	everyAnsweredOnce(t, w, ins)
	waitFor(t, w.fake, "resume after op 7", func() bool { return w.fake.Resumes() >= 1 })

	// A dropped socket: dispatched while it is down, replayed on RESUME.
	w.fake.Drop()
	var more []*discordfake.Interaction
	for _, u := range []string{uCarol, uAlice, uBob} {
		in, err := w.fake.DispatchCommand(in(u), "list")
		if err != nil {
			t.Fatal(err)
		}
		more = append(more, in)
	}
	everyAnsweredOnce(t, w, more)
	waitFor(t, w.fake, "resume after the drop", func() bool { return w.fake.Resumes() >= 2 })
	if n := len(w.fake.Identifies()); n != 1 {
		t.Errorf("%d IDENTIFYs, want 1 (both reconnects resumed)", n)
	}

	// A redelivered interaction is not acted on again.
	if err := w.fake.Redispatch(req, in(uAlice), 2, discordfake.CommandData("request", discordfake.Option{Name: "role", Value: "prod-read"},
		discordfake.Option{Name: "duration", Value: "1h"}, discordfake.Option{Name: "reason", Value: "read logs"})); err != nil {
		t.Fatal(err)
	}
	marker, _ := w.command(t, uCarol, "help") // dispatched after the redelivery, on the same socket
	if !strings.Contains(marker, "/access") {
		t.Errorf("help: %q", marker)
	}
	if got := w.fake.Interaction(req.ID); got.Callbacks != 1 {
		t.Errorf("redelivered interaction acknowledged %d times", got.Callbacks)
	}

	waitFor(t, w.fake, "grant", func() bool { return w.prov.IsMember(groupAdmin, alice) })
	if n := len(w.fake.Messages(chApprove)); n != 2 {
		t.Errorf("%d cards, want 2 (one per request, none twice)", n)
	}
	if n := w.prov.Count("grant", alice); n != 1 {
		t.Errorf("%d grants, want 1", n)
	}
	if rs, _ := w.st.List(tctx(t), access.Filter{}); len(rs) != 2 {
		t.Errorf("%d requests, want 2", len(rs))
	}

	// op 9 (not resumable): the bot identifies again and keeps working.
	w.fake.InvalidateSessions()
	waitFor(t, w.fake, "IDENTIFY after op 9", func() bool { return len(w.fake.Identifies()) == 2 })
	if txt, _ := w.command(t, uAlice, "list"); !strings.Contains(txt, id) {
		t.Errorf("list after op 9: %q", txt)
	}
	if ids := w.fake.Identifies(); ids[1].Intents != 1 {
		t.Errorf("second IDENTIFY intents %d, want 1", ids[1].Intents)
	}
}

// Two replicas on one Redis store share a fake Discord: each interaction
// goes to one of them, and a redelivery to the other is dropped through
// the store's dedup.
func TestE2ETwoReplicasShareDedup(t *testing.T) {
	f := newFake(t, discordfake.Options{})
	c := redistest.Client(t)
	prefix := redistest.Prefix(t)
	st1 := redisstore.New(c, prefix)
	st2 := redisstore.New(c, prefix)
	w := newWorldOn(t, f, st1)
	newWorldOn(t, f, st2)
	waitFor(t, f, "two sessions", func() bool { return f.LiveSessions() == 2 })
	if len(f.Commands(guild)) != 1 || f.Overwrites() != 2 {
		t.Errorf("commands %d after %d overwrites, want 1 command after 2", len(f.Commands(guild)), f.Overwrites())
	}

	var ins []*discordfake.Interaction
	for i := range 10 {
		u := []string{uAlice, uBob, uCarol}[i%3]
		in, err := f.DispatchCommand(in(u), "list")
		if err != nil {
			t.Fatal(err)
		}
		ins = append(ins, in)
	}
	everyAnsweredOnce(t, w, ins)
	// Redeliver every one to the other replica (round robin moved on by one).
	for _, in := range ins {
		if err := f.Redispatch(in, discordfake.Source{User: uAlice, Guild: guild, Channel: chGeneral}, 2, discordfake.CommandData("list")); err != nil {
			t.Fatal(err)
		}
	}
	w.command(t, uBob, "help")
	w.command(t, uCarol, "help")
	for _, in := range ins {
		if got := f.Interaction(in.ID); got.Callbacks != 1 {
			t.Errorf("interaction %s acknowledged %d times across replicas", in.ID, got.Callbacks)
		}
	}

	// A request on one replica, approved through the other.
	w.command(t, uAlice, "request", discordfake.Option{Name: "role", Value: "prod-admin"},
		discordfake.Option{Name: "duration", Value: "1h"}, discordfake.Option{Name: "reason", Value: "deploy"})
	card, id := w.card(t, 1)
	var wg sync.WaitGroup
	texts := make([]string, 6)
	for i := range texts {
		wg.Go(func() { texts[i], _ = w.click(t, in(uBob), card, handlers.ActionApprove, id) })
	}
	wg.Wait()
	approved := 0
	for _, s := range texts {
		if strings.Contains(s, "You approved "+id) {
			approved++
		}
	}
	if approved != 1 || w.state(t, id) != access.StateActive {
		t.Errorf("%d 'You approved' answers, state %s; want 1, active", approved, w.state(t, id))
	}
	if n := len(f.Messages(chApprove)); n != 1 {
		t.Errorf("%d cards, want 1", n)
	}
}
