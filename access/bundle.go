package access

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"
)

// Several roles in one request: "/access prod-admin,db-admin 2h reason"
// stores one Request per role, created together in one atomic step
// (Store.CreateMany) and tied by a bundle id. The engine, the leases, the
// revocation and reconcile see ordinary requests; only submitting,
// deciding from the shared card, the shared end time and the bundle-wide
// revoke, cancel and extend know about the bundle. Each member keeps its
// own approvers and approval count and is granted as soon as its own
// approvals are met; all members end at the same time (the end of the
// first one granted).
//
// The one card is rendered from every member at delivery: the service
// reads the members when it delivers an outbox entry of any of them and
// hands them to the notifier in Event.Bundle (outbox.go), instead of the
// notifier looking them up itself. The notifier then needs no store
// access of its own, stays a pure renderer that tests can feed directly,
// and the lead's approval-card references come along in the same read.

// DefaultRolesPerRequest is the default of Options.RolesPerRequest.
const DefaultRolesPerRequest = 5

// ErrTooManyRoles says a request named more roles than one request may.
var ErrTooManyRoles = errors.New("too many roles in one request")

// bundlePrefix starts every bundle id; request ids start with "r-".
const bundlePrefix = "b-"

// BundleID returns the id of the bundle whose lead request is leadID:
// "r-7k3m9q2x" leads "b-7k3m9q2x".
func BundleID(leadID string) string { return bundlePrefix + strings.TrimPrefix(leadID, "r-") }

// IsBundleID reports whether id names a bundle rather than one request.
func IsBundleID(id string) bool {
	return strings.HasPrefix(strings.ToLower(strings.TrimSpace(id)), bundlePrefix)
}

// leadOf returns the id of the lead request of bundle.
func leadOf(bundle string) string {
	return "r-" + strings.TrimPrefix(strings.ToLower(strings.TrimSpace(bundle)), bundlePrefix)
}

// SplitRoles splits a comma-separated role list ("prod-admin, db-admin")
// into names, lowered and trimmed, dropping empty parts and folding
// duplicates (the first mention keeps its place).
func SplitRoles(list string) []string {
	var out []string
	seen := map[string]bool{}
	for _, p := range strings.Split(list, ",") {
		p = strings.ToLower(strings.TrimSpace(p))
		if p == "" || seen[p] {
			continue
		}
		seen[p] = true
		out = append(out, p)
	}
	return out
}

// SubmitRoles asks for several roles in one request: one pending request
// per role, all with the same duration and reason, stored together under
// one bundle id with one approval card (carried by the first, the lead).
// roles are folded like SplitRoles does. A single role is an ordinary
// Submit. With no duration given, the shortest default duration of the
// roles counts for all of them.
//
// It is all or nothing: more than Options.RolesPerRequest roles
// (RefuseTooManyRoles, ErrTooManyRoles) or any role that Submit would
// refuse (unknown, duration over its maximum, already held or pending,
// nobody to approve it, the user unknown to its provider...) refuses the
// whole request, naming the role, and stores nothing. The refusals are
// Submit's (*Refusal values).
func (s *Service) SubmitRoles(ctx context.Context, in SubmitInput, roles []string) ([]*Request, error) {
	var names []string
	for _, r := range roles {
		names = append(names, SplitRoles(r)...)
	}
	names = SplitRoles(strings.Join(names, ","))
	switch {
	case len(names) == 0:
		return nil, &Refusal{Code: RefuseNoRole, Err: ErrUnknownRole}
	case len(names) > s.opt.RolesPerRequest:
		return nil, &Refusal{Code: RefuseTooManyRoles, Err: ErrTooManyRoles, Count: len(names), Limit: s.opt.RolesPerRequest}
	case len(names) == 1:
		in.Role = names[0]
		r, err := s.Submit(ctx, in)
		if err != nil {
			return nil, err
		}
		return []*Request{r}, nil
	}
	d := in.Duration
	if d == 0 {
		for _, n := range names {
			role, ok := s.policy.Role(n)
			if !ok {
				return nil, &Refusal{Code: RefuseUnknownRole, Err: ErrUnknownRole, Role: n}
			}
			if d == 0 || role.DefaultDuration < d {
				d = role.DefaultDuration
			}
		}
	}
	var items []bundleItem
	var reason string
	for _, n := range names {
		role, dd, why, err := s.validate(SubmitInput{Requester: in.Requester, Role: n, Duration: d, Reason: in.Reason})
		if err != nil {
			return nil, err
		}
		// A start (scheduled access) holds for every role, each within its
		// own max_schedule_ahead.
		start, zone, err := s.startOf(in, role)
		if err != nil {
			return nil, err
		}
		items = append(items, bundleItem{role: role, d: dd, tweak: scheduled(start, zone)})
		reason = why
	}
	requester := normID(in.Requester)
	for _, it := range items {
		// The request gate holds for every role (gate.go): who may ask,
		// what the reason must say. One refusal refuses the request.
		if err := s.gate(ctx, it.role, requester, reason); err != nil {
			return nil, err
		}
	}
	for _, it := range items {
		if err := s.overlap(ctx, requester, it.role); err != nil {
			return nil, err
		}
	}
	for _, it := range items {
		if err := s.checkUser(ctx, it.role, requester); err != nil {
			return nil, err
		}
	}
	return s.createBundle(ctx, KindRequest, requester, items, reason)
}

