package scheduler

import (
	"context"
	"errors"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/accessbot/accessbot/internal/redistest"
)

// lockers gives the locker suite each implementation: a pair of lockers
// that share their locks (two replicas) and a way to let time pass beyond
// a TTL.
type lockerCase struct {
	name   string
	make   func(t *testing.T) (a, b Locker)
	expire func(t *testing.T, ctx context.Context, l Locker, key string) // waits until key's lock has expired
}

func lockerCases() []lockerCase {
	return []lockerCase{
		{
			name: "local",
			make: func(t *testing.T) (Locker, Locker) {
				l := NewLocalLocker()
				return l, l
			},
			expire: func(t *testing.T, _ context.Context, l Locker, _ string) {
				ll := l.(*LocalLocker)
				ll.mu.Lock()
				later := ll.nowFn().Add(time.Hour)
				ll.nowFn = func() time.Time { return later }
				ll.mu.Unlock()
			},
		},
		{
			name: "redis",
			make: func(t *testing.T) (Locker, Locker) {
				p := redistest.Prefix(t)
				return NewRedisLocker(redistest.Client(t), p), NewRedisLocker(redistest.Client(t), p)
			},
			expire: func(t *testing.T, ctx context.Context, l Locker, key string) {
				// The suite obtains with a 1s TTL: wait until Redis lets it go.
				for {
					k, err := l.Obtain(ctx, key, time.Millisecond)
					if err == nil {
						_ = k.Release(ctx)
						return
					}
					if !errors.Is(err, ErrNotObtained) {
						t.Fatalf("Obtain while waiting for expiry: %v", err)
					}
					select {
					case <-ctx.Done():
						t.Fatal("lock never expired")
					case <-time.After(50 * time.Millisecond):
					}
				}
			},
		},
	}
}

func TestLockers(t *testing.T) {
	for _, tc := range lockerCases() {
		t.Run(tc.name, func(t *testing.T) {
			ctx := testCtx(t)
			a, b := tc.make(t)

			la, err := a.Obtain(ctx, "job:report", time.Second)
			if err != nil {
				t.Fatalf("Obtain: %v", err)
			}
			if _, err := b.Obtain(ctx, "job:report", time.Second); !errors.Is(err, ErrNotObtained) {
				t.Errorf("second Obtain = %v, want ErrNotObtained", err)
			}
			lo, err := b.Obtain(ctx, "job:other", time.Second)
			if err != nil {
				t.Fatalf("Obtain of another key: %v", err)
			}
			if err := la.Refresh(ctx, time.Second); err != nil {
				t.Errorf("Refresh of a held lock: %v", err)
			}
			if err := la.Release(ctx); err != nil {
				t.Errorf("Release: %v", err)
			}
			if err := la.Release(ctx); !errors.Is(err, ErrNotHeld) {
				t.Errorf("second Release = %v, want ErrNotHeld", err)
			}
			if err := la.Refresh(ctx, time.Second); !errors.Is(err, ErrNotObtained) {
				t.Errorf("Refresh after Release = %v, want ErrNotObtained", err)
			}
			lb, err := b.Obtain(ctx, "job:report", time.Second)
			if err != nil {
				t.Fatalf("Obtain after Release: %v", err)
			}
			if err := lo.Release(ctx); err != nil {
				t.Errorf("Release of the other key: %v", err)
			}

			// An expired lock may be taken by someone else, and the old
			// holder can neither extend nor free the new one.
			tc.expire(t, ctx, a, "job:report")
			lc, err := a.Obtain(ctx, "job:report", time.Minute)
			if err != nil {
				t.Fatalf("Obtain after expiry: %v", err)
			}
			if err := lb.Refresh(ctx, time.Second); !errors.Is(err, ErrNotObtained) {
				t.Errorf("Refresh of an expired, retaken lock = %v, want ErrNotObtained", err)
			}
			if err := lb.Release(ctx); !errors.Is(err, ErrNotHeld) {
				t.Errorf("Release of an expired, retaken lock = %v, want ErrNotHeld", err)
			}
			if _, err := b.Obtain(ctx, "job:report", time.Second); !errors.Is(err, ErrNotObtained) {
				t.Errorf("Obtain of the retaken lock = %v, want ErrNotObtained", err)
			}
			if err := lc.Release(ctx); err != nil {
				t.Errorf("Release of the new lock: %v", err)
			}

			if _, err := a.Obtain(ctx, "job:x", 0); err == nil {
				t.Error("Obtain with a zero TTL succeeded")
			}
		})
	}
}

func TestLocalLockerExclusiveUnderContention(t *testing.T) {
	ctx := testCtx(t)
	l := NewLocalLocker()
	var holders, wins atomic.Int32
	var wg sync.WaitGroup
	for range 50 {
		wg.Go(func() {
			for range 20 {
				k, err := l.Obtain(ctx, "k", time.Minute)
				if errors.Is(err, ErrNotObtained) {
					runtime.Gosched()
					continue
				}
				if err != nil {
					t.Errorf("Obtain: %v", err)
					return
				}
				if holders.Add(1) > 1 {
					t.Error("two holders at once")
				}
				wins.Add(1)
				runtime.Gosched()
				holders.Add(-1)
				if err := k.Release(ctx); err != nil {
					t.Errorf("Release: %v", err)
				}
			}
		})
	}
	wg.Wait()
	if wins.Load() == 0 {
		t.Error("nobody obtained the lock")
	}
}

func TestRedisLockerKeys(t *testing.T) {
	ctx := testCtx(t)
	c := redistest.Client(t)
	p := redistest.Prefix(t)
	l := NewRedisLocker(c, p)
	k, err := l.Obtain(ctx, "job:digest", time.Minute)
	if err != nil {
		t.Fatalf("Obtain: %v", err)
	}
	ttl, err := c.PTTL(ctx, p+":lock:job:digest").Result()
	if err != nil || ttl <= 0 || ttl > time.Minute {
		t.Errorf("PTTL of %s = %v, %v; want a TTL of at most a minute", p+":lock:job:digest", ttl, err)
	}
	if err := k.Release(ctx); err != nil {
		t.Errorf("Release: %v", err)
	}
	if n, _ := c.Exists(ctx, p+":lock:job:digest").Result(); n != 0 {
		t.Error("the lock key survived Release")
	}
}
