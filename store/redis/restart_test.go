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

// A running store rides out a Redis restart (AOF on, SIGTERM, started again
// on the same port) without being reopened: requests, the due index and a
// claim written before survive; a command issued while the server is down
// succeeds once it is back; the claim stays its owner's and no one else's.
func TestStoreRidesOutRestart(t *testing.T) {
	srv := redistest.NewServer(t, redistest.FreePort(t), "--appendonly", "yes", "--appendfsync", "always")
	srv.Start()
	s, err := redis.OpenWith(context.Background(), srv.URL(), "restart",
		redis.OpenOptions{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctx := context.Background()
	ends := time.Now().Add(time.Hour).Truncate(time.Millisecond)
	r := &access.Request{ID: "r-restart01", Requester: "alice@example.com", Role: "prod-admin", State: access.StateActive, EndsAt: ends}
	if err := s.Create(ctx, r, access.AuditEvent{At: time.Now(), RequestID: r.ID, Action: access.ActGranted}); err != nil {
		t.Fatal(err)
	}
	if ok, err := s.Claim(ctx, r.ID, "replica-a", time.Minute); err != nil || !ok {
		t.Fatalf("Claim = %v, %v", ok, err)
	}

	srv.Stop()
	// A command while the server is down: the client retries until the
	// server is back (restarted 3s later; go-redis's defaults give up
	// after about 2s: 4 tries of 5 dials 100ms apart).
	got := make(chan error, 1)
	start := time.Now()
	go func() {
		_, err := s.Get(ctx, r.ID)
		got <- err
	}()
	time.Sleep(3 * time.Second)
	srv.Start()
	select {
	case err := <-got:
		if err != nil {
			t.Fatalf("Get issued while Redis was down: %v", err)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("Get issued while Redis was down did not return")
	}
	t.Logf("Get issued during the outage returned %v after it began", time.Since(start).Round(time.Millisecond))

	back, err := s.Get(ctx, r.ID)
	if err != nil || back.Requester != r.Requester || back.State != access.StateActive {
		t.Fatalf("after restart Get = %+v, %v", back, err)
	}
	due, err := s.Due(ctx, ends, 10)
	if err != nil || len(due) != 1 || due[0] != r.ID {
		t.Fatalf("after restart Due = %v, %v; want [%s]", due, err, r.ID)
	}
	if ok, err := s.Claim(ctx, r.ID, "replica-b", time.Minute); err != nil || ok {
		t.Fatalf("after restart another owner's Claim = %v, %v; want still held by replica-a", ok, err)
	}
	if ok, err := s.Claim(ctx, r.ID, "replica-a", time.Minute); err != nil || !ok {
		t.Fatalf("after restart the owner's Claim = %v, %v; want renewed", ok, err)
	}
	if err := s.Release(ctx, r.ID, "replica-a"); err != nil {
		t.Fatal(err)
	}
	if ok, err := s.Claim(ctx, r.ID, "replica-b", time.Minute); err != nil || !ok {
		t.Fatalf("after release Claim by another = %v, %v", ok, err)
	}
	if _, err := s.Update(ctx, r.ID, func(q *access.Request) ([]access.AuditEvent, error) {
		q.Reason = "after restart"
		return nil, nil
	}); err != nil {
		t.Fatalf("Update after restart: %v", err)
	}
	evs, err := s.Audit(ctx, time.Now().Add(-time.Hour))
	if err != nil || len(evs) != 1 {
		t.Fatalf("Audit after restart = %d events, %v; want the 1 written before", len(evs), err)
	}
}
