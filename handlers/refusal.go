package handlers

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/accessbot/accessbot/access"
)

// userError is a refusal the handlers themselves make (a duration that
// does not parse, a chat account without a usable identity): Msg is shown
// as it is; Err is the sentinel, for errors.Is.
type userError struct {
	Msg string
	Err error
}

func (e *userError) Error() string { return e.Msg }
func (e *userError) Unwrap() error { return e.Err }

// hhmm renders an end time in a refusal: UTC, hours and minutes.
func hhmm(t time.Time) string { return t.UTC().Format("15:04 MST") }

// refusalText words a refusal of the workflow for the person who gave the
// command. Every access.RefusalCode has its sentence here; the chat
// command syntax it suggests (`/access ...`) is this package's.
func refusalText(r *access.Refusal) string {
	d := access.FormatDuration
	if s, ok := scheduleRefusalText(r); ok {
		return s
	}
	switch r.Code {
	case access.RefuseNoIdentity:
		return "your chat account has no email address mapped, so accessbot cannot tell who you are; ask an admin to link it"
	case access.RefuseDecideNoIdentity:
		return "your chat account has no email address mapped, so accessbot cannot tell who you are"
	case access.RefuseBadIdentity:
		return "the email address of your chat account has characters other than plain ASCII, so accessbot cannot tell who you are; ask an admin to change it"
	case access.RefuseNoRole:
		return "name a role; try `/access roles` to see what you may request"
	case access.RefuseUnknownRole:
		return fmt.Sprintf("there is no role %q; try `/access roles` to see what you may request", clipText(r.Role, 60))
	case access.RefuseRoleGone:
		return fmt.Sprintf("role %s is no longer configured; nobody can decide request %s", r.Role, r.ID)
	case access.RefuseTooShort:
		return fmt.Sprintf("the duration %s is too short; the minimum is %s", d(r.Duration), d(r.Max))
	case access.RefuseTooLong:
		return fmt.Sprintf("%s may be held for at most %s; you asked for %s", r.Role, d(r.Max), d(r.Duration))
	case access.RefuseNoReason:
		return fmt.Sprintf("give a reason, e.g. `/access %s %s fixing the checkout outage`", r.Role, d(r.Duration))
	case access.RefuseReasonTooLong:
		if r.Count == 0 {
			return fmt.Sprintf("the reason is too long; the limit is %d characters", r.Limit)
		}
		return fmt.Sprintf("the reason is %d characters long; the limit is %d", r.Count, r.Limit)
	case access.RefuseUnknownUser:
		return fmt.Sprintf("%s has no account in %s, so %s cannot be granted; ask an admin to create it", r.User, r.Provider, r.Role)
	case access.RefuseUserDisabled:
		return fmt.Sprintf("the %s account of %s is disabled, so %s cannot be granted", r.Provider, r.User, r.Role)
	case access.RefuseAlreadyPending:
		return fmt.Sprintf("you already asked for %s (request %s is waiting for approval); cancel it with `/access cancel %s` first", r.Role, r.ID, r.ID)
	case access.RefuseAlreadyHeld:
		return fmt.Sprintf("you already hold %s until %s (request %s); ask for more time with `/access extend %s <duration> <reason>`",
			r.Role, hhmm(r.At), r.ID, r.ID)
	case access.RefuseExtensionPending:
		return fmt.Sprintf("an extension of %s is already waiting for approval (request %s)", r.Other, r.ID)
	case access.RefuseNoApprovers:
		return fmt.Sprintf("nobody can approve %s right now (no named approver and nobody on call), so the request was not sent; ask an admin", r.Role)
	case access.RefuseTooFewApprovers:
		return fmt.Sprintf("%s needs %d approvals but only %d approver(s) are available right now, so the request was not sent", r.Role, r.Limit, r.Count)
	case access.RefuseBusy:
		return "another request of yours is being stored right now; nothing was sent, try again in a moment"
	case access.RefuseTooManyPending:
		return fmt.Sprintf("you already have %d requests waiting for approval, the most one person may have; wait for a decision or cancel one with `/access cancel <request-id>` (see `/access list`)", r.Count)
	case access.RefuseThrottled:
		return fmt.Sprintf("you gave more than %d commands in a minute; nothing was done, try again after %s", r.Limit, r.At.UTC().Format("15:04:05 MST"))
	case access.RefuseNoRequest:
		return fmt.Sprintf("there is no request %s that you can act on", clipText(r.ID, 40))
	case access.RefuseNoSuchRequest:
		return fmt.Sprintf("there is no request %s", clipText(r.ID, 40))
	case access.RefuseNotApprover:
		return fmt.Sprintf("you are not an approver of %s right now, so you cannot decide request %s", r.Role, r.ID)
	case access.RefuseNotApproverNow:
		return fmt.Sprintf("you are not an approver of %s right now; who may decide: %s", r.Role, listOr(r.People, "nobody"))
	case access.RefuseSelfDecide:
		return fmt.Sprintf("you cannot approve or deny your own request for %s; it needs another approver", r.Role)
	case access.RefuseApprovedAlready:
		return fmt.Sprintf("you already approved request %s; it needs %d approval(s), %d so far", r.ID, r.Limit, r.Count)
	case access.RefuseCancelNotYours:
		return fmt.Sprintf("only %s can cancel request %s", r.User, r.ID)
	case access.RefuseRevokeNotYours:
		return fmt.Sprintf("only %s, an approver of %s or an admin can revoke request %s", r.User, r.Role, r.ID)
	case access.RefuseExtendNotYours:
		return fmt.Sprintf("only %s can extend request %s", r.User, r.ID)
	case access.RefuseNothingToExtend:
		return fmt.Sprintf("request %s is %s, not active, so there is nothing to extend", r.ID, r.State)
	case access.RefuseShiftGrant:
		return fmt.Sprintf("request %s is an on-call shift grant; it ends at the handoff and cannot be extended", r.ID)
	case access.RefuseExtendTooLong:
		return fmt.Sprintf("extending by %s would give %s until %s, more than the maximum of %s from now; ask for at most %s",
			d(r.Duration), r.Role, hhmm(r.At), d(r.Max), d(r.Left))
	case access.RefuseNotBreakGlassUser:
		return fmt.Sprintf("you are not on the break-glass list; ask for %s with `/access %s <duration> <reason>` instead", r.Role, r.Role)
	case access.RefuseNoBreakGlass:
		return fmt.Sprintf("%s does not allow break-glass access; ask for it with `/access %s <duration> <reason>`", r.Role, r.Role)
	case access.RefuseSelfAcknowledge:
		return "you cannot acknowledge your own break-glass access"
	case access.RefuseNotAcknowledger:
		return fmt.Sprintf("only the security team (%s) can acknowledge break-glass access", strings.Join(r.People, ", "))
	case access.RefuseNotBreakGlass:
		return fmt.Sprintf("request %s is not a break-glass grant; there is nothing to acknowledge", r.ID)
	case access.RefuseAcknowledged:
		return fmt.Sprintf("%s already acknowledged request %s", r.User, r.ID)
	case access.RefuseDenyNoReason:
		return fmt.Sprintf("say why you denied request %s", clipText(r.ID, 40))
	case access.RefuseNotDenied:
		return fmt.Sprintf("request %s was not denied; there is no denial to give a reason for", r.ID)
	case access.RefuseNotDenier:
		return fmt.Sprintf("only the approver who denied request %s can give the reason", r.ID)
	case access.RefuseDenyReasonRecorded:
		return fmt.Sprintf("the reason for denying request %s is already recorded", r.ID)
	case access.RefuseNoDenyDecision:
		return fmt.Sprintf("request %s has no deny decision to give a reason for", r.ID)
	case access.RefuseTooManyRoles: // several roles in one request
		return fmt.Sprintf("that names %d roles; one request may name at most %d, so nothing was sent. Ask for the rest in another request", r.Count, r.Limit)
	case access.RefuseBundleNoneOpen:
		if errors.Is(r.Err, access.ErrNotActive) {
			return fmt.Sprintf("no role of request %s is active, so there is nothing to end or extend; see `/access list`", clipText(r.ID, 40))
		}
		return fmt.Sprintf("no role of request %s is waiting for a decision any more; nothing was changed", clipText(r.ID, 40))

	// Request gate (gate.go).
	case access.RefuseNotRequester, access.RefuseRequesterUnchecked, access.RefuseReasonPattern:
		return gateRefusalText(r)
	}
	return "accessbot cannot do that; nothing was changed"
}

// shownText returns the text to show for err when it is a refusal (of
// the workflow or of the handlers), false for any other error.
func shownText(err error) (string, bool) {
	var ue *userError
	if errors.As(err, &ue) {
		return ue.Msg, true
	}
	var rf *access.Refusal
	if errors.As(err, &rf) {
		return refusalText(rf), true
	}
	return "", false
}
