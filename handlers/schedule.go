package handlers

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/accessbot/accessbot/access"
)

// Scheduled access: "/access <role> <duration> at <when> <reason>" (or
// "at <when>" right after the role) asks for access that starts later.
// <when> is read in the requester's time zone (ZoneDirectory; UTC where
// the transport knows none): "22:00", "2026-12-01T22:00",
// "2026-12-01 22:00" or with a zone offset "2026-12-01T22:00+01:00".

// ZoneDirectory is what a Directory may also offer: the time zone of a
// chat user's profile (Slack's users.info tz). Without it, or when the
// lookup fails, starts are read in UTC.
type ZoneDirectory interface {
	// TimeZone returns the zone of chatUser's profile; nil (or an error)
	// when it has none.
	TimeZone(ctx context.Context, chatUser string) (*time.Location, error)
}

// FieldStart is the form field of the start (optional).
const FieldStart = "start"

// zone returns the requester's time zone, UTC when unknown.
func (h *Handler) zone(ctx context.Context, chatUser string) *time.Location {
	zd, ok := h.dir.(ZoneDirectory)
	if !ok {
		return time.UTC
	}
	loc, err := zd.TimeZone(ctx, chatUser)
	if err != nil || loc == nil {
		if err != nil {
			h.log.WarnContext(ctx, "time zone lookup failed; reading the start in UTC", "user", chatUser, "err", err)
		}
		return time.UTC
	}
	return loc
}

// scheduleSpec is the "at <when>" part of a command.
type scheduleSpec struct {
	start    string // as typed ("22:00", "2026-12-01 22:00")
	duration string // "" when not given
	used     int    // words of args taken up (duration, "at", the start)
}

// splitSchedule finds "at <when>" in args (the words after the role):
// first ("at 22:00 2h reason") or after the duration ("2h at 22:00
// reason"). Only a word starting with a digit after "at" is a start; "at
// the office" is left to be a reason.
func splitSchedule(args []string) (scheduleSpec, bool) {
	atWord := func(i int) bool {
		return i+1 < len(args) && strings.EqualFold(args[i], "at") && startsWithDigit(args[i+1])
	}
	take := func(i int) (string, int) { // the start at args[i], and how many words it spans
		if isDate(args[i]) && i+1 < len(args) && strings.Contains(args[i+1], ":") && startsWithDigit(args[i+1]) {
			return args[i] + " " + args[i+1], 2
		}
		return args[i], 1
	}
	var sp scheduleSpec
	switch {
	case atWord(0):
		var n int
		sp.start, n = take(1)
		sp.used = 1 + n
		if sp.used < len(args) && startsWithDigit(args[sp.used]) {
			sp.duration = args[sp.used]
			sp.used++
		}
	case len(args) > 1 && atWord(1):
		var n int
		sp.duration = args[0]
		sp.start, n = take(2)
		sp.used = 2 + n
	default:
		return sp, false
	}
	return sp, true
}

// isDate reports whether w looks like 2026-12-01.
func isDate(w string) bool {
	if len(w) != 10 || w[4] != '-' || w[7] != '-' {
		return false
	}
	for i, c := range w {
		if i != 4 && i != 7 && (c < '0' || c > '9') {
			return false
		}
	}
	return true
}

// scheduledCommand handles "/access <role> … at <when> …"; false when the
// command has no start.
func (h *Handler) scheduledCommand(ctx context.Context, c Command, role string, args []string) (Reply, bool) {
	sp, ok := splitSchedule(args)
	if !ok {
		return Reply{}, false
	}
	reason := restAfter(c.Text, 1+sp.used)
	if sp.duration != "" {
		if _, err := parseDuration(sp.duration); err != nil {
			return h.fail(ctx, err), true
		}
	}
	if sp.duration == "" || strings.TrimSpace(reason) == "" {
		r := h.form(ctx, c.User, role, sp.duration, reason)
		r.Form.Start = sp.start
		return r, true
	}
	return h.submitScheduled(ctx, c.User, role, sp.duration, sp.start, reason), true
}

