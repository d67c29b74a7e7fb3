// Package scheduler is accessbot's expiry engine and job runner.
//
// The domain keeps every request's next deadline in the store's due index.
// The Scheduler arms one timer at the earliest deadline (NextDue), and when
// it fires drains the index: it takes the ids due now in batches and hands
// them to a bounded pool of workers that call Processor.Process. Each call
// runs on its own: Run never waits for one before looking again, so a call
// that hangs until its deadline delays no other item, and an item the
// service reschedules (a retry's backoff) is taken again at its new due
// time even while other calls are still running. Wake re-arms
// the timer when an earlier deadline is stored, and a periodic sweep drains
// as a safety net (a Wake lost to another replica, clock drift, a restart).
// Nothing sleeps until an expiry, so a restart loses nothing: Run drains once
// at start.
//
// Singleton cron jobs (AddJob) run on one replica at a time under a lock
// from a Locker: a StoreLocker, the store's own claims, whichever store
// the process uses. A job's writes carry the lock's fencing token, so a
// replica that lost the lock (paused past its lease) cannot write after
// another took it over.
package scheduler

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/robfig/cron/v3"

	"github.com/accessbot/accessbot/access"
)

// Processor does whatever is due for one request. The workflow service
// implements it: it claims the work itself, and when it must retry later it
// moves the request's due time itself.
type Processor interface {
	Process(ctx context.Context, id string) error
}

// DueIndex is the part of access.Store the scheduler reads.
type DueIndex interface {
	// Due returns up to limit ids due at or before t, earliest first.
	Due(ctx context.Context, t time.Time, limit int) ([]string, error)
	// NextDue returns the earliest due time, false when nothing is due.
	NextDue(ctx context.Context) (time.Time, bool, error)
}

var (
	_ DueIndex     = access.Store(nil)
	_ access.Waker = (*Scheduler)(nil)
)

// Options tunes a Scheduler. Zero values take the defaults.
type Options struct {
	// Sweep is the interval of the safety-net drain (default 15s). The cron
	// library works in whole seconds: shorter intervals become 1s.
	Sweep time.Duration
	// Workers bounds how many Process calls run at once (default 32).
	Workers int
	// Batch is how many due ids are read from the index at a time (default 1000).
	Batch int
	// ItemTimeout is the deadline of each Process call (default 30s).
	ItemTimeout time.Duration
	// RetryAfter is how long an id whose Process failed is left alone by
	// later drains of this scheduler (default: Sweep). The service normally
	// moves a failed item's due time itself; this only stops a failure that
	// leaves the item due from being retried in a tight loop.
	RetryAfter time.Duration
	// Recheck is how soon the timer looks again when ids a drain has just
	// seen are still due (failed or not moved by Process), since they hide
	// the next due time behind them (default 1s).
	Recheck time.Duration
	// Peek is how often Run looks at the earliest due time in the index
	// while it waits (default 1s): a due time another replica stored (a
	// grant or revocation whose worker died there) is not announced to
	// this scheduler by a Wake, and would otherwise wait for the sweep.
	// One NextDue call per Peek; it re-arms the timer only for an earlier
	// time than the armed one that the last drain did not see.
	Peek time.Duration
	// Locker guards singleton jobs (default: a StoreLocker on the due
	// index when it is an access.Fencer, as both stores are; AddJob fails
	// when there is neither).
	Locker Locker
	// LockTTL is the lifetime of a job lock; it is refreshed every third of
	// it while the job runs (default 10s: a dead leader's job is taken
	// over within seconds, like a request's lease).
	LockTTL time.Duration
	// Hooks are optional observer callbacks (hooks.go).
	Hooks Hooks
}

func (o Options) withDefaults() Options {
	if o.Sweep <= 0 {
		o.Sweep = 15 * time.Second
	}
	if o.Workers <= 0 {
		o.Workers = 32
	}
	if o.Batch <= 0 {
		o.Batch = 1000
	}
	if o.ItemTimeout <= 0 {
		o.ItemTimeout = 30 * time.Second
	}
	if o.RetryAfter <= 0 {
		o.RetryAfter = o.Sweep
	}
	if o.Recheck <= 0 {
		o.Recheck = time.Second
	}
	if o.Peek <= 0 {
		o.Peek = time.Second
	}
	if o.LockTTL <= 0 {
		o.LockTTL = 10 * time.Second
	}
	return o
}

