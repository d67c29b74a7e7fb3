package handlers

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"

	"github.com/accessbot/accessbot/access"
)

var _ access.Notifier = (*Notifier)(nil)

// Message purposes kept in access.MessageRef.Purpose.
const (
	PurposeApproval = "approval" // the approval card (channel or an approver's DM)
	PurposeSecurity = "security" // the break-glass announcement
	PurposeGrant    = "grant"    // the requester's "you have access" DM with its Revoke button
	PurposeAlert    = "alert"    // a revocation alert or its all-clear in the security channel
	PurposeNotice   = "notice"   // any other DM about a request (pending, denied, ended, ...), sent once
	// PurposeReminder: a reminder or escalation note, a reply under an
	// approval card or a DM to an approver (remind.go), sent once.
	PurposeReminder = "reminder"
)

// Notifier renders access events as messages and sends them through a
// chat transport: the approval card (updated at every step), DMs to the
// requester, and announcements in the security channel.
type Notifier struct {
	chat Chat
	log  *slog.Logger
}

// NewNotifier returns a Notifier that talks through chat.
func NewNotifier(chat Chat, log *slog.Logger) *Notifier {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Notifier{chat: chat, log: log}
}

// Notify implements access.Notifier. Every failure is collected and
// returned; the messages that did go out are returned as references, each
// with the purpose it serves, whom it went to and the outbox entry
// (ev.ID) it belongs to. It is safe to repeat for the same entry: a card
// goes out only when the request has none for that target yet (the stored
// reference decides, and later events only update it), and any other
// message only when the request has no reference for that target from
// this entry, so a retry after a partial failure sends only what is
// missing. Updates render the request as it is now. Failures retrying
// cannot fix (no chat account for the identity, no channel configured)
// are wrapped with access.Permanent.
func (n *Notifier) Notify(ctx context.Context, ev access.Event) ([]access.MessageRef, error) {
	defer n.refreshHomes(ev) // home.go: the personal views this change concerns
	r := ev.Request
	var refs []access.MessageRef
	var errs []error
	keep := func(ref access.MessageRef, purpose, who string, err error) {
		if err != nil {
			errs = append(errs, err)
			return
		}
		ref.Purpose, ref.For, ref.Announcement = purpose, who, ev.ID
		if ref.Platform == "" {
			ref.Platform = n.chat.Platform()
		}
		refs = append(refs, ref)
	}
	// sent: this entry's message of purpose to who went out in an earlier try.
	sent := func(purpose, who string) bool {
		return ev.ID != "" && slices.ContainsFunc(r.Messages, func(m access.MessageRef) bool {
			return m.Announcement == ev.ID && m.Purpose == purpose && m.For == who
		})
	}
	// posted: a card of purpose for who exists already (any entry posted it).
	posted := func(purpose, who string) bool {
		return slices.ContainsFunc(r.Messages, func(m access.MessageRef) bool { return m.Purpose == purpose && m.For == who })
	}
	send := func(purpose, who string, m Message) {
		if sent(purpose, who) {
			return
		}
		ref, err := n.chat.DM(ctx, who, m)
		if err != nil {
			err = fmt.Errorf("dm %s: %w", who, err)
			if errors.Is(err, access.ErrNoIdentity) {
				err = access.Permanent(err)
			}
		}
		keep(ref, purpose, who, err)
	}
	dm := func(m Message) { send(PurposeNotice, r.Requester, m) }
	noChannel := func(what string) {
		errs = append(errs, access.Permanent(errors.New("no security channel configured: "+what)))
	}
	ms := bundleOf(ev)
	switch ev.Type {
	case access.EvSubmitted:
		if ms != nil {
			if ms[0].ID == r.ID {
				n.submittedBundle(ctx, ms, send, dm, keep, posted)
			}
			break
		}
		card := Card(r, ev.Role)
		if ch := n.approvalsChannel(ev.Role); ch != "" {
			if !posted(PurposeApproval, "") {
				ref, err := n.chat.Post(ctx, ch, card)
				keep(ref, PurposeApproval, "", err)
			}
		} else {
			for _, a := range r.Approvers {
				if !posted(PurposeApproval, a) {
					send(PurposeApproval, a, card)
				}
			}
		}
		what := "Your request"
		if r.AutoApproved != "" {
			dm(Message{Title: "Request " + r.ID + " was auto-approved", Color: "good",
				Text: fmt.Sprintf("Your request for *%s* (%s) was approved without a click: %s. You will hear when it is active.",
					r.Role, access.FormatDuration(r.Duration), r.AutoApproved)})
			break
		}
		if r.Kind == access.KindExtension {
			what = "Your extension request (+" + access.FormatDuration(r.Duration) + " on " + r.Target + ")"
		}
		if !r.StartsAt.IsZero() {
			what += " to start at " + startText(r)
		}
		dm(Message{Title: "Request " + r.ID + " is waiting for approval",
			Text:    fmt.Sprintf("%s for *%s* (%s) was sent to %s.", what, r.Role, access.FormatDuration(r.Duration), strings.Join(r.Approvers, ", ")),
			Buttons: []Button{{Label: "Cancel", Action: ActionCancel, Value: r.ID}}})
	case access.EvApproval, access.EvFailed, access.EvCancelled, access.EvTimedOut, access.EvDenied,
		access.EvActive, access.EvEnded, access.EvExtended, access.EvDenyReason, access.EvRefresh:
		errs = append(errs, n.updateCards(ctx, ev))
		switch ev.Type {
		case access.EvDenied:
			m := Message{Title: "Request " + r.ID + " was denied", Color: "danger", Text: fmt.Sprintf("*%s*: %s.", r.Role, statusLine(r))}
			dm(m)
		case access.EvDenyReason:
			dm(Message{Title: "Why request " + r.ID + " was denied", Color: "danger", Text: fmt.Sprintf("*%s*: %s.", r.Role, statusLine(r))})
		case access.EvTimedOut:
			dm(Message{Title: "Request " + r.ID + " timed out", Text: fmt.Sprintf("Nobody decided on *%s* in time; nothing was granted. Ask again if you still need it.", r.Role)})
		case access.EvFailed:
			left := "Nothing was left behind."
			if r.Cleanup {
				left = "accessbot keeps making sure the membership is removed."
			}
			dm(Message{Title: "Request " + r.ID + " failed", Color: "danger", Text: fmt.Sprintf("*%s* could not be granted: %s. %s", r.Role, r.Failure, left)})
		case access.EvActive:
			m := Message{Title: "You have " + r.Role + " until " + stamp(r.EndsAt), Color: "good",
				Text:    fmt.Sprintf("Request %s is active (%s). It ends on its own; end it sooner with the button or `/access revoke %s`.", r.ID, approvedLine(r), r.ID),
				Buttons: []Button{{Label: "Revoke now", Action: ActionRevoke, Value: r.ID, Style: "danger"}}}
			send(PurposeGrant, r.Requester, m)
		case access.EvEnded:
			if r.GrantedAt.IsZero() && !r.StartsAt.IsZero() {
				dm(Message{Title: "Your scheduled " + r.Role + " access was revoked", Text: fmt.Sprintf("Request %s: %s.", r.ID, statusLine(r))})
				break
			}
			dm(Message{Title: "Your " + r.Role + " access has ended", Text: fmt.Sprintf("Request %s: %s.", r.ID, statusLine(r))})
		case access.EvExtended:
			dm(Message{Title: "Your " + r.Role + " access was extended", Color: "good", Text: fmt.Sprintf("Request %s now ends at %s.", r.ID, stamp(r.EndsAt))})
		}
	case access.EvReminder, access.EvEscalated:
		if ev.Type == access.EvEscalated {
			errs = append(errs, n.updateCards(ctx, ev))
		}
		n.nudge(ctx, ev, nudgeSend{keep: keep, sent: sent, posted: posted, send: send})
	case access.EvScheduled:
		errs = append(errs, n.updateCards(ctx, ev))
		send(PurposeGrant, r.Requester, scheduledNotice(r))
	case access.EvBreakGlass:
		m := Message{Title: "Break-glass: " + r.Requester + " took " + r.Role, Color: "danger",
			Text: "Granted at once, without approval. Please review and acknowledge.",
			Fields: []Field{{"Who", r.Requester}, {"Role", r.Role + " — " + ev.Role.Description}, {"Why", userText(r.Reason)},
				{"For", access.FormatDuration(r.Duration)}},
			Buttons: []Button{{Label: "Acknowledge", Action: ActionAck, Value: r.ID, Style: "primary"}},
			Footer:  "Request " + r.ID}
		if ch := n.chat.SecurityChannel(); ch == "" {
			noChannel("break-glass use was not announced")
		} else if !posted(PurposeSecurity, "") {
			ref, err := n.chat.Post(ctx, ch, m)
			keep(ref, PurposeSecurity, "", err)
		}
	case access.EvAcked:
		for _, ref := range r.Messages {
			if ref.Purpose == PurposeSecurity {
				errs = append(errs, n.chat.Update(ctx, ref, SecurityCard(r)))
			}
		}
	case access.EvDrift:
		m := Message{Title: "Group drift in " + r.Provider + " group " + r.Group, Color: "warning", Text: ev.Reason}
		if ch := n.chat.SecurityChannel(); ch != "" {
			_, err := n.chat.Post(ctx, ch, m)
			errs = append(errs, err)
		} else {
			noChannel("drift was not reported")
		}
	case access.EvHandoffIn:
		dm(Message{Title: "You are on call for " + r.Rotation, Color: "good", Text: ev.Reason})
	case access.EvHandoffOut:
		dm(Message{Title: "You handed " + r.Rotation + " over", Text: ev.Reason})
	case access.EvRotationProblem, access.EvRotationOK:
		m := Message{Title: "Rotation " + r.Rotation + ": shift grants need attention", Color: "warning", Text: ev.Reason}
		if ev.Type == access.EvRotationOK {
			m = Message{Title: "Rotation " + r.Rotation + ": resolved", Color: "good", Text: "No longer a problem: " + ev.Reason}
		}
		if ch := n.chat.SecurityChannel(); ch != "" {
			_, err := n.chat.Post(ctx, ch, m)
			errs = append(errs, err)
		} else {
			noChannel("rotation problem was not announced")
		}
	case access.EvRevokeAlert, access.EvRevokeRecovered, access.EvUserGone:
		m := RemovalMessage(ev)
		if ch := n.chat.SecurityChannel(); ch == "" {
			noChannel(string(ev.Type) + " was not announced")
		} else if !sent(PurposeAlert, "") {
			ref, err := n.chat.Post(ctx, ch, m)
			keep(ref, PurposeAlert, "", err)
		}
	}
	tellNotify(ev, send) // the role's notify list: outcomes by DM (gate.go)
	return refs, errors.Join(errs...)
}

