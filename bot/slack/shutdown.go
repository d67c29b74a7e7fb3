package slack

import (
	"context"
	"errors"
	"time"

	"github.com/accessbot/accessbot/access"
)

// Graceful stop (Config.ShutdownTimeout > 0). When Run's context ends the
// readers stop at once: the Socket Mode connection closes, so Slack sends
// the next envelopes to the other replicas, and nothing new is
// acknowledged here. The workers go on with what was acknowledged and
// queued, on a context of their own, until the queues are empty or
// ShutdownTimeout has passed; then every inbox entry this replica still
// holds (queued, or cut short at the deadline) is handed back: its lease
// is set to lapse at once, so another replica's next poll takes it rather
// than waiting out the lease.

// handBackLease is the lease a handed-back entry is left with.
const handBackLease = time.Millisecond

// next is a worker's next job. Before stop ends it waits for one (urgent
// first; urgentOnly workers take urgent ones only). After, it takes what
// is queued until the readers are done and the queues are empty. It
// returns false once work ends.
func (b *Bot) next(stop, work context.Context, jobs lanes, urgentOnly bool, readersDone <-chan struct{}) (job, bool) {
	bulk := jobs.bulk
	if urgentOnly {
		bulk = nil
	}
	if work.Err() != nil {
		return job{}, false
	}
	select {
	case j := <-jobs.urgent:
		return j, true
	default:
	}
	select {
	case <-work.Done():
		return job{}, false
	case j := <-jobs.urgent:
		return j, true
	case j := <-bulk:
		return j, true
	case <-stop.Done():
	}
	select {
	case <-work.Done():
		return job{}, false
	case j := <-jobs.urgent:
		return j, true
	case j := <-bulk:
		return j, true
	case <-readersDone:
	}
	select {
	case j := <-jobs.urgent:
		return j, true
	case j := <-bulk:
		return j, true
	default:
		return job{}, false
	}
}

// awaitStop returns once the readers stopped and the workers may be
// stopped: at once without a ShutdownTimeout, else when the workers are
// done or the timeout passed, whichever is first. It calls stopWork.
func (b *Bot) awaitStop(ctx, stop context.Context, stopWork context.CancelFunc, workersDone <-chan struct{}) {
	select {
	case <-stop.Done():
	case <-workersDone:
		return
	}
	timeout := b.cfg.ShutdownTimeout
	if timeout <= 0 {
		stopWork()
		return
	}
	if ctx.Err() != nil {
		b.log.Info("slack stopping: connection closed; finishing the events already acknowledged", "within", timeout.String())
	}
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case <-workersDone:
	case <-t.C:
		b.log.Warn("slack shutdown timeout reached; events still being handled are handed back to the other replicas",
			"timeout", timeout.String())
		stopWork()
	}
}

// graceful reports whether held entries are handed back on a stop.
func (b *Bot) graceful() bool { return b.inbox != nil && b.cfg.ShutdownTimeout > 0 }

// handBack hands every entry still held back to the other replicas.
func (b *Bot) handBack() {
	if !b.graceful() {
		return
	}
	for _, id := range b.held.IDs() {
		b.handBackOne(id)
	}
	b.log.Info("slack stopped", "handed_back", b.handedBack.Load())
}

// handBackOne lets the lease on id lapse at once and forgets it.
func (b *Bot) handBackOne(id string) bool {
	defer b.held.drop(id)
	ctx, cancel := context.WithTimeout(context.Background(), replyTimeout)
	defer cancel()
	err := b.inbox.InboxRenew(ctx, id, b.owner, handBackLease)
	switch {
	case err == nil:
		b.handedBack.Add(1)
		return true
	case errors.Is(err, access.ErrInboxNotHeld):
	default:
		b.log.Warn("slack event not handed back; another replica takes it when its lease lapses", "event_id", id, "err", err)
	}
	return false
}
