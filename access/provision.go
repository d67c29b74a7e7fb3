package access

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// provision calls the provider for an approved request and makes it active,
// or schedules a retry, or ends it failed. Only one worker (goroutine or
// replica) works on a request at a time, and only one on a membership
// (Store.Claim); the others return the current state. The Grant call has
// AttemptTimeout; what follows it is recorded on a fresh context, so a
// call that used up its deadline is still counted. A grant that keeps
// failing ends failed after GrantRetryFor. A Grant that lands after its
// request ended is undone.
// approved is the state provision works on.
// A scheduled request waiting for its start is not granted (see start).
func approved(r *Request) bool { return r.State == StateApproved && !r.awaitingStart() }

func (s *Service) provision(ctx context.Context, id string) (*Request, error) {
	r, wctx, release, err := s.startWork(ctx, id, approved)
	if err != nil || release == nil {
		return r, err
	}
	defer release()
	p := s.providers[r.Provider]
	if p == nil {
		return s.failGrant(ctx, r, fmt.Sprintf("provider %q is not configured", r.Provider), nil, release)
	}
	mctx, mrelease, cur, err := s.startMemberWork(ctx, wctx, r, approved)
	if err != nil || mrelease == nil {
		return cur, err
	}
	defer mrelease()
	if end, ok := s.bundleEnd(wctx, r); ok && !s.clock.Now().Before(end) {
		// The other roles of the request ended already: this one is not granted.
		why := fmt.Sprintf("the other roles of request %s ended at %s, before this one was approved", r.Bundle, end.UTC().Format("15:04 MST"))
		return s.failGrant(ctx, r, why, nil, func() { mrelease(); release() })
	}
	g := Grant{RequestID: r.ID, Role: r.Role, Group: r.Group, User: r.Requester}
	actx, acancel := s.attempt(mctx)
	gerr := p.Grant(actx, g)
	acancel()
	if gerr != nil && leaseLost(mctx) {
		return s.leftToOthers(ctx, r, "grant", gerr)
	}
	bctx, bcancel := afterCall(ctx)
	defer bcancel()
	now := s.clock.Now()
	if gerr == nil {
		var from State
		unbundle := s.bundleLease(bctx, r) // several roles in one request share one end time
		shared, sharedOK := s.bundleEnd(bctx, r)
		r, err = s.store.Update(bctx, id, func(r *Request) ([]AuditEvent, error) {
			if r.State != StateApproved {
				return nil, stateErr(r, "approved")
			}
			from = r.State
			r.State = StateActive
			r.GrantedAt = now
			if r.Kind != KindRotation || r.EndsAt.IsZero() {
				r.EndsAt = now.Add(r.Duration) // a shift grant keeps its end: the handoff + grace
			}
			if sharedOK {
				r.EndsAt = shared
			}
			r.UpdatedAt = now
			r.RetryAt, r.Attempts, r.LastError, r.FailingSince = time.Time{}, 0, "", time.Time{}
			s.owe(r, EvActive, SystemActor, "", now)
			ev := s.event(r, ActGranted, SystemActor, from, StateActive, "")
			ev.Detail = fmt.Sprintf("%s group %s until %s", r.Provider, r.Group, r.EndsAt.UTC().Format(time.RFC3339))
			return []AuditEvent{ev}, nil
		})
		unbundle()
		var se *StateError
		if errors.As(err, &se) {
			return s.undoLateGrant(ctx, p, g)
		}
		if err != nil {
			// The membership exists but could not be recorded (a store
			// failure): the sweep retries the grant, which is idempotent.
			return nil, fmt.Errorf("access: record grant of %s: %w", id, err)
		}
		s.log.InfoContext(ctx, "access granted", "request_id", r.ID, "requester", r.Requester, "role", r.Role,
			"provider", r.Provider, "group", r.Group, "ends_at", r.EndsAt)
		mrelease()
		release()
		r = s.deliver(ctx, r)
		s.wake(r)
		return r, nil
	}
	s.log.WarnContext(ctx, "grant failed", "request_id", r.ID, "requester", r.Requester, "role", r.Role,
		"provider", r.Provider, "err", gerr)
	since := r.FailingSince
	if since.IsZero() {
		since = now
	}
	if IsPermanent(gerr) || now.Sub(since) >= s.opt.GrantRetryFor {
		return s.failGrant(ctx, r, describeProviderErr(r, gerr), p, func() { mrelease(); release() })
	}
	r, err = s.store.Update(bctx, id, func(r *Request) ([]AuditEvent, error) {
		if r.State != StateApproved {
			return nil, stateErr(r, "approved")
		}
		s.failedAttempt(r, now, gerr)
		if end := r.FailingSince.Add(s.opt.GrantRetryFor); r.RetryAt.After(end) {
			r.RetryAt = end // the last try falls on the end of the retry window
		}
		ev := s.event(r, ActGrantRetry, SystemActor, StateApproved, StateApproved, "")
		ev.Detail = fmt.Sprintf("attempt %d failed: %v", r.Attempts, gerr)
		return []AuditEvent{ev}, nil
	})
	if err != nil {
		return nil, err
	}
	s.wake(r)
	return r, nil
}

