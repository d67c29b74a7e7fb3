package okta

import (
	"sync"
	"time"
)

// cache is a small TTL map with a size bound; it keeps provider lookups
// (email -> user id, user id -> user) from costing an API call each time.
type cache[V any] struct {
	mu      sync.Mutex
	ttl     time.Duration
	max     int
	entries map[string]cacheEntry[V]
}

type cacheEntry[V any] struct {
	v       V
	expires time.Time
}

func newCache[V any](ttl time.Duration, max int) *cache[V] {
	return &cache[V]{ttl: ttl, max: max, entries: map[string]cacheEntry[V]{}}
}

func (c *cache[V]) get(k string) (V, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.entries[k]
	if !ok || time.Now().After(e.expires) {
		var zero V
		return zero, false
	}
	return e.v, true
}

func (c *cache[V]) put(k string, v V) {
	if c.ttl <= 0 {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.entries) >= c.max {
		now := time.Now()
		for k, e := range c.entries {
			if now.After(e.expires) {
				delete(c.entries, k)
			}
		}
		// Still full: drop arbitrary entries (map order) to make room.
		for k := range c.entries {
			if len(c.entries) < c.max {
				break
			}
			delete(c.entries, k)
		}
	}
	c.entries[k] = cacheEntry[V]{v: v, expires: time.Now().Add(c.ttl)}
}

func (c *cache[V]) forget(k string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.entries, k)
}
