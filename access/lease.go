package access

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"
)

// claim takes the exclusive lease on key for one piece of work (see
// lease) when the work needs no context of its own.
func (s *Service) claim(ctx context.Context, key string) (release func(), ok bool, err error) {
	_, release, ok, err = s.lease(ctx, key)
	return release, ok, err
}

// errLeaseLost is the cause of a lease's context once the lease is lost:
// another worker holds it now, or renewing it failed until it may have
// lapsed.
var errLeaseLost = errors.New("access: lease lost")

// lease takes the exclusive lease on key for one piece of work, for
// LeaseTTL, and renews it every third of LeaseTTL until release. The owner
// token is new for every call: Store.Claim is re-entrant for the same
// owner (a claim by the holder extends it), so a token per process would
// let two goroutines of one replica (an approval's provisioning and the
// sweep) work on the same request at once. lctx, derived from ctx, is
// cancelled with errLeaseLost when a renewal is refused or keeps failing
// until the lease may have lapsed: the provider call runs on it, so a
// worker that lost its lease stops. release stops the renewals, cancels
// lctx and gives the lease back on a context of its own; calling it again
// does nothing, so work can let go before it tells people.
func (s *Service) lease(ctx context.Context, key string) (lctx context.Context, release func(), ok bool, err error) {
	token := s.owner + ":" + NewID()[2:]
	var held int64 // the fencing token of this holding, where the store hands them out
	if s.fencer != nil {
		var l Lease
		l, ok, err = s.fencer.ClaimFenced(ctx, key, token, s.opt.LeaseTTL)
		if ok && l.Lapsed != nil {
			s.log.WarnContext(ctx, "lease taken over from a holder whose lease lapsed (it died, paused or lost the store)",
				"lease", key, "previous_owner", l.Lapsed.Owner, "previous_token", l.Lapsed.Token, "token", l.Token)
		}
		held = l.Token
	} else {
		ok, err = s.store.Claim(ctx, key, token, s.opt.LeaseTTL)
	}
	if err != nil {
		return nil, nil, false, fmt.Errorf("access: claim %s: %w", key, err)
	}
	if !ok {
		return nil, nil, false, nil
	}
	lctx, lose := context.WithCancelCause(ctx)
	stop, done := make(chan struct{}), make(chan struct{})
	go s.renew(ctx, key, token, held, lose, stop, done)
	var once sync.Once
	return lctx, func() {
		once.Do(func() {
			close(stop)
			<-done // no renewal may recreate the lease after it is given back
			lose(context.Canceled)
			rctx, cancel := afterCall(ctx)
			defer cancel()
			_ = s.store.Release(rctx, key, token)
		})
	}, true, nil
}

// renew extends the lease on key every third of LeaseTTL on real time
// until stop closes. A refused renewal (someone else holds the lease) loses
// it at once; a failing one is retried at the next tick, and loses it once
// the last successful renewal is so old that the lease may lapse before
// the next. Losing the lease cancels the work with errLeaseLost.
func (s *Service) renew(ctx context.Context, key, token string, held int64, lose context.CancelCauseFunc, stop <-chan struct{}, done chan<- struct{}) {
	defer close(done)
	ctx = context.WithoutCancel(ctx)
	ttl := s.opt.LeaseTTL
	every := max(ttl/3, time.Millisecond)
	t := time.NewTicker(every)
	defer t.Stop()
	renewed := time.Now() // the lease lasts at least ttl from here
	for {
		select {
		case <-stop:
			return
		case <-t.C:
		}
		sent := time.Now()
		rctx, cancel := context.WithTimeout(ctx, every)
		var ok bool
		var err error
		if s.fencer != nil {
			var l Lease
			l, ok, err = s.fencer.ClaimFenced(rctx, key, token, ttl)
			if ok && l.Token != held {
				// The lease lapsed and this renewal acquired it anew:
				// someone may have held it in between, so the work
				// must not go on as if nothing happened.
				cancel()
				s.log.WarnContext(ctx, "lease lapsed between renewals; cancelling the work", "lease", key)
				lose(fmt.Errorf("%w: %s lapsed between renewals", errLeaseLost, key))
				return
			}
		} else {
			ok, err = s.store.Claim(rctx, key, token, ttl)
		}
		cancel()
		switch {
		case err == nil && ok:
			renewed = sent
			continue
		case err == nil:
			s.log.WarnContext(ctx, "lease lost to another worker; cancelling the work", "lease", key)
			lose(fmt.Errorf("%w: %s is held by another worker", errLeaseLost, key))
			return
		case time.Since(renewed)+every >= ttl:
			s.log.WarnContext(ctx, "lease renewal keeps failing; cancelling the work", "lease", key,
				"renewed_ago", time.Since(renewed), "err", err)
			lose(fmt.Errorf("%w: renewing %s: %v", errLeaseLost, key, err))
			return
		}
		s.log.WarnContext(ctx, "lease renewal failed; retrying", "lease", key, "err", err)
	}
}

// leaseLost reports whether the work on lctx stopped because its lease was
// lost: its outcome is then the new holder's to record.
func leaseLost(lctx context.Context) bool {
	return errors.Is(context.Cause(lctx), errLeaseLost)
}

// workKey names the claim on a request's provider work: granting,
// revoking and cleaning up all take the same one, so they never overlap.
func workKey(id string) string { return "request:" + id }

// memberKey names the claim that serialises changes of one membership.
// The "does another live grant need it" check and the provider call
// happen under it, so ending one grant never races with another grant of
// the same (provider, group, user) becoming active.
func memberKey(r *Request) string {
	return "member:" + r.Provider + ":" + r.Group + ":" + normID(r.Requester)
}

// claimMember takes the membership claim of r, waiting up to MemberWait
// for another call on the same membership to finish; ok is false when it
// is still busy then.
func (s *Service) claimMember(ctx context.Context, r *Request) (release func(), ok bool, err error) {
	_, release, ok, err = s.leaseMember(ctx, r)
	return release, ok, err
}

// leaseMember is claimMember with the lease's context (see lease).
func (s *Service) leaseMember(ctx context.Context, r *Request) (lctx context.Context, release func(), ok bool, err error) {
	const step = 25 * time.Millisecond
	wait := time.NewTimer(s.opt.MemberWait)
	defer wait.Stop()
	for {
		lctx, release, ok, err = s.lease(ctx, memberKey(r))
		if err != nil || ok {
			return lctx, release, ok, err
		}
		select {
		case <-ctx.Done():
			return nil, nil, false, nil
		case <-wait.C:
			return nil, nil, false, nil
		case <-time.After(step):
		}
	}
}
