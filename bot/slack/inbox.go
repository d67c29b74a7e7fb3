package slack

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	goslack "github.com/slack-go/slack"
	"github.com/slack-go/slack/socketmode"

	"github.com/accessbot/accessbot/access"
	"github.com/accessbot/accessbot/internal/inboxlease"
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
	// slowAck is the ack delay above which a warning is logged.
	slowAck = 500 * time.Millisecond
	// triggerTTL is how long a trigger_id opens a modal.
	triggerTTL = 3 * time.Second
)

// newOwner names this replica in inbox leases.
func newOwner() string { return inboxlease.Owner(platform) }

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

// holdings are the entries this replica holds (shared with the Discord
// transport: internal/inboxlease); renew keeps their leases.
type holdings struct{ inboxlease.Held }

func (h *holdings) start(id string, cancel context.CancelFunc) bool { return h.Start(id, cancel) }
func (h *holdings) drop(id string)                                  { h.Drop(id) }

// keeper renews and takes over this replica's entries.
func (b *Bot) keeper() *inboxlease.Keeper {
	return &inboxlease.Keeper{Inbox: b.inbox, Owner: b.owner, Lease: b.cfg.InboxLease, Held: &b.held.Held, Log: b.log, Platform: platform}
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
		b.held.Add(j.entry)
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
	b.keeper().Done(ctx, j.entry, dedupTTL)
}

// renewLeases keeps the leases of the entries this replica holds until ctx
// ends. An entry found taken by another replica has its handling
// cancelled.
func (b *Bot) renewLeases(ctx context.Context) { b.keeper().Renew(ctx) }

// takeOver polls the inbox for entries whose holder stopped renewing (its
// replica died) and queues them like new envelopes.
func (b *Bot) takeOver(ctx context.Context, sm *socketmode.Client, jobs lanes) {
	b.keeper().TakeOver(ctx, dedupTTL, func(ctx context.Context, e access.InboxEntry) {
		j, err := decodeEntry(e)
		log := b.log.With("event_id", e.ID, "envelope_id", j.req.EnvelopeID, "attempts", e.Attempts,
			"age_ms", time.Since(e.Received).Milliseconds())
		if err != nil {
			log.ErrorContext(ctx, "slack inbox entry unreadable; dropped", "err", err)
			b.finish(ctx, j)
			return
		}
		log.WarnContext(ctx, "slack event taken over from a replica that stopped handling it")
		b.enqueue(ctx, sm, jobs, j)
	})
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
