package slackfake_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	goslack "github.com/slack-go/slack"
	"github.com/slack-go/slack/socketmode"

	"github.com/accessbot/accessbot/bot/slack/slackfake"
	"github.com/accessbot/accessbot/internal/testclock"
)

// These tests hold the fake to what Slack does, using the real slack-go
// client wherever it has a call for it.

func newServer(t *testing.T, opts slackfake.Options) *slackfake.Server {
	t.Helper()
	s := slackfake.New(opts)
	t.Cleanup(s.Close)
	s.AddChannel("C1")
	s.AddUser(slackfake.User{ID: "U1", Email: "a@example.com"})
	return s
}

func client(s *slackfake.Server, token string) *goslack.Client {
	return goslack.New(token, goslack.OptionAPIURL(s.APIURL()), goslack.OptionAppLevelToken(s.AppToken()))
}

func slackErr(err error) string {
	var se goslack.SlackErrorResponse
	if errors.As(err, &se) {
		return se.Err
	}
	if err != nil {
		return err.Error()
	}
	return ""
}

func TestTokens(t *testing.T) {
	s := newServer(t, slackfake.Options{})
	ctx := context.Background()
	if _, _, err := client(s, "xoxb-wrong").PostMessageContext(ctx, "C1", goslack.MsgOptionText("x", false)); slackErr(err) != "invalid_auth" {
		t.Errorf("wrong bot token: %v", err)
	}
	if _, _, err := client(s, "").PostMessageContext(ctx, "C1", goslack.MsgOptionText("x", false)); slackErr(err) != "not_authed" {
		t.Errorf("no bot token: %v", err)
	}
	wrongApp := goslack.New(s.BotToken(), goslack.OptionAPIURL(s.APIURL()), goslack.OptionAppLevelToken("xapp-wrong"))
	if _, _, err := wrongApp.StartSocketModeContext(ctx); slackErr(err) != "invalid_auth" {
		t.Errorf("wrong app token: %v", err)
	}
	// The bot token is not an app-level token.
	botAsApp := goslack.New(s.BotToken(), goslack.OptionAPIURL(s.APIURL()), goslack.OptionAppLevelToken(s.BotToken()))
	if _, _, err := botAsApp.StartSocketModeContext(ctx); slackErr(err) != "invalid_auth" {
		t.Errorf("bot token as app token: %v", err)
	}
}

