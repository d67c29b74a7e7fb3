package access

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"
)

// Drift is what a reconcile found in one provider group.
type Drift struct {
	Provider string
	Group    string
	Roles    []string // roles mapped to the group
	// Unexpected are members with no live grant (added out of band, or a
	// removal the provider lost); Removed lists those taken out because a
	// role of the group says reconcile: remove.
	Unexpected []string
	Removed    []string
	// Missing are live grants whose membership is gone; Reapplied lists
	// the ones added back.
	Missing   []string // request ids
	Reapplied []string
	Errors    []string
	// Busy lists members (to remove) and request ids (to re-apply) whose
	// membership another call was changing at the time: left alone, for
	// the next reconcile to look at again.
	Busy []string
	// RemovalFailing are members whose grant has ended (or whose failed
	// grant is being cleaned up) but whose removal the provider keeps
	// refusing: the revocation or clean-up is being retried (and alerted
	// on by its own rules), so they are neither "without a grant" nor
	// removed here, and they alone are no drift (Empty).
	RemovalFailing []FailingRemoval
}

// FailingRemoval is a member whose revocation is being retried.
type FailingRemoval struct {
	User         string
	RequestID    string
	FailingSince time.Time
	Attempts     int
	// Cleanup: the request's grant failed (or landed after the request
	// ended) and the removal of what it may have left is being retried.
	Cleanup bool
}

// Empty reports whether the group matched the grants exactly.
func (d Drift) Empty() bool {
	return len(d.Unexpected) == 0 && len(d.Missing) == 0 && len(d.Errors) == 0
}

type groupKey struct{ provider, group string }

// Reconcile compares every managed group's members (providers that can
// list them) with the live grants. Members without a grant are reported
// to the security channel and removed when a role of the group says
// `reconcile: remove`; live grants whose membership is missing are applied
// again (Grant is idempotent) and reported. Members whose revocation is
// being retried, or whose failed grant's clean-up is, are listed as such
// (RemovalFailing) and not reported again: the removal's own alert covers
// them. Every re-apply and removal holds the membership's claim, as
// provision and revoke do; every provider call has AttemptTimeout and its
// bookkeeping a fresh context. It returns what it found for every group
// with a difference or a failing removal.
func (s *Service) Reconcile(ctx context.Context) ([]Drift, error) {
	groups := map[groupKey][]Role{}
	for _, name := range s.policy.RoleNames() {
		r := s.policy.Roles[name]
		if _, ok := s.listers[r.Provider]; ok {
			k := groupKey{r.Provider, r.Group}
			groups[k] = append(groups[k], r)
		}
	}
	keys := make([]groupKey, 0, len(groups))
	for k := range groups {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool { return keys[i].provider+keys[i].group < keys[j].provider+keys[j].group })
	var out []Drift
	var errs []error
	for _, k := range keys {
		d, err := s.reconcileGroup(ctx, k, groups[k])
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if !d.Empty() || len(d.RemovalFailing) > 0 {
			out = append(out, d)
		}
	}
	return out, errors.Join(errs...)
}

