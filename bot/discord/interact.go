package discord

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/bwmarrin/discordgo"

	"github.com/accessbot/accessbot/handlers"
)

// job is an interaction whose first (deferred) response is out; a worker
// does the work and edits the response with the answer.
type job struct {
	i       *discordgo.Interaction
	user    string
	text    string              // a command: "/access <text>"
	action  *handlers.Action    // a button or the Ask modal
	form    *handlers.FormInput // the request modal
	noteAdd bool                // a Deny: the answer offers "Add a reason"

	entry     string    // its inbox entry; "" when none
	received  time.Time // when the first replica received the interaction
	takenOver bool      // from the inbox, after its replica stopped
}

// lanes are the two queues between the gateway and the workers.
type lanes struct {
	bulk   chan job // work that may post a new approval card
	urgent chan job // all other work
}

// urgentCommands are the subcommands that never post a new approval card.
var urgentCommands = map[string]bool{"revoke": true, "cancel": true, "breakglass": true}

// urgent reports whether j cannot post a new approval card: buttons, the
// Ask form, revoke, cancel, break-glass.
func (j job) urgent() bool {
	switch {
	case j.action != nil:
		return true
	case j.form != nil:
		return false
	}
	sub, _, _ := strings.Cut(j.text, " ")
	return urgentCommands[sub]
}

// userID is the acting user: member.user in guilds, user in DMs.
func userID(i *discordgo.Interaction) string {
	if i.Member != nil && i.Member.User != nil {
		return i.Member.User.ID
	}
	if i.User != nil {
		return i.User.ID
	}
	return ""
}

func notLinked(user string) handlers.Message {
	return handlers.Message{Color: "danger", Text: fmt.Sprintf("Your Discord account is not linked to an identity, so accessbot cannot tell who you are; nothing was done. "+
		"Ask an admin to add your user id `%s` with your email under `chat.discord.users` in the accessbot config.", user)}
}

// onInteraction gives every interaction its first response within
// Discord's 3 s: a refusal, a modal, an autocomplete answer, or a deferred
// answer whose work is queued for the workers. Each path records the
// interaction id first (answerNow, or admit for deferred work), so an
// interaction delivered twice is answered once.
func (b *Bot) onInteraction(_ *discordgo.Session, ic *discordgo.InteractionCreate) {
	i := ic.Interaction
	if i == nil {
		return
	}
	ctx, cancel := context.WithTimeout(received(context.Background(), time.Now()), respondTimeout)
	defer cancel()
	user := userID(i)
	log := b.log.With("interaction_id", i.ID, "user", user, "guild", i.GuildID, "type", int(i.Type))
	defer func() {
		if r := recover(); r != nil {
			log.ErrorContext(ctx, "discord interaction panicked", "panic", fmt.Sprint(r))
		}
	}()
	h := b.getHandler()
	if i.GuildID != "" && !b.guilds[i.GuildID] {
		log.WarnContext(ctx, "discord interaction from a guild not allowed")
		b.answerNow(ctx, log, i, ephemeral(handlers.Message{Text: textGuildRefused}))
		return
	}
	_, linked := b.byID[user]
	if i.Type == discordgo.InteractionApplicationCommandAutocomplete {
		b.autocomplete(ctx, log, h, i, user, linked)
		return
	}
	if !linked {
		log.InfoContext(ctx, "discord interaction from a user not linked")
		b.answerNow(ctx, log, i, ephemeral(notLinked(user)))
		return
	}
	if h == nil {
		b.answerNow(ctx, log, i, ephemeral(handlers.Message{Text: textFailed}))
		return
	}
	switch i.Type {
	case discordgo.InteractionApplicationCommand:
		b.onCommand(ctx, log, h, i, user)
	case discordgo.InteractionMessageComponent:
		b.onComponent(ctx, log, h, i, user)
	case discordgo.InteractionModalSubmit:
		b.onModal(ctx, log, i, user)
	default:
		log.DebugContext(ctx, "discord interaction ignored")
	}
}

// answerNow sends a first response that is the whole answer, unless the
// interaction was seen before.
func (b *Bot) answerNow(ctx context.Context, log *slog.Logger, i *discordgo.Interaction, r *discordgo.InteractionResponse) {
	if b.duplicate(ctx, i.ID) {
		return
	}
	b.respond(ctx, log, i, r)
}

