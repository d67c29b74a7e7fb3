package access

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"net/mail"
	"sort"
	"strings"
	"sync"
	"time"
)

// Shift grants: a rotation's Grant roles are held by whoever is on call,
// from the start of their shift until its end plus a grace period, as
// ordinary requests of kind KindRotation. They go through the same store,
// audit, provisioning and expiry as any request; SyncRotation only creates
// them and moves their end.

// Defaults of the shift grants.
const (
	// DefaultRotationGrace is how long the outgoing person keeps a shift
	// grant after the handoff, so that a handoff mid-incident cuts nobody
	// off.
	DefaultRotationGrace = 15 * time.Minute
	// RollingWindow is how far ahead a shift grant reaches when the source
	// cannot say when the turn ends (a permanent on-call, a polling source):
	// each sync extends it again once less than half of it is left.
	RollingWindow = time.Hour

	// endTolerance ignores end moves smaller than this (clock jitter).
	endTolerance = time.Second
)

// RotationOptions tunes the shift grants of one rotation.
type RotationOptions struct {
	// Grace is how long after a handoff the outgoing person keeps the
	// grant (DefaultRotationGrace when zero or negative).
	Grace time.Duration
	// RollingEnds says the source's shift ends are polling horizons, not
	// handoffs (Opsgenie): grants then roll forward by RollingWindow like a
	// permanent on-call's, and SyncRotation returns no next handoff.
	RollingEnds bool
}

// rotationState is the Service's memory for shift grants. The zero value
// is ready to use.
type rotationState struct {
	mu        sync.Mutex
	opts      map[string]RotationOptions
	announced map[string]rotationProblem // rotation -> problem last announced
}

type rotationProblem struct{ key, text string }

// SetRotationOptions sets the options of a rotation's shift grants. Call
// it before the first SyncRotation of that rotation; it is safe for
// concurrent use.
func (s *Service) SetRotationOptions(rotation string, o RotationOptions) {
	s.rot.mu.Lock()
	defer s.rot.mu.Unlock()
	if s.rot.opts == nil {
		s.rot.opts = map[string]RotationOptions{}
	}
	s.rot.opts[strings.ToLower(strings.TrimSpace(rotation))] = o
}

func (s *Service) rotationOptions(rotation string) RotationOptions {
	s.rot.mu.Lock()
	o := s.rot.opts[rotation]
	s.rot.mu.Unlock()
	if o.Grace <= 0 {
		o.Grace = DefaultRotationGrace
	}
	return o
}

// rotationID is the id of the gen-th shift grant of person for role in
// the rotation's shift that started at start. It is the same on every
// replica, so two replicas racing to create it make one (Store.Create
// returns ErrExists to the other). gen counts grants of the same shift
// that ended because the person went off call and came back (an override
// added and removed again).
func rotationID(rotation, role, person string, start time.Time, gen int) string {
	h := sha256.Sum256(fmt.Appendf(nil, "%s\x00%s\x00%s\x00%s\x00%d", rotation, role, person, start.UTC().Format(time.RFC3339Nano), gen))
	out := []byte("r-")
	for _, c := range h[:8] {
		out = append(out, idAlphabet[int(c)%len(idAlphabet)])
	}
	return string(out)
}

func isEmail(id string) bool {
	a, err := mail.ParseAddress(id)
	return err == nil && a.Address == id && a.Name == ""
}

func stampUTC(t time.Time) string { return t.UTC().Format("2006-01-02 15:04 UTC") }

