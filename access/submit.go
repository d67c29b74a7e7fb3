package access

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"
)

// SubmitInput is a new access request.
type SubmitInput struct {
	Requester string        // identity (email), from the platform payload
	Role      string        // role name
	Duration  time.Duration // 0: the role's default
	Reason    string

	// Scheduled access: when the grant should start. StartsAt when set,
	// else Start as typed ("22:00", "2026-12-01T22:00", with or without a
	// zone offset; see ParseStart) read in Zone (nil: UTC). Neither: at
	// approval.
	StartsAt time.Time
	Start    string
	Zone     *time.Location
}

func (s *Service) validate(in SubmitInput) (Role, time.Duration, string, error) {
	if normID(in.Requester) == "" {
		return Role{}, 0, "", &Refusal{Code: RefuseNoIdentity, Err: ErrNoIdentity}
	}
	if err := CheckIdentity(in.Requester); err != nil {
		return Role{}, 0, "", &Refusal{Code: RefuseBadIdentity, Err: ErrBadIdentity, User: in.Requester}
	}
	role, ok := s.policy.Role(in.Role)
	if !ok {
		if strings.TrimSpace(in.Role) == "" {
			return Role{}, 0, "", &Refusal{Code: RefuseNoRole, Err: ErrUnknownRole}
		}
		return Role{}, 0, "", &Refusal{Code: RefuseUnknownRole, Err: ErrUnknownRole, Role: in.Role}
	}
	d := in.Duration
	if d == 0 {
		d = role.DefaultDuration
	}
	if d < MinDuration {
		return Role{}, 0, "", &Refusal{Code: RefuseTooShort, Err: ErrBadDuration, Duration: d, Max: MinDuration}
	}
	if d > role.MaxDuration {
		return Role{}, 0, "", &Refusal{Code: RefuseTooLong, Err: ErrTooLong, Role: role.Name, Duration: d, Max: role.MaxDuration}
	}
	reason := strings.TrimSpace(in.Reason)
	if reason == "" {
		return Role{}, 0, "", &Refusal{Code: RefuseNoReason, Err: ErrNoReason, Role: role.Name, Duration: d}
	}
	if n := len([]rune(reason)); n > MaxReasonLen {
		return Role{}, 0, "", &Refusal{Code: RefuseReasonTooLong, Err: ErrReasonTooLong, Count: n, Limit: MaxReasonLen}
	}
	return role, d, reason, nil
}

func clip(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n]) + "…"
}

// checkUser asks the role's provider whether the user exists, when it can tell.
func (s *Service) checkUser(ctx context.Context, role Role, identity string) error {
	uc, ok := s.checkers[role.Provider]
	if !ok {
		return nil
	}
	cctx, cancel := context.WithTimeout(ctx, s.opt.CheckUserTimeout)
	defer cancel()
	err := uc.CheckUser(cctx, identity)
	switch {
	case err == nil:
		return nil
	case errors.Is(err, ErrUnknownUser):
		return &Refusal{Code: RefuseUnknownUser, Err: ErrUnknownUser, User: identity, Provider: role.Provider, Role: role.Name}
	case errors.Is(err, ErrUserDisabled):
		return &Refusal{Code: RefuseUserDisabled, Err: ErrUserDisabled, User: identity, Provider: role.Provider, Role: role.Name}
	default:
		// Unknown: go on. The grant itself fails cleanly for a missing user;
		// a hung provider must not swallow the request.
		s.log.WarnContext(ctx, "user check failed; continuing", "role", role.Name, "user", identity, "err", err)
		return nil
	}
}

// overlap refuses a request for a role the user already holds or asked for.
func (s *Service) overlap(ctx context.Context, requester string, role Role) error {
	live, err := s.store.List(ctx, Filter{Requester: requester, Role: role.Name,
		States: []State{StatePending, StateApproved, StateActive}})
	if err != nil {
		return fmt.Errorf("access: list requests of %s: %w", requester, err)
	}
	for _, r := range live {
		if r.Kind == KindExtension {
			continue
		}
		switch r.State {
		case StatePending:
			return &Refusal{Code: RefuseAlreadyPending, Err: ErrDuplicate, ID: r.ID, Role: role.Name}
		case StateActive, StateApproved:
			if r.Scheduled() {
				return &Refusal{Code: RefuseAlreadyScheduled, Err: ErrDuplicate, ID: r.ID, Role: role.Name, At: r.StartsAt}
			}
			return &Refusal{Code: RefuseAlreadyHeld, Err: ErrDuplicate, ID: r.ID, Role: role.Name, At: r.EndsAt}
		}
	}
	return nil
}

// Approvers returns who may decide a request of requester for role right
// now: the role's named approvers and the current on-call people of its
// rotations, without the requester unless the role allows self-approval.
// When a rotation cannot be asked, only named approvers count (never
// "anyone"); the error says which rotation failed.
func (s *Service) Approvers(ctx context.Context, role Role, requester string) ([]string, error) {
	return s.approversAt(ctx, role, requester, s.clock.Now())
}

