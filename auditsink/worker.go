package auditsink

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/accessbot/accessbot/access"
)

// Sink takes a batch of audit events, in write order. Deliver returns nil
// only when the sink has them all; otherwise the batch is offered again.
type Sink interface {
	Deliver(ctx context.Context, evs []access.AuditEvent) error
}

// Store is what a Worker needs of the store: the audit log in write order
// and the cursors. store/bolt and store/redis have both.
type Store interface {
	access.AuditStream
	access.AuditCursors
}

// Observer is told how delivery goes (metrics implements it).
type Observer interface {
	Delivered(sink string, n int)
	Failed(sink string)
	// Lag is the age of the oldest event not yet delivered (0 when none).
	Lag(sink string, d time.Duration)
}

// Worker delivers the audit log to one sink.
type Worker struct {
	Name  string
	Sink  Sink
	Store Store
	// Fencer makes one replica at a time the sink's deliverer; nil
	// delivers without a claim (one replica only).
	Fencer   access.Fencer
	Owner    string
	Clock    access.Clock // nil: the system clock
	Observer Observer     // nil: none
	Log      *slog.Logger // nil: discard

	Batch      int           // events per delivery (default 100)
	Poll       time.Duration // wait when caught up (default 2s)
	LeaseTTL   time.Duration // the claim's TTL (default 1m)
	MaxBackoff time.Duration // cap of the wait after failures (default 5m)

	failures int
}

func (w *Worker) batch() int {
	if w.Batch > 0 {
		return w.Batch
	}
	return 100
}

func (w *Worker) now() time.Time {
	if w.Clock != nil {
		return w.Clock.Now()
	}
	return time.Now()
}

// Step delivers the next batch after the sink's cursor, if there is one,
// and moves the cursor past it once the sink took it. It returns how many
// events were delivered. Under a fence (the worker's claim) the cursor
// moves only while the claim holds: a deliverer that lost its claim cannot
// move the cursor of the one that took over.
func (w *Worker) Step(ctx context.Context) (int, error) {
	cur, err := w.Store.AuditCursor(ctx, w.Name)
	if err != nil {
		return 0, fmt.Errorf("audit sink %s: read cursor: %w", w.Name, err)
	}
	evs, err := w.Store.AuditAfter(ctx, cur, w.batch())
	if err != nil {
		return 0, fmt.Errorf("audit sink %s: read events after %q: %w", w.Name, cur, err)
	}
	if len(evs) == 0 {
		w.lag(0)
		return 0, nil
	}
	if err := w.Sink.Deliver(ctx, evs); err != nil {
		w.lag(w.now().Sub(evs[0].At))
		if w.Observer != nil {
			w.Observer.Failed(w.Name)
		}
		return 0, fmt.Errorf("audit sink %s: deliver %d event(s) from %s: %w", w.Name, len(evs), evs[0].ID, err)
	}
	last := evs[len(evs)-1].ID
	if err := w.Store.SetAuditCursor(ctx, w.Name, last); err != nil {
		return 0, fmt.Errorf("audit sink %s: move cursor to %s: %w", w.Name, last, err)
	}
	if w.Observer != nil {
		w.Observer.Delivered(w.Name, len(evs))
	}
	lag := time.Duration(0)
	if len(evs) == w.batch() {
		if next, err := w.Store.AuditAfter(ctx, last, 1); err == nil && len(next) > 0 {
			lag = w.now().Sub(next[0].At)
		}
	}
	w.lag(lag)
	return len(evs), nil
}

func (w *Worker) lag(d time.Duration) {
	if w.Observer != nil {
		w.Observer.Lag(w.Name, max(d, 0))
	}
}

// Backoff is the wait after the n-th failure in a row (n >= 1): 1s,
// doubling, capped at limit.
func Backoff(n int, limit time.Duration) time.Duration {
	d := time.Second
	for i := 1; i < n && d < limit; i++ {
		d *= 2
	}
	return min(d, limit)
}

// claimKey is the claim of the sink's deliverer.
func (w *Worker) claimKey() string { return "audit-sink:" + w.Name }

// Run delivers until ctx ends: while it holds the sink's claim it steps
// at once while there is a backlog, every Poll when caught up, and after
// a failure waits Backoff; without the claim (another replica delivers)
// it tries to take it every Poll. It releases the claim when it returns.
func (w *Worker) Run(ctx context.Context) error {
	poll, ttl, maxWait := w.Poll, w.LeaseTTL, w.MaxBackoff
	if poll <= 0 {
		poll = 2 * time.Second
	}
	if ttl <= 0 {
		ttl = time.Minute
	}
	if maxWait <= 0 {
		maxWait = 5 * time.Minute
	}
	log := w.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	held := false
	defer func() {
		if held && w.Fencer != nil {
			rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
			defer cancel()
			_, _ = w.Fencer.ReleaseFenced(rctx, w.claimKey(), w.Owner)
		}
	}()
	for {
		wait := poll
		sctx := ctx
		ok := true
		if w.Fencer != nil {
			lease, got, err := w.Fencer.ClaimFenced(ctx, w.claimKey(), w.Owner, ttl)
			if err != nil && ctx.Err() == nil {
				log.WarnContext(ctx, "audit sink: claim", "sink", w.Name, "err", err)
			}
			ok, held = got && err == nil, got && err == nil
			sctx = access.WithFence(ctx, lease.Fence(w.claimKey()))
		}
		if !ok {
			// Another replica delivers and reports the lag; a stale value
			// here would hold up the max over replicas.
			w.lag(0)
		}
		if ok {
			n, err := w.Step(sctx)
			switch {
			case err != nil && ctx.Err() == nil:
				w.failures++
				wait = Backoff(w.failures, maxWait)
				if errors.Is(err, access.ErrFenced) {
					wait = poll
				}
				log.WarnContext(ctx, "audit sink: delivery failed; retrying", "sink", w.Name, "failures", w.failures, "retry_in", wait.String(), "err", err)
			case err == nil:
				w.failures = 0
				if n == w.batch() {
					wait = 0
				}
			}
		}
		if wait > 0 {
			t := time.NewTimer(wait)
			select {
			case <-ctx.Done():
				t.Stop()
				return nil
			case <-t.C:
			}
		} else if ctx.Err() != nil {
			return nil
		}
	}
}
