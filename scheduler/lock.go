package scheduler

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strconv"

	"time"

	"github.com/accessbot/accessbot/access"
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
	// Fence is the lock's fencing token: store writes on a context with
	// it (access.WithFence) are refused once the lock is lost.
	Fence() access.Fence
}

// StoreLocker is the Locker on the store's claims (access.Fencer): a job's
// lock is the same kind of claim, with the same fencing tokens, as the
// leases on request work, on whichever store the process uses. Each
// Obtain is a new owner, so two runs in one process exclude each other as
// runs on two replicas do.
type StoreLocker struct {
	f    access.Fencer
	name string
	log  *slog.Logger
}

var _ Locker = (*StoreLocker)(nil)

// NewStoreLocker returns a Locker on f. name identifies this replica in
// lock owners and logs (host name and process id when empty); a nil log
// discards.
func NewStoreLocker(f access.Fencer, name string, log *slog.Logger) *StoreLocker {
	if name == "" {
		host, _ := os.Hostname()
		name = host + "/" + strconv.Itoa(os.Getpid())
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &StoreLocker{f: f, name: name, log: log}
}

// Obtain takes key for ttl without waiting; ErrNotObtained when it is
// held. When the previous holding lapsed instead of being released (its
// holder died or paused past its TTL) it says so at Warn. A ttl that is
// not positive is an error.
func (l *StoreLocker) Obtain(ctx context.Context, key string, ttl time.Duration) (Lock, error) {
	var b [8]byte
	_, _ = rand.Read(b[:])
	owner := l.name + ":" + hex.EncodeToString(b[:])
	lease, ok, err := l.f.ClaimFenced(ctx, key, owner, ttl)
	if err != nil {
		return nil, fmt.Errorf("lock %q: %w", key, err)
	}
	if !ok {
		return nil, ErrNotObtained
	}
	if p := lease.Lapsed; p != nil {
		l.log.WarnContext(ctx, "lock taken over from a holder whose lease lapsed", "lock", key,
			"previous_owner", p.Owner, "previous_token", p.Token, "owner", owner, "token", lease.Token)
	}
	return &storeLock{f: l.f, key: key, owner: owner, token: lease.Token}, nil
}

type storeLock struct {
	f     access.Fencer
	key   string
	owner string
	token int64
}

func (k *storeLock) Fence() access.Fence { return access.Fence{Key: k.key, Token: k.token} }

// Refresh renews the claim. A claim that lapsed before the renewal is
// lost even when nobody took it in between: the renewal would be a new
// acquisition with a new token, which the work's fence does not carry,
// so it is given back at once.
func (k *storeLock) Refresh(ctx context.Context, ttl time.Duration) error {
	lease, ok, err := k.f.ClaimFenced(ctx, k.key, k.owner, ttl)
	if err != nil {
		return fmt.Errorf("lock %q: refresh: %w", k.key, err)
	}
	if !ok {
		return ErrNotObtained
	}
	if lease.Token != k.token {
		if _, err := k.f.ReleaseFenced(ctx, k.key, k.owner); err != nil {
			return fmt.Errorf("lock %q: lapsed, and giving back the renewal failed: %w", k.key, err)
		}
		return ErrNotObtained
	}
	return nil
}

func (k *storeLock) Release(ctx context.Context) error {
	ok, err := k.f.ReleaseFenced(ctx, k.key, k.owner)
	if err != nil {
		return fmt.Errorf("lock %q: release: %w", k.key, err)
	}
	if !ok {
		return ErrNotHeld
	}
	return nil
}
