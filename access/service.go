package access

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sort"
	"strings"
	"sync"
	"time"
)

// Tunables of the workflow; the zero Options means the defaults.
type Options struct {
	// GrantRetryFor is how long a grant that fails with transient errors is
	// retried before the request ends failed (default 5 minutes).
	GrantRetryFor time.Duration
	// RevokeAlertAfter is how long a revocation may keep failing before it
	// is announced to the security channel (default 2 minutes).
	RevokeAlertAfter time.Duration
	// MaxBackoff caps the wait between provider retries (default 60 s).
	MaxBackoff time.Duration
	// AttemptTimeout is the deadline of each provider call (default 20 s).
	// The bookkeeping after a call (retry count, next try, alert, audit)
	// never shares this deadline: it gets a fresh short one.
	AttemptTimeout time.Duration
	// LeaseTTL is how long a worker's lease on a request's provider work
	// (and on a membership) lasts without renewal (default 10 s). The
	// holder renews it every third of LeaseTTL for as long as the work
	// runs, however long the provider call takes; when a renewal is
	// refused, or keeps failing until the lease may have lapsed, the work's
	// provider call is cancelled. When a holder dies another replica takes
	// the work over once LeaseTTL has passed.
	LeaseTTL time.Duration
	// MemberWait is how long a provider call waits for another call on the
	// same (provider, group, user) membership to finish before it leaves
	// the work for a retry a moment later (default 2 s).
	MemberWait time.Duration
	// NotifyTimeout bounds each notification (default 30 s).
	NotifyTimeout time.Duration
	// CheckUserTimeout bounds the provider's user check on the request
	// path (default 5 s). When it runs out the check counts as unknown: the
	// request goes on (logged) and the grant itself finds a missing user.
	CheckUserTimeout time.Duration
	// OnCallTimeout bounds each on-call lookup for approvers (default 5 s).
	// When it runs out only the named approvers count, as for any other
	// failing lookup.
	OnCallTimeout time.Duration
	// StoreTimeout bounds the writes that record a new request and its
	// answer. They get a fresh deadline of their own, so that a slow lookup
	// before them cannot use up the time to store and answer (default 10 s).
	StoreTimeout time.Duration
	// MaxPendingPerUser is how many requests (and extensions) one person may
	// have waiting for approval at once (default 5; negative: no limit).
	MaxPendingPerUser int
	// CommandsPerMinute is how many commands one person may give per
	// minute, counted across replicas through the store (default 20;
	// negative: no limit). See Throttle.
	CommandsPerMinute int
}

// afterCallTimeout bounds the store writes that record a provider call's
// outcome; they run on a context detached from the call's deadline.
const afterCallTimeout = 5 * time.Second

func (o Options) withDefaults() Options {
	if o.GrantRetryFor <= 0 {
		o.GrantRetryFor = 5 * time.Minute
	}
	if o.RevokeAlertAfter <= 0 {
		o.RevokeAlertAfter = 2 * time.Minute
	}
	if o.MaxBackoff <= 0 {
		o.MaxBackoff = time.Minute
	}
	if o.AttemptTimeout <= 0 {
		o.AttemptTimeout = 20 * time.Second
	}
	if o.MemberWait <= 0 {
		o.MemberWait = 2 * time.Second
	}
	if o.LeaseTTL <= 0 {
		o.LeaseTTL = DefaultLeaseTTL
	}
	if o.NotifyTimeout <= 0 {
		o.NotifyTimeout = 30 * time.Second
	}
	if o.CheckUserTimeout <= 0 {
		o.CheckUserTimeout = 5 * time.Second
	}
	if o.OnCallTimeout <= 0 {
		o.OnCallTimeout = 5 * time.Second
	}
	if o.StoreTimeout <= 0 {
		o.StoreTimeout = 10 * time.Second
	}
	if o.MaxPendingPerUser == 0 {
		o.MaxPendingPerUser = 5
	}
	if o.CommandsPerMinute == 0 {
		o.CommandsPerMinute = 20
	}
	return o
}

// Deps are the collaborators of a Service. Store, Policy and Providers are
// required; a nil OnCall means "no rotations", a nil Notifier tells nobody,
// a nil Clock is the wall clock and a nil Logger discards.
type Deps struct {
	Store     Store
	Policy    *Policy
	Providers map[string]Provisioner
	OnCall    OnCall
	Notifier  Notifier
	Clock     Clock
	Logger    *slog.Logger
	Owner     string // replica name used for claims; random when empty
	Options   Options
}

