package scheduler

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/accessbot/accessbot/internal/redistest"
	"github.com/accessbot/accessbot/internal/testclock"
	"github.com/accessbot/accessbot/store/bolt"
	storeredis "github.com/accessbot/accessbot/store/redis"
)

// lockerCases gives the locker suite each store: a pair of lockers that
// share their locks (two replicas) and a way to let time pass beyond a
// TTL. Both stores keep claims on real time (Redis's TTLs; the bolt
// store's clock is the wall clock), so expiry is waited for, bounded.
type lockerCase struct {
	name   string
	make   func(t *testing.T) (a, b Locker)
	expire func(t *testing.T, ctx context.Context, l Locker, key string) // waits until key's lock has expired
}

func lockerCases() []lockerCase {
	return []lockerCase{
		{
			name: "bolt",
			make: func(t *testing.T) (Locker, Locker) {
				st := boltStore(t)
				return NewStoreLocker(st, "replica-a", testLogger(t)), NewStoreLocker(st, "replica-b", testLogger(t))
			},
			expire: waitExpired,
		},
		{
			name: "redis",
			make: func(t *testing.T) (Locker, Locker) {
				p := redistest.Prefix(t)
				return redisLocker(t, p, "replica-a"), redisLocker(t, p, "replica-b")
			},
			expire: waitExpired,
		},
	}
}

