// Package report computes the access report an auditor asks for (who held
// what, for how long, break-glass use and its acknowledgement, denials,
// timeouts, failing or late revocations, drift, standing on-call grants)
// from the audit log, and renders it as Markdown or CSV.
package report

import (
	"sort"
	"time"

	"github.com/accessbot/accessbot/access"
)

// LateAfter is how long after its end a revocation may land before the
// report lists it as late.
const LateAfter = time.Minute

// Input is what Compute reads.
type Input struct {
	From, To time.Time
	// Events is the audit log from far enough before From to see the
	// grants still held at From (their granted event), up to To, in any
	// order.
	Events []access.AuditEvent
	// Requests, by id, tell the kind of a grant (rotation grants are
	// standing on-call access) and when an expiring grant was due to end.
	// Missing requests are ordinary grants.
	Requests map[string]*access.Request
}

// Held is the access one person held in one role during the period.
type Held struct {
	Role, Person string
	Grants       int     // grants that started in the period
	Hours        float64 // hours held within the period (also of grants started before it)
}

// BreakGlass is one break-glass use in the period.
type BreakGlass struct {
	RequestID, Person, Role, Reason string
	At                              time.Time
	AckedBy                         string // "" when not acknowledged by the end of the period
	AckedAt                         time.Time
}

// Decision is a denial or a timeout in the period.
type Decision struct {
	RequestID, Person, Role, By, Reason string
	At                                  time.Time
}

// Revocation is a revocation that failed for too long (an alert was
// raised) or landed late.
type Revocation struct {
	RequestID, Person, Role string
	Due                     time.Time     // when the access had to end
	RevokedAt               time.Time     // zero when not revoked by the end of the period
	Late                    time.Duration // RevokedAt (or the period's end) minus Due
	Alerted                 bool          // revocation kept failing and was announced
}

// Drift is one drift correction reconcile made.
type Drift struct {
	At                   time.Time
	Action               access.Action
	Person, Role, Detail string
	RequestID            string
}

// Report is the period's figures.
type Report struct {
	From, To      time.Time
	Held          []Held // requested grants, by role then person
	TotalHours    float64
	BreakGlass    []BreakGlass
	Denials       []Decision
	TimedOut      []Decision
	Revocations   []Revocation
	Drift         []Drift
	Standing      []Held // rotation (on-call) grants, by role then person
	StandingHours float64
}

// Compute builds the report of [in.From, in.To) from the audit log. It is
// a pure function of its input.
func Compute(in Input) Report {
	evs := append([]access.AuditEvent(nil), in.Events...)
	sort.SliceStable(evs, func(i, j int) bool { return evs[i].At.Before(evs[j].At) })
	rep := Report{From: in.From, To: in.To}
	inPeriod := func(t time.Time) bool { return !t.Before(in.From) && t.Before(in.To) }

	type grant struct {
		id, person, role string
		start, end       time.Time // end zero: still held
	}
	grants := map[string]*grant{}
	var order []string
	revokeStart := map[string]time.Time{}
	alerted := map[string]bool{}
	acks := map[string]access.AuditEvent{}
	for _, e := range evs {
		if !e.At.Before(in.To) {
			break
		}
		switch e.Action {
		case access.ActGranted:
			if _, ok := grants[e.RequestID]; !ok {
				order = append(order, e.RequestID)
			}
			grants[e.RequestID] = &grant{id: e.RequestID, person: e.Subject, role: e.Role, start: e.At}
		case access.ActRevokeStart:
			revokeStart[e.RequestID] = e.At
		case access.ActRevoked:
			if g, ok := grants[e.RequestID]; ok && g.end.IsZero() {
				g.end = e.At
			}
		case access.ActRevokeAlert:
			alerted[e.RequestID] = true
		case access.ActAcknowledged:
			if _, ok := acks[e.RequestID]; !ok {
				acks[e.RequestID] = e
			}
		}
		if !inPeriod(e.At) {
			continue
		}
		switch e.Action {
		case access.ActBreakGlass:
			rep.BreakGlass = append(rep.BreakGlass, BreakGlass{RequestID: e.RequestID, Person: e.Subject, Role: e.Role, Reason: e.Reason, At: e.At})
		case access.ActDenied:
			rep.Denials = append(rep.Denials, Decision{RequestID: e.RequestID, Person: e.Subject, Role: e.Role, By: e.Actor, Reason: e.Reason, At: e.At})
		case access.ActTimedOut:
			rep.TimedOut = append(rep.TimedOut, Decision{RequestID: e.RequestID, Person: e.Subject, Role: e.Role, By: e.Actor, At: e.At})
		case access.ActDriftRemoved, access.ActDriftReapplied:
			rep.Drift = append(rep.Drift, Drift{At: e.At, Action: e.Action, Person: e.Subject, Role: e.Role, Detail: e.Detail, RequestID: e.RequestID})
		}
	}
	for i := range rep.BreakGlass {
		if a, ok := acks[rep.BreakGlass[i].RequestID]; ok {
			rep.BreakGlass[i].AckedBy, rep.BreakGlass[i].AckedAt = a.Actor, a.At
		}
	}

	held := map[[2]string]*Held{}
	standing := map[[2]string]*Held{}
	for _, id := range order {
		g := grants[id]
		r := in.Requests[id]
		end := g.end
		if end.IsZero() {
			end = in.To
		}
		from, to := maxTime(g.start, in.From), minTime(end, in.To)
		hours := 0.0
		if to.After(from) {
			hours = to.Sub(from).Hours()
		}
		startedIn := inPeriod(g.start)
		if hours == 0 && !startedIn {
			continue
		}
		m, total := held, &rep.TotalHours
		if r != nil && r.Kind == access.KindRotation {
			m, total = standing, &rep.StandingHours
		}
		k := [2]string{g.role, g.person}
		h := m[k]
		if h == nil {
			h = &Held{Role: g.role, Person: g.person}
			m[k] = h
		}
		if startedIn {
			h.Grants++
		}
		h.Hours += hours
		*total += hours

		// Revocations: due at the request's end time when it expired,
		// else when the revocation started (revoked early, shift over).
		due, ok := revokeStart[id]
		if r != nil && r.EndReason == access.EndExpired && !r.EndsAt.IsZero() {
			due, ok = r.EndsAt, true
		}
		if !ok || !inPeriod(due) {
			continue
		}
		rv := Revocation{RequestID: id, Person: g.person, Role: g.role, Due: due, RevokedAt: g.end, Alerted: alerted[id]}
		landed := g.end
		if landed.IsZero() {
			landed = in.To
		}
		rv.Late = landed.Sub(due)
		if rv.Alerted || rv.Late > LateAfter {
			rep.Revocations = append(rep.Revocations, rv)
		}
	}
	rep.Held = sortedHeld(held)
	rep.Standing = sortedHeld(standing)
	sort.SliceStable(rep.Revocations, func(i, j int) bool { return rep.Revocations[i].Due.Before(rep.Revocations[j].Due) })
	return rep
}

func sortedHeld(m map[[2]string]*Held) []Held {
	out := make([]Held, 0, len(m))
	for _, h := range m {
		out = append(out, *h)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Role != out[j].Role {
			return out[i].Role < out[j].Role
		}
		return out[i].Person < out[j].Person
	})
	return out
}

func maxTime(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

func minTime(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}
