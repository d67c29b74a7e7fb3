package handlers

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/accessbot/accessbot/access"
)

// Several roles in one request: "/access prod-admin,db-admin 2h reason"
// (spaces after the commas allowed), the form's multi-select, one card
// for the whole request, and the request's "b-…" id for acting on all of
// its roles at once.

// foldRoleList joins a leading role list typed with spaces around its
// commas ("prod-admin, db-admin 2h …") into one word
// ("prod-admin,db-admin 2h …"); any other text is returned as it is.
func foldRoleList(text string) string {
	t := strings.TrimLeftFunc(text, isSpace)
	end := strings.IndexFunc(t, isSpace)
	if end < 0 {
		return text
	}
	head := t[:end]
	rest := strings.TrimLeftFunc(t[end:], isSpace)
	folded := false
	for rest != "" && (strings.HasSuffix(head, ",") || strings.HasPrefix(rest, ",")) {
		j := strings.IndexFunc(rest, isSpace)
		if j < 0 {
			head, rest = head+rest, ""
		} else {
			head, rest = head+rest[:j], strings.TrimLeftFunc(rest[j:], isSpace)
		}
		folded = true
	}
	if !folded {
		return text
	}
	if rest == "" {
		return head
	}
	return head + " " + rest
}

// roleList handles "/access a,b [duration] [reason…]" like a single role.
func (h *Handler) roleList(ctx context.Context, c Command, list string, args []string, rest func(int) string) Reply {
	roles := access.SplitRoles(list)
	for _, n := range roles {
		if _, ok := h.svc.Policy().Role(n); !ok {
			return Reply{Message: Message{Color: "danger",
				Text: fmt.Sprintf("There is no role %q. Nothing was sent.\n\n%s", clipText(n, 40), helpText)}}
		}
	}
	joined := strings.Join(roles, ",")
	if len(args) == 0 {
		return h.form(ctx, c.User, joined, "", "")
	}
	if r, ok := h.scheduledCommand(ctx, c, joined, args); ok {
		return r // "/access a,b 2h at 22:00 …": every role starts then
	}
	if !startsWithDigit(args[0]) && startsReason(args[0]) {
		return h.form(ctx, c.User, joined, "", rest(0))
	}
	if _, err := parseDuration(args[0]); err != nil {
		return h.fail(ctx, err)
	}
	if len(args) == 1 {
		return h.form(ctx, c.User, joined, args[0], "")
	}
	return h.submitRoles(ctx, c.User, roles, args[0], rest(1))
}

func (h *Handler) submitRoles(ctx context.Context, chatUser string, roles []string, dur, reason string) Reply {
	who, d, err := h.whoAndDuration(ctx, chatUser, dur)
	if err != nil {
		return h.fail(ctx, err)
	}
	rs, err := h.svc.SubmitRoles(ctx, access.SubmitInput{Requester: who, Duration: d, Reason: reason}, roles)
	if err != nil {
		return h.fail(ctx, err)
	}
	return submittedText(rs)
}

// submittedText confirms a submitted request of one role or several.
func submittedText(rs []*access.Request) Reply {
	r := rs[0]
	if len(rs) == 1 {
		return text("Request %s for *%s* (%s) sent for approval to %s. You will hear back here.",
			r.ID, r.Role, access.FormatDuration(r.Duration), strings.Join(r.Approvers, ", "))
	}
	var parts []string
	for _, m := range rs {
		parts = append(parts, fmt.Sprintf("*%s* (%s, to %s)", m.Role, m.ID, approversLine(m)))
	}
	return text("Request %s for %s, %s, sent for approval. Each role is granted as soon as its approvers approve; all of them end together. You will hear back here.",
		r.Bundle, strings.Join(parts, ", "), access.FormatDuration(r.Duration))
}

func approversLine(r *access.Request) string {
	s := strings.Join(r.Approvers, ", ")
	if r.Needed > 1 {
		s += fmt.Sprintf("; %d approvals needed", r.Needed)
	}
	return s
}