// SyncRotation makes the named rotation's shift grants match who is on
// call now. For each person on call and each role of the rotation's Grant
// it ensures one live shift grant (KindRotation) ending at the shift's end
// plus the grace: it creates a missing one (state approved, audited as
// ActHandoff by SystemActor, id derived from rotation, role, person and
// shift start) and provisions it through the normal path, and moves the
// end of an existing one when the shift changed (ActShiftMoved). A
// permanent on-call (zero End) or a rolling-ends source gets a rolling
// window of RollingWindow. Shift grants of people no longer on call end at
// the latest grace after now (their end is never moved later); the expiry
// engine then revokes them, and a person who holds the same group through
// another live grant keeps the membership.
//
// When someone new comes on call while others' shift grants are still
// live, both sides are told by DM (EvHandoffIn, EvHandoffOut), once: only
// the replica whose Create won sends them.
//
// Problems (nobody on call, an on-call person without an email address,
// a Grant role that is not configured, the on-call source failing) are
// announced to the security channel once, and again only when they change
// or clear. The memory of what was announced is in this process, so each
// replica that runs the job announces a standing problem once. When the
// source fails nothing is changed: every shift grant runs to the end last
// known; the error is returned.
//
// It returns when the job should run next, the next handoff (the current
// shift's End), or zero when that is unknown. It is idempotent and safe to
// run on several replicas at once, though it is meant to run under the
// scheduler's singleton lock.
func (s *Service) SyncRotation(ctx context.Context, name string) (next time.Time, err error) {
	name = strings.ToLower(strings.TrimSpace(name))
	rot, ok := s.policy.Rotations[name]
	if !ok {
		return time.Time{}, fmt.Errorf("access: sync rotation: unknown rotation %q", name)
	}
	if len(rot.Grant) == 0 {
		return time.Time{}, nil
	}
	p := &shiftSync{s: s, name: name, rot: rot, opt: s.rotationOptions(name)}
	if err := p.askOnCall(ctx); err != nil {
		return time.Time{}, err
	}
	p.whoGetsWhat()
	if err := p.readGrants(ctx); err != nil {
		return time.Time{}, err
	}
	p.endOffCall(ctx)
	p.startOrKeep(ctx)
	p.tellOutgoing(ctx)
	s.rotationProblems(ctx, name, p.problems)
	if p.rolling {
		return time.Time{}, errors.Join(p.errs...)
	}
	return p.shift.End, errors.Join(p.errs...)
}

// shiftSync is one run of SyncRotation, its steps in order: askOnCall,
// whoGetsWhat, readGrants, endOffCall, startOrKeep, tellOutgoing. Each step
// reads what the steps before it found.
type shiftSync struct {
	s    *Service
	name string
	rot  Rotation
	opt  RotationOptions

	now     time.Time
	shift   Shift // who is on call now (askOnCall)
	rolling bool  // the shift's end is unknown: grants get a rolling window

	onCall   map[string]bool // identities on call (whoGetsWhat)
	people   []string        // the same, in the source's order
	roles    []Role          // the rotation's configured Grant roles
	wanted   map[string]bool // their names
	problems []rotationProblem

	held map[shiftKey]*Request // the live shift grant of each (person, role) on call (readGrants)
	off  []*Request            // live shift grants nobody on call should hold

	outgoing map[string]*Request // each outgoing person's latest-ending grant (endOffCall)
	outNames []string            // their identities, sorted
	incoming []*Request          // the first grant of each person who came on call (startOrKeep)

	errs []error // failures that let the other steps go on
}

type shiftKey struct{ person, role string }

// askOnCall asks the source who is on call now. When there is no source,
// or it fails, the problem is announced and nothing else is done.
func (p *shiftSync) askOnCall(ctx context.Context) error {
	s, name := p.s, p.name
	if s.oncall == nil {
		s.rotationProblems(ctx, name, []rotationProblem{{"source", "no on-call source is configured, so nobody gets the shift grants"}})
		return fmt.Errorf("access: rotation %s: no on-call source configured", name)
	}
	p.now = s.clock.Now()
	shift, err := s.oncall.OnCall(ctx, name, p.now)
	if err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		s.rotationProblems(ctx, name, []rotationProblem{{"source",
			"the on-call source cannot be asked, so handoffs are not seen; every shift grant runs to the end last known (" + err.Error() + ")"}})
		return fmt.Errorf("access: rotation %s: ask who is on call: %w", name, err)
	}
	p.shift = shift
	p.rolling = shift.End.IsZero() || p.opt.RollingEnds
	return nil
}

