package access

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"
)

// ErrRateLimited says a person reached a per-user limit (requests waiting
// for approval, commands per minute); the message says which.
var ErrRateLimited = errors.New("rate limited")

// Counter is the optional capability of a Store to count events in fixed
// windows shared by every replica (per-user command limits). Stores that
// lack it get a per-process count instead.
type Counter interface {
	// Incr adds one to the counter key and returns the new count. A counter
	// is forgotten ttl after its first increment (the first Incr of a key
	// returns 1). Errors leave the count unknown.
	Incr(ctx context.Context, key string, ttl time.Duration) (int64, error)
}

// localCounter is the per-process fallback of Counter.
type localCounter struct {
	mu sync.Mutex
	m  map[string]localCount
}

type localCount struct {
	n       int64
	expires time.Time
}

func (c *localCounter) incr(key string, now time.Time, ttl time.Duration) int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil {
		c.m = map[string]localCount{}
	}
	if len(c.m) > 10000 {
		for k, v := range c.m {
			if !now.Before(v.expires) {
				delete(c.m, k)
			}
		}
	}
	v, ok := c.m[key]
	if !ok || !now.Before(v.expires) {
		v = localCount{expires: now.Add(ttl)}
	}
	v.n++
	c.m[key] = v
	return v.n
}

// Throttle counts one command of identity and refuses it with a
// *Refusal wrapping ErrRateLimited when the person gave more than
// Options.CommandsPerMinute in the current minute (of the service clock),
// counted across replicas when the store is a Counter. Commands that take
// access away or answer a request (revoke, cancel, approve, deny,
// acknowledge) and break-glass are never throttled: handlers do not call
// Throttle for them. A failing count lets the command through (logged).
func (s *Service) Throttle(ctx context.Context, identity string) error {
	limit := s.opt.CommandsPerMinute
	id := normID(identity)
	if limit < 0 || id == "" {
		return nil
	}
	now := s.clock.Now()
	window := now.Truncate(time.Minute)
	key := fmt.Sprintf("cmds:%s:%d", id, window.Unix())
	var n int64
	if s.counter != nil {
		var err error
		n, err = s.counter.Incr(ctx, key, 2*time.Minute)
		if err != nil {
			s.log.WarnContext(ctx, "command count failed; not limiting", "user", id, "err", err)
			return nil
		}
	} else {
		n = s.cmds.incr(key, now, 2*time.Minute)
	}
	if n > int64(limit) {
		return &Refusal{Code: RefuseThrottled, Err: ErrRateLimited, Limit: limit, At: window.Add(time.Minute)}
	}
	return nil
}
