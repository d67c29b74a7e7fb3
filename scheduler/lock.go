package scheduler

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/bsm/redislock"
	"github.com/redis/go-redis/v9"
)

// Lock errors.
var (
	// ErrNotObtained means the lock is held by someone else (Obtain) or was
	// lost (Refresh: it expired or was taken over).
	ErrNotObtained = errors.New("lock not obtained")
	// ErrNotHeld means Release was called on a lock that is no longer held.
	ErrNotHeld = errors.New("lock not held")
)

// Locker hands out expiring, exclusive locks by name. Singleton jobs take
// one before running so that only one replica runs them at a time.
type Locker interface {
	// Obtain takes the lock key for ttl. It returns ErrNotObtained (wrapped
	// or not) when someone else holds it, and never waits for it.
	Obtain(ctx context.Context, key string, ttl time.Duration) (Lock, error)
}

// Lock is a held lock.
type Lock interface {
	// Refresh extends the lock to expire ttl from now. It returns
	// ErrNotObtained when the lock was lost in the meantime.
	Refresh(ctx context.Context, ttl time.Duration) error
	// Release gives the lock back. It returns ErrNotHeld when the lock had
	// already expired or been released; releasing twice is therefore safe
	// to ignore.
	Release(ctx context.Context) error
}

// LocalLocker is an in-process Locker, for a single replica (the bolt store).
// The zero value is not usable; use NewLocalLocker.
type LocalLocker struct {
	mu    sync.Mutex
	held  map[string]localEntry
	seq   uint64
	nowFn func() time.Time
}

type localEntry struct {
	token   uint64
	expires time.Time
}

var _ Locker = (*LocalLocker)(nil)

// NewLocalLocker returns an empty in-process Locker.
func NewLocalLocker() *LocalLocker {
	return &LocalLocker{held: make(map[string]localEntry), nowFn: time.Now}
}

// Obtain takes key for ttl, or returns ErrNotObtained while another holder's
// lock has not expired. A ttl that is not positive is an error.
func (l *LocalLocker) Obtain(_ context.Context, key string, ttl time.Duration) (Lock, error) {
	if ttl <= 0 {
		return nil, fmt.Errorf("local lock %q: ttl %s is not positive", key, ttl)
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.nowFn()
	if e, ok := l.held[key]; ok && now.Before(e.expires) {
		return nil, ErrNotObtained
	}
	l.seq++
	l.held[key] = localEntry{token: l.seq, expires: now.Add(ttl)}
	return &localLock{l: l, key: key, token: l.seq}, nil
}

type localLock struct {
	l     *LocalLocker
	key   string
	token uint64
}

func (k *localLock) Refresh(_ context.Context, ttl time.Duration) error {
	if ttl <= 0 {
		return fmt.Errorf("local lock %q: ttl %s is not positive", k.key, ttl)
	}
	k.l.mu.Lock()
	defer k.l.mu.Unlock()
	now := k.l.nowFn()
	e, ok := k.l.held[k.key]
	if !ok || e.token != k.token || !now.Before(e.expires) {
		return ErrNotObtained
	}
	k.l.held[k.key] = localEntry{token: k.token, expires: now.Add(ttl)}
	return nil
}

func (k *localLock) Release(_ context.Context) error {
	k.l.mu.Lock()
	defer k.l.mu.Unlock()
	e, ok := k.l.held[k.key]
	if !ok || e.token != k.token {
		return ErrNotHeld
	}
	delete(k.l.held, k.key)
	if !k.l.nowFn().Before(e.expires) {
		return ErrNotHeld
	}
	return nil
}

// RedisLocker is a Locker on Redis (github.com/bsm/redislock): SET NX PX
// with a random token, refreshed and released by token, so a replica can
// never extend or free a lock another replica took over.
type RedisLocker struct {
	c      *redislock.Client
	prefix string
}

var _ Locker = (*RedisLocker)(nil)

// NewRedisLocker returns a Locker whose keys are "<prefix>:lock:<key>"
// ("lock:<key>" when prefix is empty).
func NewRedisLocker(c redis.UniversalClient, prefix string) *RedisLocker {
	if prefix != "" {
		prefix += ":"
	}
	return &RedisLocker{c: redislock.New(c), prefix: prefix + "lock:"}
}

// Obtain takes key for ttl without waiting; ErrNotObtained when it is held.
// ttl must be at least a millisecond (Redis PX granularity).
func (r *RedisLocker) Obtain(ctx context.Context, key string, ttl time.Duration) (Lock, error) {
	if ttl < time.Millisecond {
		return nil, fmt.Errorf("redis lock %q: ttl %s is under a millisecond", key, ttl)
	}
	l, err := r.c.Obtain(ctx, r.prefix+key, ttl, nil)
	if errors.Is(err, redislock.ErrNotObtained) {
		return nil, ErrNotObtained
	}
	if err != nil {
		return nil, fmt.Errorf("redis lock %q: obtain: %w", key, err)
	}
	return &redisLock{l: l, key: key}, nil
}

type redisLock struct {
	l   *redislock.Lock
	key string
}

func (k *redisLock) Refresh(ctx context.Context, ttl time.Duration) error {
	if ttl < time.Millisecond {
		return fmt.Errorf("redis lock %q: ttl %s is under a millisecond", k.key, ttl)
	}
	err := k.l.Refresh(ctx, ttl, nil)
	if errors.Is(err, redislock.ErrNotObtained) {
		return ErrNotObtained
	}
	if err != nil {
		return fmt.Errorf("redis lock %q: refresh: %w", k.key, err)
	}
	return nil
}

func (k *redisLock) Release(ctx context.Context) error {
	err := k.l.Release(ctx)
	if errors.Is(err, redislock.ErrLockNotHeld) {
		return ErrNotHeld
	}
	if err != nil {
		return fmt.Errorf("redis lock %q: release: %w", k.key, err)
	}
	return nil
}
