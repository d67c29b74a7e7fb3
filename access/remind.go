package access

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"
)

// Reminders and escalation of undecided requests.
//
// A role may ask for its pending requests to be brought up again:
// remind_after reminds the approvers who have not decided, again after
// twice and four times that interval (MaxReminders in all), and
// escalate_after adds the role's escalation people (named users and the
// on-call people of rotations) to those who may decide. Both are
// scheduled at submit time on the request itself (RemindAt, EscalateAt),
// so the due index brings the request back to the expiry engine at that
// time, like an expiry; Process then records the reminder or the
// escalation in one compare-and-set with its audit event and its outbox
// entry. A replica that dies, a restart or two replicas sweeping at once
// therefore neither lose nor repeat one: the write happens once, and the
// outbox delivers its messages once in effect. A request that is decided,
// cancelled or timed out is no longer pending, and its reminder times are
// no longer part of its due time.

// MaxReminders is how many reminders a pending request gets at most.
const MaxReminders = 3

// scheduleNudges sets the first reminder and the escalation of a new
// pending request r of role, created at now. Times at or after the
// request's PendingUntil are left out: the request times out first.
func scheduleNudges(r *Request, role Role, now time.Time) {
	if role.RemindAfter > 0 {
		r.RemindEvery = role.RemindAfter
		if at := now.Add(role.RemindAfter); at.Before(r.PendingUntil) {
			r.RemindAt = at
		}
	}
	if role.EscalateAfter > 0 && len(role.EscalateUsers)+len(role.EscalateRotations) > 0 {
		if at := now.Add(role.EscalateAfter); at.Before(r.PendingUntil) {
			r.EscalateAt = at
		}
	}
}

// pendingDue is the due time of a pending request: its next reminder or
// escalation, or its time-out, whichever comes first.
func (r *Request) pendingDue() (time.Time, bool) {
	at, ok := r.PendingUntil, !r.PendingUntil.IsZero()
	for _, n := range []time.Time{r.RemindAt, r.EscalateAt} {
		if !n.IsZero() && (!ok || n.Before(at)) {
			at, ok = n, true
		}
	}
	return at, ok
}

// reminderDue reports whether r's next reminder is due at now.
func (r *Request) reminderDue(now time.Time) bool {
	return !r.RemindAt.IsZero() && !now.Before(r.RemindAt) && now.Before(r.PendingUntil)
}

// escalationDue reports whether r's escalation is due at now.
func (r *Request) escalationDue(now time.Time) bool {
	return !r.EscalateAt.IsZero() && !now.Before(r.EscalateAt) && now.Before(r.PendingUntil)
}

// nudgeDue reports whether a reminder or the escalation of pending r is
// due at now (before its time-out).
func (r *Request) nudgeDue(now time.Time) bool {
	return r.State == StatePending && (r.reminderDue(now) || r.escalationDue(now))
}

// Escalated reports whether the request was escalated.
func (r *Request) Escalated() bool { return !r.EscalatedAt.IsZero() }

// Undecided returns who was asked to decide r (its approvers and, once
// escalated, the people it was escalated to) and has not decided yet,
// without the requester: the people a reminder goes to.
func (r *Request) Undecided() []string {
	var out []string
	for _, p := range append(append([]string(nil), r.Approvers...), r.EscalatedTo...) {
		if SameIdentity(p, r.Requester) || r.DecidedBy(p) || contains(out, p) {
			continue
		}
		out = append(out, p)
	}
	return out
}

// deciders returns who may decide r: eligible (the approvers at decision
// time) and, once r is escalated, escalated (the role's escalation people
// at decision time). It is called inside the decision's compare-and-set,
// so an escalation recorded concurrently counts or not as one whole.
func (r *Request) deciders(eligible, escalated []string) []string {
	if !r.Escalated() || len(escalated) == 0 {
		return eligible
	}
	out := append([]string(nil), eligible...)
	for _, p := range escalated {
		if !contains(out, p) {
			out = append(out, p)
		}
	}
	return out
}

// escalationAt returns the escalation people of role for a request of
// requester at time at: its named escalation users and the on-call people
// of its escalation rotations, without the requester unless the role
// allows self-approval. A rotation that cannot be asked is logged and
// left out (never "anyone").
func (s *Service) escalationAt(ctx context.Context, role Role, requester string, at time.Time) []string {
	if len(role.EscalateUsers)+len(role.EscalateRotations) == 0 {
		return nil
	}
	esc := role
	esc.ApproverUsers, esc.ApproverRotations = role.EscalateUsers, role.EscalateRotations
	out, _ := s.approversAt(ctx, esc, requester, at)
	return out
}

