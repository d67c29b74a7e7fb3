package metrics_test

import (
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/accessbot/accessbot/bot/discord"
	"github.com/accessbot/accessbot/bot/slack"
	"github.com/accessbot/accessbot/metrics"
)

// The transports' hook types convert from ChatHooks, and the hooks drive
// the chat series and readiness.
func TestChatHooks(t *testing.T) {
	m := metrics.New(metrics.Options{})
	m.ConfigLoaded()
	sh := slack.Hooks(m.Chat("slack"))
	dh := discord.Hooks(m.Chat("discord"))
	ready := func() int {
		rec := httptest.NewRecorder()
		m.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/readyz", nil))
		return rec.Code
	}
	if code := ready(); code != http.StatusServiceUnavailable {
		t.Errorf("/readyz before any connection = %d, want 503", code)
	}
	sh.Connected(true)
	dh.Connected(true)
	if code := ready(); code != http.StatusOK {
		t.Errorf("/readyz with both connected = %d, want 200", code)
	}
	dh.Connected(false)
	dh.Connected(true)
	sh.Acked(30 * time.Millisecond)
	fams := scrapeHandler(t, m)
	for _, w := range []want{
		{name: "accessbot_chat_connected", labels: []string{"platform", "slack"}, v: 1},
		{name: "accessbot_chat_connected", labels: []string{"platform", "discord"}, v: 1},
		{name: "accessbot_chat_reconnects_total", labels: []string{"platform", "discord"}, v: 1},
		{name: "accessbot_chat_ack_duration_seconds", labels: []string{"platform", "slack"}, v: 1},
	} {
		if got, ok := value(fams, w.name, w.labels...); !ok || got != w.v {
			t.Errorf("%s%v = %v (%v), want %v", w.name, w.labels, got, ok, w.v)
		}
	}
	if _, ok := value(fams, "accessbot_chat_reconnects_total", "platform", "slack"); ok {
		t.Error("a first connection counted as a reconnect")
	}
}
