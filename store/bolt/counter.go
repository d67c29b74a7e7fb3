package bolt

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/accessbot/accessbot/access"
)

var _ access.Counter = (*Store)(nil)

// Incr adds one to the counter key and returns the new count; the counter
// is forgotten ttl after its first increment. Counters live in memory next
// to the claims: one process owns a bolt file, and a restart forgetting a
// rate-limit window is harmless.
func (s *Store) Incr(ctx context.Context, key string, ttl time.Duration) (int64, error) {
	if err := ctx.Err(); err != nil {
		return 0, fmt.Errorf("bolt: incr %s: %w", key, err)
	}
	if key == "" {
		return 0, fmt.Errorf("bolt: incr: key is empty")
	}
	if ttl <= 0 {
		return 0, fmt.Errorf("bolt: incr %s: ttl %v is not positive", key, ttl)
	}
	return s.counters.incr(key, s.now(), ttl), nil
}

// counters is an in-memory table of expiring counters, safe across goroutines.
type counters struct {
	mu     sync.Mutex
	m      map[string]counter
	writes int
}

type counter struct {
	n       int64
	expires time.Time
}

func (c *counters) incr(key string, now time.Time, ttl time.Duration) int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil {
		c.m = map[string]counter{}
	}
	cur, ok := c.m[key]
	if !ok || !now.Before(cur.expires) {
		cur = counter{expires: now.Add(ttl)}
	}
	cur.n++
	c.m[key] = cur
	c.writes++
	if c.writes%256 == 0 {
		for k, v := range c.m {
			if !now.Before(v.expires) {
				delete(c.m, k)
			}
		}
	}
	return cur.n
}
