package discord_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/accessbot/accessbot/bot/discord"
	"github.com/accessbot/accessbot/bot/discord/discordfake"
	"github.com/accessbot/accessbot/handlers"
)

// The hooks see the gateway come up, go down and resume, and every first
// response with its wait since receipt.
func TestHooksSeeConnectionsAndAcks(t *testing.T) {
	f := newFake(t, discordfake.Options{})
	log := testLogger(t)
	b, err := discord.New(botConfig(f), nil, nil, log, nil)
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var conns []bool
	var acks []time.Duration
	b.SetHooks(discord.Hooks{
		Connected: func(up bool) { mu.Lock(); conns = append(conns, up); mu.Unlock() },
		Acked:     func(d time.Duration) { mu.Lock(); acks = append(acks, d); mu.Unlock() },
	})
	b.SetHandler(handlers.New(nil, b, log)) // /access help needs no service
	counts := func() (up, down, n int) {
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			if c {
				up++
			} else {
				down++
			}
		}
		return up, down, len(acks)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- b.Run(ctx) }()
	waitFor(t, f, "ready", func() bool { up, _, _ := counts(); return up == 1 })

	for range 2 {
		if _, err := f.Command(tctx(t), in(uAlice), "help"); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, f, "two acks observed", func() bool { _, _, n := counts(); return n == 2 })
	mu.Lock()
	for _, d := range acks {
		if d < 0 || d > 3*time.Second {
			t.Errorf("first response after %v, want within Discord's 3 s", d)
		}
	}
	mu.Unlock()

	f.Drop()
	waitFor(t, f, "resumed", func() bool { up, _, _ := counts(); return up == 2 })
	if _, down, _ := counts(); down == 0 {
		t.Error("the dropped socket was not reported down")
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	last := conns[len(conns)-1]
	mu.Unlock()
	if last {
		t.Error("after Run ended the hook's last word was up")
	}
}
