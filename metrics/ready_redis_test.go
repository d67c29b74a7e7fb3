package metrics_test

import (
	"context"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/accessbot/accessbot/internal/redistest"
	"github.com/accessbot/accessbot/metrics"
	"github.com/accessbot/accessbot/store/redis"
)

// /readyz fails while Redis is unreachable and recovers by itself once it
// is back; /healthz stays up (a dead Redis is no reason to restart).
func TestReadyzFollowsRedis(t *testing.T) {
	srv := redistest.NewServer(t, redistest.FreePort(t))
	srv.Start()
	ctx := context.Background()
	st, err := redis.OpenWith(ctx, srv.URL(), "readyz", redis.OpenOptions{Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	m := metrics.New(metrics.Options{CheckTimeout: 500 * time.Millisecond})
	m.ConfigLoaded()
	m.WrapStore(st)
	s := m.Server("127.0.0.1:0")
	addr, err := s.Listen()
	if err != nil {
		t.Fatal(err)
	}
	sctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- s.Run(sctx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("server: %v", err)
		}
	}()
	url := "http://" + addr.String()

	// awaitReady polls /readyz (real time: Redis's own reconnects) until it
	// answers want, for 15 s at most.
	awaitReady := func(want int, what string) string {
		t.Helper()
		deadline := time.Now().Add(15 * time.Second)
		for {
			code, body := get(t, url+"/readyz")
			if code == want {
				return body
			}
			if time.Now().After(deadline) {
				t.Fatalf("/readyz never %s: last %d %q", what, code, body)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	awaitReady(http.StatusOK, "ready with Redis up")

	srv.Stop()
	body := awaitReady(http.StatusServiceUnavailable, "failed with Redis down")
	if !strings.Contains(body, "store: not answering") {
		t.Errorf("/readyz with Redis down says %q, want it to name the store", body)
	}
	if code, body := get(t, url+"/healthz"); code != http.StatusOK {
		t.Errorf("/healthz with Redis down = %d %q, want 200", code, body)
	}

	srv.Start()
	awaitReady(http.StatusOK, "ready again after Redis came back")
}
