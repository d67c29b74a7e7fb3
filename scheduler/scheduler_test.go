package scheduler

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/accessbot/accessbot/access"
	"github.com/accessbot/accessbot/internal/testclock"
)

var t0 = time.Date(2030, 3, 4, 10, 0, 0, 0, time.UTC)

// quiet are options under which only the timer, Wake and explicit Drain
// calls make the scheduler act.
var quiet = Options{Sweep: time.Hour, RetryAfter: time.Hour}

func TestDrainProcessesDueOnly(t *testing.T) {
	ctx := testCtx(t)
	clock := testclock.New(t0)
	idx := newMemIndex()
	idx.Set("past", t0.Add(-time.Hour))
	idx.Set("now", t0)
	idx.Set("future", t0.Add(time.Second))
	rec := newRecorder(idx, clock)
	s := New(idx, rec, clock, testLogger(t), quiet)

	n, err := s.Drain(ctx)
	if err != nil {
		t.Fatalf("Drain: %v", err)
	}
	if n != 2 {
		t.Errorf("Drain = %d, want 2", n)
	}
	for id, want := range map[string]int{"past": 1, "now": 1, "future": 0} {
		if got := rec.count(id); got != want {
			t.Errorf("%s processed %d times, want %d", id, got, want)
		}
	}
	if !idx.Has("future") {
		t.Error("future item left the index")
	}

	clock.Advance(time.Second)
	if n, err := s.Drain(ctx); err != nil || n != 1 {
		t.Errorf("Drain after the clock moved = %d, %v; want 1, nil", n, err)
	}
	if n, err := s.Drain(ctx); err != nil || n != 0 {
		t.Errorf("Drain of an empty index = %d, %v; want 0, nil", n, err)
	}
}

func TestDrainManyBatches(t *testing.T) {
	ctx := testCtx(t)
	clock := testclock.New(t0)
	idx := newMemIndex()
	for i := range 2500 {
		idx.Set(fmt.Sprintf("r%04d", i), t0.Add(-time.Duration(i)*time.Millisecond))
	}
	rec := newRecorder(idx, clock)
	s := New(idx, rec, clock, testLogger(t), Options{Batch: 100, Workers: 4})
	n, err := s.Drain(ctx)
	if err != nil || n != 2500 {
		t.Fatalf("Drain = %d, %v; want 2500, nil", n, err)
	}
	if idx.Len() != 0 {
		t.Errorf("%d items left due", idx.Len())
	}
}

func TestProcessErrorsNeitherStopNorSpin(t *testing.T) {
	ctx := testCtx(t)
	clock := testclock.New(t0)
	idx := newMemIndex()
	// Failing items first in due order and more of them than a batch, so
	// that they would hide the good ones if the drain only re-read the head.
	for i := range 5 {
		idx.Set(fmt.Sprintf("bad%d", i), t0.Add(-time.Hour+time.Duration(i)))
	}
	for i := range 10 {
		idx.Set(fmt.Sprintf("good%d", i), t0.Add(-time.Minute+time.Duration(i)))
	}
	rec := newRecorder(idx, clock)
	rec.fail = func(id string, _ int) error {
		if id[:3] == "bad" {
			return errors.New("provider unavailable")
		}
		return nil
	}
	s := New(idx, rec, clock, testLogger(t), Options{Batch: 2, Workers: 3, RetryAfter: time.Minute})

	n, err := s.Drain(ctx)
	if err != nil {
		t.Fatalf("Drain: %v", err)
	}
	if n != 15 {
		t.Errorf("Drain = %d, want 15 (each item once)", n)
	}
	for i := range 5 {
		if got := rec.count(fmt.Sprintf("bad%d", i)); got != 1 {
			t.Errorf("bad%d processed %d times in one drain, want 1", i, got)
		}
	}
	for i := range 10 {
		id := fmt.Sprintf("good%d", i)
		if got := rec.count(id); got != 1 || idx.Has(id) {
			t.Errorf("%s processed %d times (still due: %v), want once and gone", id, got, idx.Has(id))
		}
	}

	// The failures are held back for RetryAfter, then tried again.
	if n, err := s.Drain(ctx); err != nil || n != 0 {
		t.Errorf("Drain right after failures = %d, %v; want 0, nil", n, err)
	}
	clock.Advance(time.Minute)
	if n, err := s.Drain(ctx); err != nil || n != 5 {
		t.Errorf("Drain after RetryAfter = %d, %v; want 5, nil", n, err)
	}
}