// respond sends the first response; Discord accepts one, within 3 s.
func (b *Bot) respond(ctx context.Context, log *slog.Logger, i *discordgo.Interaction, r *discordgo.InteractionResponse) bool {
	if err := b.s.InteractionRespond(i, r, discordgo.WithContext(ctx)); err != nil {
		log.WarnContext(ctx, "discord interaction response failed", "err", err)
		return false
	}
	b.acked(ctx)
	return true
}

// single-word options: a space would let one option spill into the next.
var oneWord = []string{optRole, optDuration, optTarget, optID, optRotation}

func (b *Bot) onCommand(ctx context.Context, log *slog.Logger, h Handler, i *discordgo.Interaction, user string) {
	data := i.ApplicationCommandData()
	if data.Name != "access" || len(data.Options) == 0 {
		b.answerNow(ctx, log, i, ephemeral(handlers.Message{Text: textUnknown}))
		return
	}
	sub := data.Options[0]
	opt := map[string]string{}
	for _, o := range sub.Options {
		if o.Type == discordgo.ApplicationCommandOptionString {
			opt[o.Name] = strings.TrimSpace(o.StringValue())
		}
	}
	for _, k := range oneWord {
		if strings.ContainsAny(opt[k], " \t\r\n") {
			b.answerNow(ctx, log, i, ephemeral(handlers.Message{Color: "danger",
				Text: fmt.Sprintf("`%s` takes one word (like `prod-admin`, `2h` or `r-7k3m9q2x`); nothing was sent.", k)}))
			return
		}
	}
	var text string
	switch sub.Name {
	case "request":
		if opt[optRole] == "" || opt[optDuration] == "" || opt[optReason] == "" {
			f := handlers.Form{Roles: h.RoleOptions(ctx, user, ""), Role: opt[optRole], Duration: opt[optDuration], Reason: opt[optReason]}
			if rh, ok := h.(interface {
				ReasonHint([]handlers.RoleOption, string) string
			}); ok { // the roles' reason_hint, as the reason's placeholder
				f.ReasonHint = rh.ReasonHint(f.Roles, f.Role)
			}
			b.answerNow(ctx, log, i, requestModal(f))
			return
		}
		text = opt[optRole] + " " + opt[optDuration] + " " + opt[optReason]
		if opt[optStart] != "" {
			// Scheduled access: Discord has no profile time zone, so a
			// start without an offset is read in UTC.
			text = opt[optRole] + " " + opt[optDuration] + " at " + opt[optStart] + " " + opt[optReason]
		}
	case "breakglass":
		text = "breakglass " + opt[optRole] + " " + opt[optDuration] + " " + opt[optReason]
	case "list":
		text = "list " + opt[optWhich]
	case "roles", "help":
		text = sub.Name
	case "oncall":
		text = "oncall " + opt[optRotation]
	case "revoke":
		text = "revoke " + opt[optTarget] + " " + opt[optReason]
	case "cancel":
		text = "cancel " + opt[optID]
	case "extend":
		text = "extend " + opt[optID] + " " + opt[optDuration] + " " + opt[optReason]
	default:
		b.answerNow(ctx, log, i, ephemeral(handlers.Message{Text: textUnknown}))
		return
	}
	b.deferWork(ctx, log, job{i: i, user: user, text: strings.TrimSpace(text)})
}

// knownAction reports whether a is a button action of the handlers.
func knownAction(a string) bool {
	switch a {
	case handlers.ActionApprove, handlers.ActionDeny, handlers.ActionRevoke, handlers.ActionCancel, handlers.ActionAck,
		handlers.ActionAddReason:
		return true
	}
	return false
}

// onComponent handles a button. Only the payload's user and guild are
// passed on, never text from the message.
func (b *Bot) onComponent(ctx context.Context, log *slog.Logger, h Handler, i *discordgo.Interaction, user string) {
	action, id, ok := parseCustomID(i.MessageComponentData().CustomID)
	if !ok || !knownAction(action) {
		b.answerNow(ctx, log, i, ephemeral(handlers.Message{Text: textUnknown}))
		return
	}
	log = log.With("action", action, "request_id", id)
	if action == handlers.ActionAddReason {
		// The handler says whether this person may add the reason; a
		// modal cannot follow a deferred response, so this is answered
		// within the first response.
		actx, cancel := context.WithTimeout(ctx, 2*time.Second)
		reply := h.Action(actx, handlers.Action{User: user, Team: i.GuildID, Action: action, RequestID: id})
		cancel()
		if reply.Ask != nil {
			b.answerNow(ctx, log, i, askModal(*reply.Ask))
			return
		}
		b.answerNow(ctx, log, i, ephemeral(reply.Message))
		return
	}
	// Every button acts at once, Deny included; a denial's reason comes
	// afterwards (Add a reason).
	b.deferWork(ctx, log, job{i: i, user: user, action: &handlers.Action{User: user, Team: i.GuildID, Action: action, RequestID: id},
		noteAdd: action == handlers.ActionDeny})
}

