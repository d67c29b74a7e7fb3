package metrics

import (
	"context"
	"slices"
	"time"

	"github.com/accessbot/accessbot/access"
)

// Store is the access.Store decorator: it forwards every call and, after
// each successful Create, Update and AppendAudit of this replica, counts
// the audit events written (and, from the request before and after an
// Update, the outbox entries delivered). Use WrapStore, which keeps the
// wrapped store's optional capabilities.
type Store struct {
	access.Store
	m *Metrics
}

// WrapStore returns st observed by m, with exactly the optional
// capabilities (access.Fencer, access.Counter, access.Inbox) st has, so
// type assertions on the result find what they found on st. The scrape-
// time gauges (pending requests, active grants, failing revocations, due
// queue) are read from st from now on; wrap one store per Metrics.
func (m *Metrics) WrapStore(st access.Store) access.Store {
	w := &Store{Store: st, m: m}
	m.state.setStore(st)
	m.health.setStore(st)
	f, isF := st.(access.Fencer)
	c, isC := st.(access.Counter)
	in, isI := st.(access.Inbox)
	switch {
	case isF && isC && isI:
		return struct {
			*Store
			access.Fencer
			access.Counter
			access.Inbox
		}{w, f, c, in}
	case isF && isC:
		return struct {
			*Store
			access.Fencer
			access.Counter
		}{w, f, c}
	case isF && isI:
		return struct {
			*Store
			access.Fencer
			access.Inbox
		}{w, f, in}
	case isC && isI:
		return struct {
			*Store
			access.Counter
			access.Inbox
		}{w, c, in}
	case isF:
		return struct {
			*Store
			access.Fencer
		}{w, f}
	case isC:
		return struct {
			*Store
			access.Counter
		}{w, c}
	case isI:
		return struct {
			*Store
			access.Inbox
		}{w, in}
	}
	return w
}

// Create forwards to the wrapped store and counts evs once it succeeded.
func (s *Store) Create(ctx context.Context, r *access.Request, evs ...access.AuditEvent) error {
	if err := s.Store.Create(ctx, r, evs...); err != nil {
		return err
	}
	s.m.observeEvents(r, evs)
	return nil
}

// CreateMany forwards to the wrapped store and, once it succeeded, counts
// each request's audit events with that request.
func (s *Store) CreateMany(ctx context.Context, rs []*access.Request, evs ...access.AuditEvent) error {
	if err := s.Store.CreateMany(ctx, rs, evs...); err != nil {
		return err
	}
	for _, r := range rs {
		var mine []access.AuditEvent
		for _, e := range evs {
			if e.RequestID == r.ID {
				mine = append(mine, e)
			}
		}
		s.m.observeEvents(r, mine)
	}
	return nil
}

// Update forwards to the wrapped store; once the write succeeded it counts
// the audit events of the call of fn that was written, and the outbox
// entries that call removed (delivered) or marked for a retry.
func (s *Store) Update(ctx context.Context, id string, fn func(r *access.Request) ([]access.AuditEvent, error)) (*access.Request, error) {
	var last []access.AuditEvent
	var before []access.Announcement
	var after []access.Announcement
	r, err := s.Store.Update(ctx, id, func(r *access.Request) ([]access.AuditEvent, error) {
		before = slices.Clone(r.Outbox)
		evs, err := fn(r)
		last, after = evs, r.Outbox
		return evs, err
	})
	if err != nil {
		return r, err
	}
	s.m.observeEvents(r, last)
	s.m.observeOutbox(before, after)
	return r, nil
}

// AppendAudit forwards to the wrapped store and counts evs once it succeeded.
func (s *Store) AppendAudit(ctx context.Context, evs ...access.AuditEvent) error {
	if err := s.Store.AppendAudit(ctx, evs...); err != nil {
		return err
	}
	s.m.observeEvents(nil, evs)
	return nil
}