// submittedBundle posts the one card of a request of several roles, to
// the approvals channel or to every approver of any of its roles, and
// tells the requester once.
func (n *Notifier) submittedBundle(ctx context.Context, ms []*access.Request, send func(purpose, who string, m Message),
	dm func(Message), keep func(access.MessageRef, string, string, error), posted func(purpose, who string) bool) {
	r := ms[0]
	card := BundleCard(ms)
	if ch := n.chat.ApprovalsChannel(); ch != "" {
		if !posted(PurposeApproval, "") {
			ref, err := n.chat.Post(ctx, ch, card)
			keep(ref, PurposeApproval, "", err)
		}
	} else {
		for _, a := range allApprovers(ms) {
			if !posted(PurposeApproval, a) {
				send(PurposeApproval, a, card)
			}
		}
	}
	var parts []string
	for _, m := range ms {
		parts = append(parts, fmt.Sprintf("*%s* to %s", m.Role, approversLine(m)))
	}
	what := "Your request"
	if r.Kind == access.KindExtension {
		what = "Your extension request (+" + access.FormatDuration(r.Duration) + ")"
	}
	dm(Message{Title: "Request " + r.Bundle + " is waiting for approval",
		Text: fmt.Sprintf("%s (%s) was sent: %s. Each role is granted as soon as its approvers approve; all of them end together.",
			what, access.FormatDuration(r.Duration), strings.Join(parts, "; ")),
		Buttons: []Button{{Label: "Cancel", Action: ActionCancel, Value: r.Bundle}}})
}