func (s *Service) approversAt(ctx context.Context, role Role, requester string, at time.Time) ([]string, error) {
	seen := map[string]bool{}
	var out []string
	add := func(id string) {
		id = normID(id)
		if id == "" || seen[id] {
			return
		}
		if id == normID(requester) && !role.SelfApprove {
			return
		}
		seen[id] = true
		out = append(out, id)
	}
	for _, u := range role.ApproverUsers {
		add(u)
	}
	var errs []error
	for _, rot := range role.ApproverRotations {
		if s.oncall == nil {
			errs = append(errs, fmt.Errorf("rotation %s: no on-call source configured", rot))
			continue
		}
		shift, err := s.lookupOnCall(ctx, rot, at)
		if err != nil {
			errs = append(errs, fmt.Errorf("rotation %s: %w", rot, err))
			s.log.WarnContext(ctx, "on-call lookup failed; only named approvers count", "rotation", rot, "role", role.Name, "err", err)
			continue
		}
		for _, p := range shift.People {
			add(p)
		}
	}
	return out, errors.Join(errs...)
}

// lookupOnCall asks the on-call source with a deadline of its own
// (OnCallTimeout), so a hung source costs a request at most that long.
func (s *Service) lookupOnCall(ctx context.Context, rot string, at time.Time) (Shift, error) {
	ctx, cancel := context.WithTimeout(ctx, s.opt.OnCallTimeout)
	defer cancel()
	return s.oncall.OnCall(ctx, rot, at)
}

// writeCtx returns a context for the writes that record a new request:
// detached from ctx's deadline, which lookups before may have used up, and
// bounded by StoreTimeout of its own.
func (s *Service) writeCtx(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.WithoutCancel(ctx), s.opt.StoreTimeout)
}

// Submit validates a request against the policy, stores it as pending with
// its audit event and asks the approvers. Validation failures are
// *Refusal values (wrapping ErrUnknownRole, ErrBadDuration, ErrTooLong,
// ErrNoReason, ErrReasonTooLong, ErrDuplicate, ErrNoApprovers,
// ErrUnknownUser, ErrUserDisabled, ErrNoIdentity, and ErrBadStart for a
// start that is unreadable, past or too far ahead; from the request gate
// ErrNotAllowed, ErrRequesterUnchecked, ErrReasonPattern) and change
// nothing. A request an auto_approve rule meets is stored approved by
// SystemActor and provisioned at once, or at its start (see createApproved).
func (s *Service) Submit(ctx context.Context, in SubmitInput) (*Request, error) {
	role, d, reason, err := s.validate(in)
	if err != nil {
		return nil, err
	}
	requester := normID(in.Requester)
	// The request gate (gate.go): who may ask, what the reason must say.
	if err := s.gate(ctx, role, requester, reason); err != nil {
		return nil, err
	}
	if err := s.overlap(ctx, requester, role); err != nil {
		return nil, err
	}
	start, zone, err := s.startOf(in, role)
	if err != nil {
		return nil, err
	}
	if err := s.checkUser(ctx, role, requester); err != nil {
		return nil, err
	}
	if rule := s.autoApproval(ctx, role, requester, s.clock.Now()); rule != "" {
		return s.createApproved(ctx, requester, role, d, reason, rule, scheduled(start, zone))
	}
	return s.create(ctx, KindRequest, "", requester, role, d, reason, scheduled(start, zone))
}

// create stores a new pending request; each of tweaks adjusts the request
// and its submit audit event before they are written.
func (s *Service) create(ctx context.Context, kind Kind, target, requester string, role Role, d time.Duration, reason string, tweaks ...func(*Request, *AuditEvent)) (*Request, error) {
	approvers, _ := s.Approvers(ctx, role, requester)
	if len(approvers) == 0 {
		return nil, &Refusal{Code: RefuseNoApprovers, Err: ErrNoApprovers, Role: role.Name}
	}
	if len(approvers) < role.Approvals {
		return nil, &Refusal{Code: RefuseTooFewApprovers, Err: ErrNoApprovers, Role: role.Name, Limit: role.Approvals, Count: len(approvers)}
	}
	wctx, cancel := s.writeCtx(ctx)
	defer cancel()
	now := s.clock.Now()
	r := &Request{
		ID: NewID(), Kind: kind, Target: target, Requester: requester, Role: role.Name,
		Provider: role.Provider, Group: role.Group, Duration: d, Reason: reason,
		State: StatePending, CreatedAt: now, UpdatedAt: now, PendingUntil: now.Add(role.PendingTTL),
		Approvers: approvers, Needed: role.Approvals,
	}
	scheduleNudges(r, role, now)
	ev := s.event(r, ActSubmitted, requester, "", StatePending, reason)
	if kind == KindExtension {
		ev.Detail = "extends " + target + " by " + FormatDuration(d)
	}
	for _, tw := range tweaks {
		tw(r, &ev)
	}
	s.owe(r, EvSubmitted, requester, "", now) // the approval cards: never a pending request nobody was asked about
	// The limit and duplicate checks and the write are one step per
	// requester: without the guard, concurrent submits or extends all pass
	// the checks before any of them is stored.
	err := s.createGuarded(wctx, r, ev, func() error {
		if kind == KindExtension {
			if err := s.pendingExtension(wctx, requester, role, target); err != nil {
				return err
			}
		} else if err := s.overlap(wctx, requester, role); err != nil {
			return err
		}
		return s.pendingLimit(wctx, requester)
	})
	if err != nil {
		return nil, err
	}
	s.log.InfoContext(ctx, "request submitted", "request_id", r.ID, "requester", requester, "role", role.Name,
		"duration", FormatDuration(d), "kind", string(kind))
	s.deliver(ctx, r) // before the wake: a delivered entry needs no sweep
	r = s.reload(wctx, r)
	s.wake(r)
	return r, nil
}

