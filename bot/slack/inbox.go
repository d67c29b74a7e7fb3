package slack

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"sync"
	"time"

	goslack "github.com/slack-go/slack"
	"github.com/slack-go/slack/socketmode"
	"golang.org/x/sync/errgroup"

	"github.com/accessbot/accessbot/access"
)

// Durable intake. Slack does not redeliver an envelope once it is
// acknowledged, so with a store that has the access.Inbox capability a
// command or a click is written to the inbox before its ack and handled
// from there: the replica that wrote it holds it under a short lease,
// renewed while the event waits in a queue and while it is handled, and
// removes it when done. When that replica dies, another one takes the
// entry after the lease lapsed and handles it with the same code.
//
// The entry's id is the event's stable id (the one duplicate records), so
// the inbox write also drops a second delivery of the same event. A
// re-handled entry is not checked against duplicate: its first handler may
// have recorded the ids and died before acting. It relies on the engine's
// transitions instead (a decision by the same approver, a request that
// overlaps a pending one, a revocation of an ended grant are refused), so
// an action applies once; the person may then be told it was already done.
//
// view_submission and block_suggestion envelopes are acknowledged after
// they are handled (their ack carries the answer); Slack shows the person
// an error when a replica dies before that, so they need no inbox.

// Defaults and bounds of the inbox.
const (
	DefaultInboxLease = 10 * time.Second
	// inboxWriteTimeout bounds the inbox write before an ack (Slack waits
	// 3 s for the ack).
	inboxWriteTimeout = time.Second
	// intakeWorkers write envelopes to the inbox at once (a bolt store
	// shares one fsync among concurrent writes).
	intakeWorkers = 32
	// renewers renew leases at once.
	renewers = 16
	// takeBatch is how many lapsed entries one poll takes at most.
	takeBatch = 8
	// maxInboxAttempts is how often an entry is taken over before it is
	// given up (an event that kills every replica handling it).
	maxInboxAttempts = 3
	// slowAck is the ack delay above which a warning is logged.
	slowAck = 500 * time.Millisecond
	// triggerTTL is how long a trigger_id opens a modal.
	triggerTTL = 3 * time.Second
)

// newOwner names this replica in inbox leases.
func newOwner() string {
	host, _ := os.Hostname()
	if host == "" {
		host = "slack"
	}
	var r [4]byte
	_, _ = rand.Read(r[:])
	return fmt.Sprintf("%s-%d-%s", host, os.Getpid(), hex.EncodeToString(r[:]))
}

// inboxID is the entry id of a job: the stable id of the command or the
// first button action, else the envelope id.
func inboxID(j job) string {
	switch {
	case j.cmd != nil && j.cmd.TriggerID != "":
		return "slack:cmd:" + j.cmd.TriggerID
	case j.cb != nil && j.cb.Type == goslack.InteractionTypeBlockActions:
		for _, a := range j.cb.ActionCallback.BlockActions {
			if a != nil && knownAction(a.ActionID) {
				return "slack:" + actionKey(j.cb, a)
			}
		}
	}
	return "slack:env:" + j.req.EnvelopeID
}

func actionKey(cb *goslack.InteractionCallback, a *goslack.BlockAction) string {
	return "act:" + a.ActionTs + ":" + cb.User.ID + ":" + a.ActionID + ":" + a.Value
}

// durable reports whether an envelope goes through the inbox.
func (b *Bot) durable(j job) bool {
	if b.inbox == nil {
		return false
	}
	return j.cmd != nil || (j.cb != nil && j.cb.Type == goslack.InteractionTypeBlockActions)
}

// heldEntry is an inbox entry this replica holds.
type heldEntry struct {
	cancel context.CancelFunc // of its handling, once started
	lost   bool               // another replica took it
}

// holdings are the entries this replica holds; renew keeps their leases.
type holdings struct {
	mu sync.Mutex
	m  map[string]*heldEntry
}

// add records id as held; false when it already is (and not lost).
func (h *holdings) add(id string) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.m == nil {
		h.m = map[string]*heldEntry{}
	}
	if e, ok := h.m[id]; ok && !e.lost {
		return false
	}
	h.m[id] = &heldEntry{}
	return true
}

// start registers the cancel of id's handling; false when id was lost.
func (h *holdings) start(id string, cancel context.CancelFunc) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	e, ok := h.m[id]
	if !ok || e.lost {
		return false
	}
	e.cancel = cancel
	return true
}