// RemovalMessage renders the security-channel message about a removal:
// one that keeps failing (who, which group, since when, how many attempts,
// the last error), its all-clear, or a user the provider no longer knows.
func RemovalMessage(ev access.Event) Message {
	r := ev.Request
	what := r.Provider + " group " + r.Group + " (" + r.Role + ")"
	switch ev.Type {
	case access.EvRevokeRecovered:
		return Message{Title: "Revocation succeeded: " + r.Requester + " no longer has " + r.Role, Color: "good",
			Text: fmt.Sprintf("%s was removed from %s after failing since %s (%d failed attempts).",
				r.Requester, what, stamp(r.FailingSince), r.Attempts),
			Fields: []Field{{"Who", r.Requester}, {"Group", what}, {"Failing since", stamp(r.FailingSince)},
				{"Removed", stamp(r.UpdatedAt)}},
			Footer: "Request " + r.ID}
	case access.EvUserGone:
		return Message{Title: r.Requester + " no longer exists in " + r.Provider, Color: "warning",
			Text: fmt.Sprintf("The %s access of %s had to end, but %s no longer knows the user, so there is no membership of %s to remove; "+
				"the grant is recorded as ended. If the account was renamed rather than deleted, check the group by hand.",
				r.Role, r.Requester, r.Provider, what),
			Fields: []Field{{"Who", r.Requester}, {"Group", what}},
			Footer: "Request " + r.ID}
	}
	last := r.LastError
	if last == "" {
		last = ev.Reason
	}
	return Message{Title: "Revocation keeps failing: " + r.Requester + " still has " + r.Role, Color: "danger",
		Text: fmt.Sprintf("accessbot has failed to remove %s from %s since %s (%d attempts) and keeps retrying. Last error: %s",
			r.Requester, what, stamp(r.FailingSince), r.Attempts, last),
		Fields: []Field{{"Who", r.Requester}, {"Group", what}, {"Failing since", stamp(r.FailingSince)},
			{"Attempts", fmt.Sprint(r.Attempts)}, {"Last error", last}},
		Footer: "Request " + r.ID}
}

