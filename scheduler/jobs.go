package scheduler

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/robfig/cron/v3"
)

// ErrUnknownJob is returned by RunJob for a name AddJob never registered.
var ErrUnknownJob = errors.New("unknown job")

// specParser accepts the standard five fields, an optional leading seconds
// field, and descriptors such as "@hourly" and "@every 5m".
var specParser = cron.NewParser(cron.SecondOptional | cron.Minute | cron.Hour |
	cron.Dom | cron.Month | cron.Dow | cron.Descriptor)

type job struct {
	name  string
	spec  string
	sched cron.Schedule
	fn    func(ctx context.Context) error
}

// AddJob registers fn to run on the cron schedule spec (five fields, an
// optional leading seconds field, or a descriptor like "@every 10m"), on
// one replica at a time: each run first takes the lock "job:<name>" from
// Options.Locker, refreshes it while fn runs, and is skipped (logged at
// debug) when another replica holds it. After a scheduled run the lock is
// kept until shortly before the next tick, so replicas whose clocks or
// timers are a little apart still run each tick once between them. fn's
// ctx is cancelled when Run ends or the lock is lost.
//
// AddJob must be called before Run. It fails, naming the job, on an empty
// name, a nil fn, a name already taken, or a spec that does not parse or
// never fires.
func (s *Scheduler) AddJob(name, spec string, fn func(ctx context.Context) error) error {
	if name == "" {
		return errors.New("scheduler: add job: empty name")
	}
	if fn == nil {
		return fmt.Errorf("scheduler: add job %q: no function", name)
	}
	sched, err := specParser.Parse(spec)
	if err != nil {
		return fmt.Errorf("scheduler: job %q: bad schedule %q: %w", name, spec, err)
	}
	if sched.Next(time.Now()).IsZero() {
		return fmt.Errorf("scheduler: job %q: schedule %q never fires", name, spec)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.running {
		return fmt.Errorf("scheduler: add job %q: scheduler already running", name)
	}
	if _, ok := s.jobs[name]; ok {
		return fmt.Errorf("scheduler: add job %q: name already registered", name)
	}
	s.jobs[name] = &job{name: name, spec: spec, sched: sched, fn: fn}
	return nil
}

// RunJob runs the registered job name now, under its lock, and returns
// fn's error (wrapped). It returns ErrUnknownJob for an unregistered name
// and an error wrapping ErrNotObtained when the job is running (or has just
// run on its schedule) elsewhere. Unlike a scheduled run it releases the
// lock as soon as fn returns.
func (s *Scheduler) RunJob(ctx context.Context, name string) error {
	s.mu.Lock()
	j, ok := s.jobs[name]
	s.mu.Unlock()
	if !ok {
		return fmt.Errorf("scheduler: run job %q: %w", name, ErrUnknownJob)
	}
	return s.runJob(ctx, j, time.Time{})
}

// tick is one scheduled run of j.
func (s *Scheduler) tick(ctx context.Context, j *job) {
	if ctx.Err() != nil {
		return
	}
	var hold time.Time
	if next := j.sched.Next(time.Now()); !next.IsZero() {
		if after := j.sched.Next(next); !after.IsZero() {
			margin := min(after.Sub(next)/4, 10*time.Second)
			hold = next.Add(-margin)
		}
	}
	err := s.runJob(ctx, j, hold)
	switch {
	case errors.Is(err, ErrNotObtained):
		s.log.DebugContext(ctx, "scheduler: job skipped, lock held elsewhere", "job", j.name)
	case err != nil:
		if ctx.Err() == nil {
			s.log.ErrorContext(ctx, "scheduler: job failed", "job", j.name, "err", err)
		}
	default:
		s.log.DebugContext(ctx, "scheduler: job done", "job", j.name)
	}
}

// runJob runs j under its lock. When hold is in the future the lock is kept
// until then instead of being released.
func (s *Scheduler) runJob(ctx context.Context, j *job, hold time.Time) error {
	ttl := s.opts.LockTTL
	lock, err := s.opts.Locker.Obtain(ctx, "job:"+j.name, ttl)
	if err != nil {
		if errors.Is(err, ErrNotObtained) {
			return fmt.Errorf("scheduler: job %q: %w", j.name, ErrNotObtained)
		}
		return fmt.Errorf("scheduler: job %q: take lock: %w", j.name, err)
	}

	jctx, cancel := context.WithCancel(ctx)
	defer cancel()
	done := make(chan struct{})
	refreshed := make(chan struct{})
	go func() {
		defer close(refreshed)
		s.keepLock(jctx, j.name, lock, ttl, done, cancel)
	}()
	err = callJob(jctx, j)
	close(done)
	<-refreshed

	// Release even when ctx has ended (shutdown), so another replica can
	// take over at its next tick.
	rctx, rcancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer rcancel()
	if rest := time.Until(hold); ctx.Err() == nil && rest >= 10*time.Millisecond {
		if rerr := lock.Refresh(rctx, rest); rerr != nil {
			s.log.WarnContext(ctx, "scheduler: keep job lock until next tick", "job", j.name, "err", rerr)
		}
	} else if rerr := lock.Release(rctx); rerr != nil && !errors.Is(rerr, ErrNotHeld) {
		s.log.WarnContext(ctx, "scheduler: release job lock", "job", j.name, "err", rerr)
	}
	if err != nil {
		return fmt.Errorf("scheduler: job %q: %w", j.name, err)
	}
	return nil
}

// keepLock refreshes lock every third of ttl until done is closed; when the
// lock is lost it cancels the job, since another replica may now run it.
func (s *Scheduler) keepLock(ctx context.Context, name string, lock Lock, ttl time.Duration, done <-chan struct{}, cancel context.CancelFunc) {
	t := time.NewTicker(max(ttl/3, time.Millisecond))
	defer t.Stop()
	for {
		select {
		case <-done:
			return
		case <-ctx.Done():
			return
		case <-t.C:
			err := lock.Refresh(ctx, ttl)
			if err == nil {
				continue
			}
			if ctx.Err() != nil {
				return
			}
			s.log.ErrorContext(ctx, "scheduler: job lock lost, cancelling the job", "job", name, "err", err)
			cancel()
			return
		}
	}
}

func callJob(ctx context.Context, j *job) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("panic: %v", r)
		}
	}()
	return j.fn(ctx)
}
