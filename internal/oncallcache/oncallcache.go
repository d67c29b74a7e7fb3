// Package oncallcache keeps the last good answers of an on-call service
// (PagerDuty, Opsgenie) and decides which one may be served: a fresh one
// (younger than CacheFor) instead of asking again, and, while the service
// cannot be reached, the newest one younger than StaleFor, with one warning
// per outage and a note when the service answers again. When no answer is
// young enough the caller gets an error wrapping ErrUnavailable.
//
// Age is not the only bound: an answer is served, fresh or stale, only for
// times its covers function accepts, and each client makes covers end
// where its source says the answer ends (PagerDuty: the turns the listing
// names; Opsgenie with the schedule timeline: its next change). So a stale
// answer never outlives its own shift end when the source gives one.
package oncallcache

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"
)

// Defaults for CacheFor and StaleFor.
const (
	DefaultCacheFor = time.Minute
	DefaultStaleFor = time.Hour

	keepAnswers = 16
)

// ErrUnavailable says the on-call service could not be reached and no
// recent enough answer was cached.
var ErrUnavailable = errors.New("on-call service unavailable")

// CheckAges reports a negative cacheFor or staleFor to bad, named by its
// config key (cache_for, stale_for).
func CheckAges(cacheFor, staleFor time.Duration, bad func(key, format string, args ...any)) {
	if cacheFor < 0 {
		bad("cache_for", "%v is negative", cacheFor)
	}
	if staleFor < 0 {
		bad("stale_for", "%v is negative", staleFor)
	}
}

// DefaultAges returns cacheFor and staleFor with a zero one replaced by its
// default.
func DefaultAges(cacheFor, staleFor time.Duration) (time.Duration, time.Duration) {
	if cacheFor == 0 {
		cacheFor = DefaultCacheFor
	}
	if staleFor == 0 {
		staleFor = DefaultStaleFor
	}
	return cacheFor, staleFor
}

// Unavailable marks err as a failure that a cached answer may cover
// (network error, 5xx, rate limit not waited out). The mark adds nothing
// to the message.
func Unavailable(err error) error { return &unavailable{err} }

type unavailable struct{ err error }

func (e *unavailable) Error() string { return e.err.Error() }
func (e *unavailable) Unwrap() error { return e.err }

// Cache holds the last good answers (of type A) of one on-call service:
// at most 16, none fetched StaleFor ago or earlier. It is safe for
// concurrent use.
type Cache[A any] struct {
	service            string
	log                *slog.Logger
	cacheFor, staleFor time.Duration
	covers             func(a A, at time.Time, maxAge time.Duration) bool

	mu       sync.Mutex
	answers  []kept[A] // newest last
	degraded bool      // serving stale answers; warned once
}

type kept[A any] struct {
	answer  A
	fetched time.Time
}

// New returns an empty cache. service names the service in log lines and
// errors ("pagerduty"); covers says whether an answer answers for at (it
// gets the age limit in use, CacheFor or StaleFor).
func New[A any](service string, log *slog.Logger, cacheFor, staleFor time.Duration,
	covers func(a A, at time.Time, maxAge time.Duration) bool) *Cache[A] {
	return &Cache[A]{service: service, log: log, cacheFor: cacheFor, staleFor: staleFor, covers: covers}
}

// Answer returns the answer for at. It is the newest cached answer covering
// at and fetched less than CacheFor before now, or else what fetch returns
// (kept, fetched at now). When fetch fails with an error marked Unavailable
// the newest covering answer fetched less than StaleFor ago is served
// instead; without one the error wraps ErrUnavailable and the cause. Other
// errors of fetch come back as they are.
func (c *Cache[A]) Answer(ctx context.Context, at, now time.Time, fetch func() (A, error)) (A, error) {
	if k, ok := c.cached(at, now, c.cacheFor); ok {
		return k.answer, nil
	}
	a, err := fetch()
	if err == nil {
		c.store(ctx, a, now)
		return a, nil
	}
	var zero A
	var down *unavailable
	if !errors.As(err, &down) {
		return zero, err
	}
	if k, ok := c.cached(at, now, c.staleFor); ok {
		c.mu.Lock()
		warn := !c.degraded
		c.degraded = true
		c.mu.Unlock()
		if warn {
			c.log.WarnContext(ctx, c.service+" unreachable; serving the last known on-call answer",
				"err", err, "answer_age", now.Sub(k.fetched).String(), "stale_for", c.staleFor.String())
		}
		return k.answer, nil
	}
	return zero, fmt.Errorf("%s: %w (no answer younger than %v to fall back on): %w", c.service, ErrUnavailable, c.staleFor, down.err)
}

// cached returns the newest answer covering at that was fetched less than
// maxAge before now.
func (c *Cache[A]) cached(at, now time.Time, maxAge time.Duration) (kept[A], bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for i := len(c.answers) - 1; i >= 0; i-- {
		k := c.answers[i]
		if c.covers(k.answer, at, maxAge) && now.Sub(k.fetched) < maxAge {
			return k, true
		}
	}
	return kept[A]{}, false
}

func (c *Cache[A]) store(ctx context.Context, a A, now time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.degraded {
		c.degraded = false
		c.log.InfoContext(ctx, c.service+" reachable again")
	}
	keep := c.answers[:0]
	for _, old := range c.answers {
		if now.Sub(old.fetched) < c.staleFor {
			keep = append(keep, old)
		}
	}
	c.answers = append(keep, kept[A]{answer: a, fetched: now})
	if n := len(c.answers); n > keepAnswers {
		c.answers = slices.Delete(c.answers, 0, n-keepAnswers)
	}
}