// updateCards re-renders every message that shows the request's state.
func (n *Notifier) updateCards(ctx context.Context, ev access.Event) error {
	r := ev.Request
	var errs []error
	ms := bundleOf(ev)
	if ms != nil {
		// The one card of a request of several roles is the lead's.
		card := BundleCard(ms)
		for _, ref := range ms[0].Messages {
			if ref.Purpose != PurposeApproval {
				continue
			}
			if err := n.chat.Update(ctx, ref, card); err != nil {
				errs = append(errs, fmt.Errorf("update approval message of %s: %w", r.Bundle, err))
			}
		}
	}
	for _, ref := range r.Messages {
		var m Message
		switch ref.Purpose {
		case PurposeApproval:
			if ms != nil {
				continue // updated above
			}
			m = Card(r, ev.Role)
		case PurposeSecurity:
			m = SecurityCard(r)
		case PurposeGrant:
			if r.State == access.StateActive {
				continue
			}
			m = Message{Title: r.Role + ": " + statusLine(r), Text: "Request " + r.ID + "."}
		default:
			continue
		}
		if err := n.chat.Update(ctx, ref, m); err != nil {
			errs = append(errs, fmt.Errorf("update %s message of %s: %w", ref.Purpose, r.ID, err))
		}
	}
	return errors.Join(errs...)
}