// whoGetsWhat lists the people on call who can hold a grant (those with
// an email address) and the rotation's roles that are configured; the
// others are problems.
func (p *shiftSync) whoGetsWhat() {
	p.onCall = map[string]bool{}
	for _, person := range p.shift.People {
		id := normID(person)
		if !isEmail(id) {
			p.problems = append(p.problems, rotationProblem{"no_email:" + id,
				fmt.Sprintf("%q is on call but has no email address, so they get no shift grant", clip(person, 80))})
			continue
		}
		if !p.onCall[id] {
			p.onCall[id] = true
			p.people = append(p.people, id)
		}
	}
	if len(p.shift.People) == 0 {
		p.problems = append(p.problems, rotationProblem{"nobody", "nobody is on call, so nobody holds " + strings.Join(p.rot.Grant, ", ")})
	}
	p.wanted = map[string]bool{}
	for _, g := range p.rot.Grant {
		role, ok := p.s.policy.Role(g)
		if !ok {
			p.problems = append(p.problems, rotationProblem{"unknown_role:" + g, fmt.Sprintf("grants role %q, which is not configured", g)})
			continue
		}
		if !p.wanted[role.Name] {
			p.wanted[role.Name] = true
			p.roles = append(p.roles, role)
		}
	}
}

// endFor is the end a shift grant should have, given its current end
// (zero for a new grant).
func (p *shiftSync) endFor(cur time.Time) time.Time {
	if !p.rolling {
		return p.shift.End.Add(p.opt.Grace)
	}
	if cur.After(p.now.Add(RollingWindow/2)) && !cur.After(p.now.Add(RollingWindow)) {
		return cur // enough left; extending every check would flood the audit log
	}
	return p.now.Add(RollingWindow)
}

// readGrants sorts the rotation's live shift grants into those held by
// someone on call for a wanted role and those nobody should hold.
func (p *shiftSync) readGrants(ctx context.Context) error {
	live, err := p.s.store.List(ctx, Filter{States: []State{StateApproved, StateActive}})
	if err != nil {
		return fmt.Errorf("access: rotation %s: list live grants: %w", p.name, err)
	}
	p.held = map[shiftKey]*Request{}
	for _, r := range live { // newest first: a duplicate (a race without the lock) is the older one
		if r.Kind != KindRotation || r.Rotation != p.name {
			continue
		}
		k := shiftKey{r.Requester, r.Role}
		if p.onCall[r.Requester] && p.wanted[r.Role] && p.held[k] == nil {
			p.held[k] = r
			continue
		}
		p.off = append(p.off, r)
	}
	return nil
}

// endOffCall ends the grants of people no longer on call (and
// duplicates, and roles no longer granted) at most one grace from now,
// and notes who goes off call.
func (p *shiftSync) endOffCall(ctx context.Context) {
	p.outgoing = map[string]*Request{}
	for _, r := range p.off {
		got, err := p.s.moveShiftEnd(ctx, r.ID, "no longer on call for "+p.name, func(x *Request) time.Time {
			if lim := p.now.Add(p.opt.Grace); lim.Before(x.EndsAt) {
				return lim
			}
			return x.EndsAt
		})
		if err != nil {
			p.errs = append(p.errs, err)
			continue
		}
		if got == nil || p.onCall[r.Requester] {
			continue
		}
		if prev, ok := p.outgoing[got.Requester]; !ok || got.EndsAt.After(prev.EndsAt) {
			if !ok {
				p.outNames = append(p.outNames, got.Requester)
			}
			p.outgoing[got.Requester] = got
		}
	}
	sort.Strings(p.outNames)
}

