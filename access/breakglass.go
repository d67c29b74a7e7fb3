package access

import (
	"context"
	"errors"
	"strings"
)

// BreakGlass grants a role at once, without approval, to a user on the
// break-glass list for a role that allows it. The grant is flagged,
// announced in the security channel and waits for a security
// acknowledgement (Acknowledge). Refusals are *Refusal values.
func (s *Service) BreakGlass(ctx context.Context, in SubmitInput) (*Request, error) {
	role, d, reason, err := s.validate(in)
	if err != nil {
		return nil, err
	}
	requester := normID(in.Requester)
	if !s.policy.MayBreakGlass(requester) {
		return nil, &Refusal{Code: RefuseNotBreakGlassUser, Err: ErrNotAllowed, Role: role.Name}
	}
	if !role.BreakGlass {
		return nil, &Refusal{Code: RefuseNoBreakGlass, Err: ErrNotAllowed, Role: role.Name}
	}
	if err := s.overlap(ctx, requester, role); err != nil {
		return nil, err
	}
	if err := s.checkUser(ctx, role, requester); err != nil {
		return nil, err
	}
	now := s.clock.Now()
	r := &Request{
		ID: NewID(), Kind: KindBreakGlass, Requester: requester, Role: role.Name, Provider: role.Provider,
		Group: role.Group, Duration: d, Reason: reason, State: StateApproved, CreatedAt: now, UpdatedAt: now,
	}
	r.announce(Announcement{ID: "break_glass", Type: EvBreakGlass, Actor: requester, Reason: reason, At: now})
	ev := s.event(r, ActBreakGlass, requester, "", StateApproved, reason)
	ev.Detail = "granted without approval for " + FormatDuration(d)
	// As for requests: the duplicate check and the write under the
	// per-requester guard, with a deadline of their own.
	wctx, cancel := s.writeCtx(ctx)
	defer cancel()
	err = s.createGuarded(wctx, r, ev, func() error { return s.overlap(wctx, requester, role) })
	if err != nil {
		return nil, err
	}
	s.log.WarnContext(ctx, "break-glass access", "request_id", r.ID, "requester", requester, "role", role.Name, "duration", FormatDuration(d))
	s.wake(r)
	s.deliver(ctx, r) // the announcement was stored with the request; posted until delivered
	return s.provision(ctx, r.ID)
}

// Acknowledge records the security team's acknowledgement of a
// break-glass grant. The user themself cannot acknowledge; when the policy
// names acknowledgers only they (and admins) can. Acknowledging twice is a
// *Refusal naming who did first.
func (s *Service) Acknowledge(ctx context.Context, id, by string) (*Request, error) {
	by = normID(by)
	now := s.clock.Now()
	r, err := s.store.Update(ctx, strings.TrimSpace(id), func(r *Request) ([]AuditEvent, error) {
		// Who may acknowledge is checked first: anyone else learns nothing
		// about the request (its kind, who acknowledged it).
		if !s.policy.MayAcknowledge(by, r.Requester) {
			if by == r.Requester {
				return nil, &Refusal{Code: RefuseSelfAcknowledge, Err: ErrSelfApproval, ID: r.ID}
			}
			if !s.involved(r, by) {
				return nil, uninvolved(r.ID)
			}
			return nil, &Refusal{Code: RefuseNotAcknowledger, Err: ErrNotAllowed, ID: r.ID, People: s.policy.Acknowledgers}
		}
		if r.Kind != KindBreakGlass {
			return nil, &Refusal{Code: RefuseNotBreakGlass, Err: ErrNotAllowed, ID: r.ID}
		}
		if r.AckBy != "" {
			return nil, &Refusal{Code: RefuseAcknowledged, Err: ErrAlreadyDecided, ID: r.ID, User: r.AckBy}
		}
		r.AckBy = by
		r.AckAt = now
		s.owe(r, EvAcked, by, "", now)
		return []AuditEvent{s.event(r, ActAcknowledged, by, r.State, r.State, "")}, nil
	})
	if errors.Is(err, ErrNotFound) {
		return nil, noRequest(id)
	}
	if err != nil {
		return nil, err
	}
	return s.deliver(ctx, r), nil
}
