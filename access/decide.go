package access

import (
	"context"
	"errors"
	"fmt"
	"strings"
)

// Decide records approver's decision on a pending request. Authorisation is
// checked inside the compare-and-set, against the approvers at decision
// time: refusals are *UserError wrapping ErrSelfApproval or ErrNotAllowed,
// or a *StateError (ErrAlreadyDecided, ErrTimedOut) when the request is no
// longer pending; none of them changes anything. A deny by any eligible
// approver ends the request; the Needed-th distinct approval approves it and
// provisions the grant. Clicking twice never counts twice.
func (s *Service) Decide(ctx context.Context, id, approver string, approve bool, reason string) (*Request, error) {
	approver = normID(approver)
	if approver == "" {
		return nil, userErr(ErrNoIdentity, "your chat account has no email address mapped, so accessbot cannot tell who you are")
	}
	cur, err := s.Get(ctx, id)
	if err != nil {
		return nil, err
	}
	role, ok := s.policy.Role(cur.Role)
	if !ok {
		return nil, userErr(ErrUnknownRole, "role %s is no longer configured; nobody can decide request %s", cur.Role, cur.ID)
	}
	if len([]rune(reason)) > MaxReasonLen {
		return nil, userErr(ErrReasonTooLong, "the reason is too long; the limit is %d characters", MaxReasonLen)
	}
	reason = strings.TrimSpace(reason)
	now := s.clock.Now()
	eligible, _ := s.approversAt(ctx, role, cur.Requester, now)
	var became State
	r, err := s.store.Update(ctx, cur.ID, func(r *Request) ([]AuditEvent, error) {
		// Someone who is neither involved nor an approver now learns
		// nothing about the request's state (a deny reason, who decided).
		if !contains(eligible, approver) && !s.involved(r, approver) {
			return nil, userErr(ErrNotAllowed, "you are not an approver of %s right now, so you cannot decide request %s", r.Role, r.ID)
		}
		if r.State != StatePending {
			return nil, stateErr(r, "pending")
		}
		if !now.Before(r.PendingUntil) {
			return nil, &StateError{ID: r.ID, State: StateTimedOut, Want: "pending", Err: ErrTimedOut}
		}
		if approver == r.Requester && !role.SelfApprove {
			return nil, userErr(ErrSelfApproval, "you cannot approve or deny your own request for %s; it needs another approver", r.Role)
		}
		if !contains(eligible, approver) {
			return nil, userErr(ErrNotAllowed, "you are not an approver of %s right now; who may decide: %s", r.Role, listOrNobody(eligible))
		}
		if r.DecidedBy(approver) {
			return nil, userErr(ErrAlreadyDecided, "you already approved request %s; it needs %d approval(s), %d so far", r.ID, r.Needed, r.Approvals())
		}
		r.Decisions = append(r.Decisions, Decision{By: approver, Approve: approve, Reason: reason, At: now})
		r.UpdatedAt = now
		if !approve {
			r.State = StateDenied
			became = StateDenied
			s.owe(r, EvDenied, approver, reason, now)
			return []AuditEvent{s.event(r, ActDenied, approver, StatePending, StateDenied, reason)}, nil
		}
		s.owe(r, EvApproval, approver, "", now)
		ev := s.event(r, ActApproved, approver, StatePending, StatePending, reason)
		if r.Approvals() >= r.Needed {
			r.State = StateApproved
			ev.To = StateApproved
			became = StateApproved
		} else {
			became = StatePending
			ev.Detail = fmt.Sprintf("%d of %d approvals", r.Approvals(), r.Needed)
		}
		return []AuditEvent{ev}, nil
	})
	if err != nil {
		return nil, err
	}
	s.log.InfoContext(ctx, "decision", "request_id", r.ID, "approver", approver, "approve", approve, "state", string(r.State))
	r = s.deliver(ctx, r)
	if became != StateApproved {
		return r, nil
	}
	if r.Kind == KindExtension {
		return s.applyExtension(ctx, r, approver)
	}
	return s.provision(ctx, r.ID)
}

func listOrNobody(l []string) string {
	if len(l) == 0 {
		return "nobody"
	}
	return strings.Join(l, ", ")
}

// Cancel withdraws a pending request; only its requester may.
func (s *Service) Cancel(ctx context.Context, id, by string) (*Request, error) {
	by = normID(by)
	now := s.clock.Now()
	r, err := s.store.Update(ctx, strings.TrimSpace(id), func(r *Request) ([]AuditEvent, error) {
		if r.Requester != by {
			if !s.involved(r, by) {
				return nil, uninvolved(r.ID)
			}
			return nil, userErr(ErrNotAllowed, "only %s can cancel request %s", r.Requester, r.ID)
		}
		if r.State != StatePending {
			return nil, stateErr(r, "pending")
		}
		r.State = StateCancelled
		r.UpdatedAt = now
		s.owe(r, EvCancelled, by, "", now)
		return []AuditEvent{s.event(r, ActCancelled, by, StatePending, StateCancelled, "")}, nil
	})
	if errors.Is(err, ErrNotFound) {
		return nil, noRequest(id)
	}
	if err != nil {
		return nil, err
	}
	return s.deliver(ctx, r), nil
}
