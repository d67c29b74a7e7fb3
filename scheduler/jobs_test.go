package scheduler

import (
	"context"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/accessbot/accessbot/internal/redistest"
	"github.com/accessbot/accessbot/internal/testclock"
)

func nop(context.Context) error { return nil }

func TestAddJobRejectsBadInput(t *testing.T) {
	idx := newMemIndex()
	s := New(idx, newRecorder(idx, testclock.New(t0)), nil, nil, withLocker(quiet, testLocker(t)))
	if err := s.AddJob("drift-check", "@every 10m", nop); err != nil {
		t.Fatalf("AddJob: %v", err)
	}
	tests := []struct {
		name, spec string
		fn         func(context.Context) error
		want       []string
	}{
		{"", "@hourly", nop, []string{"empty name"}},
		{"digest", "@hourly", nil, []string{`"digest"`, "no function"}},
		{"digest", "every five minutes", nop, []string{`"digest"`, `"every five minutes"`, "bad schedule"}},
		{"digest", "61 * * * *", nop, []string{`"digest"`, "bad schedule"}},
		{"digest", "", nop, []string{`"digest"`, "bad schedule"}},
		{"digest", "0 0 30 2 *", nop, []string{`"digest"`, "never fires"}},
		{"drift-check", "@hourly", nop, []string{`"drift-check"`, "already registered"}},
	}
	for _, tc := range tests {
		err := s.AddJob(tc.name, tc.spec, tc.fn)
		if err == nil {
			t.Errorf("AddJob(%q, %q) succeeded", tc.name, tc.spec)
			continue
		}
		for _, w := range tc.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("AddJob(%q, %q) = %q, want it to mention %s", tc.name, tc.spec, err, w)
			}
		}
	}
	for _, spec := range []string{"*/5 * * * *", "30 */5 * * * *", "@daily", "@every 90s"} {
		if err := s.AddJob("ok "+spec, spec, nop); err != nil {
			t.Errorf("AddJob(%q): %v", spec, err)
		}
	}

	armed := watchArm(s)
	start(t, s)
	armed.await(testCtx(t), t, time.Time{}) // Run is in its loop
	if err := s.AddJob("late", "@hourly", nop); err == nil || !strings.Contains(err.Error(), "already running") {
		t.Errorf("AddJob while running = %v, want 'already running'", err)
	}
}

func TestRunJob(t *testing.T) {
	ctx := testCtx(t)
	idx := newMemIndex()
	s := New(idx, newRecorder(idx, testclock.New(t0)), nil, testLogger(t), withLocker(quiet, testLocker(t)))

	if err := s.RunJob(ctx, "missing"); !errors.Is(err, ErrUnknownJob) {
		t.Errorf("RunJob of an unknown job = %v, want ErrUnknownJob", err)
	}

	errBroken := errors.New("provider unreachable")
	must(t, s.AddJob("fails", "@hourly", func(context.Context) error { return errBroken }))
	if err := s.RunJob(ctx, "fails"); !errors.Is(err, errBroken) || !strings.Contains(err.Error(), `"fails"`) {
		t.Errorf("RunJob = %v, want the job's error, naming the job", err)
	}
	must(t, s.AddJob("panics", "@hourly", func(context.Context) error { panic("nil map") }))
	if err := s.RunJob(ctx, "panics"); err == nil || !strings.Contains(err.Error(), "panic") {
		t.Errorf("RunJob of a panicking job = %v, want an error", err)
	}

	// While a run is in progress a second one is refused; afterwards the
	// lock is free again.
	entered, leave := make(chan struct{}), make(chan struct{})
	var runs atomic.Int32
	must(t, s.AddJob("slow", "@hourly", func(ctx context.Context) error {
		if runs.Add(1) == 1 {
			close(entered)
			select {
			case <-leave:
			case <-ctx.Done():
			}
		}
		return nil
	}))
	first := make(chan error, 1)
	go func() { first <- s.RunJob(ctx, "slow") }()
	select {
	case <-entered:
	case <-ctx.Done():
		t.Fatal("job never started")
	}
	if err := s.RunJob(ctx, "slow"); !errors.Is(err, ErrNotObtained) {
		t.Errorf("concurrent RunJob = %v, want ErrNotObtained", err)
	}
	close(leave)
	if err := <-first; err != nil {
		t.Errorf("first RunJob: %v", err)
	}
	if err := s.RunJob(ctx, "slow"); err != nil {
		t.Errorf("RunJob after the first ended: %v", err)
	}
	if runs.Load() != 2 {
		t.Errorf("job ran %d times, want 2", runs.Load())
	}
}

// watchLocker reports what happens to the locks it hands out.
type watchLocker struct {
	Locker
	refused   atomic.Int32
	refreshed chan struct{}
}

func newWatchLocker(l Locker) *watchLocker {
	return &watchLocker{Locker: l, refreshed: make(chan struct{}, 1000)}
}

func (w *watchLocker) Obtain(ctx context.Context, key string, ttl time.Duration) (Lock, error) {
	l, err := w.Locker.Obtain(ctx, key, ttl)
	if errors.Is(err, ErrNotObtained) {
		w.refused.Add(1)
	}
	if err != nil {
		return nil, err
	}
	return &watchLock{Lock: l, w: w}, nil
}

