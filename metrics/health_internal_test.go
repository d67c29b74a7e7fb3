package metrics

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

// fakeNow is a settable real-time source for the heartbeat.
type fakeNow struct {
	mu sync.Mutex
	t  time.Time
}

func (f *fakeNow) now() time.Time { f.mu.Lock(); defer f.mu.Unlock(); return f.t }
func (f *fakeNow) advance(d time.Duration) {
	f.mu.Lock()
	f.t = f.t.Add(d)
	f.mu.Unlock()
}

func serve(t *testing.T, m *Metrics, path string) (int, string) {
	t.Helper()
	rec := httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, httptest.NewRequest("GET", path, nil))
	return rec.Code, rec.Body.String()
}

// /healthz fails once the scheduler loop has stopped turning for longer
// than StaleAfter, and recovers with the next turn.
func TestHealthzFailsWhenLoopStops(t *testing.T) {
	clock := &fakeNow{t: time.Date(2026, 11, 18, 10, 0, 0, 0, time.UTC)}
	m := New(Options{StaleAfter: time.Minute, now: clock.now})
	if code, _ := serve(t, m, "/healthz"); code != http.StatusOK {
		t.Fatalf("/healthz before the loop started = %d, want 200", code)
	}
	m.Heartbeat()
	clock.advance(59 * time.Second)
	if code, _ := serve(t, m, "/healthz"); code != http.StatusOK {
		t.Fatalf("/healthz 59s after a turn = %d, want 200", code)
	}
	clock.advance(2 * time.Second)
	code, body := serve(t, m, "/healthz")
	if code != http.StatusServiceUnavailable || !strings.Contains(body, "scheduler loop stuck: last turn 1m1s ago") {
		t.Fatalf("/healthz 61s after a turn = %d %q, want 503 naming the stuck loop", code, body)
	}
	m.Heartbeat()
	if code, _ := serve(t, m, "/healthz"); code != http.StatusOK {
		t.Fatalf("/healthz after the loop turned again = %d, want 200", code)
	}
}

// /readyz needs the config loaded and every chat platform connected.
func TestReadyzConfigAndChat(t *testing.T) {
	m := New(Options{})
	m.ExpectChat("slack")
	code, body := serve(t, m, "/readyz")
	if code != http.StatusServiceUnavailable || !strings.Contains(body, "config: not loaded") || !strings.Contains(body, "chat slack: not connected") {
		t.Fatalf("/readyz at start = %d %q, want 503 naming config and chat", code, body)
	}
	m.ConfigLoaded()
	m.ChatConnected("slack", true)
	if code, body := serve(t, m, "/readyz"); code != http.StatusOK {
		t.Fatalf("/readyz with config and chat = %d %q, want 200", code, body)
	}
	m.ChatConnected("slack", false)
	if code, body := serve(t, m, "/readyz"); code != http.StatusServiceUnavailable || !strings.Contains(body, "chat slack: not connected") {
		t.Fatalf("/readyz with chat down = %d %q, want 503", code, body)
	}
}