// lose marks id lost and cancels its handling; false when id is no
// longer held here (its handling just ended).
func (h *holdings) lose(id string) bool {
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

func (h *holdings) drop(id string) {
	h.mu.Lock()
	delete(h.m, id)
	h.mu.Unlock()
}

func (h *holdings) ids() []string {
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

// admit makes an envelope durable, acknowledges it and queues it. When
// the inbox cannot be written the envelope is left unacknowledged: Slack
// then tells the person the command failed (or, for events, retries),
// which is better than acknowledging work that a crash would lose.
func (b *Bot) admit(ctx context.Context, sm *socketmode.Client, jobs lanes, j job) {
	raw, err := json.Marshal(j.req)
	if err != nil {
		b.log.ErrorContext(ctx, "slack envelope not encodable; not acknowledged", "envelope_id", j.req.EnvelopeID, "err", err)
		return
	}
	j.entry = inboxID(j)
	start := time.Now()
	wctx, cancel := context.WithTimeout(ctx, inboxWriteTimeout)
	added, err := b.inbox.InboxPut(wctx, access.InboxEntry{ID: j.entry, Platform: platform, Payload: raw, Received: j.received}, b.owner, b.cfg.InboxLease)
	cancel()
	write := time.Since(start)
	if err != nil && ctx.Err() != nil {
		return // stopping: the envelope stays unacknowledged
	}
	if err != nil {
		b.log.ErrorContext(ctx, "slack inbox write failed; envelope not acknowledged", "envelope_id", j.req.EnvelopeID,
			"event_id", j.entry, "inbox_ms", write.Milliseconds(), "err", err)
		return
	}
	if added {
		b.held.add(j.entry)
	}
	b.ack(ctx, sm, j.req.EnvelopeID, nil)
	ackIn := time.Since(j.received)
	level := b.log.DebugContext
	if ackIn > slowAck {
		level = b.log.WarnContext
	}
	level(ctx, "slack envelope stored and acknowledged", "envelope_id", j.req.EnvelopeID, "event_id", j.entry,
		"inbox_us", write.Microseconds(), "ack_us", ackIn.Microseconds())
	if !added {
		b.log.InfoContext(ctx, "slack duplicate event dropped", "envelope_id", j.req.EnvelopeID,
			"retry_attempt", j.req.RetryAttempt, "event_id", j.entry)
		return
	}
	b.enqueue(ctx, sm, jobs, j)
}

// finish ends the inbox entry of a handled job. After the bot was stopped
// the entry is left to its lease, or handed back on a graceful stop
// (shutdown.go): the handling may have been cut short.
func (b *Bot) finish(ctx context.Context, j job) {
	if j.entry == "" {
		return
	}
	if ctx.Err() != nil && b.graceful() {
		b.handBackOne(j.entry)
		return
	}
	b.held.drop(j.entry)
	if ctx.Err() != nil {
		return
	}
	dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), replyTimeout)
	defer cancel()
	err := b.inbox.InboxDone(dctx, j.entry, b.owner, dedupTTL)
	switch {
	case errors.Is(err, access.ErrInboxNotHeld):
		b.log.WarnContext(ctx, "slack event was taken over by another replica while handled here", "event_id", j.entry)
	case err != nil:
		b.log.WarnContext(ctx, "slack inbox entry not removed; another replica may handle it again", "event_id", j.entry, "err", err)
	}
}

// renewLeases keeps the leases of the entries this replica holds until ctx
// ends. An entry found taken by another replica has its handling
// cancelled.
func (b *Bot) renewLeases(ctx context.Context) {
	t := time.NewTicker(b.cfg.InboxLease / 3)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		// Concurrently: a bolt store shares one fsync among them.
		var g errgroup.Group
		g.SetLimit(renewers)
		for _, id := range b.held.ids() {
			g.Go(func() error {
				b.renew(ctx, id)
				return nil
			})
		}
		_ = g.Wait()
	}
}

func (b *Bot) renew(ctx context.Context, id string) {
	err := b.inbox.InboxRenew(ctx, id, b.owner, b.cfg.InboxLease)
	switch {
	case err == nil:
	case errors.Is(err, access.ErrInboxNotHeld):
		if b.held.lose(id) {
			b.log.WarnContext(ctx, "slack event lease lost; another replica handles it", "event_id", id)
		}
	case ctx.Err() != nil:
	default:
		b.log.WarnContext(ctx, "slack event lease not renewed", "event_id", id, "err", err)
	}
}

// takeOver polls the inbox for entries whose holder stopped renewing (its
// replica died) and queues them like new envelopes.
func (b *Bot) takeOver(ctx context.Context, sm *socketmode.Client, jobs lanes) {
	t := time.NewTicker(b.cfg.InboxLease / 2)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		es, err := b.inbox.InboxTake(ctx, b.owner, takeBatch, b.cfg.InboxLease)
		if err != nil {
			if ctx.Err() == nil {
				b.log.WarnContext(ctx, "slack inbox poll failed", "err", err)
			}
			continue
		}
		for _, e := range es {
			if !b.held.add(e.ID) {
				continue // still handled here; renewals had failed for a while
			}
			j, err := decodeEntry(e)
			log := b.log.With("event_id", e.ID, "envelope_id", j.req.EnvelopeID, "attempts", e.Attempts,
				"age_ms", time.Since(e.Received).Milliseconds())
			switch {
			case err != nil:
				log.ErrorContext(ctx, "slack inbox entry unreadable; dropped", "err", err)
				b.finish(ctx, j)
				continue
			case e.Attempts > maxInboxAttempts:
				log.ErrorContext(ctx, "slack event given up after its handlers kept stopping")
				b.finish(ctx, j)
				continue
			}
			log.WarnContext(ctx, "slack event taken over from a replica that stopped handling it")
			b.enqueue(ctx, sm, jobs, j)
		}
	}
}

// decodeEntry rebuilds a job from a stored envelope, as the socketmode
// client parses it.
func decodeEntry(e access.InboxEntry) (job, error) {
	j := job{entry: e.ID, received: e.Received}
	if e.Platform != platform {
		return j, fmt.Errorf("entry of platform %q", e.Platform)
	}
	if err := json.Unmarshal(e.Payload, &j.req); err != nil {
		return j, fmt.Errorf("decode envelope: %w", err)
	}
	switch j.req.Type {
	case socketmode.RequestTypeSlashCommands:
		var cmd goslack.SlashCommand
		if err := json.Unmarshal(j.req.Payload, &cmd); err != nil {
			return j, fmt.Errorf("decode slash command: %w", err)
		}
		j.cmd = &cmd
	case socketmode.RequestTypeInteractive:
		var cb goslack.InteractionCallback
		if err := json.Unmarshal(j.req.Payload, &cb); err != nil {
			return j, fmt.Errorf("decode interaction: %w", err)
		}
		j.cb = &cb
	default:
		return j, fmt.Errorf("envelope type %q", j.req.Type)
	}
	return j, nil
}
