package access

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"time"
)

// afterCallTimeout bounds the store writes that record a provider call's
// outcome; they run on a context detached from the call's deadline.
const afterCallTimeout = 5 * time.Second

// afterCall returns the context of the bookkeeping after a provider call:
// detached from the call's deadline, which the call may have used up, and
// bounded on its own.
func afterCall(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.WithoutCancel(ctx), afterCallTimeout)
}

// attempt returns the context of one provider call (AttemptTimeout).
func (s *Service) attempt(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, s.opt.AttemptTimeout)
}

// backoff returns the wait before retry number n (1-based): exponential
// from 1 s with jitter, capped at MaxBackoff.
func (s *Service) backoff(n int) time.Duration {
	d := time.Second
	for i := 1; i < n && d < s.opt.MaxBackoff; i++ {
		d *= 2
	}
	if d > s.opt.MaxBackoff {
		d = s.opt.MaxBackoff
	}
	j := time.Duration(rand.Int64N(int64(d)/5 + 1))
	return d - d/10 + j/2
}

// busy leaves work on a membership that another call holds for a retry a
// moment later (the due index brings it back).
func (s *Service) busy(ctx context.Context, id string, still func(r *Request) bool) (*Request, error) {
	bctx, cancel := afterCall(ctx)
	defer cancel()
	now := s.clock.Now()
	r, err := s.store.Update(bctx, id, func(r *Request) ([]AuditEvent, error) {
		if !still(r) {
			return nil, errNothingDue
		}
		r.RetryAt = now.Add(s.backoff(1))
		return nil, nil
	})
	if errors.Is(err, errNothingDue) {
		return s.store.Get(bctx, id)
	}
	if err != nil {
		return nil, err
	}
	s.log.InfoContext(ctx, "membership busy with another call; retrying shortly", "request_id", id, "retry_at", r.RetryAt)
	s.wake(r)
	return r, nil
}

// tookOver logs, on a store that hands out no fencing tokens (and so
// cannot tell a lapsed lease from a released one), when the work on r,
// just leased, looks interrupted: its
// last worker moved it on (approved, revoking) and then recorded nothing
// for longer than a live worker would, so that worker died or lost its
// lease and this one takes the work over.
func (s *Service) tookOver(ctx context.Context, r *Request) {
	if s.fencer != nil {
		return // lease said so for certain when it took the lapsed lease
	}
	if r.Attempts > 0 || !r.RetryAt.IsZero() {
		return
	}
	idle := s.clock.Now().Sub(r.UpdatedAt)
	switch {
	case r.State == StateApproved && idle >= approvedLiveFor:
	case r.State == StateRevoking && idle >= s.opt.LeaseTTL:
	default:
		return
	}
	s.log.WarnContext(ctx, "taking over work its last worker left unfinished (its lease lapsed)", "request_id", r.ID,
		"state", string(r.State), "idle", idle, "requester", r.Requester, "provider", r.Provider, "group", r.Group)
}

// leftToOthers ends work whose lease was lost during its provider call:
// another worker holds the request now and records the outcome, so this
// one records nothing and returns the current state.
func (s *Service) leftToOthers(ctx context.Context, r *Request, op string, cerr error) (*Request, error) {
	s.log.WarnContext(ctx, "lease lost during the provider call; the call was cancelled and the work left to its new holder",
		"request_id", r.ID, "op", op, "provider", r.Provider, "group", r.Group, "err", cerr)
	gctx, cancel := afterCall(ctx)
	defer cancel()
	return s.store.Get(gctx, r.ID)
}

// keeper returns another live grant that needs the same membership as r and
// lasts longer, or nil.
func (s *Service) keeper(ctx context.Context, r *Request) (*Request, error) {
	others, err := s.store.List(ctx, Filter{Requester: r.Requester, States: []State{StateApproved, StateActive}})
	if err != nil {
		return nil, fmt.Errorf("access: list grants of %s: %w", r.Requester, err)
	}
	for _, o := range others {
		if o.ID != r.ID && o.Kind != KindExtension && o.Provider == r.Provider && o.Group == r.Group && !o.Scheduled() {
			return o, nil
		}
	}
	return nil, nil
}

