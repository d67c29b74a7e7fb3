package handlers

import (
	"context"
	"fmt"
	"strings"

	"github.com/accessbot/accessbot/access"
)

// The request gate's wording: who may request a role, what its reasons
// say, auto-approval, and the outcome DMs to a role's notify list.

// gateRefusalText words the request gate's refusals.
func gateRefusalText(r *access.Refusal) string {
	switch r.Code {
	case access.RefuseNotRequester:
		var who []string
		if len(r.People) > 0 {
			who = append(who, strings.Join(r.People, ", "))
		}
		if len(r.Groups) > 0 {
			who = append(who, "members of "+strings.Join(r.Groups, ", "))
		}
		if len(r.Rotations) > 0 {
			who = append(who, "whoever is on call for "+strings.Join(r.Rotations, ", "))
		}
		return fmt.Sprintf("you may not request %s; who may: %s. Nothing was sent; ask one of them or an admin",
			r.Role, listOr(who, "nobody"))
	case access.RefuseRequesterUnchecked:
		var what []string
		if len(r.Groups) > 0 {
			what = append(what, "the "+r.Provider+" membership of "+strings.Join(r.Groups, ", "))
		}
		if len(r.Rotations) > 0 {
			what = append(what, "the on-call of "+strings.Join(r.Rotations, ", "))
		}
		return fmt.Sprintf("accessbot could not check whether you may request %s (%s could not be looked up right now), so the request was not sent; try again in a minute",
			r.Role, strings.Join(what, " and "))
	case access.RefuseReasonPattern:
		msg := fmt.Sprintf("the reason for %s must match `%s`", r.Role, r.Pattern)
		if r.Hint != "" {
			msg += ": " + r.Hint
		}
		return msg + fmt.Sprintf(". Nothing was sent; ask again with such a reason, like `/access %s 1h <reason>`", r.Role)
	}
	return "accessbot cannot do that; nothing was changed"
}

// mayRequest returns whether chatUser may request a role, asked of the
// service (one identity lookup for all roles). A person whose identity
// cannot be told sees only the roles anyone may request; a role whose
// check fails is left out (never "anyone").
func (h *Handler) mayRequest(ctx context.Context, chatUser string) func(access.Role) bool {
	who, err := h.identity(ctx, chatUser)
	return func(r access.Role) bool {
		if r.Requesters == nil {
			return true
		}
		if err != nil {
			return false
		}
		return h.svc.MayRequest(ctx, r, who) == nil
	}
}

// ReasonHint is the hint for a request form's reason field (Form.ReasonHint),
// for transports that build the form themselves.
func (h *Handler) ReasonHint(roles []RoleOption, chosen string) string {
	return h.reasonHint(roles, chosen)
}

// reasonHint is the hint for the form's reason field: the chosen role's
// reason_hint, else those of the listed roles that have one.
func (h *Handler) reasonHint(roles []RoleOption, chosen string) string {
	p := h.svc.Policy()
	if r, ok := p.Role(chosen); ok {
		return roleHint(r)
	}
	var hints []string
	for _, o := range roles {
		if r, ok := p.Role(o.Name); ok && roleHint(r) != "" {
			hints = append(hints, r.Name+": "+roleHint(r))
		}
	}
	return clipText(strings.Join(hints, "; "), 500)
}

func roleHint(r access.Role) string {
	if r.ReasonPattern == nil {
		return ""
	}
	if r.ReasonHint != "" {
		return r.ReasonHint
	}
	return "the reason must match " + r.ReasonPattern.String()
}

// gateNotes adds a role's reason rule and auto-approval to /access roles.
func gateNotes(r access.Role) string {
	var b strings.Builder
	if h := roleHint(r); h != "" {
		b.WriteString("; reason: " + h)
	}
	if a := r.AutoApprove; a != nil {
		var who []string
		if len(a.Rotations) > 0 {
			who = append(who, "whoever is on call for "+strings.Join(a.Rotations, ", "))
		}
		who = append(who, a.Users...)
		b.WriteString("; auto-approved for " + strings.Join(who, ", "))
		if a.Hours.String() != "" {
			b.WriteString(" during " + a.Hours.String())
		}
	}
	return b.String()
}