// Card renders the approval card of a request in its current state; the
// Approve/Deny buttons are there only while a decision is possible.
func Card(r *access.Request, role access.Role) Message {
	title := r.Requester + " asks for " + r.Role
	if r.Kind == access.KindExtension {
		title = r.Requester + " asks to extend " + r.Role + " (" + r.Target + ")"
	}
	desc := role.Description
	if desc == "" {
		desc = r.Role
	}
	approvers := strings.Join(r.Approvers, ", ")
	if r.Needed > 1 {
		approvers += fmt.Sprintf(" (%d approvals needed)", r.Needed)
	}
	dur := access.FormatDuration(r.Duration)
	if r.Kind == access.KindExtension {
		dur = "+" + dur
	}
	m := Message{
		Title: title,
		Fields: []Field{
			{"Requester", r.Requester}, {"Role", r.Role + " — " + desc}, {"Duration", dur},
			{"Reason", userText(r.Reason)}, {"Approvers", approvers}, {"Status", statusLine(r)},
		},
		Footer: "Request " + r.ID,
	}
	if f, ok := escalatedField(r); ok {
		m.Fields = append(m.Fields, f)
	}
	switch r.State {
	case access.StatePending:
		m.Buttons = []Button{
			{Label: "Approve", Action: ActionApprove, Value: r.ID, Style: "primary"},
			{Label: "Deny", Action: ActionDeny, Value: r.ID, Style: "danger"},
		}
	case access.StateActive, access.StateEnded:
		m.Color = "good"
		if r.State == access.StateEnded {
			m.Color = ""
		}
	case access.StateDenied, access.StateFailed:
		m.Color = "danger"
	}
	if r.State == access.StateDenied && denyReasonMissing(r) {
		// Denied at the click; the approver who denied may say why.
		m.Buttons = []Button{{Label: "Add a reason", Action: ActionAddReason, Value: r.ID}}
	}
	if r.State == access.StateActive && r.Kind != access.KindExtension {
		m.Fields[5].Value = "active until " + stamp(r.EndsAt) + " (" + approvedLine(r) + ")"
	}
	if !r.StartsAt.IsZero() {
		m.Fields = append(m.Fields, Field{"Starts", startText(r)})
	}
	markAutoApproved(&m, r)
	return m
}

func denyReasonMissing(r *access.Request) bool {
	for _, d := range r.Decisions {
		if !d.Approve {
			return d.Reason == ""
		}
	}
	return false
}

// SecurityCard renders the break-glass announcement in its current state.
func SecurityCard(r *access.Request) Message {
	m := Message{Title: "Break-glass: " + r.Requester + " took " + r.Role, Color: "danger",
		Fields: []Field{{"Who", r.Requester}, {"Role", r.Role}, {"Why", userText(r.Reason)},
			{"For", access.FormatDuration(r.Duration)}, {"Status", statusLine(r)}},
		Footer: "Request " + r.ID}
	if r.AckBy != "" {
		m.Text = "Acknowledged by " + r.AckBy + " at " + stamp(r.AckAt) + "."
		m.Color = "warning"
	} else {
		m.Text = "Granted at once, without approval. Please review and acknowledge."
		m.Buttons = []Button{{Label: "Acknowledge", Action: ActionAck, Value: r.ID, Style: "primary"}}
	}
	return m
}

func approvedLine(r *access.Request) string {
	switch r.Kind {
	case access.KindBreakGlass:
		return "break-glass"
	case access.KindRotation:
		return "on-call shift of " + r.Rotation
	}
	if r.AutoApproved != "" {
		return "auto-approved: " + r.AutoApproved
	}
	return "approved by " + approvedBy(r)
}
