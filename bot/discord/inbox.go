package discord

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/bwmarrin/discordgo"

	"github.com/accessbot/accessbot/access"
	"github.com/accessbot/accessbot/handlers"
)

// Durable intake. On Discord the first response (the deferred type 5) is
// the acknowledgement, and Discord never redelivers an interaction, so
// with a store that has the access.Inbox capability the work of an
// interaction is written to the inbox (one write, which also de-duplicates
// its id) before that response and handled from there: this replica holds
// it under a short lease, renewed while it waits in a queue and while it
// is handled, and removes it when done. When the replica dies, another one
// takes the entry after the lease lapsed, handles it with the same code
// and answers by editing the original response through the interaction's
// webhook (its token is valid for 15 minutes from the interaction). A
// re-handled entry relies on the engine's transitions (a second decision
// by the same approver, an overlapping request are refused), so an action
// applies once; and an edit replaces an earlier answer, so the person sees
// one.
//
// Interactions answered by their first response alone (refusals, modals,
// autocomplete, "Add a reason") have nothing to lose and are only
// de-duplicated. The entry holds what the work needs, not the raw
// payload: the ids and token of the interaction and the parsed command,
// click or form.

// DefaultInboxLease is Config.InboxLease when unset.
const DefaultInboxLease = 10 * time.Second

const (
	// inboxWriteTimeout bounds the inbox write before the first response
	// (Discord allows 3 s for it).
	inboxWriteTimeout = time.Second
	// tokenTTL is how long an interaction's webhook token answers, with a
	// margin for the clocks of Discord and the replicas.
	tokenTTL = 15*time.Minute - 30*time.Second
)

// entryID is the inbox entry (and de-duplication) id of an interaction.
func entryID(interactionID string) string { return "discord:interaction:" + interactionID }

// stored is an inbox entry's payload.
type stored struct {
	ID      string              `json:"id"`
	AppID   string              `json:"app_id"`
	Token   string              `json:"token"`
	GuildID string              `json:"guild_id,omitempty"`
	Channel string              `json:"channel_id,omitempty"`
	User    string              `json:"user"`
	Text    string              `json:"text,omitempty"`
	Action  *handlers.Action    `json:"action,omitempty"`
	Form    *handlers.FormInput `json:"form,omitempty"`
	NoteAdd bool                `json:"note_add,omitempty"`
}

func encodeJob(j job) ([]byte, error) {
	return json.Marshal(stored{ID: j.i.ID, AppID: j.i.AppID, Token: j.i.Token, GuildID: j.i.GuildID, Channel: j.i.ChannelID,
		User: j.user, Text: j.text, Action: j.action, Form: j.form, NoteAdd: j.noteAdd})
}

func decodeEntry(e access.InboxEntry) (job, error) {
	j := job{entry: e.ID, received: e.Received, takenOver: true}
	if e.Platform != platform {
		return j, fmt.Errorf("entry of platform %q", e.Platform)
	}
	var s stored
	if err := json.Unmarshal(e.Payload, &s); err != nil {
		return j, fmt.Errorf("decode entry: %w", err)
	}
	if s.ID == "" || s.Token == "" || s.AppID == "" {
		return j, fmt.Errorf("entry without interaction id, token or application id")
	}
	j.i = &discordgo.Interaction{ID: s.ID, AppID: s.AppID, Token: s.Token, GuildID: s.GuildID, ChannelID: s.Channel}
	j.user, j.text, j.action, j.form, j.noteAdd = s.User, s.Text, s.Action, s.Form, s.NoteAdd
	return j, nil
}

// admit makes j durable (or, without an inbox, records its id) before its
// first response. It returns false when j must not be worked on: a
// duplicate, or an inbox write that failed, in which case the person is
// told to try again and nothing is done.
func (b *Bot) admit(ctx context.Context, log *slog.Logger, j *job) bool {
	if b.inbox == nil {
		return !b.duplicate(ctx, j.i.ID)
	}
	raw, err := encodeJob(*j)
	if err != nil {
		log.ErrorContext(ctx, "discord interaction not encodable", "err", err)
		b.respond(ctx, log, j.i, ephemeral(handlers.Message{Text: textFailed}))
		return false
	}
	id := entryID(j.i.ID)
	start := time.Now()
	wctx, cancel := context.WithTimeout(ctx, inboxWriteTimeout)
	added, err := b.inbox.InboxPut(wctx, access.InboxEntry{ID: id, Platform: platform, Payload: raw, Received: j.received}, b.owner, b.cfg.InboxLease)
	cancel()
	if err != nil {
		// Discord does not redeliver: say so now rather than acknowledge
		// work that a crash would lose.
		log.ErrorContext(ctx, "discord inbox write failed; interaction refused", "event_id", id,
			"inbox_ms", time.Since(start).Milliseconds(), "err", err)
		b.respond(ctx, log, j.i, ephemeral(handlers.Message{Text: textRetry}))
		return false
	}
	if !added {
		log.InfoContext(ctx, "discord duplicate interaction dropped", "event_id", id)
		return false
	}
	b.held.Add(id)
	j.entry = id
	log.DebugContext(ctx, "discord interaction stored", "event_id", id, "inbox_us", time.Since(start).Microseconds())
	return true
}

// warmConns is how many store connections warm opens at start.
const warmConns = 32

// warm opens store connections before the first interaction arrives: a
// burst right after start would otherwise wait for each connection to be
// dialled before its inbox write. It asks for the lease of an entry that
// does not exist, warmConns times at once; nothing is written.
func (b *Bot) warm(ctx context.Context) {
	start := time.Now()
	var wg sync.WaitGroup
	for range warmConns {
		wg.Go(func() {
			wctx, cancel := context.WithTimeout(ctx, inboxWriteTimeout)
			defer cancel()
			_ = b.inbox.InboxRenew(wctx, "discord:warm-up", b.owner, time.Second)
		})
	}
	wg.Wait()
	b.log.DebugContext(ctx, "discord inbox connections warmed", "ms", time.Since(start).Milliseconds())
}

// finish ends j's inbox entry after its work.
func (b *Bot) finish(ctx context.Context, j job) {
	if j.entry != "" {
		b.keeper.Done(ctx, j.entry, dedupTTL)
	}
}

// takeOver queues the work of an entry whose replica stopped handling it.
func (b *Bot) takeOver(ctx context.Context, jobs *lanes, e access.InboxEntry) {
	j, err := decodeEntry(e)
	log := b.log.With("event_id", e.ID, "attempts", e.Attempts, "age_ms", time.Since(e.Received).Milliseconds())
	if err != nil {
		log.ErrorContext(ctx, "discord inbox entry unreadable; dropped", "err", err)
		b.finish(ctx, j)
		return
	}
	log.WarnContext(ctx, "discord interaction taken over from a replica that stopped handling it", "interaction_id", j.i.ID)
	q := jobs.bulk
	if j.urgent() {
		q = jobs.urgent
	}
	select {
	case q <- j:
	case <-ctx.Done():
		b.held.Drop(j.entry) // left to its lease
	}
}

// answerable reports whether the interaction's webhook still takes the
// answer (its token lives 15 minutes).
func (j job) answerable() bool {
	return j.received.IsZero() || time.Since(j.received) < tokenTTL
}
