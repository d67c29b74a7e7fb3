package access

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"
)

// Process does whatever is due for one request: post a security
// announcement still owed, remind the approvers of a pending request or
// escalate it (remind.go), time out a pending request past its TTL,
// start a scheduled request whose start has come (schedule.go), (re)try
// the grant of an approved one, start the revocation of an expired grant, retry a failing revocation or clean-up. It is what the
// expiry engine calls for each id in the due index; calling it for a
// request with nothing due is a no-op, so duplicate calls are harmless.
func (s *Service) Process(ctx context.Context, id string) error {
	r, err := s.store.Get(ctx, id)
	if errors.Is(err, ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	now := s.clock.Now()
	if at, ok := r.outboxDue(); ok && !now.Before(at) {
		s.deliver(ctx, r)
	}
	due, ok := r.stateDue()
	if !ok || now.Before(due) {
		return nil
	}
	switch r.State {
	case StatePending:
		if r.nudgeDue(now) {
			return s.nudge(ctx, r.ID)
		}
		return s.timeout(ctx, r.ID)
	case StateApproved:
		if r.Kind == KindExtension {
			_, err = s.applyExtension(ctx, r, SystemActor)
			return err
		}
		if r.awaitingStart() {
			_, err = s.start(ctx, r.ID)
			return err
		}
		_, err = s.provision(ctx, r.ID)
		return err
	case StateActive:
		reason := EndExpired
		if r.Kind == KindRotation {
			reason = EndShiftOver
		}
		_, err = s.endGrant(ctx, r.ID, reason, SystemActor, "")
		return err
	}
	if r.needsRemoval() {
		_, err = s.revoke(ctx, r.ID)
		return err
	}
	return nil
}

func (s *Service) timeout(ctx context.Context, id string) error {
	now := s.clock.Now()
	r, err := s.store.Update(ctx, id, func(r *Request) ([]AuditEvent, error) {
		if r.State != StatePending || now.Before(r.PendingUntil) {
			return nil, errNothingDue
		}
		r.State = StateTimedOut
		r.UpdatedAt = now
		s.owe(r, EvTimedOut, SystemActor, "", now)
		return []AuditEvent{s.event(r, ActTimedOut, SystemActor, StatePending, StateTimedOut, "")}, nil
	})
	if errors.Is(err, errNothingDue) {
		return nil
	}
	if err != nil {
		return err
	}
	s.log.InfoContext(ctx, "request timed out", "request_id", r.ID, "role", r.Role, "requester", r.Requester)
	s.deliver(ctx, r)
	return nil
}

var errNothingDue = errors.New("nothing due")

// endGrant moves an active grant to revoking and revokes it.
func (s *Service) endGrant(ctx context.Context, id string, why EndReason, by, reason string) (*Request, error) {
	now := s.clock.Now()
	r, err := s.store.Update(ctx, id, func(r *Request) ([]AuditEvent, error) {
		if r.State != StateActive {
			return nil, stateErr(r, "active")
		}
		if why == EndExpired || why == EndShiftOver {
			if now.Before(r.EndsAt) {
				return nil, errNothingDue // extended meanwhile
			}
		}
		r.State = StateRevoking
		r.EndReason = why
		r.EndedBy = by
		r.UpdatedAt = now
		r.RetryAt, r.Attempts, r.FailingSince, r.LastError = time.Time{}, 0, time.Time{}, ""
		ev := s.event(r, ActRevokeStart, by, StateActive, StateRevoking, reason)
		ev.Detail = string(why)
		return []AuditEvent{ev}, nil
	})
	if errors.Is(err, errNothingDue) {
		return s.store.Get(ctx, id)
	}
	if err != nil {
		return nil, err
	}
	return s.revoke(ctx, r.ID)
}

// revoke asks the provider to remove the membership of a revoking grant,
// or of a failed/ended request with a clean-up pending. On success the
// request ends (or its clean-up is done); a user the provider no longer
// knows holds no membership, so that ends it too, announced once. On
// failure a retry is scheduled with capped exponential backoff, for as
// long as it takes, every attempt audited, and the security channel is
// told once it has been failing for RevokeAlertAfter, and again when it
// finally succeeds. The provider call has AttemptTimeout; its outcome is
// recorded on a fresh context.
func (s *Service) revoke(ctx context.Context, id string) (*Request, error) {
	r, wctx, release, err := s.startWork(ctx, id, (*Request).needsRemoval)
	if err != nil || release == nil {
		return r, err
	}
	defer release()
	// Failing for RevokeAlertAfter already: say so before trying again
	// (another attempt may hang for its whole deadline).
	if !r.Alerted && !r.FailingSince.IsZero() && !s.clock.Now().Before(r.FailingSince.Add(s.opt.RevokeAlertAfter)) {
		now := s.clock.Now()
		got, err := s.store.Update(ctx, id, func(r *Request) ([]AuditEvent, error) {
			if !r.needsRemoval() {
				return nil, errNothingDue
			}
			ev, ok := s.alertDue(r, now)
			if !ok {
				return nil, errNothingDue
			}
			return []AuditEvent{ev}, nil
		})
		switch {
		case err == nil:
			r = got
			s.log.ErrorContext(ctx, "revocation keeps failing", "request_id", r.ID, "requester", r.Requester, "role", r.Role,
				"provider", r.Provider, "group", r.Group, "attempts", r.Attempts, "failing_since", r.FailingSince, "err", r.LastError)
			s.deliver(ctx, r)
		case !errors.Is(err, errNothingDue):
			return nil, err
		}
	}
	mctx, mrelease, cur, err := s.startMemberWork(ctx, wctx, r, (*Request).needsRemoval)
	if err != nil || mrelease == nil {
		return cur, err
	}
	defer mrelease()
	// Another live grant of the same group for the same person (a newer
	// request, a rotation shift) still needs the membership: end this one
	// without touching the provider, never cutting the newer grant short.
	keeper, err := s.keeper(ctx, r)
	if err != nil {
		return nil, err
	}
	var rerr error
	var sessions string // what the provider did to the user's sessions
	if keeper == nil {
		p := s.providers[r.Provider]
		if p == nil {
			rerr = fmt.Errorf("provider %q is not configured", r.Provider)
		} else {
			actx, acancel := s.attempt(mctx)
			g := Grant{RequestID: r.ID, Role: r.Role, Group: r.Group, User: r.Requester}
			rerr = p.Revoke(actx, g)
			acancel()
			sessions = sessionsNote(p, g)
		}
	}
	if rerr != nil && leaseLost(mctx) {
		return s.leftToOthers(ctx, r, "revoke", rerr)
	}
	bctx, bcancel := afterCall(ctx)
	defer bcancel()
	now := s.clock.Now()
	if gone := errors.Is(rerr, ErrUnknownUser); rerr == nil || gone {
		ended := false
		r, err = s.store.Update(bctx, id, func(r *Request) ([]AuditEvent, error) {
			if !r.needsRemoval() {
				return nil, stateErr(r, "revoking")
			}
			var ev AuditEvent
			ended = r.State == StateRevoking
			if ended {
				r.State = StateEnded
				r.EndedAt = now
				ev = s.event(r, ActRevoked, SystemActor, StateRevoking, StateEnded, "")
				ev.Detail = string(r.EndReason)
			} else {
				r.Cleanup = false
				ev = s.event(r, ActCleanedUp, SystemActor, r.State, r.State, "")
				ev.Detail = "membership removed"
			}
			r.UpdatedAt = now
			r.RetryAt = time.Time{}
			if ended {
				s.owe(r, EvEnded, r.EndedBy, "", now)
			}
			switch {
			case gone:
				why := fmt.Sprintf("%s no longer exists in %s, so no membership of %s group %s is left to remove",
					r.Requester, r.Provider, r.Provider, r.Group)
				ev.Detail += "; " + why
				r.LastError = rerr.Error()
				r.announce(Announcement{ID: "user_gone", Type: EvUserGone, Actor: SystemActor, Reason: why, At: now})
			case keeper != nil:
				r.KeepMembership = true
				ev.Detail += "; membership kept for " + keeper.ID + " until " + keeper.EndsAt.UTC().Format(time.RFC3339)
			case sessions != "":
				ev.Detail += "; " + sessions
			}
			if r.Alerted && !gone {
				r.announce(Announcement{ID: "revoke_recovered", Type: EvRevokeRecovered, Actor: SystemActor, At: now,
					Reason: fmt.Sprintf("removed after %d failed attempts since %s", r.Attempts, r.FailingSince.UTC().Format(time.RFC3339))})
			}
			return []AuditEvent{ev}, nil
		})
		if err != nil {
			return nil, err
		}
		s.log.InfoContext(ctx, "access removed", "request_id", r.ID, "requester", r.Requester, "role", r.Role,
			"provider", r.Provider, "group", r.Group, "end_reason", string(r.EndReason), "membership_kept", keeper != nil,
			"user_gone", gone, "cleanup", !ended)
		mrelease()
		release()
		return s.deliver(ctx, r), nil
	}
	r, err = s.store.Update(bctx, id, func(r *Request) ([]AuditEvent, error) {
		if !r.needsRemoval() {
			return nil, stateErr(r, "revoking")
		}
		return s.removalFailed(r, now, rerr), nil
	})
	if err != nil {
		return nil, err
	}
	if len(r.Outbox) > 0 {
		s.log.ErrorContext(ctx, "revocation keeps failing", "request_id", r.ID, "requester", r.Requester, "role", r.Role,
			"provider", r.Provider, "group", r.Group, "attempts", r.Attempts, "failing_since", r.FailingSince, "err", rerr)
	} else {
		s.log.WarnContext(ctx, "revocation failed; will retry", "request_id", r.ID, "attempts", r.Attempts,
			"retry_at", r.RetryAt, "err", rerr)
	}
	s.wake(r)
	s.deliver(ctx, r)
	return r, nil
}

// Revoke ends an active grant early, or a scheduled one before its start
// (without calling the provider). The requester, an eligible approver of
// the role or an admin may; anyone else gets ErrNotAllowed. Revoking a
// grant that is already ending or ended is a *StateError (ErrNotActive).
func (s *Service) Revoke(ctx context.Context, id, by, reason string) (*Request, error) {
	by = normID(by)
	cur, err := s.Get(ctx, id)
	if err != nil {
		return nil, err
	}
	if by != cur.Requester && !s.policy.IsAdmin(by) {
		role, _ := s.policy.Role(cur.Role)
		approvers, _ := s.Approvers(ctx, role, cur.Requester)
		if !contains(approvers, by) {
			if !s.involved(cur, by) {
				return nil, uninvolved(cur.ID)
			}
			return nil, &Refusal{Code: RefuseRevokeNotYours, Err: ErrNotAllowed, ID: cur.ID, Role: cur.Role, User: cur.Requester}
		}
	}
	if len([]rune(reason)) > MaxReasonLen {
		return nil, &Refusal{Code: RefuseReasonTooLong, Err: ErrReasonTooLong, Limit: MaxReasonLen}
	}
	if cur.Scheduled() {
		return s.revokeScheduled(ctx, cur.ID, by, strings.TrimSpace(reason))
	}
	return s.endGrant(ctx, cur.ID, EndRevoked, by, strings.TrimSpace(reason))
}