// submitFormRoles handles a form whose role field holds several roles.
func (h *Handler) submitFormRoles(ctx context.Context, in FormInput) (Reply, FormErrors) {
	roles := access.SplitRoles(in.Role)
	errs := FormErrors{}
	for _, n := range roles {
		if _, ok := h.svc.Policy().Role(n); !ok {
			errs[FieldRole] = fmt.Sprintf("There is no role %q; choose roles from the list.", clipText(n, 40))
		}
	}
	d, err := access.ParseDuration(in.Duration)
	switch {
	case errors.Is(err, access.ErrTooLong):
		errs[FieldDuration] = "That is longer than " + access.FormatDuration(access.MaxParsedDuration) + ", the longest duration accepted."
	case err != nil:
		errs[FieldDuration] = "Use a number and a unit, like 30m, 2h, 1d or 1h30m."
	}
	if len(errs) > 0 {
		return Reply{}, errs
	}
	who, err := h.identity(ctx, in.User)
	if err != nil {
		return h.fail(ctx, err), nil
	}
	if err := h.svc.Throttle(ctx, who); err != nil {
		return h.fail(ctx, err), nil
	}
	rs, err := h.svc.SubmitRoles(ctx, access.SubmitInput{Requester: who, Duration: d, Reason: in.Reason,
		Start: in.Start, Zone: h.zone(ctx, in.User)}, roles)
	if err != nil {
		if msg, ok := shownText(err); ok {
			switch {
			case errors.Is(err, access.ErrBadDuration):
				return Reply{}, FormErrors{FieldDuration: msg}
			case errors.Is(err, access.ErrNoReason), errors.Is(err, access.ErrReasonTooLong):
				return Reply{}, FormErrors{FieldReason: msg}
			case errors.Is(err, access.ErrNoIdentity), errors.Is(err, access.ErrRateLimited), errors.Is(err, access.ErrConflict):
				return h.fail(ctx, err), nil
			default: // the role concerned is named: over its maximum, held, unknown to its provider...
				return Reply{}, FormErrors{FieldRole: msg}
			}
		}
		return h.fail(ctx, err), nil
	}
	return submittedText(rs), nil
}

// actBundle handles a button (or its typed equivalent) on a whole request
// of several roles.
func (h *Handler) actBundle(ctx context.Context, who string, a Action, id string) Reply {
	switch a.Action {
	case ActionApprove, ActionDeny:
		out, err := h.svc.DecideBundle(ctx, id, who, a.Action == ActionApprove, a.Reason)
		if err != nil {
			return h.fail(ctx, err)
		}
		r := out.Done[0]
		if a.Action == ActionDeny {
			return text("You denied request %s (%s for %s); %s has been told.", out.Bundle, rolesOf(out.Done), r.Requester, r.Requester)
		}
		var done []string
		for _, m := range out.Done {
			state := statusLine(m)
			if m.State == access.StatePending {
				state = fmt.Sprintf("%d of %d approvals", m.Approvals(), m.Needed)
			}
			done = append(done, fmt.Sprintf("*%s* (%s)", m.Role, state))
		}
		msg := fmt.Sprintf("You approved %s of request %s.", strings.Join(done, ", "), out.Bundle)
		if len(out.Skipped) > 0 {
			msg += " Not approved by you: " + skippedText(out.Skipped) + "."
		}
		return text("%s", msg)
	case ActionCancel:
		out, err := h.svc.CancelBundle(ctx, id, who)
		if err != nil {
			return h.fail(ctx, err)
		}
		return text("Request %s is cancelled (%s).", out.Bundle, rolesOf(out.Done))
	case ActionRevoke:
		return h.revokeBundle(ctx, who, id, a.Reason)
	case ActionAddReason:
		ms, err := h.svc.Bundle(ctx, id)
		if err != nil {
			return h.fail(ctx, err)
		}
		var firstErr error
		added := 0
		for _, m := range ms {
			if m.State != access.StateDenied {
				continue
			}
			var err error
			if strings.TrimSpace(a.Reason) == "" {
				err = h.svc.CanAddDenyReason(ctx, m.ID, who)
			} else {
				_, err = h.svc.AddDenyReason(ctx, m.ID, who, a.Reason)
			}
			if err != nil {
				firstErr = firstOf(firstErr, err)
				continue
			}
			added++
		}
		if added == 0 {
			if firstErr == nil {
				firstErr = &access.Refusal{Code: access.RefuseNoRequest, Err: access.ErrNotAllowed, ID: id}
				for _, m := range ms {
					if m.Requester == who || slices.Contains(m.Approvers, who) {
						firstErr = &access.Refusal{Code: access.RefuseNotDenied, Err: access.ErrNotAllowed, ID: id}
					}
				}
			}
			return h.fail(ctx, firstErr)
		}
		if strings.TrimSpace(a.Reason) == "" {
			return Reply{Ask: &Ask{Action: ActionAddReason, RequestID: id, Title: "Add a reason",
				Label: "Why did you deny request " + id + "?", Submit: "Add"},
				Message: Message{Text: fmt.Sprintf("Say why you denied request %s: `/access reason %s <reason>`.", id, id)}}
		}
		return text("Your reason is on request %s and in the audit log; %s has been told.", id, ms[0].Requester)
	}
	return problem("Request %s has several roles; %s works on one of them: use its `r-…` id (see `/access list`).", id, clipText(a.Action, 20))
}

