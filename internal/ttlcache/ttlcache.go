// Package ttlcache is a small, bounded map whose entries expire; the
// providers use it to remember user and group lookups for a short time.
package ttlcache

import (
	"sync"
	"time"
)

// Cache is a small TTL map with a size bound; it keeps provider lookups
// (email -> user id, user id -> user) from costing an API call each time.
type Cache[V any] struct {
	mu      sync.Mutex
	ttl     time.Duration
	max     int
	entries map[string]cacheEntry[V]
}

type cacheEntry[V any] struct {
	v       V
	expires time.Time
}

// New returns an empty cache keeping entries for ttl, at most max of them
// (a ttl <= 0 keeps nothing).
func New[V any](ttl time.Duration, max int) *Cache[V] {
	return &Cache[V]{ttl: ttl, max: max, entries: map[string]cacheEntry[V]{}}
}

// Get returns the value of k unless it is missing or expired.
func (c *Cache[V]) Get(k string) (V, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.entries[k]
	if !ok || time.Now().After(e.expires) {
		var zero V
		return zero, false
	}
	return e.v, true
}

// Put stores v under k; when full, expired and then arbitrary entries go.
func (c *Cache[V]) Put(k string, v V) {
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

// Forget drops k.
func (c *Cache[V]) Forget(k string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.entries, k)
}
