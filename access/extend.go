package access

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// Extend asks for more time on an active grant. It creates an extension
// request that needs approval like any request; when approved, the grant's
// end moves by d. The new end may be at most the role's max_duration from
// the moment of asking. Only the grant's holder may ask.
func (s *Service) Extend(ctx context.Context, id, by string, d time.Duration, reason string) (*Request, error) {
	by = normID(by)
	cur, err := s.Get(ctx, id)
	if err != nil {
		return nil, err
	}
	if cur.Requester != by {
		if !s.involved(cur, by) {
			return nil, uninvolved(cur.ID)
		}
		return nil, &Refusal{Code: RefuseExtendNotYours, Err: ErrNotAllowed, ID: cur.ID, User: cur.Requester}
	}
	if cur.State != StateActive {
		return nil, &Refusal{Code: RefuseNothingToExtend, Err: ErrNotActive, ID: cur.ID, State: cur.State}
	}
	if cur.Kind == KindRotation {
		return nil, &Refusal{Code: RefuseShiftGrant, Err: ErrNotAllowed, ID: cur.ID}
	}
	role, d, reason, err := s.validate(SubmitInput{Requester: by, Role: cur.Role, Duration: d, Reason: reason})
	if err != nil {
		return nil, err
	}
	if err := s.gate(ctx, role, by, reason); err != nil { // requesters and reason_pattern (gate.go)
		return nil, err
	}
	now := s.clock.Now()
	if newEnd := cur.EndsAt.Add(d); newEnd.Sub(now) > role.MaxDuration {
		return nil, &Refusal{Code: RefuseExtendTooLong, Err: ErrTooLong, ID: cur.ID, Role: role.Name, Duration: d, At: newEnd,
			Max: role.MaxDuration, Left: (role.MaxDuration - cur.EndsAt.Sub(now)).Truncate(time.Minute)}
	}
	if err := s.pendingExtension(ctx, by, role, cur.ID); err != nil {
		return nil, err
	}
	return s.create(ctx, KindExtension, cur.ID, by, role, d, reason)
}

// errPastMax says an extension would take its grant past the role's
// maximum; applyExtension fails the extension with the message.
type errPastMax struct{ msg string }

func (e *errPastMax) Error() string { return e.msg }

// applyExtension moves the target grant's end and closes the extension.
// The maximum is checked again inside the compare-and-set: the grant's new
// end may be at most the role's max_duration from the moment the extension
// is applied, whatever other extensions were applied since it was asked
// for; otherwise the extension fails and the grant keeps its end.
func (s *Service) applyExtension(ctx context.Context, ext *Request, by string) (*Request, error) {
	now := s.clock.Now()
	target, err := s.store.Update(ctx, ext.Target, func(t *Request) ([]AuditEvent, error) {
		if t.State != StateActive {
			return nil, stateErr(t, "active")
		}
		role, ok := s.policy.Role(t.Role)
		if !ok {
			return nil, &errPastMax{fmt.Sprintf("role %s is no longer configured, so %s cannot be extended", t.Role, t.ID)}
		}
		if end := t.EndsAt.Add(ext.Duration); end.Sub(now) > role.MaxDuration {
			return nil, &errPastMax{fmt.Sprintf("extending %s by %s would end it at %s, more than the maximum of %s from now; it still ends at %s",
				t.ID, FormatDuration(ext.Duration), end.UTC().Format("15:04 MST"), FormatDuration(role.MaxDuration), t.EndsAt.UTC().Format("15:04 MST"))}
		}
		old := t.EndsAt
		t.EndsAt = t.EndsAt.Add(ext.Duration)
		t.Extensions++
		t.UpdatedAt = now
		s.owe(t, EvExtended, by, ext.Reason, now)
		ev := s.event(t, ActExtended, by, StateActive, StateActive, ext.Reason)
		ev.Detail = fmt.Sprintf("by %s through %s: %s -> %s", FormatDuration(ext.Duration), ext.ID,
			old.UTC().Format(time.RFC3339), t.EndsAt.UTC().Format(time.RFC3339))
		return []AuditEvent{ev}, nil
	})
	var failure string
	if err != nil {
		var se *StateError
		var pm *errPastMax
		switch {
		case errors.As(err, &pm):
			failure = pm.msg
		case errors.As(err, &se):
			failure = fmt.Sprintf("request %s was %s by the time the extension was approved", ext.Target, se.State)
		default:
			return nil, err
		}
	}
	r, err := s.store.Update(ctx, ext.ID, func(r *Request) ([]AuditEvent, error) {
		if r.State != StateApproved {
			return nil, stateErr(r, "approved")
		}
		r.UpdatedAt = now
		if failure != "" {
			r.State = StateFailed
			r.Failure = failure
			s.owe(r, EvFailed, SystemActor, failure, now)
			ev := s.event(r, ActGrantFailed, SystemActor, StateApproved, StateFailed, "")
			ev.Detail = failure
			return []AuditEvent{ev}, nil
		}
		r.State = StateEnded
		r.EndReason = EndApplied
		r.GrantedAt = now
		r.EndsAt = target.EndsAt
		r.EndedAt = now
		ev := s.event(r, ActExtended, SystemActor, StateApproved, StateEnded, "")
		ev.Detail = "applied to " + ext.Target
		return []AuditEvent{ev}, nil
	})
	if err != nil {
		return nil, err
	}
	if failure != "" {
		return s.deliver(ctx, r), nil
	}
	s.wake(target)
	s.deliver(ctx, target)
	return r, nil
}
