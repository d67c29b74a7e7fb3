package access

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"
)

// Scheduled access: a request may ask for access that starts later
// (Request.StartsAt, e.g. a maintenance window tonight). It is approved
// like any other request, any time before its start; an approved request
// waits (state approved, shown as "scheduled") until StartsAt, when the
// expiry engine finds it in the due index, marks it started (ActStarted)
// and grants it. The grant lasts Duration from the moment it is made:
// EndsAt = grant time + Duration, which is StartsAt + Duration when the
// grant is on time, and the full Duration after a late approval (approved
// after StartsAt: granted at once) or a grant retried after provider
// errors. A request still pending at StartsAt keeps waiting for approval
// until its pending_ttl runs out, like any other. Revoking a scheduled
// request before its start ends it without calling the provider.

// DefaultMaxScheduleAhead is how far ahead a start may lie when the role
// sets no Role.MaxScheduleAhead.
const DefaultMaxScheduleAhead = 14 * 24 * time.Hour

// ErrBadStart is wrapped by refusals of a start time (unreadable, a local
// time that does not exist, in the past, too far ahead).
var ErrBadStart = errors.New("bad start time")

// The refusals of scheduled access.
const (
	RefuseBadStart         RefusalCode = "bad_start"         // Other (as typed) is no start time (ErrBadStart)
	RefuseStartInGap       RefusalCode = "start_in_gap"      // Other does not exist in Zone: clocks skip it (ErrBadStart)
	RefuseStartPast        RefusalCode = "start_past"        // At (the start) has passed (ErrBadStart)
	RefuseStartTooFar      RefusalCode = "start_too_far"     // At is more than Max ahead for Role (ErrBadStart)
	RefuseAlreadyScheduled RefusalCode = "already_scheduled" // Role is scheduled from At by ID (ErrDuplicate)
)

// maxScheduleAhead is the role's limit, or the default.
func (r Role) maxScheduleAhead() time.Duration {
	if r.MaxScheduleAhead > 0 {
		return r.MaxScheduleAhead
	}
	return DefaultMaxScheduleAhead
}

// awaitingStart reports whether the request has a start that has not
// been reached yet: approved, it must not be granted.
func (r *Request) awaitingStart() bool {
	return !r.StartsAt.IsZero() && r.StartedAt.IsZero()
}

// Scheduled reports whether r is approved and waits for its start.
func (r *Request) Scheduled() bool {
	return r.State == StateApproved && r.awaitingStart()
}

// startLayouts are the local date-times ParseStart reads (no zone).
var startLayouts = []string{"2006-01-02T15:04", "2006-01-02T15:04:05", "2006-01-02 15:04", "2006-01-02 15:04:05"}

// zonedLayouts are the date-times with a zone offset ParseStart reads.
var zonedLayouts = []string{time.RFC3339, "2006-01-02T15:04Z07:00"}

// ParseStart reads the start of a scheduled request as a person typed it:
// "22:00" (today in loc, or tomorrow when that time has passed at now),
// a local date-time "2026-12-01T22:00" (or with seconds, or a space for
// the T) in loc, or a date-time with a zone ("2026-12-01T22:00+01:00",
// "…Z"). A local time that falls into a daylight-saving gap (does not
// exist in loc) is refused; one that occurs twice (clocks turned back)
// is the earlier. Errors are *Refusal wrapping ErrBadStart. It does not
// check that the start lies ahead; Submit does.
func ParseStart(s string, now time.Time, loc *time.Location) (time.Time, error) {
	if loc == nil {
		loc = time.UTC
	}
	s = strings.TrimSpace(s)
	bad := &Refusal{Code: RefuseBadStart, Err: ErrBadStart, Other: clip(s, 40)}
	if s == "" {
		return time.Time{}, bad
	}
	if hh, mm, ok := clockTime(s); ok {
		today := now.In(loc)
		for day := 0; day < 3; day++ {
			t, err := localTime(today.Year(), today.Month(), today.Day()+day, hh, mm, 0, loc, s)
			if err != nil {
				if day == 0 {
					continue // today's time does not exist: tomorrow's does
				}
				return time.Time{}, err
			}
			if t.After(now) {
				return t, nil
			}
		}
		return time.Time{}, bad
	}
	for _, l := range zonedLayouts {
		if t, err := time.Parse(l, s); err == nil {
			return t, nil
		}
	}
	for _, l := range startLayouts {
		t, err := time.ParseInLocation(l, s, time.UTC) // the wall clock only
		if err != nil {
			continue
		}
		return localTime(t.Year(), t.Month(), t.Day(), t.Hour(), t.Minute(), t.Second(), loc, s)
	}
	return time.Time{}, bad
}

// clockTime reads "22:00" or "9:30".
func clockTime(s string) (hh, mm int, ok bool) {
	t, err := time.Parse("15:04", s)
	if err != nil {
		return 0, 0, false
	}
	return t.Hour(), t.Minute(), true
}

// localTime returns the wall-clock time in loc: refused (RefuseStartInGap)
// when loc skips it, the earlier instant when it occurs twice.
func localTime(y int, mo time.Month, d, hh, mm, ss int, loc *time.Location, typed string) (time.Time, error) {
	t := time.Date(y, mo, d, hh, mm, ss, 0, loc)
	same := func(u time.Time) bool {
		u = u.In(loc)
		return u.Day() == t.Day() && u.Hour() == hh && u.Minute() == mm && u.Second() == ss
	}
	if t.Hour() != hh || t.Minute() != mm || t.Second() != ss {
		return time.Time{}, &Refusal{Code: RefuseStartInGap, Err: ErrBadStart, Other: clip(typed, 40), Zone: loc.String(),
			At: time.Date(y, mo, d, 0, 0, 0, 0, time.UTC)}
	}
	for _, back := range []time.Duration{time.Hour, 30 * time.Minute} {
		if e := t.Add(-back); same(e) {
			return e, nil
		}
	}
	return t, nil
}

