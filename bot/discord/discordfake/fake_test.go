package discordfake

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/accessbot/accessbot/internal/testclock"
)

// These tests hold the fake to what Discord does (see PROTOCOLS.md), with
// a raw websocket and plain HTTP, so a fake bug cannot hide a client bug.

func post(t *testing.T, url string, body any, auth string) (int, map[string]any, http.Header) {
	t.Helper()
	b, _ := json.Marshal(body)
	req, _ := http.NewRequest(http.MethodPost, url, bytes.NewReader(b))
	req.Header.Set("Content-Type", "application/json")
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&out)
	return resp.StatusCode, out, resp.Header
}

type rawClient struct {
	t *testing.T
	c *websocket.Conn
}

func dial(t *testing.T, s *Server) *rawClient {
	t.Helper()
	c, _, err := websocket.DefaultDialer.Dial(s.wsURL()+"/?v=10&encoding=json", nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return &rawClient{t: t, c: c}
}

func (r *rawClient) read() map[string]any {
	r.t.Helper()
	_ = r.c.SetReadDeadline(time.Now().Add(5 * time.Second))
	var m map[string]any
	if err := r.c.ReadJSON(&m); err != nil {
		r.t.Fatalf("read: %v", err)
	}
	return m
}

func (r *rawClient) send(v any) {
	r.t.Helper()
	if err := r.c.WriteJSON(v); err != nil {
		r.t.Fatal(err)
	}
}

func TestGatewayHandshakeHeartbeatDispatchResume(t *testing.T) {
	s := New(Options{Guilds: []string{"1300000000000000001"}})
	defer s.Close()
	c := dial(t, s)
	hello := c.read()
	if hello["op"] != float64(10) || hello["d"].(map[string]any)["heartbeat_interval"] != float64(41250) {
		t.Fatalf("hello %v", hello)
	}
	c.send(map[string]any{"op": 2, "d": map[string]any{"token": "Bot " + s.Token(), "intents": 1}})
	ready := c.read()
	d := ready["d"].(map[string]any)
	if ready["t"] != "READY" || ready["s"] != float64(1) || d["session_id"] == "" || d["resume_gateway_url"] == "" ||
		d["application"].(map[string]any)["id"] != s.AppID() {
		t.Fatalf("ready %v", ready)
	}
	c.send(map[string]any{"op": 1, "d": 1})
	if ack := c.read(); ack["op"] != float64(11) {
		t.Fatalf("heartbeat answered %v", ack)
	}
	in, err := s.DispatchCommand(Source{User: "1400000000000000001", Guild: "1300000000000000001", Channel: "1"}, "list")
	if err != nil {
		t.Fatal(err)
	}
	ev := c.read()
	if ev["t"] != "INTERACTION_CREATE" || ev["s"] != float64(2) {
		t.Fatalf("dispatch %v", ev)
	}
	if p := ev["d"].(map[string]any)["member"].(map[string]any)["permissions"]; p != "2248473465835073" {
		t.Errorf("member.permissions %v, want a JSON string", p)
	}

	// Dropped: what is dispatched meanwhile comes back on RESUME, then RESUMED.
	s.Drop()
	if err := s.WaitFor(context.Background(), func() bool { return s.LiveSessions() == 0 }); err != nil {
		t.Fatal(err)
	}
	if _, err := s.DispatchCommand(Source{User: "1400000000000000001", Guild: "1300000000000000001", Channel: "1"}, "help"); err != nil {
		t.Fatal(err)
	}
	c2 := dial(t, s)
	c2.read() // hello
	c2.send(map[string]any{"op": 6, "d": map[string]any{"token": "Bot " + s.Token(), "session_id": d["session_id"], "seq": 2}})
	if re := c2.read(); re["t"] != "INTERACTION_CREATE" || re["s"] != float64(3) {
		t.Fatalf("replay %v", re)
	}
	if re := c2.read(); re["t"] != "RESUMED" || re["s"] != float64(4) {
		t.Fatalf("resumed %v", re)
	}
	// An unknown session cannot resume: op 9.
	c3 := dial(t, s)
	c3.read()
	c3.send(map[string]any{"op": 6, "d": map[string]any{"token": "Bot " + s.Token(), "session_id": "nope", "seq": 1}})
	if inv := c3.read(); inv["op"] != float64(9) || inv["d"] != false {
		t.Fatalf("resume of an unknown session answered %v", inv)
	}
	// A wrong token closes with 4004.
	c4 := dial(t, s)
	c4.read()
	c4.send(map[string]any{"op": 2, "d": map[string]any{"token": "Bot wrong", "intents": 1}})
	_ = c4.c.SetReadDeadline(time.Now().Add(5 * time.Second))
	_, _, err = c4.c.ReadMessage()
	if ce, ok := err.(*websocket.CloseError); !ok || ce.Code != 4004 {
		t.Errorf("wrong token: %v", err)
	}
	_ = in
}

func TestInteractionCallbackRules(t *testing.T) {
	clock := testclock.New(time.Date(2026, 1, 7, 12, 0, 0, 0, time.UTC))
	s := New(Options{Guilds: []string{"1300000000000000001"}, Now: clock.Now})
	defer s.Close()
	c := dial(t, s)
	c.read()
	c.send(map[string]any{"op": 2, "d": map[string]any{"token": s.Token(), "intents": 1}})
	c.read()
	src := Source{User: "1400000000000000001", Channel: "1"}
	in, err := s.DispatchCommand(src, "list")
	if err != nil {
		t.Fatal(err)
	}
	c.read()
	cb := s.APIBase() + "interactions/" + in.ID + "/" + in.Token + "/callback"
	// A follow-up before the acknowledgement: unknown webhook.
	if code, body, _ := post(t, s.APIBase()+"webhooks/"+s.AppID()+"/"+in.Token, map[string]any{"content": "x"}, ""); code != 404 || body["code"] != float64(10015) {
		t.Errorf("early follow-up: %d %v", code, body)
	}
	if code, _, _ := post(t, cb, map[string]any{"type": 5, "data": map[string]any{"flags": 64}}, ""); code != 204 {
		t.Fatalf("first callback %d", code)
	}
	if code, body, _ := post(t, cb, map[string]any{"type": 4, "data": map[string]any{"content": "x"}}, ""); code != 400 || body["code"] != float64(40060) {
		t.Errorf("second callback: %d %v", code, body)
	}
	if code, _, _ := post(t, s.APIBase()+"webhooks/"+s.AppID()+"/"+in.Token, map[string]any{"content": "follow"}, ""); code != 200 {
		t.Errorf("follow-up %d", code)
	}
	if got := s.Interaction(in.ID); got.Callbacks != 2 || got.ResponseType != 5 || len(got.Followups) != 1 || got.Flags() != 64 {
		t.Errorf("record %+v", got)
	}
	// Too late: unknown interaction.
	late, err := s.DispatchCommand(src, "list")
	if err != nil {
		t.Fatal(err)
	}
	c.read()
	clock.Advance(3*time.Second + time.Millisecond) // past Discord's 3 s
	if code, body, _ := post(t, s.APIBase()+"interactions/"+late.ID+"/"+late.Token+"/callback", map[string]any{"type": 5}, ""); code != 404 || body["code"] != float64(10062) {
		t.Errorf("late callback: %d %v", code, body)
	}
	// A follow-up outlives the callback window, not the token's 15 minutes.
	if code, _, _ := post(t, s.APIBase()+"webhooks/"+s.AppID()+"/"+in.Token, map[string]any{"content": "later"}, ""); code != 200 {
		t.Errorf("follow-up after 3 s: %d", code)
	}
	clock.Advance(15 * time.Minute)
	if code, body, _ := post(t, s.APIBase()+"webhooks/"+s.AppID()+"/"+in.Token, map[string]any{"content": "too late"}, ""); code != 401 || body["code"] != float64(50027) {
		t.Errorf("follow-up after 15 min: %d %v", code, body)
	}
}

func TestRateLimitAndAuth(t *testing.T) {
	s := New(Options{RateLimitEvery: 2, RetryAfter: 1500 * time.Millisecond})
	defer s.Close()
	auth := "Bot " + s.Token()
	url := s.APIBase() + "channels/1300000000000000010/messages"
	if code, _, _ := post(t, url, map[string]any{"content": "a"}, ""); code != 401 {
		t.Errorf("no token: %d", code)
	}
	if code, _, _ := post(t, url, map[string]any{"content": "a"}, auth); code != 200 {
		t.Errorf("first post %d", code)
	}
	code, body, h := post(t, url, map[string]any{"content": "b"}, auth)
	if code != 429 || body["retry_after"] != 1.5 || body["global"] != false || !strings.Contains(body["message"].(string), "rate limited") {
		t.Errorf("429: %d %v", code, body)
	}
	if h.Get("Retry-After") != "2" || h.Get("X-RateLimit-Remaining") != "0" || h.Get("X-RateLimit-Reset-After") != "1.500" {
		t.Errorf("429 headers %v", h)
	}
	if n := len(s.Messages("1300000000000000010")); n != 1 {
		t.Errorf("%d messages after a 429, want 1", n)
	}
}
