package scheduler

import (
	"context"
	"sync"
	"time"
)

// oneShot is a timer armed by At.
type oneShot struct {
	timer    *time.Timer
	at       time.Time
	gen      int
	unbindCx func() bool // stops the context.AfterFunc that stops timer
}

// shots are the one-shot timers of At; the zero value is ready.
type shots struct {
	mu     sync.Mutex
	byKey  map[string]*oneShot
	closed bool           // Run has ended: no fn starts any more
	runs   sync.WaitGroup // fns in progress
}

// At runs fn(ctx) once at at, by the scheduler's clock: the wait is the
// clock's distance to at when At is called, so with a test clock already
// set past at fn runs at once. An At for a key that is armed for another
// time replaces it; for the same time it leaves it alone, unless the clock
// has passed that time (a test clock set forward while the timer still
// counts down real time): then it fires at once. A zero at does
// nothing. The timer stops when ctx ends or Run returns; Run waits for an
// fn in progress before it returns. Between calls no goroutine exists.
// fn may call At again (for its next time).
func (s *Scheduler) At(ctx context.Context, key string, at time.Time, fn func(ctx context.Context)) {
	if at.IsZero() {
		return
	}
	t := &s.shots
	t.mu.Lock()
	defer t.mu.Unlock()
	if ctx.Err() != nil || t.closed {
		return
	}
	if t.byKey == nil {
		t.byKey = map[string]*oneShot{}
	}
	o := t.byKey[key]
	if o == nil {
		o = &oneShot{}
		t.byKey[key] = o
	}
	if o.timer != nil && o.at.Equal(at) && at.After(s.clock.Now()) {
		return
	}
	o.stop()
	o.gen++
	gen := o.gen
	o.at = at
	o.timer = time.AfterFunc(max(at.Sub(s.clock.Now()), 0), func() { s.fire(ctx, key, gen, fn) })
	o.unbindCx = context.AfterFunc(ctx, func() {
		t.mu.Lock()
		defer t.mu.Unlock()
		if o.gen == gen && o.timer != nil {
			o.timer.Stop()
			o.timer = nil
		}
	})
}

// ArmedAt reports the time key's timer is armed for, and whether one is.
func (s *Scheduler) ArmedAt(key string) (time.Time, bool) {
	t := &s.shots
	t.mu.Lock()
	defer t.mu.Unlock()
	if o := t.byKey[key]; o != nil && o.timer != nil {
		return o.at, true
	}
	return time.Time{}, false
}

func (o *oneShot) stop() {
	if o.timer != nil {
		o.timer.Stop()
		o.timer = nil
	}
	if o.unbindCx != nil {
		o.unbindCx()
		o.unbindCx = nil
	}
}

func (s *Scheduler) fire(ctx context.Context, key string, gen int, fn func(ctx context.Context)) {
	t := &s.shots
	t.mu.Lock()
	o := t.byKey[key]
	if o == nil || o.gen != gen || o.timer == nil || ctx.Err() != nil || t.closed {
		t.mu.Unlock()
		return
	}
	o.timer = nil
	if o.unbindCx != nil {
		o.unbindCx()
		o.unbindCx = nil
	}
	t.runs.Add(1)
	t.mu.Unlock()
	defer t.runs.Done()
	fn(ctx)
}

// openShots lets At arm timers again (Run starts).
func (s *Scheduler) openShots() {
	s.shots.mu.Lock()
	s.shots.closed = false
	s.shots.mu.Unlock()
}

// closeShots stops every timer and waits for the fns in progress (Run
// ends).
func (s *Scheduler) closeShots() {
	t := &s.shots
	t.mu.Lock()
	t.closed = true
	for _, o := range t.byKey {
		o.stop()
	}
	t.mu.Unlock()
	t.runs.Wait()
}
