// Package ttlcache is a small, bounded map whose entries expire; the
// providers use it to remember user and group lookups for a short time,
// the chat transports to remember lookups and the ids of events they have
// handled (Dedup).
package ttlcache

import (
	"context"
	"sync"
	"time"
)

// Cache is a small TTL map with a size bound; it keeps lookups (email ->
// user id, user id -> user) from costing an API call each time. It is safe
// for concurrent use.
type Cache[V any] struct {
	mu      sync.Mutex
	ttl     time.Duration
	max     int
	now     func() time.Time
	entries map[string]cacheEntry[V]
}

type cacheEntry[V any] struct {
	v       V
	expires time.Time
}

// New returns an empty cache keeping entries for ttl (Put), at most max of
// them (a ttl <= 0 keeps nothing).
func New[V any](ttl time.Duration, max int) *Cache[V] {
	return &Cache[V]{ttl: ttl, max: max, now: time.Now, entries: map[string]cacheEntry[V]{}}
}

// SetClock makes the cache read now instead of the wall clock (tests).
// Call it before the cache is used.
func (c *Cache[V]) SetClock(now func() time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = now
}

// Get returns the value of k unless it is missing or expired.
func (c *Cache[V]) Get(k string) (V, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.entries[k]
	if !ok || !c.now().Before(e.expires) {
		var zero V
		return zero, false
	}
	return e.v, true
}

// Put stores v under k for the cache's ttl; when full, expired and then
// arbitrary entries go.
func (c *Cache[V]) Put(k string, v V) { c.PutFor(k, v, c.ttl) }

// PutFor stores v under k for ttl (a ttl <= 0 stores nothing); when full,
// expired and then arbitrary entries go.
func (c *Cache[V]) PutFor(k string, v V, ttl time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.put(k, v, ttl)
}

// Add stores v under k for ttl unless k holds an entry that has not
// expired, and reports whether it stored: of callers racing with one key
// within ttl, exactly one gets true. A ttl <= 0 stores nothing (and
// reports true).
func (c *Cache[V]) Add(k string, v V, ttl time.Duration) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if e, ok := c.entries[k]; ok && c.now().Before(e.expires) {
		return false
	}
	c.put(k, v, ttl)
	return true
}

func (c *Cache[V]) put(k string, v V, ttl time.Duration) {
	if ttl <= 0 {
		return
	}
	now := c.now()
	if _, ok := c.entries[k]; !ok && len(c.entries) >= c.max {
		for k, e := range c.entries {
			if !now.Before(e.expires) {
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
	c.entries[k] = cacheEntry[V]{v: v, expires: now.Add(ttl)}
}

// Forget drops k.
func (c *Cache[V]) Forget(k string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.entries, k)
}

// Dedup remembers event ids in memory, for a transport with one replica
// (several replicas share the store's record instead). At most max ids are
// kept; when more arrive within their ttl the oldest are not necessarily
// the ones forgotten, and a forgotten id's redelivery is handled again
// (the engine's transitions are idempotent).
type Dedup struct{ ids *Cache[struct{}] }

// NewDedup returns a Dedup keeping at most max ids.
func NewDedup(max int) *Dedup { return &Dedup{ids: New[struct{}](0, max)} }

// Seen reports whether id was recorded within ttl before, and records it
// if not (the first caller gets false). It never fails.
func (d *Dedup) Seen(_ context.Context, id string, ttl time.Duration) (bool, error) {
	return !d.ids.Add(id, struct{}{}, ttl), nil
}
