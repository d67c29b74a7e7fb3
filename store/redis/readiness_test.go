package redis_test

import (
	"context"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/accessbot/accessbot/access"
	"github.com/accessbot/accessbot/internal/redistest"
	"github.com/accessbot/accessbot/store/redis"
)

// Readiness follows a later outage: ready after Open, not ready while
// Redis is down (seen by a command that is still riding it out), ready
// again once the server answers after its restart. A server's error reply
// (ErrNotFound) is not an outage.
func TestReadinessFollowsOutage(t *testing.T) {
	srv := redistest.NewServer(t, redistest.FreePort(t), "--appendonly", "yes")
	srv.Start()
	ready := new(redis.Readiness)
	s, err := redis.OpenWith(context.Background(), srv.URL(), "ready",
		redis.OpenOptions{Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), Readiness: ready})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctx := context.Background()
	if !ready.Ready() {
		t.Fatal("not ready after Open")
	}
	if _, err := s.Get(ctx, "r-missing2"); err == nil {
		t.Fatal("Get of a missing request succeeded")
	}
	if !ready.Ready() {
		t.Fatal("not ready after a command the server answered with nothing")
	}

	srv.Stop()
	down := time.Now()
	done := make(chan error, 1)
	go func() {
		_, err := s.Get(ctx, "r-missing2") // rides the outage out with retries
		done <- err
	}()
	deadline := time.Now().Add(5 * time.Second)
	for ready.Ready() {
		if time.Now().After(deadline) {
			t.Fatal("still ready 5s into the outage")
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Logf("not ready %v into the outage", time.Since(down).Round(time.Millisecond))

	srv.Start()
	select {
	case <-done:
	case <-time.After(15 * time.Second):
		t.Fatal("command issued during the outage did not return after the restart")
	}
	if !ready.Ready() {
		// The command may have given up just before the server was back;
		// the next one finds it.
		if _, err := s.Get(ctx, "r-missing2"); err == nil {
			t.Fatal("Get of a missing request succeeded")
		}
	}
	if !ready.Ready() {
		t.Fatal("not ready after the server answered again")
	}
	r := &access.Request{ID: "r-ready234", Requester: "alice@example.com", Role: "prod-admin", State: access.StatePending}
	if err := s.Create(ctx, r); err != nil {
		t.Fatal(err)
	}
	if !ready.Ready() {
		t.Fatal("not ready after a write")
	}
}
