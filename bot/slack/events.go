package slack

import (
	"context"
	"log/slog"
	"strings"
	"time"

	goslack "github.com/slack-go/slack"
	"github.com/slack-go/slack/socketmode"

	"github.com/accessbot/accessbot/handlers"
)

// replyTimeout bounds the answer to a person (and the apology sent after
// an event ran out of time). It is a deadline of its own, detached from the
// event's: a handler that used up the event's time still gets its answer
// out.
const replyTimeout = 10 * time.Second

// replyTo says where a person's ephemeral answer goes.
type replyTo struct {
	channel     string
	user        string
	responseURL string
}

// onCommand handles /access. The envelope is already acknowledged.
func (b *Bot) onCommand(ctx context.Context, h Handler, j job) {
	c := j.cmd
	to := replyTo{channel: c.ChannelID, user: c.UserID, responseURL: c.ResponseURL}
	log := b.log.With("envelope_id", j.req.EnvelopeID, "user", c.UserID, "team", c.TeamID)
	if !b.teamAllowed(c.TeamID) {
		log.WarnContext(ctx, "slack command from a team not allowed")
		b.reply(ctx, to, handlers.Message{Text: textTeamRefused})
		return
	}
	if b.duplicate(ctx, j, "cmd:"+c.TriggerID) {
		return
	}
	reply := h.Command(ctx, handlers.Command{User: c.UserID, Team: c.TeamID, Text: strings.TrimSpace(c.Text)})
	if reply.Form != nil {
		b.openForm(ctx, c.TriggerID, j.received, *reply.Form, to, log)
		return
	}
	b.reply(ctx, to, reply.Message)
}

// openForm opens the request modal. The trigger is valid for 3 s from when
// Slack sent it, and once.
func (b *Bot) openForm(ctx context.Context, trigger string, received time.Time, f handlers.Form, to replyTo, log *slog.Logger) {
	if time.Since(received) >= triggerTTL {
		// Taken over from a replica that died, or queued too long.
		log.WarnContext(ctx, "slack trigger expired before the form could open", "since_trigger_ms", time.Since(received).Milliseconds())
		b.reply(ctx, to, handlers.Message{Text: textFormExpired})
		return
	}
	view := requestModal(f, modalMeta{Channel: to.channel, ResponseURL: to.responseURL})
	err := b.callAPI(ctx, "views.open", func(ctx context.Context) error {
		_, err := b.api.OpenViewContext(ctx, trigger, view)
		return err
	})
	if err == nil {
		log.InfoContext(ctx, "slack form opened", "since_trigger_ms", time.Since(received).Milliseconds())
		return
	}
	log.WarnContext(ctx, "slack views.open failed", "err", err, "since_trigger_ms", time.Since(received).Milliseconds())
	if isSlackError(err, "expired_trigger_id", "invalid_trigger_id") {
		b.reply(ctx, to, handlers.Message{Text: textFormExpired})
		return
	}
	b.reply(ctx, to, handlers.Message{Text: textFailed})
}

// openAsk opens the modal of an Ask and reports whether it opened; when it
// did not (the trigger expired), the caller answers with the Ask's message,
// which says how to type the answer instead.
func (b *Bot) openAsk(ctx context.Context, trigger string, received time.Time, a handlers.Ask, to replyTo, log *slog.Logger) bool {
	if time.Since(received) >= triggerTTL {
		return false
	}
	meta := modalMeta{Channel: to.channel, ResponseURL: to.responseURL, RequestID: a.RequestID, Action: a.Action}
	err := b.callAPI(ctx, "views.open", func(ctx context.Context) error {
		_, err := b.api.OpenViewContext(ctx, trigger, askModal(a, meta))
		return err
	})
	if err != nil {
		log.WarnContext(ctx, "slack views.open failed", "err", err, "since_trigger_ms", time.Since(received).Milliseconds())
		return false
	}
	log.InfoContext(ctx, "slack ask form opened", "since_trigger_ms", time.Since(received).Milliseconds())
	return true
}

// knownAction reports whether id is a button action of the handlers.
func knownAction(id string) bool {
	switch id {
	case handlers.ActionApprove, handlers.ActionDeny, handlers.ActionRevoke, handlers.ActionCancel, handlers.ActionAck,
		handlers.ActionAddReason:
		return true
	}
	return false
}

