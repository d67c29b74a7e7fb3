package scheduler

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/accessbot/accessbot/internal/testclock"
)

// lockEvents records the Lock hook's calls.
type lockEvents struct {
	mu  sync.Mutex
	got []string
}

func (l *lockEvents) hook(job string, held bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	s := job + ":released"
	if held {
		s = job + ":held"
	}
	l.got = append(l.got, s)
}

func (l *lockEvents) list() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]string(nil), l.got...)
}

func TestHooksReportLoopTurnsAndJobLocks(t *testing.T) {
	ctx := testCtx(t)
	idx := newMemIndex()
	locker := testLocker(t)
	var locks lockEvents
	turns := make(chan struct{}, 100)
	opts := withLocker(quiet, locker)
	opts.Sweep = time.Second
	opts.Hooks = Hooks{Loop: func() {
		select {
		case turns <- struct{}{}:
		default:
		}
	}, Lock: locks.hook}
	s := New(idx, newRecorder(idx, testclock.New(t0)), nil, testLogger(t), opts)

	// A RunJob takes the lock and gives it back.
	entered, leave := make(chan struct{}), make(chan struct{})
	must(t, s.AddJob("reconcile", "@hourly", func(ctx context.Context) error {
		select {
		case entered <- struct{}{}:
			<-leave
		default:
		}
		return nil
	}))
	done := make(chan error, 1)
	go func() { done <- s.RunJob(ctx, "reconcile") }()
	<-entered
	if got := locks.list(); len(got) != 1 || got[0] != "reconcile:held" {
		t.Errorf("while the job runs the hook saw %v, want [reconcile:held]", got)
	}
	// Another replica (a second owner on the same store) is refused.
	other := New(idx, newRecorder(idx, testclock.New(t0)), nil, testLogger(t), opts)
	must(t, other.AddJob("reconcile", "@hourly", nop))
	if err := other.RunJob(ctx, "reconcile"); err == nil {
		t.Fatal("a second RunJob won the lock held by the first")
	}
	close(leave)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	want := []string{"reconcile:held", "reconcile:released", "reconcile:released"}
	if got := locks.list(); len(got) != len(want) || got[0] != want[0] || got[1] != want[1] || got[2] != want[2] {
		t.Errorf("hook saw %v, want %v (held, the refused replica, released)", got, want)
	}

	// The loop turns at once at start, and again at each sweep.
	start(t, s)
	for i := range 2 {
		select {
		case <-turns:
		case <-time.After(5 * time.Second):
			t.Fatalf("loop hook called %d times in 5s, want a turn at start and at each 1s sweep", i)
		}
	}
}