// observeEvents counts audit events; r is the request as written (nil for
// events of no request).
func (m *Metrics) observeEvents(r *access.Request, evs []access.AuditEvent) {
	provider := ""
	if r != nil {
		provider = r.Provider
	}
	for _, e := range evs {
		switch e.Action {
		case access.ActSubmitted:
			m.submitted.WithLabelValues(e.Role, kindOf(r, access.KindRequest)).Inc()
		case access.ActBreakGlass:
			m.submitted.WithLabelValues(e.Role, string(access.KindBreakGlass)).Inc()
			m.breakGlass.WithLabelValues(e.Role).Inc()
		case access.ActHandoff:
			m.submitted.WithLabelValues(e.Role, kindOf(r, access.KindRotation)).Inc()
		case access.ActApproved:
			m.decisions.WithLabelValues(e.Role, "approve").Inc()
		case access.ActDenied:
			m.decisions.WithLabelValues(e.Role, "deny").Inc()
			m.requests.WithLabelValues(e.Role, "denied").Inc()
		case access.ActCancelled:
			m.requests.WithLabelValues(e.Role, "cancelled").Inc()
		case access.ActTimedOut:
			m.requests.WithLabelValues(e.Role, "timed_out").Inc()
		case access.ActGranted:
			m.requests.WithLabelValues(e.Role, "granted").Inc()
			m.grants.WithLabelValues(provider, "granted").Inc()
		case access.ActGrantRetry:
			m.grants.WithLabelValues(provider, "retry").Inc()
		case access.ActGrantFailed:
			m.requests.WithLabelValues(e.Role, "failed").Inc()
			m.grants.WithLabelValues(provider, "failed").Inc()
		case access.ActGrantUndone:
			m.grants.WithLabelValues(provider, "undone").Inc()
		case access.ActRevokeStart:
			m.revocations.WithLabelValues(provider, "started").Inc()
		case access.ActRevoked:
			m.revocations.WithLabelValues(provider, "revoked").Inc()
			if r != nil && !r.EndsAt.IsZero() && (r.EndReason == access.EndExpired || r.EndReason == access.EndShiftOver) {
				m.lateness.WithLabelValues(provider).Observe(max(e.At.Sub(r.EndsAt), 0).Seconds())
			}
		case access.ActRevokeRetry:
			m.revocations.WithLabelValues(provider, "retry").Inc()
		case access.ActRevokeAlert:
			m.revocations.WithLabelValues(provider, "alert").Inc()
		case access.ActCleanedUp:
			m.revocations.WithLabelValues(provider, "cleaned_up").Inc()
		case access.ActDriftReapplied:
			m.drift.WithLabelValues("reapplied").Inc()
		case access.ActDriftRemoved:
			m.drift.WithLabelValues("removed").Inc()
		}
	}
}

func kindOf(r *access.Request, def access.Kind) string {
	if r != nil && r.Kind != "" {
		return string(r.Kind)
	}
	return string(def)
}

// observeOutbox compares a request's outbox before and after a write: an
// entry gone is delivered (or given up), one with more tries failed and
// waits for a retry.
func (m *Metrics) observeOutbox(before, after []access.Announcement) {
	if len(before) == 0 {
		return
	}
	now := m.clock.Now()
	for _, a := range before {
		i := slices.IndexFunc(after, func(b access.Announcement) bool { return b.ID == a.ID })
		switch {
		case i < 0:
			m.outboxLag.WithLabelValues(lane(a.Type)).Observe(max(now.Sub(a.At), time.Duration(0)).Seconds())
		case after[i].Tries > a.Tries:
			m.outboxRetry.WithLabelValues(lane(a.Type)).Inc()
		}
	}
}

// lane is access's split of the outbox: the security channel's
// announcements and everything else.
func lane(t access.EventType) string {
	switch t {
	case access.EvBreakGlass, access.EvAcked, access.EvRevokeAlert, access.EvRevokeRecovered, access.EvUserGone:
		return "security"
	}
	return "people"
}