// undoLateGrant removes a membership whose Grant returned after its
// request had ended (failed after the retry window by a worker that took
// over, say), unless another live grant needs it. The caller holds the
// request's and the membership's claims. A removal that fails leaves a
// clean-up pending, retried by Process like a revocation.
func (s *Service) undoLateGrant(ctx context.Context, p Provisioner, g Grant) (*Request, error) {
	bctx, bcancel := afterCall(ctx)
	defer bcancel()
	cur, err := s.store.Get(bctx, g.RequestID)
	if err != nil {
		return nil, err
	}
	if !cur.State.Terminal() {
		// Moved on by another worker (granted, or being revoked): the
		// membership is that path's to keep or to remove.
		return cur, nil
	}
	keeper, err := s.keeper(bctx, cur)
	if err != nil {
		return nil, err
	}
	var rerr error
	if keeper == nil {
		actx, acancel := s.attempt(context.WithoutCancel(ctx))
		rerr = p.Revoke(actx, g)
		acancel()
		if errors.Is(rerr, ErrUnknownUser) {
			rerr = nil
		}
	}
	wctx, wcancel := afterCall(ctx)
	defer wcancel()
	now := s.clock.Now()
	var evs []AuditEvent
	r, err := s.store.Update(wctx, g.RequestID, func(r *Request) ([]AuditEvent, error) {
		ev := s.event(r, ActGrantUndone, SystemActor, r.State, r.State, "")
		ev.Detail = fmt.Sprintf("%s group %s: the grant landed after the request was %s", r.Provider, r.Group, r.State)
		evs = []AuditEvent{ev}
		switch {
		case keeper != nil:
			evs[0].Detail += "; membership kept for " + keeper.ID
		case rerr != nil:
			evs[0].Detail += "; removal failed, retrying"
			r.Cleanup = true
			evs = append(evs, s.removalFailed(r, now, rerr)...)
		default:
			evs[0].Detail += "; removed again"
		}
		r.UpdatedAt = now
		return evs, nil
	})
	if err != nil {
		return nil, err
	}
	s.log.WarnContext(ctx, "grant landed after its request ended", "request_id", r.ID, "state", string(r.State),
		"requester", r.Requester, "group", r.Group, "removed", keeper == nil && rerr == nil, "err", rerr)
	s.wake(r)
	s.deliver(ctx, r)
	return r, nil
}

// describeProviderErr says why a grant failed (Request.Failure).
func describeProviderErr(r *Request, err error) string {
	if s, ok := accountProblem(err, r.Requester, r.Provider); ok {
		return s
	}
	return fmt.Sprintf("%s refused to add %s to %s: %v", r.Provider, r.Requester, r.Group, err)
}

// accountProblem describes err when it says that user has no usable
// account in provider (ErrUnknownUser, ErrUserDisabled).
func accountProblem(err error, user, provider string) (string, bool) {
	switch {
	case errors.Is(err, ErrUnknownUser):
		return fmt.Sprintf("%s has no account in %s", user, provider), true
	case errors.Is(err, ErrUserDisabled):
		return fmt.Sprintf("the %s account of %s is disabled", provider, user), true
	}
	return "", false
}

// failGrant ends an approved request as failed. When the provider was
// called (p is not nil; the caller holds the membership claim), it is
// asked once more to remove the membership, so that an ambiguous failure
// (a timeout after the provider acted) leaves nothing behind, unless
// another live grant needs the membership. When that removal fails too,
// the request keeps a clean-up pending that Process retries. unlock gives
// the caller's claims back before people are told.
func (s *Service) failGrant(ctx context.Context, r *Request, why string, p Provisioner, unlock func()) (*Request, error) {
	var cerr error
	var keeper *Request
	if p != nil {
		kctx, kcancel := afterCall(ctx)
		k, err := s.keeper(kctx, r)
		kcancel()
		if err != nil {
			return nil, err
		}
		keeper = k
		if keeper == nil {
			actx, acancel := s.attempt(context.WithoutCancel(ctx))
			cerr = p.Revoke(actx, Grant{RequestID: r.ID, Role: r.Role, Group: r.Group, User: r.Requester})
			acancel()
			if cerr != nil && IsPermanent(cerr) {
				// Unknown user or group: there is no membership to remove.
				s.log.WarnContext(ctx, "clean-up after failed grant refused", "request_id", r.ID, "err", cerr)
				cerr = nil
			}
		}
	}
	bctx, bcancel := afterCall(ctx)
	defer bcancel()
	now := s.clock.Now()
	r, err := s.store.Update(bctx, r.ID, func(r *Request) ([]AuditEvent, error) {
		if r.State != StateApproved {
			return nil, stateErr(r, "approved")
		}
		r.State = StateFailed
		r.Failure = why
		r.UpdatedAt = now
		r.EndedAt = now
		r.RetryAt, r.Attempts, r.FailingSince, r.LastError = time.Time{}, 0, time.Time{}, ""
		s.owe(r, EvFailed, SystemActor, why, now)
		ev := s.event(r, ActGrantFailed, SystemActor, StateApproved, StateFailed, "")
		ev.Detail = why
		if keeper != nil {
			ev.Detail += "; membership kept for " + keeper.ID
		}
		evs := []AuditEvent{ev}
		if cerr != nil {
			r.Cleanup = true
			evs = append(evs, s.removalFailed(r, now, cerr)...)
		}
		return evs, nil
	})
	if err != nil {
		return nil, err
	}
	s.log.ErrorContext(ctx, "grant failed for good", "request_id", r.ID, "requester", r.Requester, "role", r.Role,
		"why", why, "cleanup_pending", r.Cleanup)
	unlock()
	r = s.deliver(ctx, r)
	s.wake(r)
	return r, nil
}