// startWork leases the provider work on request id (workKey), loads the
// request and checks that it still wants the work (wants), logging a
// take-over of work its last worker left unfinished. When the lease is
// held by another worker, or the request no longer wants the work, release
// is nil and r is the request as it is now: nothing is to be done. Else
// the caller holds the lease until it calls release, and wctx is the
// lease's context (cancelled when the lease is lost).
func (s *Service) startWork(ctx context.Context, id string, wants func(*Request) bool) (r *Request, wctx context.Context, release func(), err error) {
	wctx, release, ok, err := s.lease(ctx, workKey(id))
	if err != nil {
		return nil, nil, nil, err
	}
	if !ok {
		r, err = s.store.Get(ctx, id)
		return r, nil, nil, err
	}
	r, err = s.store.Get(ctx, id)
	if err != nil {
		release()
		return nil, nil, nil, err
	}
	if !wants(r) {
		release()
		return r, nil, nil, nil
	}
	s.tookOver(ctx, r)
	return r, wctx, release, nil
}

// startMemberWork leases r's membership (leaseMember) for the work that
// holds r's work lease (wctx). When the membership stays busy with
// another call, the work is left for a retry a moment later (busy, while
// r still wants it) and mrelease is nil, cur the request as it is then.
// Else the caller holds the membership until it calls mrelease; mctx is
// that lease's context.
func (s *Service) startMemberWork(ctx, wctx context.Context, r *Request, wants func(*Request) bool) (mctx context.Context, mrelease func(), cur *Request, err error) {
	mctx, mrelease, ok, err := s.leaseMember(wctx, r)
	if err != nil {
		return nil, nil, nil, err
	}
	if !ok {
		cur, err = s.busy(ctx, r.ID, wants)
		return nil, nil, cur, err
	}
	return mctx, mrelease, nil, nil
}

// failedAttempt counts a failed provider call on r, inside Store.Update:
// one more attempt, failing since now unless it was already, the error,
// and the next try after a capped backoff.
func (s *Service) failedAttempt(r *Request, now time.Time, err error) {
	r.Attempts++
	if r.FailingSince.IsZero() {
		r.FailingSince = now
	}
	r.LastError = err.Error()
	r.RetryAt = now.Add(s.backoff(r.Attempts))
	r.UpdatedAt = now
}

// removalFailed records a failed removal attempt on r (a revocation or a
// clean-up): counted, audited (every attempt), retried with capped
// backoff, and, once it has been failing for RevokeAlertAfter, announced
// (alertDue). It is called inside Store.Update.
func (s *Service) removalFailed(r *Request, now time.Time, rerr error) []AuditEvent {
	s.failedAttempt(r, now, rerr)
	if at := r.FailingSince.Add(s.opt.RevokeAlertAfter); !r.Alerted && at.After(now) && at.Before(r.RetryAt) {
		r.RetryAt = at // look again when the alert is due
	}
	ev := s.event(r, ActRevokeRetry, SystemActor, r.State, r.State, "")
	ev.Detail = fmt.Sprintf("attempt %d failed: %v", r.Attempts, rerr)
	evs := []AuditEvent{ev}
	if a, ok := s.alertDue(r, now); ok {
		evs = append(evs, a)
	}
	return evs
}

// alertDue raises the revocation alert of r when its removal has been
// failing for RevokeAlertAfter and was not announced yet: r is marked
// alerted and the announcement goes into its outbox, in the same write.
func (s *Service) alertDue(r *Request, now time.Time) (AuditEvent, bool) {
	if r.Alerted || r.FailingSince.IsZero() || now.Sub(r.FailingSince) < s.opt.RevokeAlertAfter {
		return AuditEvent{}, false
	}
	r.Alerted = true
	r.announce(Announcement{ID: "revoke_alert", Type: EvRevokeAlert, Actor: SystemActor, Reason: r.LastError, At: now})
	ev := s.event(r, ActRevokeAlert, SystemActor, r.State, r.State, "")
	ev.Detail = fmt.Sprintf("removal of %s from %s group %s failing since %s (%d attempts): %s",
		r.Requester, r.Provider, r.Group, r.FailingSince.UTC().Format(time.RFC3339), r.Attempts, r.LastError)
	return ev, true
}
