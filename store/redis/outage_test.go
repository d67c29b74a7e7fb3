package redis_test

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/accessbot/accessbot/access"
	"github.com/accessbot/accessbot/internal/redistest"
	"github.com/accessbot/accessbot/store/redis"
)

// syncBuf is a log sink safe for the Open goroutine and the test.
type syncBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuf) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuf) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// A replica started while Redis is down waits: Open keeps retrying (each
// failure logged at Warn with the URL minus its password) and returns a
// working store once a server comes up on the port, reporting ready only
// then.
func TestOpenWaitsForServer(t *testing.T) {
	port := redistest.FreePort(t)
	srv := redistest.NewServer(t, port)
	u := strings.Replace(srv.URL(), "redis://", "redis://:s3cret@", 1)
	// The server needs the password the URL carries.
	srv.Args = []string{"--requirepass", "s3cret"}

	var logs syncBuf
	ready := new(redis.Readiness)
	type result struct {
		s   *redis.Store
		err error
	}
	done := make(chan result, 1)
	go func() {
		s, err := redis.OpenWith(context.Background(), u, "outage", redis.OpenOptions{
			Logger:     slog.New(slog.NewJSONHandler(&logs, nil)),
			MinBackoff: 10 * time.Millisecond, MaxBackoff: 40 * time.Millisecond,
			Readiness: ready,
		})
		done <- result{s, err}
	}()

	// Start the server only once Open has failed a few times.
	deadline := time.Now().Add(10 * time.Second)
	for strings.Count(logs.String(), `"attempt"`) < 3 {
		if time.Now().After(deadline) {
			t.Fatalf("Open logged no retries within 10s; logs:\n%s", logs.String())
		}
		select {
		case r := <-done:
			t.Fatalf("Open returned while no server runs: %v, %v", r.s, r.err)
		case <-time.After(10 * time.Millisecond):
		}
	}
	if ready.Ready() {
		t.Fatal("Ready() before the server answered")
	}
	srv.Start()

	var r result
	select {
	case r = <-done:
	case <-time.After(10 * time.Second):
		t.Fatalf("Open still waiting 10s after the server started; logs:\n%s", logs.String())
	}
	if r.err != nil {
		t.Fatalf("Open: %v", r.err)
	}
	defer r.s.Close()
	if !ready.Ready() {
		t.Error("Ready() false after Open returned")
	}
	ctx := context.Background()
	req := &access.Request{ID: "r-wait23456", Requester: "alice@example.com", Role: "prod-admin", State: access.StatePending}
	if err := r.s.Create(ctx, req); err != nil {
		t.Fatalf("Create on the opened store: %v", err)
	}
	if got, err := r.s.Get(ctx, req.ID); err != nil || got.Requester != req.Requester {
		t.Fatalf("Get = %v, %v", got, err)
	}

	out := logs.String()
	if strings.Contains(out, "s3cret") {
		t.Errorf("logs show the password:\n%s", out)
	}
	for _, want := range []string{`"level":"WARN"`, `"url":"redis://:xxxxx@127.0.0.1:`, `"next_try_in"`, `"msg":"store ready"`} {
		if !strings.Contains(out, want) {
			t.Errorf("logs lack %s:\n%s", want, out)
		}
	}
	if n := strings.Count(out, `"msg":"store ready"`); n != 1 {
		t.Errorf(`"store ready" logged %d times, want 1`, n)
	}
	t.Logf("Open returned after %d failed attempts", strings.Count(out, `"attempt"`))
}

// Open with a context that ends returns promptly with an error naming the
// URL (without its password) and the context's end.
func TestOpenGivesUpWhenContextEnds(t *testing.T) {
	u := "redis://:s3cret@127.0.0.1:" + strconv.Itoa(redistest.FreePort(t)) + "/0"
	ctx, cancel := context.WithCancel(context.Background())
	var logs syncBuf
	done := make(chan error, 1)
	start := time.Now()
	go func() {
		_, err := redis.OpenWith(ctx, u, "", redis.OpenOptions{Logger: slog.New(slog.NewTextHandler(&logs, nil)),
			MinBackoff: time.Second})
		done <- err
	}()
	time.Sleep(50 * time.Millisecond) // let it fail once and start waiting
	cancel()
	var err error
	select {
	case err = <-done:
	case <-time.After(2 * time.Second):
		t.Fatal("Open still running 2s after its context was cancelled")
	}
	took := time.Since(start)
	if err == nil {
		t.Fatal("Open succeeded with no server")
	}
	if !errors.Is(err, context.Canceled) {
		t.Errorf("error %q does not wrap context.Canceled", err)
	}
	if !strings.Contains(err.Error(), "connect to redis://:xxxxx@127.0.0.1:") || strings.Contains(err.Error(), "s3cret") {
		t.Errorf("error %q: want the redacted URL and no password", err)
	}
	if strings.Contains(logs.String(), "s3cret") {
		t.Errorf("logs show the password: %s", logs.String())
	}
	t.Logf("Open returned %v after start (cancelled at 50ms): %v", took.Round(time.Millisecond), err)

	// Already cancelled: no wait at all.
	start = time.Now()
	if _, err := redis.Open(ctx, u, ""); err == nil || !errors.Is(err, context.Canceled) {
		t.Errorf("Open with a cancelled context: %v", err)
	}
	if d := time.Since(start); d > time.Second {
		t.Errorf("Open with a cancelled context took %v", d)
	}
}