type watchLock struct {
	Lock
	w *watchLocker
}

func (l *watchLock) Refresh(ctx context.Context, ttl time.Duration) error {
	err := l.Lock.Refresh(ctx, ttl)
	if err == nil {
		select {
		case l.w.refreshed <- struct{}{}:
		default:
		}
	}
	return err
}

func TestSingletonJobRunsOnceAcrossReplicas(t *testing.T) {
	ctx := testCtx(t)
	prefix := redistest.Prefix(t)
	var (
		mu    sync.Mutex
		ticks = map[int64][]string{} // unix second -> replicas that ran
		runs  = make(chan struct{}, 100)
	)
	var lockers []*watchLocker
	for _, replica := range []string{"a", "b"} {
		idx := newMemIndex()
		wl := newWatchLocker(redisLocker(t, prefix, "replica-"+replica))
		lockers = append(lockers, wl)
		s := New(idx, newRecorder(idx, testclock.New(t0)), nil, testLogger(t), Options{Sweep: time.Hour, Locker: wl})
		must(t, s.AddJob("rotation-sync", "@every 1s", func(context.Context) error {
			mu.Lock()
			sec := time.Now().Unix()
			ticks[sec] = append(ticks[sec], replica)
			mu.Unlock()
			runs <- struct{}{}
			return nil
		}))
		start(t, s)
	}
	for range 4 {
		select {
		case <-runs:
		case <-ctx.Done():
			t.Fatal("the job did not run 4 times before the deadline")
		}
	}
	mu.Lock()
	defer mu.Unlock()
	for sec, who := range ticks {
		if len(who) != 1 {
			t.Errorf("tick %s ran on %v, want one replica", time.Unix(sec, 0).Format(time.TimeOnly), who)
		}
	}
	if lockers[0].refused.Load()+lockers[1].refused.Load() == 0 {
		t.Error("no run was ever refused the lock: the replicas did not compete")
	}
}

func TestJobLockRefreshedDuringLongRun(t *testing.T) {
	ctx := testCtx(t)
	prefix := redistest.Prefix(t)
	wl := newWatchLocker(redisLocker(t, prefix, "replica-a"))
	other := redisLocker(t, prefix, "replica-b")
	idx := newMemIndex()
	s := New(idx, newRecorder(idx, testclock.New(t0)), nil, testLogger(t), Options{Locker: wl, LockTTL: time.Second})
	must(t, s.AddJob("long", "@hourly", func(ctx context.Context) error {
		// Outlive the TTL several times over.
		for range 4 {
			select {
			case <-wl.refreshed:
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		if _, err := other.Obtain(ctx, "job:long", time.Second); !errors.Is(err, ErrNotObtained) {
			return errors.New("the lock lapsed while the job ran")
		}
		return nil
	}))
	if err := s.RunJob(ctx, "long"); err != nil {
		t.Fatalf("RunJob: %v", err)
	}
	l, err := other.Obtain(ctx, "job:long", time.Second)
	if err != nil {
		t.Fatalf("lock not released after the job: %v", err)
	}
	_ = l.Release(ctx)
}

func TestJobCancelledWhenLockLost(t *testing.T) {
	ctx := testCtx(t)
	c := redistest.Client(t)
	prefix := redistest.Prefix(t)
	idx := newMemIndex()
	s := New(idx, newRecorder(idx, testclock.New(t0)), nil, testLogger(t),
		Options{Locker: redisLocker(t, prefix, "replica-a"), LockTTL: 300 * time.Millisecond})
	started := make(chan struct{})
	must(t, s.AddJob("lost", "@hourly", func(jctx context.Context) error {
		close(started)
		select {
		case <-jctx.Done():
			return jctx.Err()
		case <-ctx.Done():
			return errors.New("job not cancelled")
		}
	}))
	go func() {
		<-started
		// Someone else's cleanup (or a Redis failover) drops the lock.
		c.Del(ctx, "{"+prefix+"}:claim:job:lost")
	}()
	if err := s.RunJob(ctx, "lost"); !errors.Is(err, context.Canceled) {
		t.Errorf("RunJob = %v, want the job cancelled", err)
	}
}

func TestJobContextEndsWithRun(t *testing.T) {
	ctx := testCtx(t)
	idx := newMemIndex()
	s := New(idx, newRecorder(idx, testclock.New(t0)), nil, testLogger(t), withLocker(quiet, testLocker(t)))
	entered := make(chan struct{}, 1)
	ended := make(chan error, 1)
	must(t, s.AddJob("watch", "@every 1s", func(jctx context.Context) error {
		entered <- struct{}{}
		<-jctx.Done()
		ended <- jctx.Err()
		return jctx.Err()
	}))
	rctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- s.Run(rctx) }()
	select {
	case <-entered:
	case <-ctx.Done():
		t.Fatal("job never ran")
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Run = %v, want nil", err)
		}
	case <-ctx.Done():
		t.Fatal("Run did not return")
	}
	// Run waited for the job, so its end is already recorded.
	select {
	case err := <-ended:
		if !errors.Is(err, context.Canceled) {
			t.Errorf("job context ended with %v", err)
		}
	default:
		t.Error("Run returned before the job ended")
	}
}

func withLocker(o Options, l Locker) Options {
	o.Locker = l
	return o
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