// guardWait is how long a submit waits for another submit of the same
// person to finish its checks and write before it gives up.
const guardWait = 3 * time.Second

// guarded runs fn while holding the store's per-requester submit guard
// (Store.Claim "submit:<requester>" with an owner unique to this call, as a
// claim is re-entrant for its owner). Replicas sharing the store serialise
// on it too. When the guard stays taken for guardWait the answer is a
// *Refusal wrapping ErrConflict ("try again").
//
// The guard is short (half a lease TTL) and renewed while fn runs: the
// guard of a replica that died inside fn lapses within that, before the
// command it was handling is taken over from the chat inbox (after the
// inbox lease, a whole lease TTL). A guard that outlived the inbox lease
// turned the taken-over command away as "busy", and it was lost.
func (s *Service) guarded(ctx context.Context, requester string, fn func() error) error {
	key := "submit:" + requester
	owner := s.owner + "/" + NewID()
	ttl := max(s.opt.LeaseTTL/2, 10*time.Millisecond)
	give := time.NewTimer(guardWait)
	defer give.Stop()
	for pause := 5 * time.Millisecond; ; pause = min(2*pause, 100*time.Millisecond) {
		ok, err := s.store.Claim(ctx, key, owner, ttl)
		if err != nil {
			return fmt.Errorf("access: claim %s: %w", key, err)
		}
		if ok {
			break
		}
		t := time.NewTimer(pause)
		select {
		case <-t.C:
			continue
		case <-give.C:
		case <-ctx.Done():
		}
		t.Stop()
		return &Refusal{Code: RefuseBusy, Err: ErrConflict}
	}
	stop, done := make(chan struct{}), make(chan struct{})
	go func() { // renew the guard while fn runs
		defer close(done)
		t := time.NewTicker(ttl / 3)
		defer t.Stop()
		for {
			select {
			case <-stop:
				return
			case <-t.C:
				rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), ttl/3)
				_, _ = s.store.Claim(rctx, key, owner, ttl)
				cancel()
			}
		}
	}()
	defer func() {
		close(stop)
		<-done // no renewal may recreate the guard after it is given back
		_ = s.store.Release(context.WithoutCancel(ctx), key, owner)
	}()
	return fn()
}

// createGuarded stores r with its audit event ev when check passes, both
// under r's requester's guard (guarded): concurrent commands of one person
// then cannot all pass the check before any of them is stored.
func (s *Service) createGuarded(ctx context.Context, r *Request, ev AuditEvent, check func() error) error {
	return s.guarded(ctx, r.Requester, func() error {
		if err := check(); err != nil {
			return err
		}
		if err := s.store.Create(ctx, r, ev); err != nil {
			return fmt.Errorf("access: store request: %w", err)
		}
		return nil
	})
}

// pendingLimit refuses a new request when the requester already has
// MaxPendingPerUser requests waiting for approval.
func (s *Service) pendingLimit(ctx context.Context, requester string) error {
	if s.opt.MaxPendingPerUser < 0 {
		return nil
	}
	pend, err := s.store.List(ctx, Filter{Requester: requester, States: []State{StatePending}})
	if err != nil {
		return fmt.Errorf("access: list requests of %s: %w", requester, err)
	}
	if n := pendingCount(pend); n >= s.opt.MaxPendingPerUser {
		return &Refusal{Code: RefuseTooManyPending, Err: ErrRateLimited, Count: n, Limit: s.opt.MaxPendingPerUser}
	}
	return nil
}

// pendingExtension refuses a second pending extension of the same grant.
func (s *Service) pendingExtension(ctx context.Context, requester string, role Role, target string) error {
	pend, err := s.store.List(ctx, Filter{Requester: requester, Role: role.Name, States: []State{StatePending}})
	if err != nil {
		return fmt.Errorf("access: list requests of %s: %w", requester, err)
	}
	for _, p := range pend {
		if p.Kind == KindExtension && p.Target == target {
			return &Refusal{Code: RefuseExtensionPending, Err: ErrDuplicate, ID: p.ID, Other: target}
		}
	}
	return nil
}
