package scheduler

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/accessbot/accessbot/internal/testclock"
)

// hangProcessor hangs on one id until its context ends and hands every other
// id to next. started is closed when the hung call has begun.
type hangProcessor struct {
	next    Processor
	hang    string
	once    sync.Once
	started chan struct{}
}

func (h *hangProcessor) Process(ctx context.Context, id string) error {
	if id == h.hang {
		h.once.Do(func() { close(h.started) })
		<-ctx.Done()
		return ctx.Err()
	}
	return h.next.Process(ctx, id)
}

// One Process call that never answers must not hold up anything else: items
// that fall due while it hangs are processed at their due time, and an item
// the service reschedules (RetryAt, as a failed revocation is) is retried at
// that time, not after the hung call.
func TestHungItemDelaysNoOtherItem(t *testing.T) {
	ctx := testCtx(t)
	clock := testclock.New(t0)
	idx := newMemIndex()
	idx.Set("stuck", t0)
	idx.Set("flaky", t0)
	idx.Set("a", t0.Add(time.Minute))
	idx.Set("b", t0.Add(2*time.Minute))
	rec := newRecorder(idx, clock)
	// flaky fails like a revocation does: the service records the failure
	// and moves its due time to the backoff (RetryAt) and returns nil.
	rec.keep = func(id string, n int) bool {
		if id == "flaky" && n < 3 {
			idx.Set(id, clock.Now().Add(5*time.Second))
			return true
		}
		return false
	}
	h := &hangProcessor{next: rec, hang: "stuck", started: make(chan struct{})}
	s := New(idx, h, clock, testLogger(t), Options{Workers: 4, Sweep: time.Hour, RetryAfter: time.Hour,
		ItemTimeout: time.Hour, Recheck: 5 * time.Millisecond})
	start(t, s)
	select {
	case <-h.started:
	case <-ctx.Done():
		t.Fatal("the hung item was never started")
	}

	if c := rec.awaitID(ctx, t, "flaky"); !c.at.Equal(t0) {
		t.Errorf("flaky first processed at %s, want %s", c.at, t0)
	}
	for i, at := range []time.Time{t0.Add(5 * time.Second), t0.Add(10 * time.Second)} {
		clock.Set(at)
		if c := rec.awaitID(ctx, t, "flaky"); !c.at.Equal(at) {
			t.Errorf("flaky retry %d processed at %s, want %s (its RetryAt)", i+1, c.at, at)
		}
	}
	for _, id := range []string{"a", "b"} {
		at := t0.Add(map[string]time.Duration{"a": time.Minute, "b": 2 * time.Minute}[id])
		clock.Set(at)
		if c := rec.awaitID(ctx, t, id); !c.at.Equal(at) {
			t.Errorf("%s processed at %s, want its due time %s", id, c.at, at)
		}
	}
	if got := rec.count("flaky"); got != 3 {
		t.Errorf("flaky processed %d times, want 3", got)
	}
	if idx.Len() != 1 || !idx.Has("stuck") {
		t.Errorf("due index holds %d items (stuck: %v), want only the hung one", idx.Len(), idx.Has("stuck"))
	}
}

// With every worker slot but one taken by hung calls, the remaining slot
// still works through everything due; only slots freeing up drive it (no
// sweep, no recheck, no Wake within the test).
func TestBusySlotsDoNotStallTheRest(t *testing.T) {
	ctx := testCtx(t)
	clock := testclock.New(t0)
	idx := newMemIndex()
	idx.Set("stuck", t0.Add(-time.Hour))
	for i := range 40 {
		idx.Set(fmt.Sprintf("r%02d", i), t0.Add(-time.Duration(i)*time.Second))
	}
	rec := newRecorder(idx, clock)
	h := &hangProcessor{next: rec, hang: "stuck", started: make(chan struct{})}
	s := New(idx, h, clock, testLogger(t), Options{Workers: 2, Batch: 3, Sweep: time.Hour, RetryAfter: time.Hour,
		ItemTimeout: time.Hour, Recheck: time.Hour})
	start(t, s)
	rec.await(ctx, t, 40)
	if idx.Len() != 1 || !idx.Has("stuck") {
		t.Errorf("due index holds %d items, want only the hung one", idx.Len())
	}
}

// A Wake after the clock was set past the armed time makes Run act at once,
// also when the Wake is for a later time than the armed one: the timer was
// given the real time to the armed moment as the clock read then, and must
// not be waited out (a test clock stepping ahead, a wall-clock step).
func TestWakeAfterClockPassedTheArmedTime(t *testing.T) {
	ctx := testCtx(t)
	clock := testclock.New(t0)
	idx := newMemIndex()
	idx.Set("a", t0.Add(10*time.Second))
	rec := newRecorder(idx, clock)
	s := New(idx, rec, clock, testLogger(t), Options{Sweep: time.Hour, RetryAfter: time.Hour, Recheck: time.Hour})
	arms := watchArm(s)
	start(t, s)
	arms.await(ctx, t, t0.Add(10*time.Second)) // a real 10 s timer

	clock.Set(t0.Add(20 * time.Second))
	idx.Set("b", t0.Add(20*time.Second))
	woke := time.Now()
	s.Wake(t0.Add(20 * time.Second))
	soon, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	got := rec.await(soon, t, 2)
	t.Logf("processed %s and %s %v after the Wake", got[0].id, got[1].id, time.Since(woke).Round(time.Millisecond))
}

// An item that falls due while the earliest one is still in flight is
// hidden behind it (NextDue answers the in-flight one). When that call
// ends, Run looks again at once: the item behind starts then, not at the
// next Recheck (an hour here). A burst of expiries spread over a second
// otherwise queues up behind each in-flight head.
func TestItemBehindInFlightHeadStartsWhenHeadEnds(t *testing.T) {
	ctx := testCtx(t)
	clock := testclock.New(t0)
	idx := newMemIndex()
	idx.Set("head", t0)
	idx.Set("behind", t0.Add(time.Second))
	rec := newRecorder(idx, clock)
	release := make(chan struct{})
	begun := make(chan struct{})
	rec.during = func(id string) {
		if id == "head" {
			close(begun)
			<-release
		}
	}
	s := New(idx, rec, clock, testLogger(t), Options{Workers: 4, Sweep: time.Hour, RetryAfter: time.Hour,
		ItemTimeout: time.Hour, Recheck: time.Hour})
	arms := watchArm(s)
	start(t, s)
	select {
	case <-begun:
	case <-ctx.Done():
		t.Fatal("head never started")
	}
	arms.await(ctx, t, t0.Add(time.Hour)) // head in flight and still due: armed for the Recheck
	clock.Set(t0.Add(time.Second))        // behind is due now; nothing wakes the scheduler
	close(release)
	if c := rec.awaitID(ctx, t, "head"); !c.at.Equal(t0) {
		t.Errorf("head processed at %s", c.at)
	}
	if c := rec.awaitID(ctx, t, "behind"); !c.at.Equal(t0.Add(time.Second)) {
		t.Errorf("behind processed at %s, want %s", c.at, t0.Add(time.Second))
	}
}