// startOf returns the start a submit asks for (zero: at once), checked
// against now and the role's max_schedule_ahead, with the zone it was
// given in.
func (s *Service) startOf(in SubmitInput, role Role) (time.Time, string, error) {
	now := s.clock.Now()
	start := in.StartsAt
	loc := in.Zone
	if loc == nil {
		loc = time.UTC
	}
	if start.IsZero() {
		if strings.TrimSpace(in.Start) == "" {
			return time.Time{}, "", nil
		}
		t, err := ParseStart(in.Start, now, loc)
		if err != nil {
			return time.Time{}, "", err
		}
		start = t
	}
	if !start.After(now) {
		return time.Time{}, "", &Refusal{Code: RefuseStartPast, Err: ErrBadStart, At: start, Zone: loc.String(), Role: role.Name}
	}
	if limit := role.maxScheduleAhead(); start.Sub(now) > limit {
		return time.Time{}, "", &Refusal{Code: RefuseStartTooFar, Err: ErrBadStart, At: start, Zone: loc.String(),
			Role: role.Name, Max: limit}
	}
	return start, loc.String(), nil
}

// scheduled sets the start on a request being created and says so in its
// submit audit event.
func scheduled(start time.Time, zone string) func(*Request, *AuditEvent) {
	return func(r *Request, ev *AuditEvent) {
		if start.IsZero() {
			return
		}
		r.StartsAt, r.StartZone = start, zone
		when := "starts at " + start.UTC().Format(time.RFC3339)
		if zone != "" && zone != "UTC" {
			when += " (" + start.In(zoneOr(zone)).Format("2006-01-02 15:04") + " " + zone + ")"
		}
		if ev.Detail != "" {
			ev.Detail += "; "
		}
		ev.Detail += when
	}
}

func zoneOr(name string) *time.Location {
	if l, err := time.LoadLocation(name); err == nil {
		return l
	}
	return time.UTC
}

// onApproval runs inside the compare-and-set that approves r: a request
// whose start has passed is started at once (granted by the caller), one
// whose start lies ahead waits for it and its requester is told.
func (s *Service) onApproval(r *Request, approver string, now time.Time) {
	if !r.awaitingStart() || r.Kind == KindExtension {
		return
	}
	if !now.Before(r.StartsAt) {
		r.StartedAt = now
		return
	}
	s.owe(r, EvScheduled, approver, "", now)
}

// start marks an approved request whose start has come as started
// (ActStarted), so that provision may grant it, and grants it.
func (s *Service) start(ctx context.Context, id string) (*Request, error) {
	now := s.clock.Now()
	r, err := s.store.Update(ctx, id, func(r *Request) ([]AuditEvent, error) {
		if !r.Scheduled() || now.Before(r.StartsAt) {
			return nil, errNothingDue
		}
		r.StartedAt = now
		r.UpdatedAt = now
		ev := s.event(r, ActStarted, SystemActor, StateApproved, StateApproved, "")
		ev.Detail = "scheduled start " + r.StartsAt.UTC().Format(time.RFC3339) + " reached; granting"
		if late := now.Sub(r.StartsAt); late >= time.Second {
			ev.Detail += fmt.Sprintf(" (%s late)", late.Round(time.Second))
		}
		return []AuditEvent{ev}, nil
	})
	if errors.Is(err, errNothingDue) {
		return s.store.Get(ctx, id)
	}
	if err != nil {
		return nil, err
	}
	s.log.InfoContext(ctx, "scheduled access starts", "request_id", r.ID, "requester", r.Requester, "role", r.Role,
		"starts_at", r.StartsAt)
	return s.provision(ctx, r.ID)
}

// errStarted: the scheduled request reached its start meanwhile.
var errStarted = errors.New("scheduled request started")

// revokeScheduled ends an approved request before its start: nothing was
// granted, so the provider is not called. When the start was reached
// meanwhile, the grant is ended the usual way (endGrant).
func (s *Service) revokeScheduled(ctx context.Context, id, by, reason string) (*Request, error) {
	now := s.clock.Now()
	r, err := s.store.Update(ctx, id, func(r *Request) ([]AuditEvent, error) {
		if !r.Scheduled() {
			return nil, errStarted
		}
		r.State = StateEnded
		r.EndReason = EndRevoked
		r.EndedBy = by
		r.EndedAt = now
		r.UpdatedAt = now
		r.RetryAt, r.Attempts, r.FailingSince, r.LastError = time.Time{}, 0, time.Time{}, ""
		s.owe(r, EvEnded, by, reason, now)
		ev := s.event(r, ActRevokedBeforeStart, by, StateApproved, StateEnded, reason)
		ev.Detail = string(EndRevoked) + " before its scheduled start " + r.StartsAt.UTC().Format(time.RFC3339) + "; nothing was granted"
		return []AuditEvent{ev}, nil
	})
	if errors.Is(err, errStarted) {
		return s.endGrant(ctx, id, EndRevoked, by, reason)
	}
	if err != nil {
		return nil, err
	}
	s.log.InfoContext(ctx, "scheduled access revoked before its start", "request_id", r.ID, "requester", r.Requester,
		"role", r.Role, "by", by)
	return s.deliver(ctx, r), nil
}
