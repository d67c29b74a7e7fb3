package bolt

import (
	"sync"
	"time"
)

type claim struct {
	owner   string
	expires time.Time
}

// claims is an in-memory table of expiring claims, safe across goroutines.
type claims struct {
	mu     sync.Mutex
	m      map[string]claim
	writes int
}

func (c *claims) claim(id, owner string, now time.Time, ttl time.Duration) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if cur, ok := c.m[id]; ok && cur.owner != owner && now.Before(cur.expires) {
		return false
	}
	c.m[id] = claim{owner: owner, expires: now.Add(ttl)}
	c.writes++
	if c.writes%256 == 0 {
		for k, v := range c.m {
			if !now.Before(v.expires) {
				delete(c.m, k)
			}
		}
	}
	return true
}

func (c *claims) release(id, owner string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if cur, ok := c.m[id]; ok && cur.owner == owner {
		delete(c.m, id)
	}
}