// Scheduler is the expiry engine and the runner of singleton jobs. Create
// it with New; it is safe for concurrent use.
type Scheduler struct {
	idx   DueIndex
	p     Processor
	clock access.Clock
	log   *slog.Logger
	opts  Options

	sem   chan struct{} // worker slots, shared by all drains
	wake  chan struct{} // a Wake is waiting (capacity 1: bursts coalesce)
	sweep chan struct{} // a sweep tick is waiting (capacity 1)
	freed chan struct{} // a worker slot was given back (capacity 1)

	mu       sync.Mutex
	inflight map[string]struct{}  // ids being processed now
	held     map[string]time.Time // failed ids -> not to be retried before
	wakeAt   time.Time            // earliest time asked for by Wake since Run last looked
	running  bool
	jobs     map[string]*job
	shots    shots // one-shot timers (At, at.go)

	onArm func(at time.Time) // tests: told each time Run arms its timer
}

// New returns a Scheduler reading idx and calling p. A nil clock is the
// system clock and a nil log discards. It starts nothing: call Run.
func New(idx DueIndex, p Processor, clock access.Clock, log *slog.Logger, opts Options) *Scheduler {
	if clock == nil {
		clock = access.SystemClock{}
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	opts = opts.withDefaults()
	if f, ok := idx.(access.Fencer); ok && opts.Locker == nil {
		opts.Locker = NewStoreLocker(f, "", log)
	}
	return &Scheduler{
		idx:      idx,
		p:        p,
		clock:    clock,
		log:      log,
		opts:     opts,
		sem:      make(chan struct{}, opts.Workers),
		wake:     make(chan struct{}, 1),
		sweep:    make(chan struct{}, 1),
		freed:    make(chan struct{}, 1),
		inflight: make(map[string]struct{}),
		held:     make(map[string]time.Time),
		jobs:     make(map[string]*job),
	}
}

func (s *Scheduler) check() error {
	if s.idx == nil {
		return errors.New("scheduler: no due index")
	}
	if s.p == nil {
		return errors.New("scheduler: no processor")
	}
	return nil
}

// Wake tells the scheduler that something is due at at (a zero at means
// now). It never blocks and starts no goroutine: bursts are coalesced into
// the earliest time, which Run re-arms its timer for unless that is later
// than the armed one; the timer's duration is computed afresh from the
// clock, so after the clock was set forward a Wake makes Run act at once.
// Calls while Run is not running are remembered for it.
func (s *Scheduler) Wake(at time.Time) {
	if at.IsZero() {
		at = s.clock.Now()
	}
	s.mu.Lock()
	if s.wakeAt.IsZero() || at.Before(s.wakeAt) {
		s.wakeAt = at
	}
	s.mu.Unlock()
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

func (s *Scheduler) takeWake() (time.Time, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	at := s.wakeAt
	s.wakeAt = time.Time{}
	return at, !at.IsZero()
}

// Run drains once at once (grants that expired while the process was down
// are revoked right at start), then waits on the timer armed at the earliest
// due time, on Wake and on the sweep, draining each time, and runs the
// singleton jobs on their schedules. It blocks until ctx ends, waits for the
// drain and the jobs in progress, and then returns nil. Errors of the index
// or of Process are logged, never returned. Run fails at once if the
// scheduler lacks its index or processor or is already running.
func (s *Scheduler) Run(ctx context.Context) error {
	if err := s.check(); err != nil {
		return err
	}
	s.mu.Lock()
	if s.running {
		s.mu.Unlock()
		return errors.New("scheduler: already running")
	}
	s.running = true
	s.openShots()
	jobs := make([]*job, 0, len(s.jobs))
	for _, j := range s.jobs {
		jobs = append(jobs, j)
	}
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		s.running = false
		s.mu.Unlock()
	}()
	// Last out: the handoff runs (At) may call RunJob and Wake.
	defer s.closeShots()

	c := cron.New(cron.WithLogger(cron.DiscardLogger), cron.WithChain())
	c.Schedule(cron.Every(s.opts.Sweep), cron.FuncJob(func() {
		select {
		case s.sweep <- struct{}{}:
		default:
		}
	}))
	for _, j := range jobs {
		c.Schedule(j.sched, cron.FuncJob(func() { s.tick(ctx, j) }))
	}
	c.Start()
	defer func() { <-c.Stop().Done() }()

	timer := time.NewTimer(0)
	timer.Stop()
	defer timer.Stop()
	peek := time.NewTicker(s.opts.Peek)
	defer peek.Stop()
	// Process calls started here run on their own: the loop never waits
	// for them, so one call that hangs until its ItemTimeout delays nothing
	// else. Run waits for them only when it returns.
	var work sync.WaitGroup
	defer work.Wait()
	s.log.DebugContext(ctx, "scheduler started", "sweep", s.opts.Sweep.String(), "workers", s.opts.Workers)
	var p *pass
	for fresh := true; ; {
		if fresh {
			p = s.newPass()
		}
		n, err := s.dispatch(ctx, p, &work, false)
		if ctx.Err() != nil {
			return nil
		}
		s.loopTurned()
		if err != nil {
			s.log.ErrorContext(ctx, "scheduler: drain", "err", err)
		} else if n > 0 {
			s.log.DebugContext(ctx, "scheduler: started due work", "count", n)
		}
		armed, behind := s.nextArm(ctx, p.start, err != nil)
		s.arm(timer, armed)
		for waiting := true; waiting; {
			select {
			case <-ctx.Done():
				return nil
			case <-timer.C:
				waiting, fresh = false, true
			case <-s.sweep:
				waiting, fresh = false, true
			case <-s.freed:
				// A pass that ran out of worker slots goes on where it
				// stopped as soon as one is free.
				if p.starved {
					waiting, fresh = false, false
				} else if behind {
					// The earliest due item was one in flight: what is
					// due behind it is hidden until it moves on, which
					// it may just have done. Look again now rather than
					// at the Recheck.
					waiting, fresh = false, true
				}
			case <-peek.C:
				if at, ok := s.peek(ctx, p.start); ok && (armed.IsZero() || at.Before(armed)) {
					armed = at
					s.arm(timer, armed)
				}
			case <-s.wake:
				// Re-arm for an equal time too: the timer's duration was
				// computed from the clock, which may have been set since.
				// For the same reason an armed time the clock has already
				// passed is re-armed (to fire at once) even when the Wake
				// is for a later time: the timer itself may still be
				// counting down the real time it was given.
				if at, ok := s.takeWake(); ok && (armed.IsZero() || !at.After(armed) || !armed.After(s.clock.Now())) {
					if armed.IsZero() || at.Before(armed) {
						armed = at
					}
					s.arm(timer, armed)
				}
			}
		}
	}
}

// peek returns the earliest due time in the index when the drain that
// started at start has not seen it (it is later than start): stored since,
// possibly by another replica. Errors are left to the next drain.
func (s *Scheduler) peek(ctx context.Context, start time.Time) (time.Time, bool) {
	next, ok, err := s.idx.NextDue(ctx)
	if err != nil || !ok || !next.After(start) {
		return time.Time{}, false
	}
	return next, true
}

// nextArm says when to drain next after a drain that started at start:
// zero when nothing is due at all.
func (s *Scheduler) nextArm(ctx context.Context, start time.Time, failed bool) (at time.Time, behind bool) {
	next, ok, err := s.idx.NextDue(ctx)
	now := s.clock.Now()
	switch {
	case err != nil:
		if ctx.Err() == nil {
			s.log.ErrorContext(ctx, "scheduler: next due", "err", err)
		}
		return now.Add(s.opts.Recheck), false
	case failed:
		return now.Add(s.opts.Recheck), false
	case !ok:
		return time.Time{}, false
	case !next.After(start):
		// The pass saw this one and it is still due: it is being
		// processed, it failed, or its Process left it in place. Do not
		// spin on it; look again soon for anything due behind it, and
		// as soon as a call in flight ends (Run).
		return now.Add(s.opts.Recheck), true
	}
	return next, false
}

// arm sets t to fire at at (at once when at is not after now), or stops it
// when at is zero. Since Go 1.23 Reset and Stop leave no stale tick behind.
func (s *Scheduler) arm(t *time.Timer, at time.Time) {
	if at.IsZero() {
		t.Stop()
	} else {
		t.Reset(max(at.Sub(s.clock.Now()), 0))
	}
	if s.onArm != nil {
		s.onArm(at)
	}
}

// Drain processes everything due at the time it starts and returns how many
// Process calls it made. Ids already being processed by another drain of
// this scheduler are skipped, each id is processed at most once per drain,
// and ids whose Process failed recently (Options.RetryAfter) are left
// alone, so a failure that leaves an item due cannot make it spin. Process
// errors are logged, not returned; the error is the index's (wrapped) or
// ctx's. Drain waits for the Process calls it started before returning
// (Run does not: its calls run on their own).
func (s *Scheduler) Drain(ctx context.Context) (int, error) {
	if err := s.check(); err != nil {
		return 0, err
	}
	var wg sync.WaitGroup
	defer wg.Wait()
	return s.dispatch(ctx, s.newPass(), &wg, true)
}

// pass is one look at what is due at start; Run continues a pass that ran
// out of worker slots when one is given back.
type pass struct {
	start     time.Time
	attempted map[string]struct{} // ids this pass started (each at most once)
	starved   bool                // the last dispatch stopped for want of a slot
}

func (s *Scheduler) newPass() *pass {
	return &pass{start: s.clock.Now(), attempted: make(map[string]struct{})}
}

// dispatch starts a Process call, tracked by wg, for each id due at p.start
// that p has not started yet and that is not in flight or held. With wait
// it waits for a free worker slot; without, it stops at the first id that
// finds none and marks p starved. It never waits for the calls it started.
// It returns how many it started.
func (s *Scheduler) dispatch(ctx context.Context, p *pass, wg *sync.WaitGroup, wait bool) (int, error) {
	p.starved = false
	n := 0
	for {
		if err := ctx.Err(); err != nil {
			return n, err
		}
		// Ask for enough ids that, past the ones to skip, a full batch of
		// new ones fits: otherwise a head of failed items could hide
		// everything behind it.
		limit := len(p.attempted) + s.skippable(p.start) + s.opts.Batch
		ids, err := s.idx.Due(ctx, p.start, limit)
		if err != nil {
			return n, fmt.Errorf("scheduler: due at %s: %w", p.start.Format(time.RFC3339Nano), err)
		}
		fresh := 0
		for _, id := range ids {
			if _, ok := p.attempted[id]; ok {
				continue
			}
			if !s.begin(id, p.start) {
				continue
			}
			if !s.slot(ctx, wait) {
				s.abandon(id)
				if err := ctx.Err(); err != nil {
					return n, err
				}
				p.starved = true
				return n, nil
			}
			p.attempted[id] = struct{}{}
			fresh++
			n++
			wg.Add(1)
			go func() {
				defer wg.Done()
				s.process(ctx, id)
				<-s.sem
				select {
				case s.freed <- struct{}{}:
				default:
				}
			}()
		}
		if fresh == 0 {
			return n, nil
		}
	}
}

// slot takes a worker slot, waiting for one (or for ctx) when wait is set.
func (s *Scheduler) slot(ctx context.Context, wait bool) bool {
	if !wait {
		select {
		case s.sem <- struct{}{}:
			return true
		default:
			return false
		}
	}
	select {
	case s.sem <- struct{}{}:
		return true
	case <-ctx.Done():
		return false
	}
}

// skippable forgets failures held past their time (an id that failed and
// then left the index, done by another replica, is never seen again) and
// returns how many ids the index may return that begin refuses.
func (s *Scheduler) skippable(now time.Time) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	for id, until := range s.held {
		if !now.Before(until) {
			delete(s.held, id)
		}
	}
	return len(s.inflight) + len(s.held)
}