// waitExpired waits until key's lock has expired: the suite obtains with a
// 1s TTL.
func waitExpired(t *testing.T, ctx context.Context, l Locker, key string) {
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

func TestStoreLockerExclusiveUnderContention(t *testing.T) {
	for _, tc := range lockerCases() {
		t.Run(tc.name, func(t *testing.T) {
			l, _ := tc.make(t)
			testExclusiveUnderContention(t, l)
		})
	}
}

func testExclusiveUnderContention(t *testing.T, l Locker) {
	ctx := testCtx(t)
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

func TestStoreLockerRedisKeys(t *testing.T) {
	ctx := testCtx(t)
	c := redistest.Client(t)
	p := redistest.Prefix(t)
	l := redisLocker(t, p, "replica-a")
	k, err := l.Obtain(ctx, "job:digest", time.Minute)
	if err != nil {
		t.Fatalf("Obtain: %v", err)
	}
	key := "{" + p + "}:claim:job:digest"
	ttl, err := c.PTTL(ctx, key).Result()
	if err != nil || ttl <= 0 || ttl > time.Minute {
		t.Errorf("PTTL of %s = %v, %v; want a TTL of at most a minute", key, ttl, err)
	}
	if err := k.Release(ctx); err != nil {
		t.Errorf("Release: %v", err)
	}
	if n, _ := c.Exists(ctx, key, "{"+p+"}:lease:job:digest").Result(); n != 0 {
		t.Error("the lock's keys survived Release")
	}
}

// The lock's fence is its store token: a new one for every holding.
func TestStoreLockerFence(t *testing.T) {
	for _, tc := range lockerCases() {
		t.Run(tc.name, func(t *testing.T) {
			ctx := testCtx(t)
			a, b := tc.make(t)
			la, err := a.Obtain(ctx, "job:fence", time.Minute)
			if err != nil {
				t.Fatalf("Obtain: %v", err)
			}
			f := la.Fence()
			if f.Key != "job:fence" || f.Token <= 0 {
				t.Fatalf("Fence = %+v, want the key and a positive token", f)
			}
			if err := la.Refresh(ctx, time.Minute); err != nil || la.Fence() != f {
				t.Errorf("Refresh = %v, fence %+v; want the fence kept", err, la.Fence())
			}
			if err := la.Release(ctx); err != nil {
				t.Fatal(err)
			}
			lb, err := b.Obtain(ctx, "job:fence", time.Minute)
			if err != nil {
				t.Fatalf("Obtain after Release: %v", err)
			}
			if lb.Fence().Token <= f.Token {
				t.Errorf("next holding's token %d, want more than %d", lb.Fence().Token, f.Token)
			}
			_ = lb.Release(ctx)
		})
	}
}

// A holding that lapsed is lost even when nobody took it in between: the
// renewal would be a new holding with a token the job's fence lacks.
func TestStoreLockerRefreshAfterLapse(t *testing.T) {
	for _, tc := range lockerCases() {
		t.Run(tc.name, func(t *testing.T) {
			ctx := testCtx(t)
			a, b := tc.make(t)
			la, err := a.Obtain(ctx, "job:lapse", 100*time.Millisecond)
			if err != nil {
				t.Fatalf("Obtain: %v", err)
			}
			time.Sleep(200 * time.Millisecond) // past the TTL, on the stores' real-time clocks
			if err := la.Refresh(ctx, time.Minute); !errors.Is(err, ErrNotObtained) {
				t.Errorf("Refresh after the lapse = %v, want ErrNotObtained", err)
			}
			// The late renewal left nothing held behind.
			lb, err := b.Obtain(ctx, "job:lapse", time.Minute)
			if err != nil {
				t.Fatalf("Obtain after the lapsed holder's Refresh: %v", err)
			}
			_ = lb.Release(ctx)
		})
	}
}

// Taking over a lock whose holder let it lapse is logged at Warn, naming
// the previous holder; taking one that was released is not.
func TestStoreLockerLogsLapsedTakeover(t *testing.T) {
	ctx := testCtx(t)
	st := boltStore(t)
	var logs lockedBuffer
	log := slog.New(slog.NewTextHandler(&logs, nil))
	a, b := NewStoreLocker(st, "replica-a", log), NewStoreLocker(st, "replica-b", log)

	la, err := a.Obtain(ctx, "job:reconcile", time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	_ = la.Release(ctx)
	lb, err := b.Obtain(ctx, "job:reconcile", 100*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	if logs.String() != "" {
		t.Errorf("a takeover after a release was logged: %s", logs.String())
	}
	time.Sleep(200 * time.Millisecond) // b's holding lapses, on the store's real-time clock
	if _, err := a.Obtain(ctx, "job:reconcile", time.Minute); err != nil {
		t.Fatal(err)
	}
	out := logs.String()
	for _, want := range []string{"level=WARN", "lapsed", "lock=job:reconcile", "previous_owner=replica-b:",
		fmt.Sprintf("previous_token=%d", lb.Fence().Token)} {
		if !strings.Contains(out, want) {
			t.Errorf("log %q lacks %q", out, want)
		}
	}
}

// AddJob needs a Locker: a due index that takes no fenced claims gives none.
func TestAddJobWithoutLocker(t *testing.T) {
	idx := newMemIndex()
	s := New(idx, newRecorder(idx, testclock.New(t0)), nil, nil, quiet)
	if err := s.AddJob("reconcile", "@hourly", nop); err == nil || !strings.Contains(err.Error(), "no Locker") {
		t.Errorf("AddJob without a Locker = %v, want 'no Locker'", err)
	}
	st := boltStore(t)
	s = New(st, newRecorder(idx, testclock.New(t0)), nil, nil, quiet)
	if err := s.AddJob("reconcile", "@hourly", nop); err != nil {
		t.Errorf("AddJob on a store's due index: %v", err)
	}
}

type lockedBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// boltStore opens a bolt store closed when t ends.
func boltStore(t testing.TB) *bolt.Store {
	t.Helper()
	s, err := bolt.Open(filepath.Join(t.TempDir(), "accessbot.db"))
	if err != nil {
		t.Fatalf("bolt: %v", err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// redisStore opens a store on its own client (a replica of its own) under
// prefix; the prefix's keys are deleted when t ends.
func redisStore(t testing.TB, prefix string) *storeredis.Store {
	t.Helper()
	c := redistest.Client(t)
	t.Cleanup(func() { deleteKeys(c, "{"+prefix+"}*") })
	s := storeredis.New(c, prefix)
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// redisLocker is a replica's StoreLocker on Redis under prefix.
func redisLocker(t testing.TB, prefix, name string) *StoreLocker {
	return NewStoreLocker(redisStore(t, prefix), name, testLogger(t))
}

// testLocker is a StoreLocker for tests whose due index is no store.
func testLocker(t testing.TB) *StoreLocker {
	return NewStoreLocker(boltStore(t), "", testLogger(t))
}
