package access

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
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

	// RolesPerRequest is how many roles one request may name (default 5;
	// see SubmitRoles).
	RolesPerRequest int
	// Request gate (gate.go): MembershipCacheFor is how long a provider's
	// answer to "is this person in that group" is kept for the requesters
	// check (default 5 minutes). Failed lookups are never kept.
	MembershipCacheFor time.Duration
}

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
	if o.RolesPerRequest <= 0 {
		o.RolesPerRequest = DefaultRolesPerRequest
	}
	if o.MembershipCacheFor <= 0 {
		o.MembershipCacheFor = DefaultMembershipCacheFor
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

	// Optional capabilities of the store and the providers, found once
	// by NewService: nil (absent) when the store or provider lacks them.
	fencer   Fencer                  // fencing tokens with claims (lease.go)
	counter  Counter                 // shared command counts (limits.go)
	checkers map[string]UserChecker  // provider -> user check before a request is posted
	listers  map[string]MemberLister // provider -> drift check (reconcile.go)

	rot rotationState // shift grants: per-rotation options and announced problems (rotation.go)

	cmds localCounter // per-user command counts when the store is no Counter (limits.go)

	// Request gate (gate.go): provider -> group membership lookups, and
	// their answers kept for Options.MembershipCacheFor.
	groups      map[string]GroupMembership
	memberCache membershipCache
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
	s.fencer, _ = d.Store.(Fencer)
	s.counter, _ = d.Store.(Counter)
	s.checkers, s.listers = map[string]UserChecker{}, map[string]MemberLister{}
	for name, p := range d.Providers {
		if uc, ok := p.(UserChecker); ok {
			s.checkers[name] = uc
		}
		if ml, ok := p.(MemberLister); ok {
			s.listers[name] = ml
		}
	}
	if err := s.findGroupMembership(d.Providers); err != nil {
		return nil, err
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
	return &Refusal{Code: RefuseNoRequest, Err: ErrNotFound, ID: strings.TrimSpace(id)}
}

// uninvolved is the refusal to someone who may not learn anything about
// the request: it reads exactly like noRequest, but wraps ErrNotAllowed.
func uninvolved(id string) error {
	return &Refusal{Code: RefuseNoRequest, Err: ErrNotAllowed, ID: strings.TrimSpace(id)}
}

// involved reports whether who may learn about r's details: its
// requester, someone asked to approve it or who decided on it, or an
// admin. Refusals to anyone else are uninvolved (worded as noRequest).
func (s *Service) involved(r *Request, who string) bool {
	who = normID(who)
	return who != "" && (who == r.Requester || contains(r.Approvers, who) || contains(r.EscalatedTo, who) || r.DecidedBy(who) || s.policy.IsAdmin(who))
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
