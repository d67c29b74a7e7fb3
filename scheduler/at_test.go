package scheduler

import (
	"context"
	"testing"
	"time"

	"github.com/accessbot/accessbot/internal/testclock"
)

// TestAtUsesTheClock: the wait of a one-shot timer is the injected clock's
// distance to its time, so a timer for a time the test clock has reached
// runs at once, and one a day ahead by the clock does not run; re-arming
// the key for the same time after the clock passed it fires it at once.
func TestAtUsesTheClock(t *testing.T) {
	clock := testclock.New(t0)
	idx := newMemIndex()
	s := New(idx, newRecorder(idx, clock), clock, nil, Options{})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	ran := make(chan string, 4)
	s.At(ctx, "now", t0, func(context.Context) { ran <- "now" })
	select {
	case k := <-ran:
		if k != "now" {
			t.Fatalf("ran %s", k)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("a timer due by the clock did not run")
	}

	later := t0.Add(24 * time.Hour)
	s.At(ctx, "later", later, func(context.Context) { ran <- "later" })
	if at, ok := s.ArmedAt("later"); !ok || !at.Equal(later) {
		t.Fatalf("ArmedAt = %s, %v; want %s", at, ok, later)
	}
	select {
	case k := <-ran:
		t.Fatalf("%s ran a day early", k)
	case <-time.After(50 * time.Millisecond):
	}
	// The clock reaches it: arming the same time again fires it at once
	// (the real timer still counts down a day).
	clock.Set(later)
	s.At(ctx, "later", later, func(context.Context) { ran <- "later" })
	select {
	case k := <-ran:
		if k != "later" {
			t.Fatalf("ran %s", k)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("re-armed timer did not fire")
	}
	if _, ok := s.ArmedAt("later"); ok {
		t.Error("a fired timer is still reported armed")
	}
	select {
	case k := <-ran:
		t.Fatalf("%s ran twice", k)
	case <-time.After(50 * time.Millisecond):
	}
}

// TestAtJoinedByRun: Run stops the armed timers when it ends and waits for
// a timer's fn in progress; after ctx ended nothing is armed.
func TestAtJoinedByRun(t *testing.T) {
	clock := testclock.New(t0)
	idx := newMemIndex()
	s := New(idx, newRecorder(idx, clock), clock, nil, Options{})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()

	started, release := make(chan struct{}), make(chan struct{})
	finished := make(chan struct{})
	s.At(ctx, "slow", t0, func(context.Context) {
		close(started)
		<-release
		close(finished)
	})
	s.At(ctx, "ahead", t0.Add(time.Hour), func(context.Context) { t.Error("a timer ran after Run ended") })
	select {
	case <-started:
	case <-time.After(10 * time.Second):
		t.Fatal("timer did not fire")
	}
	cancel()
	select {
	case <-done:
		t.Fatal("Run returned while a timer's fn was running")
	case <-time.After(50 * time.Millisecond):
	}
	close(release)
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return")
	}
	select {
	case <-finished:
	default:
		t.Fatal("Run returned before the timer's fn finished")
	}
	if _, ok := s.ArmedAt("ahead"); ok {
		t.Error("a timer is armed after Run ended")
	}
	s.At(ctx, "again", t0, func(context.Context) { t.Error("armed after ctx ended") })
	if _, ok := s.ArmedAt("again"); ok {
		t.Error("At armed a timer after ctx ended")
	}
}
