// Package inboxlease is the part of durable chat intake that the
// transports share: which inbox entries this replica holds, the loop that
// renews their leases, and the loop that takes over entries whose holder
// stopped renewing (its replica died). What an entry holds and how it is
// handled and answered stays in each transport.
package inboxlease

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/accessbot/accessbot/access"
)

const (
	// renewers renew leases at once (a bolt store shares one fsync among
	// concurrent writes).
	renewers = 16
	// takeBatch is how many lapsed entries one poll takes at most.
	takeBatch = 8
	// MaxAttempts is how often an entry is taken over before it is given
	// up (an event that kills every replica handling it).
	MaxAttempts = 3
)

// Owner names this replica in inbox leases: host, pid and a random part,
// so two processes never share a name. fallback stands in for an unknown
// host name.
func Owner(fallback string) string {
	host, _ := os.Hostname()
	if host == "" {
		host = fallback
	}
	var r [4]byte
	_, _ = rand.Read(r[:])
	return fmt.Sprintf("%s-%d-%s", host, os.Getpid(), hex.EncodeToString(r[:]))
}

type held struct {
	cancel context.CancelFunc // of its handling, once started
	lost   bool               // another replica took it
}

// Held is the set of entries this replica holds. The zero value is ready
// for use; it is safe for concurrent use.
type Held struct {
	mu sync.Mutex
	m  map[string]*held
}

// Add records id as held; false when it already is (and not lost).
func (h *Held) Add(id string) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.m == nil {
		h.m = map[string]*held{}
	}
	if e, ok := h.m[id]; ok && !e.lost {
		return false
	}
	h.m[id] = &held{}
	return true
}

// Start registers the cancel of id's handling; false when id was lost or
// is not held.
func (h *Held) Start(id string, cancel context.CancelFunc) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	e, ok := h.m[id]
	if !ok || e.lost {
		return false
	}
	e.cancel = cancel
	return true
}

// Lose marks id lost and cancels its handling; false when id is no longer
// held here (its handling just ended).
func (h *Held) Lose(id string) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	e, ok := h.m[id]
	if !ok {
		return false
	}
	e.lost = true
	if e.cancel != nil {
		e.cancel()
	}
	return true
}

// Lost reports whether id was taken by another replica while held here.
func (h *Held) Lost(id string) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	e, ok := h.m[id]
	return ok && e.lost
}

// Drop forgets id.
func (h *Held) Drop(id string) {
	h.mu.Lock()
	delete(h.m, id)
	h.mu.Unlock()
}

// IDs returns the entries held and not lost.
func (h *Held) IDs() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	out := make([]string, 0, len(h.m))
	for id, e := range h.m {
		if !e.lost {
			out = append(out, id)
		}
	}
	return out
}

// Keeper keeps the leases of one transport's entries and takes over
// lapsed ones. Platform names the transport in log lines.
type Keeper struct {
	Inbox    access.Inbox
	Owner    string
	Lease    time.Duration
	Held     *Held
	Log      *slog.Logger
	Platform string
}

// Renew renews the leases of the held entries every third of the lease
// until ctx ends. An entry found taken by another replica has its
// handling cancelled.
func (k *Keeper) Renew(ctx context.Context) {
	t := time.NewTicker(k.Lease / 3)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		var g errgroup.Group
		g.SetLimit(renewers)
		for _, id := range k.Held.IDs() {
			g.Go(func() error {
				k.renew(ctx, id)
				return nil
			})
		}
		_ = g.Wait()
	}
}

func (k *Keeper) renew(ctx context.Context, id string) {
	err := k.Inbox.InboxRenew(ctx, id, k.Owner, k.Lease)
	switch {
	case err == nil:
	case errors.Is(err, access.ErrInboxNotHeld):
		if k.Held.Lose(id) {
			k.Log.WarnContext(ctx, k.Platform+" event lease lost; another replica handles it", "event_id", id)
		}
	case ctx.Err() != nil:
	default:
		k.Log.WarnContext(ctx, k.Platform+" event lease not renewed", "event_id", id, "err", err)
	}
}

// TakeOver polls the inbox every half lease until ctx ends for entries
// whose holder stopped renewing. Each one taken is added to Held and
// given to handle, or, when it was taken over MaxAttempts times already,
// logged and ended with Done.
func (k *Keeper) TakeOver(ctx context.Context, remember time.Duration, handle func(context.Context, access.InboxEntry)) {
	t := time.NewTicker(k.Lease / 2)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		es, err := k.Inbox.InboxTake(ctx, k.Owner, takeBatch, k.Lease)
		if err != nil {
			if ctx.Err() == nil {
				k.Log.WarnContext(ctx, k.Platform+" inbox poll failed", "err", err)
			}
			continue
		}
		for _, e := range es {
			if !k.Held.Add(e.ID) {
				continue // still handled here; renewals had failed for a while
			}
			if e.Attempts > MaxAttempts {
				k.Log.ErrorContext(ctx, k.Platform+" event given up after its handlers kept stopping", "event_id", e.ID, "attempts", e.Attempts)
				k.Done(ctx, e.ID, remember)
				continue
			}
			handle(ctx, e)
		}
	}
}

// Done ends the entry id after its handling and forgets it. After ctx
// ended (the transport is stopping) the entry is left to its lease: the
// handling may have been cut short.
func (k *Keeper) Done(ctx context.Context, id string, remember time.Duration) {
	k.Held.Drop(id)
	if ctx.Err() != nil {
		return
	}
	dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	err := k.Inbox.InboxDone(dctx, id, k.Owner, remember)
	switch {
	case errors.Is(err, access.ErrInboxNotHeld):
		k.Log.WarnContext(ctx, k.Platform+" event was taken over by another replica while handled here", "event_id", id)
	case err != nil:
		k.Log.WarnContext(ctx, k.Platform+" inbox entry not removed; another replica may handle it again", "event_id", id, "err", err)
	}
}
