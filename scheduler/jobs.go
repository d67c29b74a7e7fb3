package scheduler

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/robfig/cron/v3"

	"github.com/accessbot/accessbot/access"
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
// Options.Locker, renews it every third of LockTTL while fn runs, and is
// skipped (logged at debug) when another replica holds it. After a
// scheduled run the lock is kept until shortly before the next tick, so
// replicas whose clocks or timers are a little apart still run each tick
// once between them. fn's ctx is cancelled when Run ends or the lock is
// lost, and carries the lock's fence (access.WithFence): the store refuses
// fn's writes with access.ErrFenced once the lock is no longer held with
// its token, even when this process has not noticed yet (a pause longer
// than the TTL).
//
// AddJob must be called before Run. It fails, naming the job, on an empty
// name, a nil fn, a name already taken, a spec that does not parse or
// never fires, or when there is no Locker.
func (s *Scheduler) AddJob(name, spec string, fn func(ctx context.Context) error) error {
	if name == "" {
		return errors.New("scheduler: add job: empty name")
	}
	if fn == nil {
		return fmt.Errorf("scheduler: add job %q: no function", name)
	}
	if s.opts.Locker == nil {
		return fmt.Errorf("scheduler: add job %q: no Locker, and the due index takes no fenced claims (access.Fencer)", name)
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
	s.lockHeld(j.name, err == nil)
	if err != nil {
		if errors.Is(err, ErrNotObtained) {
			return fmt.Errorf("scheduler: job %q: %w", j.name, ErrNotObtained)
		}
		return fmt.Errorf("scheduler: job %q: take lock: %w", j.name, err)
	}

	jctx, cancel := context.WithCancel(access.WithFence(ctx, lock.Fence()))
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
			s.lockHeld(j.name, false)
			s.log.WarnContext(ctx, "scheduler: keep job lock until next tick", "job", j.name, "err", rerr)
		}
	} else {
		s.lockHeld(j.name, false)
		if rerr := lock.Release(rctx); rerr != nil && !errors.Is(rerr, ErrNotHeld) {
			s.log.WarnContext(ctx, "scheduler: release job lock", "job", j.name, "err", rerr)
		}
	}
	if err != nil {
		return fmt.Errorf("scheduler: job %q: %w", j.name, err)
	}
	return nil
}

// keepLock renews lock every third of ttl on real time until done is
// closed, on the schedule of the service's leases on request work. A
// refused renewal (the lock lapsed or was taken over) loses the lock at
// once; a failing one is retried at the next tick, and loses it once the
// last successful renewal is so old that the lock may lapse before the
// next. Losing the lock cancels the job, since another replica may now run
// it (and the store refuses its writes already).
func (s *Scheduler) keepLock(ctx context.Context, name string, lock Lock, ttl time.Duration, done <-chan struct{}, cancel context.CancelFunc) {
	every := max(ttl/3, time.Millisecond)
	t := time.NewTicker(every)
	defer t.Stop()
	held := time.Now() // the lock lasts at least ttl from here
	for {
		select {
		case <-done:
			return
		case <-ctx.Done():
			return
		case <-t.C:
		}
		sent := time.Now()
		rctx, rcancel := context.WithTimeout(ctx, every)
		err := lock.Refresh(rctx, ttl)
		rcancel()
		switch {
		case err == nil:
			held = sent
			continue
		case ctx.Err() != nil:
			return
		case errors.Is(err, ErrNotObtained):
			s.log.ErrorContext(ctx, "scheduler: job lock lost, cancelling the job", "job", name, "err", err)
		case time.Since(held)+every >= ttl:
			s.log.ErrorContext(ctx, "scheduler: job lock renewal keeps failing, cancelling the job", "job", name,
				"renewed_ago", time.Since(held), "err", err)
		default:
			s.log.WarnContext(ctx, "scheduler: job lock renewal failed; retrying", "job", name, "err", err)
			continue
		}
		s.lockHeld(name, false)
		cancel()
		return
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