func (b *Bot) onModal(ctx context.Context, log *slog.Logger, i *discordgo.Interaction, user string) {
	d := i.ModalSubmitData()
	values := map[string]string{}
	for _, c := range d.Components {
		row, ok := c.(*discordgo.ActionsRow)
		if !ok {
			continue
		}
		for _, rc := range row.Components {
			if ti, ok := rc.(*discordgo.TextInput); ok {
				values[ti.CustomID] = strings.TrimSpace(ti.Value)
			}
		}
	}
	switch {
	case d.CustomID == modalRequest:
		b.deferWork(ctx, log, job{i: i, user: user, form: &handlers.FormInput{User: user, Team: i.GuildID,
			Role: values[handlers.FieldRole], Duration: values[handlers.FieldDuration], Reason: values[handlers.FieldReason]}})
	case strings.HasPrefix(d.CustomID, modalAsk):
		action, id, ok := strings.Cut(strings.TrimPrefix(d.CustomID, modalAsk), ":")
		if !ok || action != handlers.ActionAddReason || id == "" {
			b.answerNow(ctx, log, i, ephemeral(handlers.Message{Text: textUnknown}))
			return
		}
		b.deferWork(ctx, log, job{i: i, user: user, action: &handlers.Action{User: user, Team: i.GuildID, Action: action, RequestID: id, Reason: values[inputAsk]}})
	default:
		b.answerNow(ctx, log, i, ephemeral(handlers.Message{Text: textUnknown}))
	}
}

// autocomplete answers the role option with the policy's roles.
func (b *Bot) autocomplete(ctx context.Context, log *slog.Logger, h Handler, i *discordgo.Interaction, user string, linked bool) {
	choices := []*discordgo.ApplicationCommandOptionChoice{}
	if linked && h != nil {
		typed := ""
		data := i.ApplicationCommandData()
		for _, sub := range data.Options {
			for _, o := range sub.Options {
				if o.Focused {
					typed = fmt.Sprint(o.Value)
				}
			}
		}
		for _, r := range h.RoleOptions(ctx, user, typed) {
			if len(choices) == maxChoices {
				break
			}
			name := r.Name
			if r.Description != "" {
				name += " — " + r.Description
			}
			if r.MaxDuration != "" {
				name += " (up to " + r.MaxDuration + ")"
			}
			choices = append(choices, &discordgo.ApplicationCommandOptionChoice{Name: clip(name, maxChoiceName), Value: r.Name})
		}
	}
	b.answerNow(ctx, log, i, &discordgo.InteractionResponse{Type: discordgo.InteractionApplicationCommandAutocompleteResult,
		Data: &discordgo.InteractionResponseData{Choices: choices}})
}

// deferWork stores the work (admit), acknowledges it with a deferred
// ephemeral response and queues it. When the acknowledgement fails (too
// late, or already given), the work is not done: the person was told the
// interaction failed.
func (b *Bot) deferWork(ctx context.Context, log *slog.Logger, j job) {
	b.mu.RLock()
	ls, stopped := b.lanes, b.stopped
	b.mu.RUnlock()
	if stopped {
		b.answerNow(ctx, log, j.i, ephemeral(handlers.Message{Text: textStopping}))
		return
	}
	if at, ok := ctx.Value(receivedKey{}).(time.Time); ok {
		j.received = at
	}
	if !b.admit(ctx, log, &j) {
		return
	}
	if !b.respond(ctx, log, j.i, deferred()) {
		b.finish(context.WithoutCancel(ctx), j)
		return
	}
	switch {
	case ls == nil:
		b.work(context.Background(), b.getHandler(), j)
		return
	}
	q := ls.bulk
	if j.urgent() {
		q = ls.urgent
	}
	select {
	case q <- j:
		return
	default:
	}
	if !j.urgent() {
		// Waiting would hold a gateway goroutine per request of a flood:
		// refuse the request instead.
		log.WarnContext(ctx, "discord request queue full; request refused")
		b.edit(log, j.i, handlers.Message{Text: textBusy})
		b.finish(context.WithoutCancel(ctx), j)
		return
	}
	log.WarnContext(ctx, "discord worker queue full; waiting")
	t := time.NewTimer(b.cfg.EventTimeout)
	defer t.Stop()
	select {
	case q <- j:
	case <-t.C:
		b.edit(log, j.i, handlers.Message{Text: textBusy})
		b.finish(context.WithoutCancel(ctx), j)
	}
}