func TestTicketsAreSingleUseAndOriginChecked(t *testing.T) {
	s := newServer(t, slackfake.Options{})
	_, wsURL, err := client(s, s.BotToken()).StartSocketModeContext(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	h := http.Header{"Origin": {"https://evil.example"}}
	if c, _, err := websocket.DefaultDialer.Dial(wsURL, h); err == nil {
		c.Close()
		t.Error("a foreign Origin was accepted")
	}
	_, wsURL, _ = client(s, s.BotToken()).StartSocketModeContext(context.Background())
	h = http.Header{"Origin": {"https://api.slack.com"}}
	c, _, err := websocket.DefaultDialer.Dial(wsURL, h)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	var hello map[string]any
	if err := c.ReadJSON(&hello); err != nil || hello["type"] != "hello" {
		t.Fatalf("first frame %v, %v", hello, err)
	}
	if _, _, err := websocket.DefaultDialer.Dial(wsURL, h); err == nil {
		t.Error("a ticket was used twice")
	}
	if s.ConnectionsOpened() != 2 {
		t.Errorf("connections.open count %d", s.ConnectionsOpened())
	}
}

func TestWebAPIShapes(t *testing.T) {
	s := newServer(t, slackfake.Options{})
	ctx := context.Background()
	api := client(s, s.BotToken())
	if _, _, err := api.PostMessageContext(ctx, "CUNKNOWN", goslack.MsgOptionText("x", false)); slackErr(err) != "channel_not_found" {
		t.Errorf("unknown channel: %v", err)
	}
	ch, ts, err := api.PostMessageContext(ctx, "C1", goslack.MsgOptionText("hello", false))
	if err != nil || ch != "C1" || ts == "" {
		t.Fatalf("post: %q %q %v", ch, ts, err)
	}
	ets, err := api.PostEphemeralContext(ctx, "C1", "U1", goslack.MsgOptionText("psst", false))
	if err != nil || ets == "" {
		t.Errorf("ephemeral (message_ts): %q %v", ets, err)
	}
	if _, _, _, err := api.UpdateMessageContext(ctx, "C1", "9.9", goslack.MsgOptionText("x", false)); slackErr(err) != "message_not_found" {
		t.Errorf("update of unknown ts: %v", err)
	}
	if _, err := api.GetUserInfoContext(ctx, "UNOPE"); slackErr(err) != "user_not_found" {
		t.Errorf("users.info unknown: %v", err)
	}
	if _, err := api.GetUserByEmailContext(ctx, "nope@example.com"); slackErr(err) != "users_not_found" {
		t.Errorf("lookupByEmail unknown: %v", err)
	}
	u, err := api.GetUserByEmailContext(ctx, "A@example.com")
	if err != nil || u.ID != "U1" || u.Profile.Email != "a@example.com" {
		t.Errorf("lookupByEmail: %+v %v", u, err)
	}
	dm, _, _, err := api.OpenConversationContext(ctx, &goslack.OpenConversationParameters{Users: []string{"U1"}})
	if err != nil || dm.ID != s.DMChannel("U1") {
		t.Errorf("conversations.open: %+v %v", dm, err)
	}
	// A block_id that is not a string is refused.
	bad := url.Values{"token": {s.BotToken()}, "channel": {"C1"}, "blocks": {`[{"type":"section","block_id":7,"text":{"type":"mrkdwn","text":"x"}}]`}}
	resp, err := http.PostForm(s.APIURL()+"chat.postMessage", bad)
	if err != nil {
		t.Fatal(err)
	}
	var body struct {
		OK    bool   `json:"ok"`
		Error string `json:"error"`
	}
	_ = json.NewDecoder(resp.Body).Decode(&body)
	resp.Body.Close()
	if resp.StatusCode != 200 || body.OK || body.Error != "invalid_blocks" {
		t.Errorf("numeric block_id: %d %+v", resp.StatusCode, body)
	}
}

func TestRateLimitAnswers429WithRetryAfter(t *testing.T) {
	s := newServer(t, slackfake.Options{})
	s.RateLimit("chat.postMessage", 1, 1500*time.Millisecond)
	_, _, err := client(s, s.BotToken()).PostMessageContext(context.Background(), "C1", goslack.MsgOptionText("x", false))
	var rl *goslack.RateLimitedError
	if !errors.As(err, &rl) || rl.RetryAfter != 2*time.Second {
		t.Fatalf("first call: %v, want a RateLimitedError with Retry-After 2s (whole seconds, rounded up)", err)
	}
	if _, _, err := client(s, s.BotToken()).PostMessageContext(context.Background(), "C1", goslack.MsgOptionText("x", false)); err != nil {
		t.Errorf("second call: %v", err)
	}
	if s.RateLimited("chat.postMessage") != 1 || s.Calls("chat.postMessage") != 2 {
		t.Errorf("counts %d/%d", s.RateLimited("chat.postMessage"), s.Calls("chat.postMessage"))
	}
}

// runClient runs a real socketmode client that acks everything, and opens
// the modal of every slash command with its trigger (after calling
// beforeOpen, when set).
func runClient(t *testing.T, s *slackfake.Server, beforeOpen func(), opened chan<- error) {
	t.Helper()
	api := goslack.New(s.BotToken(), goslack.OptionAPIURL(s.APIURL()), goslack.OptionAppLevelToken(s.AppToken()))
	sm := socketmode.New(api)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { _ = sm.RunContext(ctx); close(done) }()
	go func() {
		for {
			select {
			case <-ctx.Done():
				return
			case evt := <-sm.Events:
				if evt.Request == nil || evt.Request.EnvelopeID == "" {
					continue
				}
				_ = sm.AckCtx(ctx, evt.Request.EnvelopeID, nil)
				if cmd, ok := evt.Data.(goslack.SlashCommand); ok && opened != nil {
					if beforeOpen != nil {
						beforeOpen()
					}
					view := goslack.ModalViewRequest{Type: goslack.VTModal, Title: goslack.NewTextBlockObject("plain_text", "T", false, false),
						Blocks: goslack.Blocks{BlockSet: []goslack.Block{goslack.NewSectionBlock(goslack.NewTextBlockObject("mrkdwn", "x", false, false), nil, nil)}}}
					_, err := api.OpenViewContext(ctx, cmd.TriggerID, view)
					if err == nil {
						_, err = api.OpenViewContext(ctx, cmd.TriggerID, view) // single use
						if err == nil {
							err = errors.New("a trigger opened two views")
						} else if slackErr(err) == "expired_trigger_id" {
							err = nil
						}
					}
					opened <- err
				}
			}
		}
	}()
	t.Cleanup(func() { cancel(); <-done })
}

func TestTriggersAreSingleUse(t *testing.T) {
	clock := testclock.New(time.Date(2031, 3, 4, 10, 0, 0, 0, time.UTC)) // stands still: in time
	s := newServer(t, slackfake.Options{Now: clock.Now})
	opened := make(chan error, 1)
	runClient(t, s, nil, opened)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := s.SlashCommand(ctx, slackfake.Command{User: "U1", Channel: "C1"}); err != nil {
		t.Fatal(err)
	}
	if err := <-opened; err != nil {
		t.Errorf("open in time: %v", err)
	}
	if len(s.Views()) != 1 {
		t.Errorf("%d views", len(s.Views()))
	}
}

func TestTriggerExpires(t *testing.T) {
	clock := testclock.New(time.Date(2031, 3, 4, 10, 0, 0, 0, time.UTC))
	s := newServer(t, slackfake.Options{Now: clock.Now}) // Slack's 3 s
	opened := make(chan error, 1)
	runClient(t, s, func() { clock.Advance(slackfake.DefaultTriggerTTL + time.Millisecond) }, opened)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := s.SlashCommand(ctx, slackfake.Command{User: "U1", Channel: "C1"}); err != nil {
		t.Fatal(err)
	}
	if err := <-opened; slackErr(err) != "expired_trigger_id" {
		t.Errorf("late open: %v, want expired_trigger_id", err)
	}
}

func TestUnackedEnvelopesAreRedeliveredAfterADrop(t *testing.T) {
	s := newServer(t, slackfake.Options{})
	runClient(t, s, nil, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	if err := s.Wait(ctx, func() bool { return s.LiveConnections() == 1 }); err != nil {
		t.Fatal(err)
	}
	s.DropNextDelivery()
	res, err := s.SlashCommand(ctx, slackfake.Command{User: "U1", Channel: "C1", Text: "x"})
	if err != nil {
		t.Fatal(err)
	}
	// Either the client read the frame before the drop and its ack came on
	// the new connection (attempt 0), or it was redelivered (attempt 1).
	if res.Ack.RetryAttempt > 1 {
		t.Errorf("retry_attempt %d", res.Ack.RetryAttempt)
	}
	if err := s.Wait(ctx, func() bool { return s.ConnectionsOpened() == 2 && s.LiveConnections() == 1 }); err != nil {
		t.Fatalf("no reconnect after the drop: %v", err)
	}
	if s.Unacked() != 0 {
		t.Errorf("%d unacked", s.Unacked())
	}
	// Acknowledged envelopes are not sent again after a drop.
	before := len(s.Acks())
	s.Drop()
	if err := s.Wait(ctx, func() bool { return s.ConnectionsOpened() == 3 && s.LiveConnections() == 1 }); err != nil {
		t.Fatal(err)
	}
	if _, err := s.SlashCommand(ctx, slackfake.Command{User: "U1", Channel: "C1", Text: "y"}); err != nil {
		t.Fatal(err)
	}
	if got := len(s.Acks()); got != before+1 {
		t.Errorf("%d acks after one more command, want %d", got, before+1)
	}
	if !strings.HasPrefix(res.EnvelopeID, "env-") {
		t.Errorf("envelope id %q", res.EnvelopeID)
	}
}

// Slack paces chat.postMessage at about one message per second per
// channel: with PostInterval, a post that comes too soon after the last
// one accepted in its channel is answered 429 with Retry-After, other
// channels are not affected, and once the interval has passed the channel
// takes posts again.
func TestPostInterval(t *testing.T) {
	now := time.Date(2031, 3, 4, 10, 0, 0, 0, time.UTC)
	var mu sync.Mutex
	clk := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	advance := func(d time.Duration) { mu.Lock(); now = now.Add(d); mu.Unlock() }
	s := newServer(t, slackfake.Options{PostInterval: time.Second, Now: clk})
	s.AddChannel("C2")
	c := client(s, s.BotToken())
	ctx := context.Background()
	post := func(ch string) error {
		_, _, err := c.PostMessageContext(ctx, ch, goslack.MsgOptionText("x", false))
		return err
	}
	if err := post("C1"); err != nil {
		t.Fatal(err)
	}
	advance(400 * time.Millisecond)
	var rl *goslack.RateLimitedError
	if err := post("C1"); !errors.As(err, &rl) || rl.RetryAfter != time.Second {
		t.Fatalf("second post within the interval: %v, want 429 with Retry-After 1", err)
	}
	if err := post("C2"); err != nil {
		t.Fatalf("another channel: %v", err)
	}
	advance(600 * time.Millisecond)
	if err := post("C1"); err != nil {
		t.Fatalf("after the interval: %v", err)
	}
	if n, rl := len(s.Messages("C1")), s.RateLimited("chat.postMessage"); n != 2 || rl != 1 {
		t.Fatalf("C1 holds %d messages, %d posts refused; want 2 and 1", n, rl)
	}
}

// Slack sends each envelope to one of the app's open connections; an
// envelope left unacknowledged on a connection that goes away is sent
// again on another one with retry_attempt and retry_reason set, which is
// what a replica that dies before its ack relies on.
func TestEnvelopesSpreadOverConnectionsAndUnackedOnesMove(t *testing.T) {
	s := newServer(t, slackfake.Options{})
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	type envelope struct {
		EnvelopeID   string `json:"envelope_id"`
		Type         string `json:"type"`
		RetryAttempt int    `json:"retry_attempt"`
		RetryReason  string `json:"retry_reason"`
	}
	dial := func() *websocket.Conn {
		t.Helper()
		_, u, err := client(s, s.BotToken()).StartSocketModeContext(ctx)
		if err != nil {
			t.Fatal(err)
		}
		c, _, err := websocket.DefaultDialer.Dial(u, http.Header{"Origin": {"https://api.slack.com"}})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		var hello envelope
		if err := c.ReadJSON(&hello); err != nil || hello.Type != "hello" {
			t.Fatalf("first frame %+v, %v", hello, err)
		}
		return c
	}
	a, b := dial(), dial()
	if err := s.Wait(ctx, func() bool { return s.LiveConnections() == 2 }); err != nil {
		t.Fatal(err)
	}

	// b acknowledges everything it gets; a acknowledges nothing.
	var mu sync.Mutex
	var onB []envelope
	go func() {
		for {
			var e envelope
			if err := b.ReadJSON(&e); err != nil {
				return
			}
			mu.Lock()
			onB = append(onB, e)
			mu.Unlock()
			_ = b.WriteJSON(map[string]string{"envelope_id": e.EnvelopeID})
		}
	}()
	const n = 4
	acks := make(chan slackfake.Ack, n)
	for i := range n {
		go func() {
			res, err := s.SlashCommand(ctx, slackfake.Command{User: "U1", Channel: "C1", Text: strings.Repeat("x", i)})
			if err != nil {
				t.Error(err)
			}
			acks <- res.Ack
		}()
	}
	var onA []envelope
	for len(onA) < n/2 {
		var e envelope
		if err := a.ReadJSON(&e); err != nil {
			t.Fatalf("connection a got %d envelopes: %v", len(onA), err)
		}
		onA = append(onA, e)
	}
	_ = a.UnderlyingConn().Close() // a replica dying before its acks
	var got []slackfake.Ack
	for range n {
		select {
		case ack := <-acks:
			got = append(got, ack)
		case <-ctx.Done():
			t.Fatalf("only %d of %d envelopes acknowledged", len(got), n)
		}
	}
	retried := map[string]bool{}
	for _, ack := range got {
		if ack.RetryAttempt == 1 {
			retried[ack.EnvelopeID] = true
		}
	}
	for _, e := range onA {
		if e.RetryAttempt != 0 || !retried[e.EnvelopeID] {
			t.Errorf("envelope %s first sent on a with retry_attempt %d; acknowledged on b as a retry: %v", e.EnvelopeID, e.RetryAttempt, retried[e.EnvelopeID])
		}
	}
	mu.Lock()
	defer mu.Unlock()
	var again int
	for _, e := range onB {
		if e.RetryAttempt == 1 {
			again++
			if e.RetryReason != "timeout" {
				t.Errorf("redelivery with retry_reason %q", e.RetryReason)
			}
		}
	}
	if len(onB) != n || again != n/2 {
		t.Errorf("b got %d envelopes, %d of them again; want %d and %d", len(onB), again, n, n/2)
	}
}