// Service is the request workflow: it validates requests against the policy,
// performs every state change as one compare-and-set with its audit event,
// calls the providers and tells people what happened. It is safe for
// concurrent use by any number of goroutines and replicas sharing a store.
type Service struct {
	store     Store
	policy    *Policy
	providers map[string]Provisioner
	oncall    OnCall
	notifier  Notifier
	clock     Clock
	log       *slog.Logger
	owner     string
	opt       Options

	mu    sync.RWMutex
	waker Waker

	rot rotationState // shift grants: per-rotation options and announced problems (rotation.go)

	cmds localCounter // per-user command counts when the store is no Counter (limits.go)
}

// NewService checks the dependencies and returns a Service.
func NewService(d Deps) (*Service, error) {
	if d.Store == nil || d.Policy == nil {
		return nil, errors.New("access: service needs a store and a policy")
	}
	for name, role := range d.Policy.Roles {
		if _, ok := d.Providers[role.Provider]; !ok {
			return nil, fmt.Errorf("access: role %s uses provider %q, which is not configured", name, role.Provider)
		}
	}
	s := &Service{
		store: d.Store, policy: d.Policy, providers: d.Providers, oncall: d.OnCall,
		notifier: d.Notifier, clock: d.Clock, log: d.Logger, owner: d.Owner, opt: d.Options.withDefaults(),
	}
	if s.clock == nil {
		s.clock = SystemClock{}
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if s.owner == "" {
		s.owner = "replica-" + NewID()[2:]
	}
	return s, nil
}

// SetWaker connects the expiry engine, which is built after the service.
func (s *Service) SetWaker(w Waker) {
	s.mu.Lock()
	s.waker = w
	s.mu.Unlock()
}

// SetNotifier connects the chat side, which may be built after the service.
func (s *Service) SetNotifier(n Notifier) {
	s.mu.Lock()
	s.notifier = n
	s.mu.Unlock()
}

// Policy returns the policy the service enforces.
func (s *Service) Policy() *Policy { return s.policy }

// Store returns the store (for read-only queries such as the audit log).
func (s *Service) Store() Store { return s.store }

// Now returns the service clock's time.
func (s *Service) Now() time.Time { return s.clock.Now() }

func (s *Service) wake(r *Request) {
	at, ok := r.DueAt()
	if !ok {
		return
	}
	s.mu.RLock()
	w := s.waker
	s.mu.RUnlock()
	if w != nil {
		w.Wake(at)
	}
}

func normID(identity string) string { return NormalizeIdentity(identity) }

// SubmitInput is a new access request.
type SubmitInput struct {
	Requester string        // identity (email), from the platform payload
	Role      string        // role name
	Duration  time.Duration // 0: the role's default
	Reason    string
}

func (s *Service) validate(in SubmitInput) (Role, time.Duration, string, error) {
	if normID(in.Requester) == "" {
		return Role{}, 0, "", userErr(ErrNoIdentity, "your chat account has no email address mapped, so accessbot cannot tell who you are; ask an admin to link it")
	}
	if err := CheckIdentity(in.Requester); err != nil {
		return Role{}, 0, "", userErr(ErrBadIdentity, "the email address of your chat account has characters other than plain ASCII, so accessbot cannot tell who you are; ask an admin to change it")
	}
	role, ok := s.policy.Role(in.Role)
	if !ok {
		if strings.TrimSpace(in.Role) == "" {
			return Role{}, 0, "", userErr(ErrUnknownRole, "name a role; try `/access roles` to see what you may request")
		}
		return Role{}, 0, "", userErr(ErrUnknownRole, "there is no role %q; try `/access roles` to see what you may request", clip(in.Role, 60))
	}
	d := in.Duration
	if d == 0 {
		d = role.DefaultDuration
	}
	if d < MinDuration {
		return Role{}, 0, "", userErr(ErrBadDuration, "the duration %s is too short; the minimum is %s", FormatDuration(d), FormatDuration(MinDuration))
	}
	if d > role.MaxDuration {
		return Role{}, 0, "", userErr(ErrTooLong, "%s may be held for at most %s; you asked for %s", role.Name, FormatDuration(role.MaxDuration), FormatDuration(d))
	}
	reason := strings.TrimSpace(in.Reason)
	if reason == "" {
		return Role{}, 0, "", userErr(ErrNoReason, "give a reason, e.g. `/access %s %s fixing the checkout outage`", role.Name, FormatDuration(d))
	}
	if n := len([]rune(reason)); n > MaxReasonLen {
		return Role{}, 0, "", userErr(ErrReasonTooLong, "the reason is %d characters long; the limit is %d", n, MaxReasonLen)
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
	uc, ok := s.providers[role.Provider].(UserChecker)
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
		return userErr(ErrUnknownUser, "%s has no account in %s, so %s cannot be granted; ask an admin to create it", identity, role.Provider, role.Name)
	case errors.Is(err, ErrUserDisabled):
		return userErr(ErrUserDisabled, "the %s account of %s is disabled, so %s cannot be granted", role.Provider, identity, role.Name)
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
			return userErr(ErrDuplicate, "you already asked for %s (request %s is waiting for approval); cancel it with `/access cancel %s` first", role.Name, r.ID, r.ID)
		case StateActive, StateApproved:
			return userErr(ErrDuplicate, "you already hold %s until %s (request %s); ask for more time with `/access extend %s <duration> <reason>`",
				role.Name, r.EndsAt.UTC().Format("15:04 MST"), r.ID, r.ID)
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
// *UserError values (wrapping ErrUnknownRole, ErrBadDuration, ErrTooLong,
// ErrNoReason, ErrReasonTooLong, ErrDuplicate, ErrNoApprovers,
// ErrUnknownUser, ErrUserDisabled, ErrNoIdentity) and change nothing.
func (s *Service) Submit(ctx context.Context, in SubmitInput) (*Request, error) {
	role, d, reason, err := s.validate(in)
	if err != nil {
		return nil, err
	}
	requester := normID(in.Requester)
	if err := s.overlap(ctx, requester, role); err != nil {
		return nil, err
	}
	if err := s.checkUser(ctx, role, requester); err != nil {
		return nil, err
	}
	return s.create(ctx, KindRequest, "", requester, role, d, reason)
}

func (s *Service) create(ctx context.Context, kind Kind, target, requester string, role Role, d time.Duration, reason string) (*Request, error) {
	approvers, _ := s.Approvers(ctx, role, requester)
	if len(approvers) == 0 {
		return nil, userErr(ErrNoApprovers, "nobody can approve %s right now (no named approver and nobody on call), so the request was not sent; ask an admin", role.Name)
	}
	if len(approvers) < role.Approvals {
		return nil, userErr(ErrNoApprovers, "%s needs %d approvals but only %d approver(s) are available right now, so the request was not sent", role.Name, role.Approvals, len(approvers))
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
	ev := s.event(r, ActSubmitted, requester, "", StatePending, reason)
	if kind == KindExtension {
		ev.Detail = "extends " + target + " by " + FormatDuration(d)
	}
	s.owe(r, EvSubmitted, requester, "", now) // the approval cards: never a pending request nobody was asked about
	// The limit and duplicate checks and the write are one step per
	// requester: without the guard, concurrent submits or extends all pass
	// the checks before any of them is stored.
	err := s.guarded(wctx, requester, func() error {
		if kind == KindExtension {
			if err := s.pendingExtension(wctx, requester, role, target); err != nil {
				return err
			}
		} else if err := s.overlap(wctx, requester, role); err != nil {
			return err
		}
		if err := s.pendingLimit(wctx, requester); err != nil {
			return err
		}
		if err := s.store.Create(wctx, r, ev); err != nil {
			return fmt.Errorf("access: store request: %w", err)
		}
		return nil
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
// *UserError wrapping ErrConflict ("try again").
func (s *Service) guarded(ctx context.Context, requester string, fn func() error) error {
	key := "submit:" + requester
	owner := s.owner + "/" + NewID()
	ttl := 2 * s.opt.StoreTimeout
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
		return userErr(ErrConflict, "another request of yours is being stored right now; nothing was sent, try again in a moment")
	}
	defer func() { _ = s.store.Release(context.WithoutCancel(ctx), key, owner) }()
	return fn()
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
	if len(pend) >= s.opt.MaxPendingPerUser {
		return userErr(ErrRateLimited, "you already have %d requests waiting for approval, the most one person may have; wait for a decision or cancel one with `/access cancel <request-id>` (see `/access list`)", len(pend))
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
			return userErr(ErrDuplicate, "an extension of %s is already waiting for approval (request %s)", target, p.ID)
		}
	}
	return nil
}

func (s *Service) reload(ctx context.Context, r *Request) *Request {
	if got, err := s.store.Get(ctx, r.ID); err == nil {
		return got
	}
	return r
}

func (s *Service) event(r *Request, act Action, actor string, from, to State, reason string) AuditEvent {
	return AuditEvent{At: s.clock.Now(), RequestID: r.ID, Action: act, Actor: actor, Subject: r.Requester,
		Role: r.Role, From: from, To: to, Reason: reason}
}

// noRequest is the refusal for a request id that does not exist or that
// the person may not learn anything about: the two read the same, so a
// refusal never tells an unrelated person whose request it is, why it was
// denied or who decides it.
func noRequest(id string) error {
	return userErr(ErrNotFound, "there is no request %s that you can act on", clip(strings.TrimSpace(id), 40))
}

// uninvolved is the refusal to someone who may not learn anything about
// the request: it reads exactly like noRequest, but wraps ErrNotAllowed.
func uninvolved(id string) error {
	return userErr(ErrNotAllowed, "there is no request %s that you can act on", clip(strings.TrimSpace(id), 40))
}

// involved reports whether who may learn about r's details: its
// requester, someone asked to approve it or who decided on it, or an
// admin. Refusals to anyone else are uninvolved (worded as noRequest).
func (s *Service) involved(r *Request, who string) bool {
	who = normID(who)
	return who != "" && (who == r.Requester || contains(r.Approvers, who) || r.DecidedBy(who) || s.policy.IsAdmin(who))
}

// Get returns a request by id (ErrNotFound when there is none).
func (s *Service) Get(ctx context.Context, id string) (*Request, error) {
	r, err := s.store.Get(ctx, strings.TrimSpace(id))
	if errors.Is(err, ErrNotFound) {
		return nil, noRequest(id)
	}
	return r, err
}

// Mine returns the requester's pending and live requests, newest first.
func (s *Service) Mine(ctx context.Context, requester string) ([]*Request, error) {
	return s.store.List(ctx, Filter{Requester: normID(requester),
		States: []State{StatePending, StateApproved, StateActive, StateRevoking}})
}

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

func stateErr(r *Request, want string) error {
	sentinel := ErrAlreadyDecided
	switch {
	case r.State == StateTimedOut:
		sentinel = ErrTimedOut
	case want == "active" || want == "revoking":
		sentinel = ErrNotActive
	}
	return &StateError{ID: r.ID, State: r.State, Want: want, Err: sentinel}
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
	if f, isFencer := s.store.(Fencer); isFencer {
		var l Lease
		l, ok, err = f.ClaimFenced(ctx, key, token, s.opt.LeaseTTL)
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
	f, isFencer := s.store.(Fencer)
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
		if isFencer {
			var l Lease
			l, ok, err = f.ClaimFenced(rctx, key, token, ttl)
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

// provision calls the provider for an approved request and makes it active,
// or schedules a retry, or ends it failed. Only one worker (goroutine or
// replica) works on a request at a time, and only one on a membership
// (Store.Claim); the others return the current state. The Grant call has
// AttemptTimeout; what follows it is recorded on a fresh context, so a
// call that used up its deadline is still counted. A grant that keeps
// failing ends failed after GrantRetryFor. A Grant that lands after its
// request ended is undone.
func (s *Service) provision(ctx context.Context, id string) (*Request, error) {
	wctx, release, ok, err := s.lease(ctx, workKey(id))
	if err != nil {
		return nil, err
	}
	if !ok {
		return s.store.Get(ctx, id)
	}
	defer release()
	r, err := s.store.Get(ctx, id)
	if err != nil {
		return nil, err
	}
	if r.State != StateApproved {
		return r, nil
	}
	s.tookOver(ctx, r)
	p := s.providers[r.Provider]
	if p == nil {
		return s.failGrant(ctx, r, fmt.Sprintf("provider %q is not configured", r.Provider), nil, release)
	}
	mctx, mrelease, ok, err := s.leaseMember(wctx, r)
	if err != nil {
		return nil, err
	}
	if !ok {
		return s.busy(ctx, id, func(r *Request) bool { return r.State == StateApproved })
	}
	defer mrelease()
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
			r.UpdatedAt = now
			r.RetryAt, r.Attempts, r.LastError, r.FailingSince = time.Time{}, 0, "", time.Time{}
			s.owe(r, EvActive, SystemActor, "", now)
			ev := s.event(r, ActGranted, SystemActor, from, StateActive, "")
			ev.Detail = fmt.Sprintf("%s group %s until %s", r.Provider, r.Group, r.EndsAt.UTC().Format(time.RFC3339))
			return []AuditEvent{ev}, nil
		})
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
		r.Attempts++
		if r.FailingSince.IsZero() {
			r.FailingSince = now
		}
		r.LastError = gerr.Error()
		r.RetryAt = now.Add(s.backoff(r.Attempts))
		if end := r.FailingSince.Add(s.opt.GrantRetryFor); r.RetryAt.After(end) {
			r.RetryAt = end // the last try falls on the end of the retry window
		}
		r.UpdatedAt = now
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

func describeProviderErr(r *Request, err error) string {
	switch {
	case errors.Is(err, ErrUnknownUser):
		return fmt.Sprintf("%s has no account in %s", r.Requester, r.Provider)
	case errors.Is(err, ErrUserDisabled):
		return fmt.Sprintf("the %s account of %s is disabled", r.Provider, r.Requester)
	}
	return fmt.Sprintf("%s refused to add %s to %s: %v", r.Provider, r.Requester, r.Group, err)
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

// removalFailed records a failed removal attempt on r (a revocation or a
// clean-up): counted, audited (every attempt), retried with capped
// backoff, and, once it has been failing for RevokeAlertAfter, announced
// (alertDue). It is called inside Store.Update.
func (s *Service) removalFailed(r *Request, now time.Time, rerr error) []AuditEvent {
	r.Attempts++
	if r.FailingSince.IsZero() {
		r.FailingSince = now
	}
	r.LastError = rerr.Error()
	r.RetryAt = now.Add(s.backoff(r.Attempts))
	if at := r.FailingSince.Add(s.opt.RevokeAlertAfter); !r.Alerted && at.After(now) && at.Before(r.RetryAt) {
		r.RetryAt = at // look again when the alert is due
	}
	r.UpdatedAt = now
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

// Process does whatever is due for one request: post a security
// announcement still owed, time out a pending request past its TTL,
// (re)try the grant of an approved one, start the revocation of an
// expired grant, retry a failing revocation or clean-up. It is what the
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
		return s.timeout(ctx, r.ID)
	case StateApproved:
		if r.Kind == KindExtension {
			_, err = s.applyExtension(ctx, r, SystemActor)
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
	wctx, release, ok, err := s.lease(ctx, workKey(id))
	if err != nil {
		return nil, err
	}
	if !ok {
		return s.store.Get(ctx, id)
	}
	defer release()
	r, err := s.store.Get(ctx, id)
	if err != nil {
		return nil, err
	}
	if !r.needsRemoval() {
		return r, nil
	}
	s.tookOver(ctx, r)
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
	mctx, mrelease, ok, err := s.leaseMember(wctx, r)
	if err != nil {
		return nil, err
	}
	if !ok {
		return s.busy(ctx, id, (*Request).needsRemoval)
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
	if keeper == nil {
		p := s.providers[r.Provider]
		if p == nil {
			rerr = fmt.Errorf("provider %q is not configured", r.Provider)
		} else {
			actx, acancel := s.attempt(mctx)
			rerr = p.Revoke(actx, Grant{RequestID: r.ID, Role: r.Role, Group: r.Group, User: r.Requester})
			acancel()
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

// tookOver logs, on a store that hands out no fencing tokens (and so
// cannot tell a lapsed lease from a released one), when the work on r,
// just leased, looks interrupted: its
// last worker moved it on (approved, revoking) and then recorded nothing
// for longer than a live worker would, so that worker died or lost its
// lease and this one takes the work over.
func (s *Service) tookOver(ctx context.Context, r *Request) {
	if _, isFencer := s.store.(Fencer); isFencer {
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
		if o.ID != r.ID && o.Kind != KindExtension && o.Provider == r.Provider && o.Group == r.Group {
			return o, nil
		}
	}
	return nil, nil
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

// Revoke ends an active grant early. The requester, an eligible approver of
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
			return nil, userErr(ErrNotAllowed, "only %s, an approver of %s or an admin can revoke request %s", cur.Requester, cur.Role, cur.ID)
		}
	}
	if len([]rune(reason)) > MaxReasonLen {
		return nil, userErr(ErrReasonTooLong, "the reason is too long; the limit is %d characters", MaxReasonLen)
	}
	return s.endGrant(ctx, cur.ID, EndRevoked, by, strings.TrimSpace(reason))
}

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
		return nil, userErr(ErrNotAllowed, "only %s can extend request %s", cur.Requester, cur.ID)
	}
	if cur.State != StateActive {
		return nil, userErr(ErrNotActive, "request %s is %s, not active, so there is nothing to extend", cur.ID, cur.State)
	}
	if cur.Kind == KindRotation {
		return nil, userErr(ErrNotAllowed, "request %s is an on-call shift grant; it ends at the handoff and cannot be extended", cur.ID)
	}
	role, d, reason, err := s.validate(SubmitInput{Requester: by, Role: cur.Role, Duration: d, Reason: reason})
	if err != nil {
		return nil, err
	}
	now := s.clock.Now()
	if newEnd := cur.EndsAt.Add(d); newEnd.Sub(now) > role.MaxDuration {
		return nil, userErr(ErrTooLong, "extending by %s would give %s until %s, more than the maximum of %s from now; ask for at most %s",
			FormatDuration(d), role.Name, newEnd.UTC().Format("15:04 MST"), FormatDuration(role.MaxDuration),
			FormatDuration((role.MaxDuration - cur.EndsAt.Sub(now)).Truncate(time.Minute)))
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

// BreakGlass grants a role at once, without approval, to a user on the
// break-glass list for a role that allows it. The grant is flagged,
// announced in the security channel and waits for a security
// acknowledgement (Acknowledge). Refusals are *UserError values.
func (s *Service) BreakGlass(ctx context.Context, in SubmitInput) (*Request, error) {
	role, d, reason, err := s.validate(in)
	if err != nil {
		return nil, err
	}
	requester := normID(in.Requester)
	if !s.policy.MayBreakGlass(requester) {
		return nil, userErr(ErrNotAllowed, "you are not on the break-glass list; ask for %s with `/access %s <duration> <reason>` instead", role.Name, role.Name)
	}
	if !role.BreakGlass {
		return nil, userErr(ErrNotAllowed, "%s does not allow break-glass access; ask for it with `/access %s <duration> <reason>`", role.Name, role.Name)
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
	err = s.guarded(wctx, requester, func() error {
		if err := s.overlap(wctx, requester, role); err != nil {
			return err
		}
		if err := s.store.Create(wctx, r, ev); err != nil {
			return fmt.Errorf("access: store request: %w", err)
		}
		return nil
	})
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
// *UserError naming who did first.
func (s *Service) Acknowledge(ctx context.Context, id, by string) (*Request, error) {
	by = normID(by)
	now := s.clock.Now()
	r, err := s.store.Update(ctx, strings.TrimSpace(id), func(r *Request) ([]AuditEvent, error) {
		// Who may acknowledge is checked first: anyone else learns nothing
		// about the request (its kind, who acknowledged it).
		if !s.policy.MayAcknowledge(by, r.Requester) {
			if by == r.Requester {
				return nil, userErr(ErrSelfApproval, "you cannot acknowledge your own break-glass access")
			}
			if !s.involved(r, by) {
				return nil, uninvolved(r.ID)
			}
			return nil, userErr(ErrNotAllowed, "only the security team (%s) can acknowledge break-glass access", strings.Join(s.policy.Acknowledgers, ", "))
		}
		if r.Kind != KindBreakGlass {
			return nil, userErr(ErrNotAllowed, "request %s is not a break-glass grant; there is nothing to acknowledge", r.ID)
		}
		if r.AckBy != "" {
			return nil, userErr(ErrAlreadyDecided, "%s already acknowledged request %s", r.AckBy, r.ID)
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

// Audit returns the audit events since t, oldest first.
func (s *Service) Audit(ctx context.Context, since time.Time) ([]AuditEvent, error) {
	evs, err := s.store.Audit(ctx, since)
	if err != nil {
		return nil, err
	}
	sort.SliceStable(evs, func(i, j int) bool { return evs[i].At.Before(evs[j].At) })
	return evs, nil
}

// Shifts returns the current and the next shift of a rotation.
func (s *Service) Shifts(ctx context.Context, rotation string) (cur, next Shift, err error) {
	if s.oncall == nil {
		return Shift{}, Shift{}, fmt.Errorf("access: no on-call source configured")
	}
	now := s.clock.Now()
	cur, err = s.oncall.OnCall(ctx, rotation, now)
	if err != nil {
		return Shift{}, Shift{}, err
	}
	if !cur.End.IsZero() {
		next, err = s.oncall.OnCall(ctx, rotation, cur.End)
		if err != nil {
			return cur, Shift{}, nil
		}
	}
	return cur, next, nil
}