// onBlockActions handles button presses. Only the payload's user and team
// ids are passed on, never text from the message. The envelope is already
// acknowledged.
func (b *Bot) onBlockActions(ctx context.Context, h Handler, j job) {
	cb := j.cb
	channel := cb.Container.ChannelID
	if channel == "" {
		channel = cb.Channel.ID
	}
	team := teamOf(cb)
	to := replyTo{channel: channel, user: cb.User.ID, responseURL: cb.ResponseURL}
	log := b.log.With("envelope_id", j.req.EnvelopeID, "user", cb.User.ID, "team", team)
	if !b.teamAllowed(cb.Team.ID, cb.User.TeamID) {
		log.WarnContext(ctx, "slack click from a team not allowed", "user_team", cb.User.TeamID)
		b.reply(ctx, to, handlers.Message{Text: textTeamRefused})
		return
	}
	for _, a := range cb.ActionCallback.BlockActions {
		if a == nil || !knownAction(a.ActionID) {
			continue
		}
		if b.duplicate(ctx, j, actionKey(cb, a)) {
			return
		}
		log := log.With("action", a.ActionID, "request_id", a.Value)
		// Every button acts at once, Deny included: a reason for a denial
		// comes afterwards (Add a reason), so a dismissed form can never
		// leave a request pending that its approver meant to deny.
		reply := h.Action(ctx, handlers.Action{User: cb.User.ID, Team: team, Action: a.ActionID, RequestID: a.Value})
		if reply.Form != nil && cb.TriggerID != "" {
			b.openForm(ctx, cb.TriggerID, j.received, *reply.Form, to, log)
			continue
		}
		if reply.Ask != nil && cb.TriggerID != "" && b.openAsk(ctx, cb.TriggerID, j.received, *reply.Ask, to, log) {
			continue
		}
		b.reply(ctx, to, reply.Message)
	}
	if fromHome(cb) {
		// Show the person the outcome where they clicked, also when the
		// click changed nothing (already decided, already ended).
		b.refreshUser(cb.User.ID)
	}
}

// teamOf picks the workspace of an interaction: the payload's team, else
// the clicking user's team.
func teamOf(cb *goslack.InteractionCallback) string {
	if cb.Team.ID != "" {
		return cb.Team.ID
	}
	return cb.User.TeamID
}

// onViewSubmission handles the request and Ask modals (and deny modals
// opened by earlier versions). It acknowledges itself: with the form errors
// when there are any (the modal stays open), else plainly (the modal
// closes).
func (b *Bot) onViewSubmission(ctx context.Context, sm *socketmode.Client, h Handler, j job) {
	cb := j.cb
	team := teamOf(cb)
	meta := decodeMeta(cb.View.PrivateMetadata)
	to := replyTo{channel: meta.Channel, user: cb.User.ID, responseURL: meta.ResponseURL}
	log := b.log.With("envelope_id", j.req.EnvelopeID, "user", cb.User.ID, "team", team, "callback_id", cb.View.CallbackID)
	if !b.teamAllowed(cb.Team.ID, cb.User.TeamID) {
		log.WarnContext(ctx, "slack form from a team not allowed")
		b.ack(ctx, sm, j.req.EnvelopeID, formErrorsAck(handlers.FormErrors{handlers.FieldRole: textTeamRefused}))
		return
	}
	if b.duplicate(ctx, j, "view:"+cb.TriggerID) {
		b.ack(ctx, sm, j.req.EnvelopeID, nil)
		return
	}
	switch cb.View.CallbackID {
	case callbackRequest:
		b.submitRequest(ctx, sm, h, j, to, team, log)
	case callbackAsk:
		b.ack(ctx, sm, j.req.EnvelopeID, nil)
		if meta.Action != handlers.ActionAddReason {
			log.WarnContext(ctx, "slack ask form for an unknown action ignored", "action", meta.Action)
			return
		}
		text := strings.TrimSpace(stateValue(cb.View.State, blockAskText, actionAskText))
		reply := h.Action(ctx, handlers.Action{User: cb.User.ID, Team: team, Action: meta.Action, RequestID: meta.RequestID, Reason: text})
		b.reply(ctx, to, reply.Message)
	case callbackDeny:
		b.ack(ctx, sm, j.req.EnvelopeID, nil)
		reason := strings.TrimSpace(stateValue(cb.View.State, blockDenyReason, actionDenyReason))
		reply := h.Action(ctx, handlers.Action{User: cb.User.ID, Team: team, Action: handlers.ActionDeny, RequestID: meta.RequestID, Reason: reason})
		b.reply(ctx, to, reply.Message)
	default:
		b.ack(ctx, sm, j.req.EnvelopeID, nil)
		log.InfoContext(ctx, "slack submission of an unknown view ignored")
	}
}

type submitResult struct {
	reply handlers.Reply
	errs  handlers.FormErrors
}