func (s *Service) reconcileGroup(ctx context.Context, k groupKey, roles []Role) (Drift, error) {
	p := s.providers[k.provider]
	actx, acancel := s.attempt(ctx)
	members, err := s.listers[k.provider].Members(actx, k.group)
	acancel()
	if err != nil {
		return Drift{}, fmt.Errorf("access: reconcile %s group %s: %w", k.provider, k.group, err)
	}
	// Grants are read after the members: a grant made in between counts as
	// granted, so a fresh member is never mistaken for drift.
	live, err := s.store.List(ctx, Filter{States: []State{StateActive, StateRevoking, StateApproved}})
	if err != nil {
		return Drift{}, fmt.Errorf("access: reconcile: list grants: %w", err)
	}
	d := Drift{Provider: k.provider, Group: k.group}
	remove := false
	for _, r := range roles {
		d.Roles = append(d.Roles, r.Name)
		remove = remove || r.Reconcile == "remove"
	}
	isMember := map[string]bool{}
	for _, m := range members {
		isMember[normID(m)] = true
	}
	granted := map[string]bool{}
	failing := map[string]*Request{} // member -> revocation being retried
	for _, r := range live {
		if r.Provider != k.provider || r.Group != k.group || r.Kind == KindExtension || r.Scheduled() {
			continue
		}
		// A revocation that has failed is no grant: its member is still
		// there only because the provider refuses the removal.
		if r.State == StateRevoking && r.Attempts > 0 {
			if f := failing[r.Requester]; f == nil || r.FailingSince.Before(f.FailingSince) {
				failing[r.Requester] = r
			}
			continue
		}
		granted[r.Requester] = true
		// Only settled grants can be missing: an approved one is being
		// provisioned and a revoking one is on its way out.
		if r.State != StateActive || isMember[r.Requester] {
			continue
		}
		s.reapply(ctx, p, k, &d, r)
	}
	for _, m := range members {
		m = normID(m)
		if granted[m] {
			continue
		}
		if r := failing[m]; r != nil {
			d.RemovalFailing = append(d.RemovalFailing, FailingRemoval{User: m, RequestID: r.ID,
				FailingSince: r.FailingSince, Attempts: r.Attempts})
			continue
		}
		// A failed grant (or one that landed after its request ended)
		// whose removal is being retried: the clean-up's own alert covers
		// the member.
		c, err := s.cleanupOf(ctx, k, m)
		if err != nil {
			d.Errors = append(d.Errors, fmt.Sprintf("look up clean-ups of %s: %v", m, err))
			continue
		}
		if c != nil {
			d.RemovalFailing = append(d.RemovalFailing, FailingRemoval{User: m, RequestID: c.ID,
				FailingSince: c.FailingSince, Attempts: c.Attempts, Cleanup: true})
			continue
		}
		if !remove {
			d.Unexpected = append(d.Unexpected, m)
			continue
		}
		s.removeUnexpected(ctx, p, k, &d, m)
	}
	if len(d.RemovalFailing) > 0 {
		s.log.InfoContext(ctx, "reconcile: removals still being retried", "provider", k.provider, "group", k.group,
			"members", len(d.RemovalFailing))
	}
	if !d.Empty() {
		s.log.WarnContext(ctx, "group drift", "provider", k.provider, "group", k.group,
			"unexpected", d.Unexpected, "removed", d.Removed, "missing", d.Missing, "reapplied", d.Reapplied, "busy", d.Busy, "errors", d.Errors)
		s.notify(ctx, Event{Type: EvDrift, Request: &Request{Role: strings.Join(d.Roles, ","), Provider: k.provider, Group: k.group},
			Actor: SystemActor, Reason: d.String(), Role: roles[0]})
	}
	return d, nil
}

// reapply adds back the membership of r, an active grant whose member was
// missing from the group. It holds the membership's claim (as provision
// and revoke do) and looks at r again under it, so that a grant ending
// meanwhile is never added back after its revocation went through; a
// membership another call is changing is left for the next reconcile.
// The Grant has AttemptTimeout; its audit is written on a fresh context.
func (s *Service) reapply(ctx context.Context, p Provisioner, k groupKey, d *Drift, r *Request) {
	release, ok, err := s.claimMember(ctx, r)
	if err != nil {
		d.Missing = append(d.Missing, r.ID)
		d.Errors = append(d.Errors, fmt.Sprintf("re-apply %s for %s: %v", r.ID, r.Requester, err))
		return
	}
	if !ok {
		d.Missing = append(d.Missing, r.ID)
		d.Busy = append(d.Busy, r.ID)
		return
	}
	defer release()
	cur, err := s.store.Get(ctx, r.ID)
	if err != nil {
		d.Missing = append(d.Missing, r.ID)
		d.Errors = append(d.Errors, fmt.Sprintf("re-apply %s for %s: %v", r.ID, r.Requester, err))
		return
	}
	if cur.State != StateActive {
		return // ended (or ending) since the grants were listed: nothing is missing
	}
	d.Missing = append(d.Missing, r.ID)
	actx, acancel := s.attempt(ctx)
	gerr := p.Grant(actx, Grant{RequestID: r.ID, Role: r.Role, Group: r.Group, User: r.Requester})
	acancel()
	if gerr != nil {
		d.Errors = append(d.Errors, fmt.Sprintf("re-apply %s for %s: %v", r.ID, r.Requester, gerr))
		return
	}
	d.Reapplied = append(d.Reapplied, r.ID)
	bctx, bcancel := afterCall(ctx)
	defer bcancel()
	now := s.clock.Now()
	_, err = s.store.Update(bctx, r.ID, func(x *Request) ([]AuditEvent, error) {
		ev := s.event(x, ActDriftReapplied, SystemActor, x.State, x.State, "")
		ev.Detail = "membership was missing from " + k.provider + " group " + k.group + "; added again"
		x.UpdatedAt = now
		return []AuditEvent{ev}, nil
	})
	if err != nil {
		d.Errors = append(d.Errors, fmt.Sprintf("audit re-apply of %s: %v", r.ID, err))
	}
}