// startOrKeep keeps the grants of people on call (moving their end with
// the shift) and starts the missing ones.
func (p *shiftSync) startOrKeep(ctx context.Context) {
	name, shift := p.name, p.shift
	shiftText := "shift of " + name
	if !p.opt.RollingEnds && !shift.Start.IsZero() {
		shiftText += " from " + shift.Start.UTC().Format(time.RFC3339)
	}
	if !p.rolling {
		shiftText += " until " + shift.End.UTC().Format(time.RFC3339)
	}
	// The incoming person's handoff DM is owed by the write that creates
	// their first grant of the shift: only the replica that created it
	// tells them, once.
	handoffIn := func(id string) string {
		msg := fmt.Sprintf("You are on call for %s", name)
		if !p.rolling {
			msg += " until " + stampUTC(shift.End)
		}
		if len(p.outNames) > 0 {
			msg += ", taking over from " + strings.Join(p.outNames, ", ")
		}
		return msg + fmt.Sprintf(". You hold %s for the shift (request %s).", strings.Join(p.rot.Grant, ", "), id)
	}
	for _, person := range p.people {
		for i, role := range p.roles {
			if g := p.held[shiftKey{person, role.Name}]; g != nil {
				why := "shift of " + name + " changed"
				if p.rolling {
					why = "still on call for " + name
				}
				if _, err := p.s.moveShiftEnd(ctx, g.ID, why, func(x *Request) time.Time { return p.endFor(x.EndsAt) }); err != nil {
					p.errs = append(p.errs, err)
				}
				continue
			}
			tell := handoffIn
			if i > 0 {
				tell = nil
			}
			r, err := p.s.startShiftGrant(ctx, name, shift.Start, shiftText, role, person, p.endFor(time.Time{}), p.outNames, tell)
			if err != nil {
				p.errs = append(p.errs, err)
			}
			if r != nil && i == 0 {
				p.incoming = append(p.incoming, r)
			}
		}
	}
}

// tellOutgoing tells the outgoing side of a handoff, once: only the
// replica that created an incoming person's first grant gets here with
// it. Who took over is known only now, so the DM is recorded on the
// outgoing grant by a write of its own (oweLater).
func (p *shiftSync) tellOutgoing(ctx context.Context) {
	if len(p.incoming) == 0 {
		return
	}
	var inNames []string
	for _, r := range p.incoming {
		inNames = append(inNames, r.Requester)
	}
	for _, who := range p.outNames {
		r := p.outgoing[who]
		msg := fmt.Sprintf("You handed %s over to %s. Your %s access stays until %s so nothing is cut off mid-incident, then it is removed.",
			p.name, strings.Join(inNames, ", "), strings.Join(p.rot.Grant, ", "), stampUTC(r.EndsAt))
		p.s.deliver(ctx, p.s.oweLater(ctx, r.ID, EvHandoffOut, msg))
	}
}

// maxShiftGens bounds how often one shift's grant is made again after
// ending because its person went off call.
const maxShiftGens = 20

// startShiftGrant creates person's shift grant of role and provisions it.
// It returns nil (and no error) when the grant of this shift already
// exists (another replica made it) or ended otherwise than by going off
// call: a shift grant revoked by an admin or failed is not made again for
// the same shift.
// handoff, when not nil, renders the handoff DM owed to the person with
// the grant (by its id).
func (s *Service) startShiftGrant(ctx context.Context, name string, start time.Time, shiftText string, role Role, person string, end time.Time, outgoing []string, handoff func(id string) string) (*Request, error) {
	for gen := 0; gen < maxShiftGens; gen++ {
		r, again, err := s.createShiftGrant(ctx, rotationID(name, role.Name, person, start, gen), name, shiftText, role, person, end, outgoing, handoff)
		if !again {
			return r, err
		}
	}
	return nil, fmt.Errorf("access: rotation %s: %s went off and on call more than %d times in one shift; no new grant", name, person, maxShiftGens)
}

// createShiftGrant creates and provisions the shift grant id; again says
// the id is taken by a grant of the same shift that ended because its
// person went off call, so the next id should be tried.
func (s *Service) createShiftGrant(ctx context.Context, id, name, shiftText string, role Role, person string, end time.Time, outgoing []string, handoff func(id string) string) (_ *Request, again bool, _ error) {
	now := s.clock.Now()
	r := &Request{
		ID: id, Kind: KindRotation, Rotation: name,
		Requester: person, Role: role.Name, Provider: role.Provider, Group: role.Group,
		Duration: end.Sub(now), Reason: "on-call shift of " + name, State: StateApproved,
		CreatedAt: now, UpdatedAt: now, EndsAt: end,
	}
	ev := s.event(r, ActHandoff, SystemActor, "", StateApproved, r.Reason)
	ev.Detail = shiftText + "; grant until " + end.UTC().Format(time.RFC3339)
	if len(outgoing) > 0 {
		ev.Detail += "; takes over from " + strings.Join(outgoing, ", ")
	}
	if handoff != nil {
		s.owe(r, EvHandoffIn, SystemActor, handoff(r.ID), now)
	}
	err := s.store.Create(ctx, r, ev)
	if errors.Is(err, ErrExists) {
		got, gerr := s.store.Get(ctx, r.ID)
		switch {
		case gerr != nil:
			return nil, false, fmt.Errorf("access: rotation %s: read shift grant %s: %w", name, r.ID, gerr)
		case got.Kind != KindRotation || got.Requester != person || got.Role != role.Name:
			return nil, false, fmt.Errorf("access: rotation %s: shift grant id %s is taken by another request", name, r.ID)
		case (got.State == StateRevoking || got.State == StateEnded) && got.EndReason == EndShiftOver:
			return nil, true, nil
		}
		return nil, false, nil
	}
	if err != nil {
		return nil, false, fmt.Errorf("access: rotation %s: store shift grant of %s: %w", name, person, err)
	}
	s.log.InfoContext(ctx, "shift grant created", "request_id", r.ID, "rotation", name, "requester", person,
		"role", role.Name, "ends_at", end)
	s.wake(r)
	s.deliver(ctx, r)
	got, err := s.provision(ctx, r.ID)
	if err != nil {
		return r, false, fmt.Errorf("access: rotation %s: provision %s: %w", name, r.ID, err)
	}
	return got, false, nil
}

