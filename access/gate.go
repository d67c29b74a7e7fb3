package access

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"
)

// The request gate: who may request a role (Role.Requesters), what a
// reason must say (Role.ReasonPattern), and when a request is approved
// without a click (Role.AutoApprove). Submit applies them in this order,
// before anything is stored: a refusal changes nothing.

// Sentinels of the request gate.
var (
	// ErrReasonPattern: the reason does not match the role's reason_pattern.
	ErrReasonPattern = errors.New("reason does not match the role's pattern")
	// ErrRequesterUnchecked: whether the person may request the role could
	// not be told (a group or on-call lookup failed); the request is
	// refused, never let through.
	ErrRequesterUnchecked = errors.New("cannot tell whether the person may request the role")
)

// Requesters names who may request a role: any of the users, the members
// of any of the groups, or whoever is on call for any of the rotations now.
type Requesters struct {
	Users     []string // identities
	Groups    []GroupRef
	Rotations []string
}

// GroupRef is a group in a provider whose members may request a role.
type GroupRef struct {
	Provider string // key of the provider (okta, aws)
	Group    string // the provider's group id
	Name     string // shown to people; Group when empty
}

// Label is how the group is shown to people.
func (g GroupRef) Label() string {
	if g.Name != "" {
		return g.Name
	}
	return g.Provider + " group " + g.Group
}

// AutoApprove is when a request of a role is approved without a click:
// the requester is one of Users or on call for one of Rotations at submit
// time, and (when Hours is set) it is within Hours.
type AutoApprove struct {
	Users     []string // identities
	Rotations []string
	Hours     Hours // zero: at any time
}

// GroupMembership is the optional capability of a Provisioner to tell
// whether a person (an identity) is a member of one of its groups. A
// person the provider does not know is no member (false, nil); an error
// means the provider could not answer.
type GroupMembership interface {
	IsMember(ctx context.Context, identity, group string) (bool, error)
}

// DefaultMembershipCacheFor is the default of Options.MembershipCacheFor.
const DefaultMembershipCacheFor = 5 * time.Minute

// findGroupMembership finds the group lookups of the providers and checks
// that every provider a role's requesters name can answer them.
func (s *Service) findGroupMembership(provs map[string]Provisioner) error {
	s.groups = map[string]GroupMembership{}
	for name, p := range provs {
		if gm, ok := p.(GroupMembership); ok {
			s.groups[name] = gm
		}
	}
	for _, name := range s.policy.RoleNames() {
		role := s.policy.Roles[name]
		if role.Requesters == nil {
			continue
		}
		for _, g := range role.Requesters.Groups {
			if _, ok := s.groups[g.Provider]; !ok {
				return fmt.Errorf("access: role %s: requesters name a group of provider %q, which cannot tell group membership", name, g.Provider)
			}
		}
	}
	return nil
}

// MayRequest returns nil when identity may request role now, else the
// *Refusal Submit would give: RefuseNotRequester, or
// RefuseRequesterUnchecked when a lookup failed and nothing else let the
// person in. It changes nothing.
func (s *Service) MayRequest(ctx context.Context, role Role, identity string) error {
	rq := role.Requesters
	if rq == nil {
		return nil
	}
	id := normID(identity)
	if id != "" && contains(rq.Users, id) {
		return nil
	}
	now := s.clock.Now()
	var badRots, badGroups []string
	provider := ""
	if id != "" {
		for _, rot := range rq.Rotations {
			on, err := s.onCallNow(ctx, rot, id, now)
			if err != nil {
				s.log.WarnContext(ctx, "requesters: on-call lookup failed", "role", role.Name, "rotation", rot, "err", err)
				badRots = append(badRots, rot)
				continue
			}
			if on {
				return nil
			}
		}
		for _, g := range rq.Groups {
			in, err := s.isMember(ctx, g, id, now)
			if err != nil {
				s.log.WarnContext(ctx, "requesters: group lookup failed", "role", role.Name, "provider", g.Provider, "group", g.Group, "err", err)
				badGroups = append(badGroups, g.Label())
				if provider == "" {
					provider = g.Provider
				}
				continue
			}
			if in {
				return nil
			}
		}
	}
	if len(badRots)+len(badGroups) > 0 {
		return &Refusal{Code: RefuseRequesterUnchecked, Err: ErrRequesterUnchecked, Role: role.Name, Provider: provider,
			Groups: badGroups, Rotations: badRots}
	}
	var groups []string
	for _, g := range rq.Groups {
		groups = append(groups, g.Label())
	}
	return &Refusal{Code: RefuseNotRequester, Err: ErrNotAllowed, Role: role.Name,
		People: slices.Clone(rq.Users), Groups: groups, Rotations: slices.Clone(rq.Rotations)}
}

// gate applies the role's requesters and reason pattern to a request (or
// an extension) of requester: nil, or the *Refusal.
func (s *Service) gate(ctx context.Context, role Role, requester, reason string) error {
	if err := s.MayRequest(ctx, role, requester); err != nil {
		return err
	}
	return checkReason(role, reason)
}

// checkReason refuses a reason that does not match the role's pattern.
func checkReason(role Role, reason string) error {
	if role.ReasonPattern == nil || role.ReasonPattern.MatchString(reason) {
		return nil
	}
	return &Refusal{Code: RefuseReasonPattern, Err: ErrReasonPattern, Role: role.Name,
		Pattern: role.ReasonPattern.String(), Hint: role.ReasonHint}
}