// removeUnexpected removes m, a member without a grant, from the group
// (reconcile: remove). It holds the membership's claim and asks again
// under it whether a live grant needs m (one may have become active since
// the grants were listed); a membership another call is changing is left
// for the next reconcile. The Revoke has AttemptTimeout; its audit is
// written on a fresh context.
func (s *Service) removeUnexpected(ctx context.Context, p Provisioner, k groupKey, d *Drift, m string) {
	probe := &Request{Provider: k.provider, Group: k.group, Requester: m}
	release, ok, err := s.claimMember(ctx, probe)
	if err != nil {
		d.Unexpected = append(d.Unexpected, m)
		d.Errors = append(d.Errors, fmt.Sprintf("remove %s: %v", m, err))
		return
	}
	if !ok {
		d.Unexpected = append(d.Unexpected, m)
		d.Busy = append(d.Busy, m)
		return
	}
	defer release()
	keeper, err := s.keeper(ctx, probe)
	if err != nil {
		d.Unexpected = append(d.Unexpected, m)
		d.Errors = append(d.Errors, fmt.Sprintf("remove %s: %v", m, err))
		return
	}
	if keeper != nil {
		return // granted since the grants were listed: no drift
	}
	d.Unexpected = append(d.Unexpected, m)
	actx, acancel := s.attempt(ctx)
	rerr := p.Revoke(actx, Grant{Role: d.Roles[0], Group: k.group, User: m})
	acancel()
	if rerr != nil {
		d.Errors = append(d.Errors, fmt.Sprintf("remove %s: %v", m, rerr))
		return
	}
	d.Removed = append(d.Removed, m)
	bctx, bcancel := afterCall(ctx)
	defer bcancel()
	ev := AuditEvent{At: s.clock.Now(), Action: ActDriftRemoved, Actor: SystemActor, Subject: m, Role: strings.Join(d.Roles, ","),
		Detail: "member of " + k.provider + " group " + k.group + " without a grant; removed (reconcile: remove)"}
	if err := s.store.AppendAudit(bctx, ev); err != nil {
		d.Errors = append(d.Errors, fmt.Sprintf("audit removal of %s: %v", m, err))
	}
}

// cleanupOf returns m's request of the group whose grant failed (or
// landed after the request ended) and whose clean-up removal is still
// being retried, the one failing longest; nil when there is none.
func (s *Service) cleanupOf(ctx context.Context, k groupKey, m string) (*Request, error) {
	all, err := s.store.List(ctx, Filter{Requester: m})
	if err != nil {
		return nil, err
	}
	var found *Request
	for _, r := range all {
		if !r.Cleanup || !r.State.Terminal() || r.Provider != k.provider || r.Group != k.group || r.Kind == KindExtension {
			continue
		}
		if found == nil || r.FailingSince.Before(found.FailingSince) {
			found = r
		}
	}
	return found, nil
}

// String renders the drift for people.
func (d Drift) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s group %s (roles %s):", d.Provider, d.Group, strings.Join(d.Roles, ", "))
	if len(d.Unexpected) > 0 {
		fmt.Fprintf(&b, "\nmembers without a grant: %s", strings.Join(d.Unexpected, ", "))
		if len(d.Removed) > 0 {
			fmt.Fprintf(&b, " (removed: %s)", strings.Join(d.Removed, ", "))
		} else {
			b.WriteString(" (reported only; set reconcile: remove on the role to remove them)")
		}
	}
	if len(d.Missing) > 0 {
		fmt.Fprintf(&b, "\ngrants whose membership was missing: %s (added again: %s)", strings.Join(d.Missing, ", "), strings.Join(d.Reapplied, ", "))
	}
	if len(d.Busy) > 0 {
		fmt.Fprintf(&b, "\nleft for the next check (another change of the membership was in flight): %s", strings.Join(d.Busy, ", "))
	}
	for _, f := range d.RemovalFailing {
		if f.Cleanup {
			fmt.Fprintf(&b, "\nclean-up failing: %s (request %s, a failed or late grant) since %s, %d attempts; the removal is being retried",
				f.User, f.RequestID, f.FailingSince.UTC().Format(time.RFC3339), f.Attempts)
			continue
		}
		fmt.Fprintf(&b, "\nremoval failing: %s (request %s) since %s, %d attempts; the revocation is being retried",
			f.User, f.RequestID, f.FailingSince.UTC().Format(time.RFC3339), f.Attempts)
	}
	for _, e := range d.Errors {
		fmt.Fprintf(&b, "\nerror: %s", e)
	}
	return b.String()
}