// work does one deferred interaction with its own deadline and edits the
// response with the answer, then ends its inbox entry. Losing the entry
// to another replica cancels the work; work cut short by a stop or a lost
// lease is not answered here (the entry's next holder answers).
func (b *Bot) work(ctx context.Context, h Handler, j job) {
	runCtx := ctx
	ctx, cancel := context.WithTimeout(ctx, b.cfg.EventTimeout)
	defer cancel()
	if j.entry != "" {
		if !b.held.Start(j.entry, cancel) {
			b.held.Drop(j.entry)
			return
		}
		defer b.finish(runCtx, j)
	}
	log := b.log.With("interaction_id", j.i.ID, "user", j.user, "guild", j.i.GuildID)
	defer func() {
		if r := recover(); r != nil {
			log.ErrorContext(ctx, "discord interaction work panicked", "panic", fmt.Sprint(r))
			b.edit(log, j.i, handlers.Message{Text: textFailed})
		}
	}()
	var m handlers.Message
	switch {
	case j.form != nil:
		reply, errs := h.SubmitForm(ctx, *j.form)
		if len(errs) > 0 {
			m = formErrors(errs)
			break
		}
		m = reply.Message
	case j.action != nil:
		reply := h.Action(ctx, *j.action)
		m = reply.Message
		if j.noteAdd && reply.Color != "danger" {
			m.Buttons = append(m.Buttons, handlers.Button{Label: "Add a reason", Action: handlers.ActionAddReason, Value: j.action.RequestID})
		}
	default:
		reply := h.Command(ctx, handlers.Command{User: j.user, Team: j.i.GuildID, Text: j.text})
		m = reply.Message
		if reply.Form != nil {
			// A modal can only be a first response, long gone here.
			m = handlers.Message{Text: textFormExpired}
		}
	}
	if m.Text == "" && m.Title == "" && len(m.Fields) == 0 {
		m.Text = "Done."
	}
	if j.entry != "" && (runCtx.Err() != nil || b.held.Lost(j.entry)) {
		log.InfoContext(runCtx, "discord interaction cut short; left to the next holder of its inbox entry", "event_id", j.entry)
		return
	}
	if !j.answerable() {
		log.WarnContext(ctx, "discord answer not sent: the interaction's token expired", "event_id", j.entry,
			"age_ms", time.Since(j.received).Milliseconds())
		return
	}
	if j.takenOver {
		log.InfoContext(ctx, "discord interaction taken over answered through its webhook", "event_id", j.entry,
			"age_ms", time.Since(j.received).Milliseconds())
	}
	b.edit(log, j.i, m)
}

// formErrors names each field of the request form that is wrong.
func formErrors(errs handlers.FormErrors) handlers.Message {
	var lines []string
	for _, f := range []string{handlers.FieldRole, handlers.FieldDuration, handlers.FieldReason} {
		if msg, ok := errs[f]; ok {
			lines = append(lines, "`"+f+"`: "+msg)
		}
	}
	for f, msg := range errs {
		if f != handlers.FieldRole && f != handlers.FieldDuration && f != handlers.FieldReason {
			lines = append(lines, msg)
		}
	}
	return handlers.Message{Title: "Your request was not submitted", Color: "danger", Text: strings.Join(lines, "\n")}
}

// edit replaces the deferred response with m; its own deadline, detached
// from the work's.
func (b *Bot) edit(log *slog.Logger, i *discordgo.Interaction, m handlers.Message) {
	ctx, cancel := context.WithTimeout(context.Background(), replyTimeout)
	defer cancel()
	if _, err := b.s.InteractionResponseEdit(i, webhookEditOf(m), discordgo.WithContext(ctx)); err != nil {
		log.ErrorContext(ctx, "discord answer lost", "err", err)
	}
}