// autoApprovedReply answers the requester of an auto-approved request.
func autoApprovedReply(r *access.Request) Reply {
	switch r.State {
	case access.StateActive:
		return Reply{Message: Message{Color: "good", Text: fmt.Sprintf("Request %s for *%s* was auto-approved (%s): you have it until %s.",
			r.ID, r.Role, r.AutoApproved, stamp(r.EndsAt))}}
	case access.StateFailed:
		return problem("Request %s for %s was auto-approved (%s) but could not be granted: %s", r.ID, r.Role, r.AutoApproved, r.Failure)
	}
	return text("Request %s for *%s* was auto-approved (%s) and is being provisioned; you will hear back when it is active.",
		r.ID, r.Role, r.AutoApproved)
}

// approvalsChannel is where the role's approval card goes: the role's
// approvals_channel, else the transport's default ("" : DM the approvers).
func (n *Notifier) approvalsChannel(role access.Role) string {
	if role.ApprovalsChannel != "" {
		return role.ApprovalsChannel
	}
	return n.chat.ApprovalsChannel()
}

// outcomeNotice is the DM to a role's notify list about ev, false when ev
// is no outcome they are told of (submissions, partial approvals,
// shift grants of rotations).
func outcomeNotice(ev access.Event) (Message, bool) {
	r := ev.Request
	if r.Kind == access.KindRotation {
		return Message{}, false
	}
	head := fmt.Sprintf("%s's request %s for %s", r.Requester, r.ID, r.Role)
	if r.Kind == access.KindExtension {
		head = fmt.Sprintf("%s's extension request %s (+%s on %s) for %s", r.Requester, r.ID, access.FormatDuration(r.Duration), r.Target, r.Role)
	}
	fields := []Field{{"Requester", r.Requester}, {"Role", r.Role}, {"Duration", access.FormatDuration(r.Duration)},
		{"Reason", userText(r.Reason)}}
	m := Message{Fields: fields, Footer: "You are told because you are on the notify list of " + r.Role + "; you cannot decide it."}
	switch ev.Type {
	case access.EvSubmitted:
		if r.AutoApproved == "" {
			return Message{}, false
		}
		m.Title, m.Color = head+" was auto-approved", "good"
		m.Text = "Approved without a click: " + r.AutoApproved + "."
	case access.EvApproval:
		if final, ok := finalApprover(r); !ok || !access.SameIdentity(final, ev.Actor) {
			return Message{}, false
		}
		m.Title, m.Color = head+" was approved", "good"
		m.Text = "Approved by " + approvedBy(r) + "."
	case access.EvDenied:
		m.Title, m.Color = head+" was denied", "danger"
		m.Text = "Denied by " + ev.Actor + "."
		if ev.Reason != "" {
			m.Text = "Denied by " + ev.Actor + ": " + userText(ev.Reason)
		}
	case access.EvTimedOut:
		m.Title = head + " timed out"
		m.Text = "Nobody decided in time; nothing was granted."
	case access.EvActive:
		m.Title, m.Color = head+" is active", "good"
		m.Text = fmt.Sprintf("Granted until %s (%s).", stamp(r.EndsAt), approvedLine(r))
	case access.EvFailed:
		m.Title, m.Color = head+" failed", "danger"
		m.Text = "It could not be granted: " + r.Failure + "."
	case access.EvEnded:
		m.Title = head + " has ended"
		m.Text = statusLine(r) + "."
	default:
		return Message{}, false
	}
	return m, true
}

// finalApprover is who gave the approval that approved r (the Needed-th).
func finalApprover(r *access.Request) (string, bool) {
	n := 0
	for _, d := range r.Decisions {
		if d.Approve {
			n++
			if n == max(r.Needed, 1) {
				return d.By, true
			}
		}
	}
	return "", false
}

// markAutoApproved adds the rule that approved r to its card.
func markAutoApproved(m *Message, r *access.Request) {
	if r.AutoApproved == "" {
		return
	}
	m.Text = "Auto-approved by accessbot: " + r.AutoApproved + "."
	for i, f := range m.Fields {
		if f.Label == "Approvers" {
			m.Fields[i].Value = "none needed (auto-approved)"
		}
	}
	m.Fields = append(m.Fields, Field{"Auto-approved", r.AutoApproved})
}

// tellNotify DMs the role's notify list about an outcome, through send
// (which skips what an earlier try of the entry sent). The requester is
// told anyway and is skipped.
func tellNotify(ev access.Event, send func(purpose, who string, m Message)) {
	if len(ev.Role.Notify) == 0 {
		return
	}
	m, ok := outcomeNotice(ev)
	if !ok {
		return
	}
	for _, who := range ev.Role.Notify {
		if !access.SameIdentity(who, ev.Request.Requester) {
			send(PurposeNotice, access.NormalizeIdentity(who), m)
		}
	}
}
