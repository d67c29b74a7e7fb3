package access

import (
	"context"
	"errors"
	"fmt"
	"strings"
)

// Decide records approver's decision on a pending request. Authorisation is
// checked inside the compare-and-set, against the approvers at decision
// time: refusals are *Refusal wrapping ErrSelfApproval or ErrNotAllowed,
// or a *StateError (ErrAlreadyDecided, ErrTimedOut) when the request is no
// longer pending; none of them changes anything. A deny by any eligible
// approver ends the request; the Needed-th distinct approval approves it and
// provisions the grant (a request whose StartsAt lies ahead stays approved
// and is granted at its start; see schedule.go). Clicking twice never
// counts twice.
func (s *Service) Decide(ctx context.Context, id, approver string, approve bool, reason string) (*Request, error) {
	approver = normID(approver)
	if approver == "" {
		return nil, &Refusal{Code: RefuseDecideNoIdentity, Err: ErrNoIdentity}
	}
	cur, err := s.Get(ctx, id)
	if err != nil {
		return nil, err
	}
	role, ok := s.policy.Role(cur.Role)
	if !ok {
		return nil, &Refusal{Code: RefuseRoleGone, Err: ErrUnknownRole, ID: cur.ID, Role: cur.Role}
	}
	if len([]rune(reason)) > MaxReasonLen {
		return nil, &Refusal{Code: RefuseReasonTooLong, Err: ErrReasonTooLong, Limit: MaxReasonLen}
	}
	reason = strings.TrimSpace(reason)
	now := s.clock.Now()
	eligible, _ := s.approversAt(ctx, role, cur.Requester, now)
	var escalated []string // may decide once the request is escalated
	if cur.Escalated() || !cur.EscalateAt.IsZero() {
		escalated = s.escalationAt(ctx, role, cur.Requester, now)
	}
	var became State
	r, err := s.store.Update(ctx, cur.ID, func(r *Request) ([]AuditEvent, error) {
		may := r.deciders(eligible, escalated)
		// Someone who is neither involved nor an approver now learns
		// nothing about the request's state (a deny reason, who decided).
		if !contains(may, approver) && !s.involved(r, approver) {
			return nil, &Refusal{Code: RefuseNotApprover, Err: ErrNotAllowed, ID: r.ID, Role: r.Role}
		}
		if r.State != StatePending {
			return nil, stateErr(r, "pending")
		}
		if !now.Before(r.PendingUntil) {
			return nil, &StateError{ID: r.ID, State: StateTimedOut, Want: "pending", Err: ErrTimedOut}
		}
		if approver == r.Requester && !role.SelfApprove {
			return nil, &Refusal{Code: RefuseSelfDecide, Err: ErrSelfApproval, ID: r.ID, Role: r.Role}
		}
		if !contains(may, approver) {
			return nil, &Refusal{Code: RefuseNotApproverNow, Err: ErrNotAllowed, ID: r.ID, Role: r.Role, People: may}
		}
		if r.DecidedBy(approver) {
			return nil, &Refusal{Code: RefuseApprovedAlready, Err: ErrAlreadyDecided, ID: r.ID, Limit: r.Needed, Count: r.Approvals()}
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
			s.onApproval(r, approver, now)
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
	if r.Scheduled() {
		s.wake(r) // granted at its start, through the due index
		return r, nil
	}
	return s.provision(ctx, r.ID)
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
			return nil, &Refusal{Code: RefuseCancelNotYours, Err: ErrNotAllowed, ID: r.ID, User: r.Requester}
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