// moveShiftEnd sets a live shift grant's end to to(current request),
// audited as ActShiftMoved. It returns the request after the change, the
// current request when nothing needed to move, and nil when it is no
// longer live.
func (s *Service) moveShiftEnd(ctx context.Context, id, why string, to func(r *Request) time.Time) (*Request, error) {
	now := s.clock.Now()
	var unchanged *Request
	r, err := s.store.Update(ctx, id, func(r *Request) ([]AuditEvent, error) {
		unchanged = nil
		if r.State != StateApproved && r.State != StateActive {
			return nil, errNothingDue
		}
		end := to(r)
		if d := end.Sub(r.EndsAt); d < endTolerance && d > -endTolerance {
			unchanged = r
			return nil, errNothingDue
		}
		ev := s.event(r, ActShiftMoved, SystemActor, r.State, r.State, "")
		ev.Detail = fmt.Sprintf("%s: ends %s -> %s", why, r.EndsAt.UTC().Format(time.RFC3339), end.UTC().Format(time.RFC3339))
		r.EndsAt = end
		r.UpdatedAt = now
		return []AuditEvent{ev}, nil
	})
	if errors.Is(err, errNothingDue) {
		return unchanged, nil
	}
	if errors.Is(err, ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("access: move end of shift grant %s: %w", id, err)
	}
	s.log.InfoContext(ctx, "shift grant end moved", "request_id", r.ID, "rotation", r.Rotation, "requester", r.Requester,
		"role", r.Role, "ends_at", r.EndsAt, "why", why)
	s.wake(r)
	return r, nil
}

// rotationProblems announces the rotation's problems when they differ
// from the ones last announced (by key), and that they cleared.
func (s *Service) rotationProblems(ctx context.Context, name string, ps []rotationProblem) {
	sort.Slice(ps, func(i, j int) bool { return ps[i].key < ps[j].key })
	var keys, texts []string
	for _, p := range ps {
		keys = append(keys, p.key)
		texts = append(texts, p.text)
	}
	cur := rotationProblem{key: strings.Join(keys, "|"), text: strings.Join(texts, "; ")}
	s.rot.mu.Lock()
	if s.rot.announced == nil {
		s.rot.announced = map[string]rotationProblem{}
	}
	last := s.rot.announced[name]
	if last.key == cur.key {
		s.rot.mu.Unlock()
		return
	}
	s.rot.announced[name] = cur
	s.rot.mu.Unlock()
	stub := &Request{Kind: KindRotation, Rotation: name}
	if cur.key == "" {
		s.log.InfoContext(ctx, "rotation problem cleared", "rotation", name, "problem", last.text)
		s.notify(ctx, Event{Type: EvRotationOK, Request: stub, Actor: SystemActor, Reason: last.text})
		return
	}
	s.log.WarnContext(ctx, "rotation problem", "rotation", name, "problem", cur.text)
	s.notify(ctx, Event{Type: EvRotationProblem, Request: stub, Actor: SystemActor, Reason: cur.text})
}