func TestProcessPanicIsAnError(t *testing.T) {
	ctx := testCtx(t)
	clock := testclock.New(t0)
	idx := newMemIndex()
	idx.Set("boom", t0)
	idx.Set("fine", t0)
	rec := newRecorder(idx, clock)
	rec.during = func(id string) {
		if id == "boom" {
			panic("corrupt request")
		}
	}
	s := New(idx, rec, clock, testLogger(t), quiet)
	if n, err := s.Drain(ctx); err != nil || n != 2 {
		t.Fatalf("Drain = %d, %v; want 2, nil", n, err)
	}
	if idx.Has("fine") || !idx.Has("boom") {
		t.Errorf("after drain: fine due %v (want false), boom due %v (want true)", idx.Has("fine"), idx.Has("boom"))
	}
	if n, _ := s.Drain(ctx); n != 0 {
		t.Errorf("panicking item retried at once: Drain = %d, want 0", n)
	}
}

// errIndex fails every call.
type errIndex struct{}

func (errIndex) Due(context.Context, time.Time, int) ([]string, error) {
	return nil, errors.New("connection refused")
}

func (errIndex) NextDue(context.Context) (time.Time, bool, error) {
	return time.Time{}, false, errors.New("connection refused")
}

func TestDrainIndexErrorAndMissingParts(t *testing.T) {
	ctx := testCtx(t)
	idx := newMemIndex()
	s := New(errIndex{}, newRecorder(idx, access.SystemClock{}), nil, nil, Options{})
	if _, err := s.Drain(ctx); err == nil || !strings.Contains(err.Error(), "connection refused") {
		t.Errorf("Drain on a failing index = %v, want the index error", err)
	}
	if _, err := New(nil, nil, nil, nil, Options{}).Drain(ctx); err == nil || !strings.Contains(err.Error(), "no due index") {
		t.Errorf("Drain without index = %v, want a 'no due index' error", err)
	}
	if err := New(idx, nil, nil, nil, Options{}).Run(ctx); err == nil || !strings.Contains(err.Error(), "no processor") {
		t.Errorf("Run without processor = %v, want a 'no processor' error", err)
	}
}

// A failing index must not stop Run: it keeps looking and recovers.
type flakyIndex struct {
	*memIndex
	mu    sync.Mutex
	fails int
}

func (f *flakyIndex) Due(ctx context.Context, t time.Time, limit int) ([]string, error) {
	f.mu.Lock()
	fail := f.fails > 0
	if fail {
		f.fails--
	}
	f.mu.Unlock()
	if fail {
		return nil, errors.New("connection reset")
	}
	return f.memIndex.Due(ctx, t, limit)
}

func TestRunSurvivesIndexErrors(t *testing.T) {
	ctx := testCtx(t)
	clock := testclock.New(t0)
	mem := newMemIndex()
	mem.Set("expired", t0.Add(-time.Minute))
	idx := &flakyIndex{memIndex: mem, fails: 2}
	rec := newRecorder(mem, clock)
	s := New(idx, rec, clock, testLogger(t), Options{Sweep: time.Hour, Recheck: 10 * time.Millisecond})
	start(t, s)
	rec.awaitID(ctx, t, "expired")
}

