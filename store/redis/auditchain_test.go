package redis_test

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/accessbot/accessbot/access"
	"github.com/accessbot/accessbot/internal/redistest"
	"github.com/accessbot/accessbot/store/redis"
	"github.com/accessbot/accessbot/store/storetest"
	goredis "github.com/redis/go-redis/v9"
)

func TestAuditChain(t *testing.T) {
	storetest.RunAudit(t,
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

// rewriteStream replaces the audit stream of s with what fn makes of its
// entries (ids kept unless fn changes them), the way someone with write
// access to the Redis server can: a stream entry cannot be edited in
// place, but the stream can be built again.
func rewriteStream(t *testing.T, s access.Store, fn func(msgs []goredis.XMessage) []goredis.XMessage) access.Store {
	t.Helper()
	ctx := context.Background()
	c := redistest.Client(t)
	key := "{" + s.(prefixed).prefix + "}:audit"
	msgs, err := c.XRange(ctx, key, "-", "+").Result()
	if err != nil {
		t.Fatal(err)
	}
	msgs = fn(msgs)
	if err := c.Del(ctx, key).Err(); err != nil {
		t.Fatal(err)
	}
	for _, m := range msgs {
		if err := c.XAdd(ctx, &goredis.XAddArgs{Stream: key, ID: m.ID, Values: m.Values}).Err(); err != nil {
			t.Fatal(err)
		}
	}
	return s
}

func TestAuditTamperCaught(t *testing.T) {
	storetest.RunTamper(t, func(t *testing.T) access.Store { return fresh(t) }, storetest.Tamper{
		Edit: func(t *testing.T, s access.Store, pos int, change func(*access.AuditEvent)) access.Store {
			return rewriteStream(t, s, func(msgs []goredis.XMessage) []goredis.XMessage {
				var ev access.AuditEvent
				if err := json.Unmarshal([]byte(msgs[pos-1].Values["e"].(string)), &ev); err != nil {
					t.Fatal(err)
				}
				change(&ev)
				b, _ := json.Marshal(ev)
				msgs[pos-1].Values = map[string]any{"e": string(b)}
				return msgs
			})
		},
		Delete: func(t *testing.T, s access.Store, pos int) access.Store {
			return rewriteStream(t, s, func(msgs []goredis.XMessage) []goredis.XMessage {
				return append(msgs[:pos-1], msgs[pos:]...)
			})
		},
		Swap: func(t *testing.T, s access.Store, i, j int) access.Store {
			return rewriteStream(t, s, func(msgs []goredis.XMessage) []goredis.XMessage {
				msgs[i-1].Values, msgs[j-1].Values = msgs[j-1].Values, msgs[i-1].Values
				return msgs
			})
		},
		// As the store wrote before the chain existed: XADD, no head.
		Legacy: func(t *testing.T, s access.Store, evs []access.AuditEvent) access.Store {
			c := redistest.Client(t)
			for _, ev := range evs {
				b, _ := json.Marshal(ev)
				if err := c.XAdd(context.Background(), &goredis.XAddArgs{Stream: "{" + s.(prefixed).prefix + "}:audit", Values: []any{"e", string(b)}}).Err(); err != nil {
					t.Fatal(err)
				}
			}
			return s
		},
	})
}

// Two replicas (two stores, two connections, one prefix) writing at once:
// each links from the head it last wrote, loses to the other's writes,
// links again, and the chain stays one unbroken line.
func TestAuditChainTwoReplicas(t *testing.T) {
	a := fresh(t)
	b := redis.New(redistest.Client(t), a.prefix)
	ctx := context.Background()
	const perWriter, writers = 25, 4
	errs := make(chan error, 2*writers*perWriter)
	var wg sync.WaitGroup
	for _, s := range []*redis.Store{a.Store, b} {
		for w := range writers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := range perWriter {
					errs <- s.AppendAudit(ctx, access.AuditEvent{At: time.Now(), Action: access.ActDriftRemoved,
						Actor: access.SystemActor, Detail: fmt.Sprint(w, "/", i)})
				}
			}()
		}
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	evs, head, err := access.ReadAuditChain(ctx, a)
	if err != nil {
		t.Fatal(err)
	}
	if c := access.VerifyChain(evs, head); !c.Intact() || c.Events != 2*writers*perWriter || c.Start != 1 {
		t.Fatalf("VerifyChain = %+v (break %+v), want %d events, intact", c, c.Break, 2*writers*perWriter)
	}
}
