package redis_test

import (
	"context"
	"testing"

	"github.com/accessbot/accessbot/access"
	"github.com/accessbot/accessbot/internal/redistest"
	"github.com/accessbot/accessbot/store/redis"
	"github.com/accessbot/accessbot/store/storetest"
)

func TestInbox(t *testing.T) {
	storetest.RunInbox(t,
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

// BenchmarkInboxPut is the durable-inbox write a Socket Mode ack waits
// for: one script, one round trip.
func BenchmarkInboxPut(b *testing.B) {
	s, _ := benchStore(b, "inbox", 0)
	storetest.BenchInboxPut(b, s)
}
