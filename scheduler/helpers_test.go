package scheduler

import (
	"cmp"
	"context"
	"log/slog"
	"os"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/accessbot/accessbot/internal/redistest"
)

func TestMain(m *testing.M) { redistest.Main(m.Run) }

// memIndex is an in-memory DueIndex: id -> due time.
type memIndex struct {
	mu  sync.Mutex
	due map[string]time.Time
}

var _ DueIndex = (*memIndex)(nil)

func newMemIndex() *memIndex { return &memIndex{due: make(map[string]time.Time)} }

func (x *memIndex) Set(id string, at time.Time) {
	x.mu.Lock()
	x.due[id] = at
	x.mu.Unlock()
}

func (x *memIndex) Remove(id string) {
	x.mu.Lock()
	delete(x.due, id)
	x.mu.Unlock()
}

func (x *memIndex) Has(id string) bool {
	x.mu.Lock()
	defer x.mu.Unlock()
	_, ok := x.due[id]
	return ok
}

func (x *memIndex) Len() int {
	x.mu.Lock()
	defer x.mu.Unlock()
	return len(x.due)
}

type dueEntry struct {
	id string
	at time.Time
}

func (x *memIndex) Due(ctx context.Context, t time.Time, limit int) ([]string, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	x.mu.Lock()
	var es []dueEntry
	for id, at := range x.due {
		if !at.After(t) {
			es = append(es, dueEntry{id, at})
		}
	}
	x.mu.Unlock()
	slices.SortFunc(es, func(a, b dueEntry) int {
		if c := a.at.Compare(b.at); c != 0 {
			return c
		}
		return cmp.Compare(a.id, b.id)
	})
	if len(es) > limit {
		es = es[:limit]
	}
	ids := make([]string, len(es))
	for i, e := range es {
		ids[i] = e.id
	}
	return ids, nil
}

func (x *memIndex) NextDue(ctx context.Context) (time.Time, bool, error) {
	if err := ctx.Err(); err != nil {
		return time.Time{}, false, err
	}
	x.mu.Lock()
	defer x.mu.Unlock()
	var first time.Time
	for _, at := range x.due {
		if first.IsZero() || at.Before(first) {
			first = at
		}
	}
	return first, !first.IsZero(), nil
}

// call is one Process call seen by recorder.
type call struct {
	id  string
	at  time.Time // the scheduler clock's time when Process was called
	err error
}

// recorder is a Processor that does what the service does to the index on
// success (removes the id, as a state change past its deadline would) and
// records every call. fail decides which calls fail and keep which succeed
// without moving the deadline (both leave the id due); during, when set,
// runs while the call is in progress.
type recorder struct {
	idx    *memIndex
	clock  interface{ Now() time.Time }
	fail   func(id string, n int) error
	keep   func(id string, n int) bool // success that leaves the id due
	during func(id string)

	mu       sync.Mutex
	counts   map[string]int
	active   map[string]bool
	overlaps []string
	calls    chan call
}

func newRecorder(idx *memIndex, clock interface{ Now() time.Time }) *recorder {
	return &recorder{
		idx:    idx,
		clock:  clock,
		counts: make(map[string]int),
		active: make(map[string]bool),
		calls:  make(chan call, 100000),
	}
}

func (r *recorder) Process(ctx context.Context, id string) error {
	at := r.clock.Now()
	r.mu.Lock()
	if r.active[id] {
		r.overlaps = append(r.overlaps, id)
	}
	r.active[id] = true
	r.counts[id]++
	n := r.counts[id]
	r.mu.Unlock()

	if r.during != nil {
		r.during(id)
	}
	var err error
	if r.fail != nil {
		err = r.fail(id, n)
	}
	if err == nil && (r.keep == nil || !r.keep(id, n)) {
		r.idx.Remove(id)
	}
	r.mu.Lock()
	r.active[id] = false
	r.mu.Unlock()
	r.calls <- call{id: id, at: at, err: err}
	return err
}

func (r *recorder) count(id string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.counts[id]
}

func (r *recorder) overlapped() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.overlaps...)
}

// await returns the next n calls, failing the test when ctx ends first.
func (r *recorder) await(ctx context.Context, t *testing.T, n int) []call {
	t.Helper()
	var got []call
	for len(got) < n {
		select {
		case c := <-r.calls:
			got = append(got, c)
		case <-ctx.Done():
			t.Fatalf("got %d of %d Process calls before the deadline: %v", len(got), n, got)
		}
	}
	return got
}

// awaitID waits for a call for id, returning it.
func (r *recorder) awaitID(ctx context.Context, t *testing.T, id string) call {
	t.Helper()
	for {
		select {
		case c := <-r.calls:
			if c.id == id {
				return c
			}
		case <-ctx.Done():
			t.Fatalf("no Process call for %s before the deadline", id)
		}
	}
}

func testLogger(t testing.TB) *slog.Logger {
	if testing.Verbose() {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.DiscardHandler)
}

// start runs s until the test ends and checks that Run returned nil.
func start(t *testing.T, s *Scheduler) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Run: %v", err)
			}
		case <-time.After(10 * time.Second):
			t.Errorf("Run did not return within 10s of its context ending")
		}
	})
}

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// armWatch records the times Run arms its timer for; set it up before Run.
type armWatch chan time.Time

func watchArm(s *Scheduler) armWatch {
	w := make(armWatch, 100000)
	s.onArm = func(at time.Time) { w <- at }
	return w
}

// await waits until the timer is armed for at.
func (w armWatch) await(ctx context.Context, t *testing.T, at time.Time) {
	t.Helper()
	for {
		select {
		case got := <-w:
			if got.Equal(at) {
				return
			}
		case <-ctx.Done():
			t.Fatalf("timer never armed for %s", at)
		}
	}
}