// begin marks id in flight unless it already is or is held after a failure.
func (s *Scheduler) begin(id string, now time.Time) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.inflight[id]; ok {
		return false
	}
	if until, ok := s.held[id]; ok {
		if now.Before(until) {
			return false
		}
		delete(s.held, id)
	}
	s.inflight[id] = struct{}{}
	return true
}

// abandon clears id's in-flight mark for a call that was never started.
func (s *Scheduler) abandon(id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.inflight, id)
}

// end clears id's in-flight mark and holds it for RetryAfter when err is set.
func (s *Scheduler) end(id string, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.inflight, id)
	if err != nil {
		s.held[id] = s.clock.Now().Add(s.opts.RetryAfter)
	} else {
		delete(s.held, id)
	}
}

func (s *Scheduler) process(ctx context.Context, id string) {
	ictx, cancel := context.WithTimeout(ctx, s.opts.ItemTimeout)
	defer cancel()
	err := s.call(ictx, id)
	s.end(id, err)
	if err != nil && ctx.Err() == nil {
		s.log.ErrorContext(ctx, "scheduler: process due request", "request_id", id, "err", err)
	}
}

// call runs Process, turning a panic into an error so one bad request
// cannot take the engine down.
func (s *Scheduler) call(ctx context.Context, id string) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("process %s: panic: %v", id, r)
		}
	}()
	return s.p.Process(ctx, id)
}