// RolesPerRequest returns how many roles one request may name
// (Options.RolesPerRequest).
func (s *Service) RolesPerRequest() int { return s.opt.RolesPerRequest }

// bundleItem is one member to create: its role, duration and, for an
// extension, the grant it extends.
type bundleItem struct {
	role   Role
	d      time.Duration
	target string
	tweak  func(*Request, *AuditEvent) // adjusts the member and its submit event (a start); nil: none
}

// createBundle stores one pending request per item as one bundle, with
// the approval card owed on the lead only. Each member gets the approvers
// of its own role (RefuseNoApprovers, RefuseTooFewApprovers name the role
// and refuse the whole bundle). The overlap and pending-limit checks run
// again under the requester's guard, with the write.
func (s *Service) createBundle(ctx context.Context, kind Kind, requester string, items []bundleItem, reason string) ([]*Request, error) {
	now := s.clock.Now()
	var rs []*Request
	for _, it := range items {
		approvers, _ := s.Approvers(ctx, it.role, requester)
		if len(approvers) == 0 {
			return nil, &Refusal{Code: RefuseNoApprovers, Err: ErrNoApprovers, Role: it.role.Name}
		}
		if len(approvers) < it.role.Approvals {
			return nil, &Refusal{Code: RefuseTooFewApprovers, Err: ErrNoApprovers, Role: it.role.Name, Limit: it.role.Approvals, Count: len(approvers)}
		}
		rs = append(rs, &Request{
			ID: NewID(), Kind: kind, Target: it.target, Requester: requester, Role: it.role.Name,
			Provider: it.role.Provider, Group: it.role.Group, Duration: it.d, Reason: reason,
			State: StatePending, CreatedAt: now, UpdatedAt: now, PendingUntil: now.Add(it.role.PendingTTL),
			Approvers: approvers, Needed: it.role.Approvals,
		})
		scheduleNudges(rs[len(rs)-1], it.role, now) // each role reminds and escalates to its own people
	}
	ids := make([]string, len(rs))
	roles := make([]string, len(rs))
	for i, r := range rs {
		ids[i], roles[i] = r.ID, r.Role
	}
	bundle := BundleID(rs[0].ID)
	var evs []AuditEvent
	for i, r := range rs {
		r.Bundle, r.Members = bundle, append([]string(nil), ids...)
		ev := s.event(r, ActSubmitted, requester, "", StatePending, reason)
		ev.Detail = "bundle " + bundle + ": " + strings.Join(roles, ", ")
		if kind == KindExtension {
			ev.Detail = "extends " + r.Target + " by " + FormatDuration(r.Duration) + "; " + ev.Detail
		}
		if tw := items[i].tweak; tw != nil {
			tw(r, &ev)
		}
		evs = append(evs, ev)
		// A role whose auto_approve rule the requester meets now is
		// approved by accessbot at once, as a request of one role is
		// (createApproved); the others wait for their approvers.
		if kind == KindRequest {
			if rule := s.autoApproval(ctx, items[i].role, requester, now); rule != "" {
				r.State, r.Needed, r.AutoApproved = StateApproved, 1, rule
				r.PendingUntil, r.RemindAt, r.EscalateAt = time.Time{}, time.Time{}, time.Time{}
				r.Decisions = []Decision{{By: SystemActor, Approve: true, Reason: "auto-approved: " + rule, At: now}}
				appr := s.event(r, ActApproved, SystemActor, StatePending, StateApproved, "")
				appr.Detail = "auto-approved: " + rule
				evs = append(evs, appr)
				s.onApproval(r, SystemActor, now)
			}
		}
	}
	s.owe(rs[0], EvSubmitted, requester, "", now) // the one card of the bundle
	wctx, cancel := s.writeCtx(ctx)
	defer cancel()
	err := s.guarded(wctx, requester, func() error {
		for i, r := range rs {
			if kind == KindExtension {
				if err := s.pendingExtension(wctx, requester, items[i].role, r.Target); err != nil {
					return err
				}
			} else if err := s.overlap(wctx, requester, items[i].role); err != nil {
				return err
			}
		}
		if err := s.pendingLimit(wctx, requester); err != nil {
			return err
		}
		if err := s.store.CreateMany(wctx, rs, evs...); err != nil {
			return fmt.Errorf("access: store bundle %s: %w", bundle, err)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	s.log.InfoContext(ctx, "bundle submitted", "bundle", bundle, "requests", strings.Join(ids, ","), "requester", requester,
		"roles", strings.Join(roles, ","), "kind", string(kind))
	s.deliver(ctx, rs[0])
	for i, r := range rs {
		rs[i] = s.reload(wctx, r)
		s.wake(rs[i])
	}
	for i, r := range rs {
		if r.State == StateApproved && !r.Scheduled() {
			if p, err := s.provision(ctx, r.ID); err == nil {
				rs[i] = p
			} else {
				s.log.WarnContext(ctx, "bundle: grant of an auto-approved role", "request_id", r.ID, "err", err)
			}
		}
	}
	return rs, nil
}

// Bundle returns every member of a bundle, the lead first. id may be the
// bundle's id or the id of any member; a request of a single role is
// returned alone. Unknown ids are refused like Get does.
func (s *Service) Bundle(ctx context.Context, id string) ([]*Request, error) {
	id = strings.TrimSpace(id)
	if !IsBundleID(id) {
		r, err := s.Get(ctx, id)
		if err != nil {
			return nil, err
		}
		if r.Bundle == "" {
			return []*Request{r}, nil
		}
		id = r.Bundle
	}
	lead, err := s.store.Get(ctx, leadOf(id))
	if errors.Is(err, ErrNotFound) || (err == nil && !strings.EqualFold(lead.Bundle, id)) {
		return nil, noRequest(id)
	}
	if err != nil {
		return nil, err
	}
	return s.members(ctx, lead)
}

// members loads the members of r's bundle in their order, r itself as
// given; a member that cannot be read is left out.
func (s *Service) members(ctx context.Context, r *Request) ([]*Request, error) {
	if r.Bundle == "" {
		return []*Request{r}, nil
	}
	out := make([]*Request, 0, len(r.Members))
	for _, id := range r.Members {
		if id == r.ID {
			out = append(out, r)
			continue
		}
		m, err := s.store.Get(ctx, id)
		if errors.Is(err, ErrNotFound) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("access: read %s of bundle %s: %w", id, r.Bundle, err)
		}
		out = append(out, m)
	}
	return out, nil
}

// BundleOutcome is what an action on a whole bundle did: the members it
// changed and those it left, each with why.
type BundleOutcome struct {
	Bundle  string
	Done    []*Request // members changed, as they are now
	Skipped []Skipped  // members left as they were
	Members []*Request // every member, as it is now (lead first)
}

// Skipped is a member an action on the bundle left alone, with the
// refusal it got (a *Refusal or *StateError, as for one request).
type Skipped struct {
	Request *Request
	Err     error
}

// outcome reloads the members and wraps up; when nothing was done the
// first refusal is the error, or else RefuseBundleNoneOpen wrapping none
// (to someone involved in a member; anyone else learns nothing about the
// request and gets the refusal of an unknown id).
func (s *Service) outcome(ctx context.Context, bundle, by string, ms, done []*Request, skipped []Skipped, none error) (*BundleOutcome, error) {
	if len(done) == 0 {
		if len(skipped) > 0 {
			return nil, skipped[0].Err
		}
		involved := false
		for _, m := range ms {
			involved = involved || s.involved(m, by)
		}
		if !involved {
			return nil, uninvolved(bundle)
		}
		return nil, &Refusal{Code: RefuseBundleNoneOpen, Err: none, ID: bundle}
	}
	all, err := s.Bundle(ctx, bundle)
	if err != nil {
		all = done
	}
	return &BundleOutcome{Bundle: bundle, Done: done, Skipped: skipped, Members: all}, nil
}

// DecideBundle records approver's decision on a bundle (the Approve and
// Deny buttons of its card). Approve approves, each in its own
// compare-and-set as Decide does, every pending member approver may
// approve; the others are Skipped with Decide's refusal, and each member
// is granted as soon as its own approvals are met. Deny denies every
// pending member, when approver may decide at least one of them: a deny
// ends the whole request. When no member could be decided, the error is
// the first member's refusal (RefuseBundleNoneOpen, ErrAlreadyDecided,
// when none was pending).
func (s *Service) DecideBundle(ctx context.Context, bundle, approver string, approve bool, reason string) (*BundleOutcome, error) {
	ms, err := s.Bundle(ctx, bundle)
	if err != nil {
		return nil, err
	}
	bundle = ms[0].Bundle
	if bundle == "" {
		r, err := s.Decide(ctx, ms[0].ID, approver, approve, reason)
		if err != nil {
			return nil, err
		}
		return &BundleOutcome{Done: []*Request{r}, Members: []*Request{r}}, nil
	}
	var done []*Request
	var skipped []Skipped
	if approve {
		for _, m := range ms {
			if m.State != StatePending {
				continue
			}
			r, err := s.Decide(ctx, m.ID, approver, true, reason)
			if err != nil {
				skipped = append(skipped, Skipped{Request: m, Err: err})
				continue
			}
			done = append(done, r)
		}
		return s.outcome(ctx, bundle, approver, ms, done, skipped, ErrAlreadyDecided)
	}
	return s.denyBundle(ctx, bundle, ms, approver, reason)
}

// denyBundle denies every pending member of a bundle. The denier must be
// allowed to decide at least one of them (the first one they may decide
// is denied through Decide, with all its checks); the others are denied
// on that authority, each in its own compare-and-set.
func (s *Service) denyBundle(ctx context.Context, bundle string, ms []*Request, approver, reason string) (*BundleOutcome, error) {
	var done []*Request
	var skipped []Skipped
	var via *Request
	for _, m := range ms {
		if m.State != StatePending {
			continue
		}
		r, err := s.Decide(ctx, m.ID, approver, false, reason)
		if err != nil {
			skipped = append(skipped, Skipped{Request: m, Err: err})
			continue
		}
		via = r
		done = append(done, r)
		break
	}
	if via == nil {
		return s.outcome(ctx, bundle, approver, ms, nil, skipped, ErrAlreadyDecided)
	}
	skipped = nil
	for _, m := range ms {
		if m.ID == via.ID || m.State != StatePending {
			continue
		}
		r, err := s.denyAlong(ctx, m.ID, normID(approver), strings.TrimSpace(reason), via)
		if err != nil {
			skipped = append(skipped, Skipped{Request: m, Err: err})
			continue
		}
		done = append(done, r)
	}
	return s.outcome(ctx, bundle, approver, ms, done, skipped, ErrAlreadyDecided)
}

// denyAlong denies a pending member of via's bundle on the authority of
// approver's deny of via.
func (s *Service) denyAlong(ctx context.Context, id, approver, reason string, via *Request) (*Request, error) {
	now := s.clock.Now()
	r, err := s.store.Update(ctx, id, func(r *Request) ([]AuditEvent, error) {
		if r.State != StatePending {
			return nil, stateErr(r, "pending")
		}
		r.Decisions = append(r.Decisions, Decision{By: approver, Approve: false, Reason: reason, At: now})
		r.UpdatedAt = now
		r.State = StateDenied
		s.owe(r, EvDenied, approver, reason, now)
		ev := s.event(r, ActDenied, approver, StatePending, StateDenied, reason)
		ev.Detail = fmt.Sprintf("bundle %s denied along with %s (%s)", r.Bundle, via.ID, via.Role)
		return []AuditEvent{ev}, nil
	})
	if err != nil {
		return nil, err
	}
	s.log.InfoContext(ctx, "decision", "request_id", r.ID, "approver", approver, "approve", false, "bundle", r.Bundle)
	return s.deliver(ctx, r), nil
}

// RevokeBundle ends every member of a bundle early: active grants are
// revoked (Revoke, with its checks, for each), and pending members are
// cancelled when by is the requester. Members it cannot end (one still
// being granted, say) are Skipped with their refusal.
func (s *Service) RevokeBundle(ctx context.Context, bundle, by, reason string) (*BundleOutcome, error) {
	ms, err := s.Bundle(ctx, bundle)
	if err != nil {
		return nil, err
	}
	var done []*Request
	var skipped []Skipped
	for _, m := range ms {
		var r *Request
		switch {
		case m.State == StateActive, m.State == StateApproved: // one being granted is refused, and said so
			r, err = s.Revoke(ctx, m.ID, by, reason)
		case m.State == StatePending && m.Requester == normID(by):
			r, err = s.Cancel(ctx, m.ID, by)
		default:
			continue
		}
		if err != nil {
			skipped = append(skipped, Skipped{Request: m, Err: err})
			continue
		}
		done = append(done, r)
	}
	return s.outcome(ctx, ms[0].Bundle, by, ms, done, skipped, ErrNotActive)
}

// CancelBundle withdraws every pending member of a bundle; only the
// requester may (Cancel's refusals).
func (s *Service) CancelBundle(ctx context.Context, bundle, by string) (*BundleOutcome, error) {
	ms, err := s.Bundle(ctx, bundle)
	if err != nil {
		return nil, err
	}
	var done []*Request
	var skipped []Skipped
	for _, m := range ms {
		if m.State != StatePending {
			continue
		}
		r, err := s.Cancel(ctx, m.ID, by)
		if err != nil {
			skipped = append(skipped, Skipped{Request: m, Err: err})
			continue
		}
		done = append(done, r)
	}
	return s.outcome(ctx, ms[0].Bundle, by, ms, done, skipped, ErrAlreadyDecided)
}

// ExtendBundle asks for d more on every active grant of a bundle: one
// extension request per grant, stored together as a bundle of their own
// with one card, each approved by the approvers of its role. It is all or
// nothing, with Extend's refusals (the first one refuses the whole
// extension and stores nothing); RefuseBundleNoneOpen (ErrNotActive) when
// no member is active.
func (s *Service) ExtendBundle(ctx context.Context, bundle, by string, d time.Duration, reason string) ([]*Request, error) {
	ms, err := s.Bundle(ctx, bundle)
	if err != nil {
		return nil, err
	}
	by = normID(by)
	var items []bundleItem
	var why string
	now := s.clock.Now()
	for _, cur := range ms {
		if cur.State != StateActive {
			continue
		}
		if cur.Requester != by {
			if !s.involved(cur, by) {
				return nil, uninvolved(bundle)
			}
			return nil, &Refusal{Code: RefuseExtendNotYours, Err: ErrNotAllowed, ID: bundle, User: cur.Requester}
		}
		role, dd, rs, err := s.validate(SubmitInput{Requester: by, Role: cur.Role, Duration: d, Reason: reason})
		if err != nil {
			return nil, err
		}
		if newEnd := cur.EndsAt.Add(dd); newEnd.Sub(now) > role.MaxDuration {
			return nil, &Refusal{Code: RefuseExtendTooLong, Err: ErrTooLong, ID: cur.ID, Role: role.Name, Duration: dd, At: newEnd,
				Max: role.MaxDuration, Left: (role.MaxDuration - cur.EndsAt.Sub(now)).Truncate(time.Minute)}
		}
		if err := s.pendingExtension(ctx, by, role, cur.ID); err != nil {
			return nil, err
		}
		items = append(items, bundleItem{role: role, d: dd, target: cur.ID})
		why = rs
	}
	switch len(items) {
	case 0:
		if _, err := s.outcome(ctx, strings.TrimSpace(bundle), by, ms, nil, nil, ErrNotActive); err != nil {
			return nil, err
		}
	case 1:
		r, err := s.Extend(ctx, items[0].target, by, d, reason)
		if err != nil {
			return nil, err
		}
		return []*Request{r}, nil
	}
	return s.createBundle(ctx, KindExtension, by, items, why)
}

// bundleEnd returns the end time every member of r's bundle shares: the
// end of the member granted first (extensions included), false while no
// other member has been granted (r then sets it: grant time + duration).
func (s *Service) bundleEnd(ctx context.Context, r *Request) (time.Time, bool) {
	if r.Bundle == "" || r.Kind != KindRequest {
		return time.Time{}, false
	}
	var first *Request
	for _, id := range r.Members {
		if id == r.ID {
			continue
		}
		m, err := s.store.Get(ctx, id)
		if err != nil || m.GrantedAt.IsZero() || m.EndsAt.IsZero() {
			continue
		}
		if first == nil || m.GrantedAt.Before(first.GrantedAt) {
			first = m
		}
	}
	if first == nil {
		return time.Time{}, false
	}
	return first.EndsAt, true
}

// bundleLease holds the bundle's lease while a member's grant records its
// end time, so that two members granted at once agree on it. A lease that
// cannot be had within MemberWait is gone without (logged): the grant
// still goes on.
func (s *Service) bundleLease(ctx context.Context, r *Request) func() {
	if r.Bundle == "" || r.Kind != KindRequest {
		return func() {}
	}
	const step = 25 * time.Millisecond
	give := time.NewTimer(s.opt.MemberWait)
	defer give.Stop()
	for {
		release, ok, err := s.claim(ctx, "bundle:"+r.Bundle)
		if err == nil && ok {
			return release
		}
		select {
		case <-ctx.Done():
		case <-give.C:
		case <-time.After(step):
			continue
		}
		s.log.WarnContext(ctx, "bundle lease not had; recording the end time without it", "bundle", r.Bundle, "request_id", r.ID, "err", err)
		return func() {}
	}
}

// pendingCount counts requests waiting for approval, a bundle as one.
func pendingCount(pend []*Request) int {
	seen := map[string]bool{}
	n := 0
	for _, r := range pend {
		if r.Bundle != "" {
			if seen[r.Bundle] {
				continue
			}
			seen[r.Bundle] = true
		}
		n++
	}
	return n
}