func TestNoConcurrentProcessingOfOneID(t *testing.T) {
	ctx := testCtx(t)
	clock := testclock.New(t0)
	idx := newMemIndex()
	const n = 300
	for i := range n {
		idx.Set(fmt.Sprintf("r%03d", i), t0.Add(-time.Duration(i%7)*time.Second))
	}
	rec := newRecorder(idx, clock)
	// The first call of each id leaves it due, as a Process that found the
	// work claimed by another replica would; a later drain sees it again.
	rec.keep = func(_ string, n int) bool { return n == 1 }
	rec.during = func(string) {
		time.Sleep(time.Millisecond) // widen the window in which a second call would overlap
	}
	s := New(idx, rec, clock, testLogger(t), Options{Workers: 8, Batch: 16, Sweep: time.Hour, Recheck: 5 * time.Millisecond})
	start(t, s) // Run drains too, concurrently with the explicit drains
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for ctx.Err() == nil && idx.Len() > 0 {
				if _, err := s.Drain(ctx); err != nil {
					t.Errorf("Drain: %v", err)
					return
				}
			}
		})
	}
	wg.Wait()
	if idx.Len() != 0 {
		t.Fatalf("%d items still due at the deadline", idx.Len())
	}
	if o := rec.overlapped(); len(o) > 0 {
		t.Errorf("ids processed concurrently: %v", o)
	}
	for i := range n {
		if c := rec.count(fmt.Sprintf("r%03d", i)); c < 2 {
			t.Errorf("r%03d processed %d times, want at least 2", i, c)
		}
	}
}

func TestRunDrainsAtStart(t *testing.T) {
	ctx := testCtx(t)
	clock := testclock.New(t0)
	idx := newMemIndex()
	// Grants that expired while the process was down.
	idx.Set("a", t0.Add(-3*time.Hour))
	idx.Set("b", t0.Add(-time.Second))
	idx.Set("later", t0.Add(time.Hour))
	rec := newRecorder(idx, clock)
	s := New(idx, rec, clock, testLogger(t), quiet)
	start(t, s)
	got := rec.await(ctx, t, 2)
	seen := map[string]bool{got[0].id: true, got[1].id: true}
	if !seen["a"] || !seen["b"] {
		t.Errorf("processed %v at start, want a and b", got)
	}
	if rec.count("later") != 0 {
		t.Error("an item due in an hour was processed at start")
	}
}

func TestTimerFiresAtEarliestDue(t *testing.T) {
	ctx := testCtx(t)
	clock := access.SystemClock{}
	idx := newMemIndex()
	due := clock.Now().Add(300 * time.Millisecond)
	idx.Set("soon", due)
	idx.Set("later", due.Add(time.Hour))
	rec := newRecorder(idx, clock)
	s := New(idx, rec, clock, testLogger(t), quiet)
	start(t, s)
	c := rec.awaitID(ctx, t, "soon")
	if c.at.Before(due) {
		t.Errorf("processed at %s, before its due time %s", c.at, due)
	}
	if rec.count("later") != 0 {
		t.Error("the later item was processed too")
	}
}

func TestWakeWithEarlierTimeRearms(t *testing.T) {
	ctx := testCtx(t)
	clock := testclock.New(t0)
	idx := newMemIndex()
	idx.Set("first", t0)
	idx.Set("late", t0.Add(time.Hour))
	rec := newRecorder(idx, clock)
	s := New(idx, rec, clock, testLogger(t), quiet)
	armed := watchArm(s)
	start(t, s)
	rec.awaitID(ctx, t, "first")
	armed.await(ctx, t, t0.Add(time.Hour)) // the real timer waits an hour

	// A request whose deadline is earlier than the armed one is stored.
	early := t0.Add(10 * time.Minute)
	idx.Set("early", early)
	clock.Set(early)
	s.Wake(early)
	c := rec.awaitID(ctx, t, "early")
	if c.at.Before(early) {
		t.Errorf("processed at %s, before %s", c.at, early)
	}
	if rec.count("late") != 0 {
		t.Error("the item due later was processed too")
	}

	// A Wake for a time that is not due yet arms the timer; moving the clock
	// and waking again makes it act at once.
	idx.Set("next", t0.Add(20*time.Minute))
	s.Wake(t0.Add(20 * time.Minute))
	armed.await(ctx, t, t0.Add(20*time.Minute))
	clock.Set(t0.Add(20 * time.Minute))
	s.Wake(t0.Add(20 * time.Minute))
	rec.awaitID(ctx, t, "next")
}