// autoApproval returns the auto_approve rule of role that requester meets
// at now, "" when none does. An on-call source that cannot answer counts
// as "not on call": the request then waits for a person.
func (s *Service) autoApproval(ctx context.Context, role Role, requester string, now time.Time) string {
	a := role.AutoApprove
	if a == nil || !a.Hours.Contains(now) {
		return ""
	}
	rule := ""
	if contains(a.Users, requester) {
		rule = "listed for auto-approval"
	} else {
		for _, rot := range a.Rotations {
			on, err := s.onCallNow(ctx, rot, requester, now)
			if err != nil {
				s.log.WarnContext(ctx, "auto-approve: on-call lookup failed; the request waits for approval", "role", role.Name, "rotation", rot, "err", err)
				continue
			}
			if on {
				rule = "on call for " + rot
				break
			}
		}
	}
	if rule == "" {
		return ""
	}
	if a.Hours.Loc != nil {
		rule += " during " + a.Hours.String()
	}
	return rule
}

func (s *Service) onCallNow(ctx context.Context, rot, identity string, at time.Time) (bool, error) {
	if s.oncall == nil {
		return false, errors.New("no on-call source configured")
	}
	shift, err := s.lookupOnCall(ctx, rot, at)
	if err != nil {
		return false, err
	}
	return contains(shift.People, identity), nil
}

// createApproved stores a request that an auto_approve rule approved,
// with its submission and the approval by SystemActor (Detail: the rule)
// in one step, posts its card (no buttons: nothing to decide) and
// provisions it as an approval would. Nobody needs to be able to approve:
// the approvers are asked for the card only.
func (s *Service) createApproved(ctx context.Context, requester string, role Role, d time.Duration, reason, rule string, tweaks ...func(*Request, *AuditEvent)) (*Request, error) {
	approvers, _ := s.Approvers(ctx, role, requester)
	now := s.clock.Now()
	r := &Request{
		ID: NewID(), Kind: KindRequest, Requester: requester, Role: role.Name, Provider: role.Provider, Group: role.Group,
		Duration: d, Reason: reason, State: StateApproved, CreatedAt: now, UpdatedAt: now,
		Approvers: approvers, Needed: 1, AutoApproved: rule, // the one approval is accessbot's
		Decisions: []Decision{{By: SystemActor, Approve: true, Reason: "auto-approved: " + rule, At: now}},
	}
	sub := s.event(r, ActSubmitted, requester, "", StatePending, reason)
	appr := s.event(r, ActApproved, SystemActor, StatePending, StateApproved, "")
	appr.Detail = "auto-approved: " + rule
	for _, tw := range tweaks {
		tw(r, &sub)
	}
	s.owe(r, EvSubmitted, requester, "", now) // the card, showing the rule, and the requester's DM
	s.onApproval(r, SystemActor, now)         // a start ahead: granted then, and the requester told
	wctx, cancel := s.writeCtx(ctx)
	defer cancel()
	err := s.guarded(wctx, requester, func() error {
		if err := s.overlap(wctx, requester, role); err != nil {
			return err
		}
		if err := s.store.Create(wctx, r, sub, appr); err != nil {
			return fmt.Errorf("access: store request: %w", err)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	s.log.InfoContext(ctx, "request auto-approved", "request_id", r.ID, "requester", requester, "role", role.Name,
		"duration", FormatDuration(d), "rule", rule)
	s.deliver(ctx, r)
	r = s.reload(wctx, r)
	s.wake(r)
	if r.Scheduled() {
		return r, nil // granted at its start (the due index brings it back)
	}
	return s.provision(ctx, r.ID)
}

// membershipCache keeps group lookups' answers for a while.
type membershipCache struct {
	mu sync.Mutex
	m  map[groupAnswerKey]memberAnswer
}

type groupAnswerKey struct{ provider, group, identity string }

type memberAnswer struct {
	member bool
	at     time.Time
}

// maxMemberAnswers bounds the cache; past it, expired answers go first,
// then all of them.
const maxMemberAnswers = 10000

func (c *membershipCache) get(k groupAnswerKey, now time.Time, ttl time.Duration) (bool, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	a, ok := c.m[k]
	if !ok || now.Sub(a.at) >= ttl || now.Before(a.at) {
		return false, false
	}
	return a.member, true
}

func (c *membershipCache) put(k groupAnswerKey, member bool, now time.Time, ttl time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil {
		c.m = map[groupAnswerKey]memberAnswer{}
	}
	if len(c.m) >= maxMemberAnswers {
		for key, a := range c.m {
			if now.Sub(a.at) >= ttl {
				delete(c.m, key)
			}
		}
		if len(c.m) >= maxMemberAnswers {
			clear(c.m)
		}
	}
	c.m[k] = memberAnswer{member: member, at: now}
}

// isMember asks g's provider whether identity is in g (with a deadline of
// CheckUserTimeout), through the cache.
func (s *Service) isMember(ctx context.Context, g GroupRef, identity string, now time.Time) (bool, error) {
	gm, ok := s.groups[g.Provider]
	if !ok {
		return false, fmt.Errorf("provider %q cannot tell group membership", g.Provider)
	}
	k := groupAnswerKey{g.Provider, g.Group, identity}
	if in, ok := s.memberCache.get(k, now, s.opt.MembershipCacheFor); ok {
		return in, nil
	}
	cctx, cancel := context.WithTimeout(ctx, s.opt.CheckUserTimeout)
	defer cancel()
	in, err := gm.IsMember(cctx, identity, g.Group)
	if err != nil {
		return false, err
	}
	s.memberCache.put(k, in, now, s.opt.MembershipCacheFor)
	return in, nil
}