func (b *Bot) submitRequest(ctx context.Context, sm *socketmode.Client, h Handler, j job, to replyTo, team string, log *slog.Logger) {
	st := j.cb.View.State
	in := handlers.FormInput{
		User:     j.cb.User.ID,
		Team:     team,
		Role:     stateValue(st, handlers.FieldRole, handlers.FieldRole),
		Duration: strings.TrimSpace(stateValue(st, handlers.FieldDuration, handlers.FieldDuration)),
		Reason:   strings.TrimSpace(stateValue(st, handlers.FieldReason, handlers.FieldReason)),
		Start:    strings.TrimSpace(stateValue(st, handlers.FieldStart, handlers.FieldStart)),
	}
	done := make(chan submitResult, 1)
	go func() {
		defer func() {
			if r := recover(); r != nil {
				done <- submitResult{reply: handlers.Reply{Message: handlers.Message{Text: textFailed}}}
			}
		}()
		reply, errs := h.SubmitForm(ctx, in)
		done <- submitResult{reply, errs}
	}()

	budget := time.NewTimer(max(b.ackBudget-time.Since(j.received), 0))
	defer budget.Stop()
	var res submitResult
	select {
	case res = <-done:
		if len(res.errs) > 0 {
			b.ack(ctx, sm, j.req.EnvelopeID, formErrorsAck(res.errs))
			return
		}
		b.ack(ctx, sm, j.req.EnvelopeID, nil)
	case <-budget.C:
		// Too slow for the modal: close it and answer in the conversation.
		b.ack(ctx, sm, j.req.EnvelopeID, nil)
		log.WarnContext(ctx, "slack form submission slower than the ack window; answering by message")
		select {
		case res = <-done:
		case <-ctx.Done():
			log.WarnContext(ctx, "slack form submission timed out")
			rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), replyTimeout)
			defer cancel()
			b.reply(rctx, to, handlers.Message{Text: textFailed})
			return
		}
		if len(res.errs) > 0 {
			var lines []string
			for _, f := range []string{handlers.FieldRole, handlers.FieldDuration, handlers.FieldReason, handlers.FieldStart} {
				if msg, ok := res.errs[f]; ok {
					lines = append(lines, f+": "+msg)
				}
			}
			for f, msg := range res.errs {
				if f != handlers.FieldRole && f != handlers.FieldDuration && f != handlers.FieldReason && f != handlers.FieldStart {
					lines = append(lines, msg)
				}
			}
			b.reply(ctx, to, handlers.Message{Title: "Your request was not submitted", Text: strings.Join(lines, "\n")})
			return
		}
	}
	b.reply(ctx, to, res.reply.Message)
}

// stateValue reads a submitted input: a select's chosen value or a text
// input's value.
func stateValue(st *goslack.ViewState, blockID, actionID string) string {
	if st == nil {
		return ""
	}
	a, ok := st.Values[blockID][actionID]
	if !ok {
		return ""
	}
	if a.SelectedOption.Value != "" {
		return a.SelectedOption.Value
	}
	if len(a.SelectedOptions) > 0 { // a multi-select: "prod-admin,db-admin"
		var vals []string
		for _, o := range a.SelectedOptions {
			vals = append(vals, o.Value)
		}
		return strings.Join(vals, ",")
	}
	return a.Value
}

// onBlockSuggestion serves the role multi_external_select from
// Handler.RoleOptions; the options travel in the ack.
func (b *Bot) onBlockSuggestion(ctx context.Context, sm *socketmode.Client, h Handler, j job) {
	cb := j.cb
	resp := goslack.OptionsResponse{Options: []*goslack.OptionBlockObject{}}
	if !b.teamAllowed(cb.Team.ID, cb.User.TeamID) || cb.ActionID != handlers.FieldRole {
		b.ack(ctx, sm, j.req.EnvelopeID, resp)
		return
	}
	actx, cancel := context.WithTimeout(ctx, max(b.ackBudget-time.Since(j.received), 0))
	defer cancel()
	for _, r := range h.RoleOptions(actx, cb.User.ID, cb.Value) {
		if len(resp.Options) == maxStaticOptions {
			break
		}
		resp.Options = append(resp.Options, roleOption(r))
	}
	b.ack(ctx, sm, j.req.EnvelopeID, resp)
}

// reply shows m to one person only: chat.postEphemeral in the channel the
// person used, else through the response_url (works where the bot is not a
// member), else by DM. Empty messages are not sent. Failures are logged.
// The answer has its own short deadline, detached from ctx's: the work
// before it may have used up the event's deadline, and a person who hears
// nothing after a command retries it or assumes it worked.
func (b *Bot) reply(ctx context.Context, to replyTo, m handlers.Message) {
	if isEmpty(m) || to.user == "" {
		return
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), replyTimeout)
	defer cancel()
	if to.channel != "" {
		err := b.callAPI(ctx, "chat.postEphemeral", func(ctx context.Context) error {
			_, err := b.api.PostEphemeralContext(ctx, to.channel, to.user, messageOptions(m)...)
			return err
		})
		if err == nil {
			return
		}
		b.log.WarnContext(ctx, "slack ephemeral failed", "channel", to.channel, "user", to.user, "err", err)
	}
	if to.responseURL != "" {
		opts := append(messageOptions(m), goslack.MsgOptionResponseURL(to.responseURL, goslack.ResponseTypeEphemeral))
		err := b.callAPI(ctx, "response_url", func(ctx context.Context) error {
			_, _, err := b.api.PostMessageContext(ctx, to.channel, opts...)
			return err
		})
		if err == nil {
			return
		}
		b.log.WarnContext(ctx, "slack response_url failed", "user", to.user, "err", err)
	}
	if err := b.dmUser(ctx, to.user, m); err != nil {
		b.log.ErrorContext(ctx, "slack reply lost", "user", to.user, "err", err)
	}
}