func TestWakeBurstNeitherBlocksNorLeaks(t *testing.T) {
	ctx := testCtx(t)
	clock := testclock.New(t0)
	idx := newMemIndex()
	idx.Set("ready", t0)
	rec := newRecorder(idx, clock)
	s := New(idx, rec, clock, testLogger(t), quiet)

	// Wakes before Run are remembered and never block.
	for i := range 1000 {
		s.Wake(t0.Add(time.Duration(i) * time.Second))
	}
	start(t, s)
	rec.awaitID(ctx, t, "ready")
	before := runtime.NumGoroutine()

	done := make(chan struct{})
	go func() {
		defer close(done)
		var wg sync.WaitGroup
		for g := range 10 {
			wg.Go(func() {
				for i := range 1000 {
					s.Wake(t0.Add(time.Duration((g*1000+i)%7200-3600) * time.Second))
				}
			})
		}
		wg.Wait()
	}()
	select {
	case <-done:
	case <-ctx.Done():
		t.Fatal("10,000 Wakes did not return before the deadline")
	}

	// Nothing the burst caused may linger.
	for runtime.NumGoroutine() > before {
		select {
		case <-ctx.Done():
			t.Fatalf("goroutines: %d before the burst, %d after", before, runtime.NumGoroutine())
		case <-time.After(10 * time.Millisecond):
		}
	}

	// And the scheduler still answers.
	idx.Set("after", t0)
	s.Wake(t0)
	rec.awaitID(ctx, t, "after")
}

func TestRunKeepsGoingAfterProcessErrors(t *testing.T) {
	ctx := testCtx(t)
	clock := testclock.New(t0)
	idx := newMemIndex()
	idx.Set("bad", t0.Add(-time.Hour))
	for i := range 20 {
		idx.Set(fmt.Sprintf("good%d", i), t0.Add(-time.Minute))
	}
	rec := newRecorder(idx, clock)
	rec.fail = func(id string, _ int) error {
		if id == "bad" {
			return errors.New("throttled")
		}
		return nil
	}
	s := New(idx, rec, clock, testLogger(t), Options{Sweep: time.Hour, RetryAfter: time.Hour, Recheck: 5 * time.Millisecond})
	start(t, s)
	rec.await(ctx, t, 21)
	// More re-checks happen while "bad" stays due; it is not retried.
	idx.Set("more", t0)
	s.Wake(t0)
	rec.awaitID(ctx, t, "more")
	if got := rec.count("bad"); got != 1 {
		t.Errorf("failing item processed %d times within its RetryAfter, want 1", got)
	}
}

func TestSweepRunsOnItsInterval(t *testing.T) {
	ctx := testCtx(t)
	clock := testclock.New(t0)
	idx := newMemIndex()
	idx.Set("first", t0)
	idx.Set("x", t0.Add(time.Hour))
	rec := newRecorder(idx, clock)
	s := New(idx, rec, clock, testLogger(t), Options{Sweep: time.Second})
	armed := watchArm(s)
	start(t, s)
	rec.awaitID(ctx, t, "first")
	armed.await(ctx, t, t0.Add(time.Hour)) // the real timer waits an hour

	// Time jumps (a lost Wake, clock drift): only the sweep can notice.
	clock.Advance(2 * time.Hour)
	rec.awaitID(ctx, t, "x")
}

func TestRunTwice(t *testing.T) {
	idx := newMemIndex()
	s := New(idx, newRecorder(idx, access.SystemClock{}), nil, nil, quiet)
	start(t, s)
	ctx := testCtx(t)
	for {
		s.mu.Lock()
		running := s.running
		s.mu.Unlock()
		if running {
			break
		}
		select {
		case <-ctx.Done():
			t.Fatal("Run did not start")
		case <-time.After(5 * time.Millisecond):
		}
	}
	if err := s.Run(ctx); err == nil || !strings.Contains(err.Error(), "already running") {
		t.Errorf("second Run = %v, want 'already running'", err)
	}
}