// nudge sends the reminder and/or performs the escalation of pending
// request id that are due now, each recorded once: the request's reminder
// count and next reminder time, or its escalation, change in the same
// compare-and-set as the audit event and the outbox entry that tells
// people. Nothing is done (and no error returned) when nothing is due any
// more: another replica did it, or the request was decided meanwhile.
func (s *Service) nudge(ctx context.Context, id string) error {
	cur, err := s.store.Get(ctx, id)
	if err != nil {
		return err
	}
	now := s.clock.Now()
	var to []string
	if cur.escalationDue(now) {
		if role, ok := s.policy.Role(cur.Role); ok {
			to = s.escalationAt(ctx, role, cur.Requester, now)
		}
	}
	var reminded, escalated bool
	r, err := s.store.Update(ctx, id, func(r *Request) ([]AuditEvent, error) {
		reminded, escalated = false, false
		if r.State != StatePending || !now.Before(r.PendingUntil) {
			return nil, errNothingDue
		}
		var evs []AuditEvent
		if r.escalationDue(now) {
			evs = append(evs, s.escalate(r, to, now))
			escalated = true
		}
		if r.reminderDue(now) {
			evs = append(evs, s.remind(r, now))
			reminded = true
		}
		if len(evs) == 0 {
			return nil, errNothingDue
		}
		r.UpdatedAt = now
		return evs, nil
	})
	if errors.Is(err, errNothingDue) {
		return nil
	}
	if err != nil {
		return err
	}
	if escalated {
		s.log.InfoContext(ctx, "request escalated", "request_id", r.ID, "role", r.Role, "escalated_to", strings.Join(r.EscalatedTo, ","))
	}
	if reminded {
		s.log.InfoContext(ctx, "approvers reminded", "request_id", r.ID, "role", r.Role, "reminder", r.Reminders, "next_reminder", r.RemindAt)
	}
	r = s.deliver(ctx, r)
	s.wake(r)
	return nil
}

// escalate records the escalation of r to the people in to (computed at
// now), inside Store.Update: those who were not approvers already become
// EscalatedTo, and, when there is anyone new, they and the requester are
// told (EvEscalated).
func (s *Service) escalate(r *Request, to []string, now time.Time) AuditEvent {
	r.EscalateAt = time.Time{}
	r.EscalatedAt = now
	r.EscalatedTo = nil
	for _, p := range to {
		if !contains(r.Approvers, p) && !contains(r.EscalatedTo, p) {
			r.EscalatedTo = append(r.EscalatedTo, normID(p))
		}
	}
	ev := s.event(r, ActEscalated, SystemActor, StatePending, StatePending, "")
	after := FormatDuration(now.Sub(r.CreatedAt))
	if len(r.EscalatedTo) == 0 {
		ev.Detail = "undecided after " + after + "; escalation found nobody else to ask"
		return ev
	}
	ev.Detail = "undecided after " + after + "; escalated to " + strings.Join(r.EscalatedTo, ", ")
	s.owe(r, EvEscalated, SystemActor, after, now)
	return ev
}

// remind records the next reminder of r, inside Store.Update: counted,
// the next one scheduled (RemindEvery, then twice, then four times that,
// MaxReminders in all, never at or after the time-out), and the undecided
// approvers told (EvReminder).
func (s *Service) remind(r *Request, now time.Time) AuditEvent {
	r.Reminders++
	next := time.Time{}
	if r.Reminders < MaxReminders && r.RemindEvery > 0 {
		gap := r.RemindEvery << r.Reminders
		next = r.RemindAt.Add(gap)
		if !next.After(now) { // the engine was down: no burst of reminders
			next = now.Add(gap)
		}
		if !next.Before(r.PendingUntil) {
			next = time.Time{}
		}
	}
	r.RemindAt = next
	who := r.Undecided()
	ev := s.event(r, ActReminded, SystemActor, StatePending, StatePending, "")
	ev.Detail = fmt.Sprintf("reminder %d of %d to %s", r.Reminders, MaxReminders, strings.Join(who, ", "))
	if len(who) > 0 {
		s.owe(r, EvReminder, SystemActor, FormatDuration(now.Sub(r.CreatedAt)), now)
	}
	return ev
}
