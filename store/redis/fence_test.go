package redis_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/accessbot/accessbot/access"
	"github.com/accessbot/accessbot/internal/redistest"
	"github.com/accessbot/accessbot/store/redis"
	"github.com/accessbot/accessbot/store/storetest"
)

func TestFence(t *testing.T) {
	storetest.RunFence(t,
		func(t *testing.T) access.Store { return fresh(t) },
		func(t *testing.T, s access.Store) access.Store {
			p := s.(prefixed)
			if err := p.Close(); err != nil {
				t.Fatalf("Close: %v", err)
			}
			s2, err := redis.Open(context.Background(), redistest.URL(t), p.prefix)
			if err != nil {
				t.Fatalf("Open: %v", err)
			}
			t.Cleanup(func() { _ = s2.Close() })
			return prefixed{s2, p.prefix}
		})
}

// The token counter is lost with Redis's data (a restart without
// persistence): tokens then start from the server's clock, above any
// handed out before.
func TestFenceTokensSurviveCounterLoss(t *testing.T) {
	s := fresh(t)
	ctx := context.Background()
	a, ok, err := s.ClaimFenced(ctx, "job:x", "replica-a", time.Minute)
	if err != nil || !ok {
		t.Fatalf("ClaimFenced = %v, %v", ok, err)
	}
	if a.Token < 1_700_000_000_000_000 {
		t.Errorf("first token %d, want one seeded from the server clock in microseconds", a.Token)
	}
	c := redistest.Client(t)
	if err := c.Del(ctx, "{"+s.prefix+"}:fence", "{"+s.prefix+"}:claim:job:x", "{"+s.prefix+"}:lease:job:x").Err(); err != nil {
		t.Fatal(err)
	}
	b, ok, err := s.ClaimFenced(ctx, "job:x", "replica-b", time.Minute)
	if err != nil || !ok {
		t.Fatalf("ClaimFenced after the loss = %v, %v", ok, err)
	}
	if b.Token <= a.Token {
		t.Errorf("token after the counter was lost = %d, want more than %d", b.Token, a.Token)
	}
	// The stale holder's fence does not match the new holding.
	err = s.AppendAudit(access.WithFence(ctx, a.Fence("job:x")), access.AuditEvent{Action: access.ActDriftRemoved})
	if !errors.Is(err, access.ErrFenced) {
		t.Errorf("AppendAudit with the old fence = %v, want ErrFenced", err)
	}
}

// BenchmarkClaimCycle is one lease on request work: acquire, renew, release.
func BenchmarkClaimCycle(b *testing.B) {
	c, p := redistest.Client(b), redistest.Prefix(b)
	b.Cleanup(func() { _ = deleteKeys(c, "{"+p+"}*") })
	s := redis.New(c, p)
	ctx := context.Background()
	for b.Loop() {
		if ok, err := s.Claim(ctx, "request:r-bench", "worker", time.Minute); err != nil || !ok {
			b.Fatal(ok, err)
		}
		if ok, err := s.Claim(ctx, "request:r-bench", "worker", time.Minute); err != nil || !ok {
			b.Fatal(ok, err)
		}
		if err := s.Release(ctx, "request:r-bench", "worker"); err != nil {
			b.Fatal(err)
		}
	}
}