// submitScheduled submits a request that starts at start.
func (h *Handler) submitScheduled(ctx context.Context, chatUser, roleName, dur, start, reason string) Reply {
	who, d, err := h.whoAndDuration(ctx, chatUser, dur)
	if err != nil {
		return h.fail(ctx, err)
	}
	in := access.SubmitInput{Requester: who, Role: roleName, Duration: d, Reason: reason,
		Start: start, Zone: h.zone(ctx, chatUser)}
	if strings.Contains(roleName, ",") {
		// Several roles in one request: each starts then.
		rs, err := h.svc.SubmitRoles(ctx, in, access.SplitRoles(roleName))
		if err != nil {
			return h.fail(ctx, err)
		}
		if len(rs) > 1 {
			reply := submittedText(rs)
			reply.Text += " They start at " + startText(rs[0]) + " if approved by then (at once if approved later)."
			return reply
		}
		return scheduledSubmitted(rs[0])
	}
	r, err := h.svc.Submit(ctx, in)
	if err != nil {
		return h.fail(ctx, err)
	}
	return scheduledSubmitted(r)
}

// scheduledSubmitted is the answer to a submitted request with a start.
func scheduledSubmitted(r *access.Request) Reply {
	return text("Request %s for *%s* (%s from %s) sent for approval to %s. It is granted at its start if approved by then (at once if approved later). You will hear back here.",
		r.ID, r.Role, access.FormatDuration(r.Duration), startText(r), strings.Join(r.Approvers, ", "))
}

// startText renders a request's start: UTC, and the wall clock of the
// zone it was given in when that is another.
func startText(r *access.Request) string {
	s := stamp(r.StartsAt)
	if r.StartZone == "" || r.StartZone == "UTC" {
		return s
	}
	loc, err := time.LoadLocation(r.StartZone)
	if err != nil {
		return s
	}
	return s + " (" + r.StartsAt.In(loc).Format("2006-01-02 15:04") + " " + r.StartZone + ")"
}

// scheduleRefusalText words the refusals of scheduled access.
func scheduleRefusalText(r *access.Refusal) (string, bool) {
	when := func() string {
		s := stamp(r.At)
		if loc, err := time.LoadLocation(r.Zone); err == nil && r.Zone != "" && r.Zone != "UTC" {
			s += " (" + r.At.In(loc).Format("2006-01-02 15:04") + " " + r.Zone + ")"
		}
		return s
	}
	switch r.Code {
	case access.RefuseBadStart:
		return fmt.Sprintf("%q is not a start time; use 22:00 (the next 22:00), 2026-12-01T22:00 (in your time zone) or 2026-12-01T22:00+01:00", r.Other), true
	case access.RefuseStartInGap:
		return fmt.Sprintf("%q does not exist in %s on %s: the clocks skip that hour; pick another time", r.Other, r.Zone, r.At.Format("2006-01-02")), true
	case access.RefuseStartPast:
		return fmt.Sprintf("the start %s has passed; leave the start out to ask for access now", when()), true
	case access.RefuseStartTooFar:
		return fmt.Sprintf("the start %s is too far ahead: %s may be scheduled at most %s ahead", when(), r.Role, access.FormatDuration(r.Max)), true
	case access.RefuseAlreadyScheduled:
		return fmt.Sprintf("you already have %s scheduled from %s (request %s); revoke it with `/access revoke %s` first", r.Role, stamp(r.At), r.ID, r.ID), true
	}
	return "", false
}

// scheduledStatus says what a request with a start is waiting for, ""
// when that is nothing particular to its start.
func scheduledStatus(r *access.Request) string {
	switch {
	case r.StartsAt.IsZero():
		return ""
	case r.Scheduled():
		return "approved by " + approvedBy(r) + ", scheduled: starts at " + startText(r)
	case r.State == access.StateEnded && r.EndReason == access.EndRevoked && r.GrantedAt.IsZero():
		return "revoked by " + r.EndedBy + " at " + stamp(r.EndedAt) + ", before its start; nothing was granted"
	}
	return ""
}

// scheduledNotice is the requester's DM when a request with a start is
// approved: when it starts, and a button to revoke it before then.
func scheduledNotice(r *access.Request) Message {
	return Message{Title: "Request " + r.ID + " is approved: " + r.Role + " starts at " + stamp(r.StartsAt), Color: "good",
		Text: fmt.Sprintf("You get *%s* at %s for %s (%s). Revoke it before then with the button or `/access revoke %s`.",
			r.Role, startText(r), access.FormatDuration(r.Duration), approvedLine(r), r.ID),
		Buttons: []Button{{Label: "Revoke", Action: ActionRevoke, Value: r.ID, Style: "danger"}}}
}