func firstOf(first, err error) error {
	if first != nil {
		return first
	}
	return err
}

// revokeBundle ends every role of a request of several roles.
func (h *Handler) revokeBundle(ctx context.Context, who, id, reason string) Reply {
	out, err := h.svc.RevokeBundle(ctx, id, who, reason)
	if err != nil {
		return h.fail(ctx, err)
	}
	var parts []string
	for _, m := range out.Done {
		parts = append(parts, fmt.Sprintf("*%s* (%s)", m.Role, statusLine(m)))
	}
	msg := fmt.Sprintf("Request %s: %s.", out.Bundle, strings.Join(parts, ", "))
	if len(out.Skipped) > 0 {
		msg += " Left as they were: " + skippedText(out.Skipped) + "."
	}
	return text("%s", msg)
}

func (h *Handler) extendBundle(ctx context.Context, chatUser, id, dur, reason string) Reply {
	who, d, err := h.whoAndDuration(ctx, chatUser, dur)
	if err != nil {
		return h.fail(ctx, err)
	}
	rs, err := h.svc.ExtendBundle(ctx, id, who, d, reason)
	if err != nil {
		return h.fail(ctx, err)
	}
	if len(rs) == 1 {
		r := rs[0]
		return text("Extension request %s (+%s on %s) sent for approval to %s.", r.ID, access.FormatDuration(r.Duration), r.Target, strings.Join(r.Approvers, ", "))
	}
	var parts []string
	for _, r := range rs {
		parts = append(parts, fmt.Sprintf("*%s* (%s, to %s)", r.Role, r.Target, approversLine(r)))
	}
	return text("Extension request %s (+%s) for %s sent for approval.", rs[0].Bundle, access.FormatDuration(rs[0].Duration), strings.Join(parts, ", "))
}

// skippedText says which roles an action left and why.
func skippedText(sk []access.Skipped) string {
	var parts []string
	for _, s := range sk {
		why, ok := shownText(s.Err)
		if !ok {
			var se *access.StateError
			if errors.As(s.Err, &se) {
				why = "it is " + statusLine(s.Request)
			} else {
				why = "it could not be changed"
			}
		}
		parts = append(parts, fmt.Sprintf("*%s*: %s", s.Request.Role, why))
	}
	return strings.Join(parts, "; ")
}

