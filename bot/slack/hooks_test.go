package slack_test

import (
	"context"
	"sync"
	"testing"
	"time"

	slackbot "github.com/accessbot/accessbot/bot/slack"
	"github.com/accessbot/accessbot/bot/slack/slackfake"
)

// hookLog records what the hooks were told.
type hookLog struct {
	mu    sync.Mutex
	conns []bool
	acks  []time.Duration
}

func (h *hookLog) hooks() slackbot.Hooks {
	return slackbot.Hooks{
		Connected: func(up bool) { h.mu.Lock(); h.conns = append(h.conns, up); h.mu.Unlock() },
		Acked:     func(d time.Duration) { h.mu.Lock(); h.acks = append(h.acks, d); h.mu.Unlock() },
	}
}

func (h *hookLog) ups() (up, down, acks int) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, c := range h.conns {
		if c {
			up++
		} else {
			down++
		}
	}
	return up, down, len(h.acks)
}

// The hooks see each connection come up and go, and every ack with its
// wait since receipt.
func TestHooksSeeConnectionsAndAcks(t *testing.T) {
	f := newFake(t, slackfake.Options{})
	b, err := slackbot.New(botConfig(f), nil, nil, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	var log hookLog
	b.SetHooks(log.hooks())
	b.SetHandler(&recorder{})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- b.Run(ctx) }()
	waitFor(t, f, "first connection", func() bool { up, _, _ := log.ups(); return up == 1 })

	for range 3 {
		if _, err := f.SlashCommand(tctx(t), slackfake.Command{User: "UALICE", Channel: chGeneral, Text: "prod-admin 2h fix"}); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, f, "three acks observed", func() bool { _, _, n := log.ups(); return n == 3 })
	log.mu.Lock()
	for _, d := range log.acks {
		if d < 0 || d > 3*time.Second {
			t.Errorf("ack wait %v, want within Slack's 3 s", d)
		}
	}
	log.mu.Unlock()

	f.Disconnect("refresh_requested")
	waitFor(t, f, "reconnection", func() bool { up, _, _ := log.ups(); return up == 2 })
	if _, down, _ := log.ups(); down == 0 {
		t.Error("the lost connection was not reported down")
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	log.mu.Lock()
	last := log.conns[len(log.conns)-1]
	log.mu.Unlock()
	if last {
		t.Error("after Run ended the hook's last word was up")
	}
}