func rolesOf(rs []*access.Request) string {
	var names []string
	for _, r := range rs {
		names = append(names, r.Role)
	}
	return strings.Join(names, ", ")
}

// bundleListEntry is r's bundle as one line of /access list, with each
// role and its state.
func (h *Handler) bundleListEntry(ctx context.Context, r *access.Request, mine []*access.Request) string {
	ms, err := h.svc.Bundle(ctx, r.Bundle)
	if err != nil {
		for _, m := range mine {
			if m.Bundle == r.Bundle {
				ms = append(ms, m)
			}
		}
	}
	var parts []string
	for _, m := range ms {
		parts = append(parts, fmt.Sprintf("*%s* %s — %s", m.Role, m.ID, roleState(m)))
	}
	what := ""
	if r.Kind == access.KindExtension {
		what = " extension"
	}
	return fmt.Sprintf("• %s%s %s: %s\n", r.Bundle, what, access.FormatDuration(r.Duration), strings.Join(parts, "; "))
}

// roleState is one role's state on a card of several roles.
func roleState(r *access.Request) string {
	switch r.State {
	case access.StatePending:
		return fmt.Sprintf("pending, %d of %d approvals (%s)", r.Approvals(), r.Needed, strings.Join(r.Approvers, ", "))
	case access.StateActive:
		if r.Kind == access.KindExtension {
			return statusLine(r)
		}
		return "active until " + stamp(r.EndsAt) + " (" + approvedLine(r) + ")"
	}
	return statusLine(r)
}

// BundleCard renders the one approval card of a request of several roles
// from all of its members (the lead first): each role with its state, and
// the Approve/Deny buttons (carrying the bundle id) while any role waits.
func BundleCard(ms []*access.Request) Message {
	r := ms[0]
	title := r.Requester + " asks for " + rolesOf(ms)
	dur := access.FormatDuration(r.Duration)
	if r.Kind == access.KindExtension {
		title = r.Requester + " asks to extend " + rolesOf(ms)
		dur = "+" + dur
	}
	m := Message{
		Title:  title,
		Fields: []Field{{"Requester", r.Requester}, {"Duration", dur + ", all roles end together"}, {"Reason", userText(r.Reason)}},
		Footer: "Request " + r.Bundle + " (" + strings.Join(r.Members, ", ") + ")",
	}
	pending, active, denied, failed, denyMissing := 0, 0, 0, 0, false
	for _, x := range ms {
		m.Fields = append(m.Fields, Field{x.Role, roleState(x)})
		switch x.State {
		case access.StatePending:
			pending++
		case access.StateActive, access.StateEnded:
			active++
		case access.StateDenied:
			denied++
			denyMissing = denyMissing || denyReasonMissing(x)
		case access.StateFailed:
			failed++
		}
	}
	switch {
	case pending > 0:
		m.Buttons = []Button{
			{Label: "Approve", Action: ActionApprove, Value: r.Bundle, Style: "primary"},
			{Label: "Deny", Action: ActionDeny, Value: r.Bundle, Style: "danger"},
		}
	case denied > 0 || failed > 0 && active == 0:
		m.Color = "danger"
	case active > 0:
		m.Color = "good"
	}
	if pending == 0 && denied > 0 && denyMissing {
		m.Buttons = []Button{{Label: "Add a reason", Action: ActionAddReason, Value: r.Bundle}}
	}
	return m
}

// bundleOf returns the members of ev's request as the event carries them,
// nil for a request of a single role.
func bundleOf(ev access.Event) []*access.Request {
	if ev.Request == nil || ev.Request.Bundle == "" || len(ev.Bundle) == 0 {
		return nil
	}
	return ev.Bundle
}

// allApprovers lists every approver of the members, each once, in order.
func allApprovers(ms []*access.Request) []string {
	seen := map[string]bool{}
	var out []string
	for _, m := range ms {
		for _, a := range m.Approvers {
			if !seen[a] {
				seen[a] = true
				out = append(out, a)
			}
		}
	}
	return out
}
