package access

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"
)

// The outbox: every message the bot owes people about a request is an
// entry of Request.Outbox, recorded in the same compare-and-set as the
// change that causes it (owe, called inside Store.Create or Store.Update),
// so that a process killed right after the write loses no message: the
// entry stays, and the sweep delivers it (Process). The worker that wrote
// it delivers it at once (deliver), so callers still see their messages
// before they return.
//
// Exactly once in effect: one entry may post several messages (a card to
// each approver, a DM to the requester). The references of the messages
// that went out are stored even when others failed, and a retry posts only
// the parts without a reference (see Notifier). What remains is
// at-least-once for a single message: a kill (or a failed store write)
// between the platform accepting a post and its reference being stored
// means the retry posts that one message again.

// lateDelivery is the delivery lag above which a delivery is logged as a
// warning: people were told this late.
const lateDelivery = 30 * time.Second

// notifier returns the connected notifier, nil when none is.
func (s *Service) notifierOf() Notifier {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.notifier
}

// owe records in r's outbox that people must be told about ev (of type t),
// caused by the change being written: it is called inside Store.Create or
// Store.Update, with r the copy being written. The entry's id is unique
// per occurrence: the type and the version the entry is written at. With
// no notifier connected nobody is told, so nothing is owed.
func (s *Service) owe(r *Request, t EventType, actor, reason string, now time.Time) {
	if s.notifierOf() == nil {
		return
	}
	id := fmt.Sprintf("%s@%d", t, r.Version+1)
	for n := 2; slices.ContainsFunc(r.Outbox, func(a Announcement) bool { return a.ID == id }); n++ {
		id = fmt.Sprintf("%s@%d.%d", t, r.Version+1, n)
	}
	r.announce(Announcement{ID: id, Type: t, Actor: actor, Reason: reason, At: now})
}

// oweLater records an entry on request id with a write of its own, for a
// message caused by a change of another request (the outgoing person's
// handoff DM, caused by the incoming person's new grant): a kill between
// that change and this write loses the message.
func (s *Service) oweLater(ctx context.Context, id string, t EventType, reason string) *Request {
	if s.notifierOf() == nil {
		return nil
	}
	now := s.clock.Now()
	r, err := s.store.Update(ctx, id, func(r *Request) ([]AuditEvent, error) {
		s.owe(r, t, SystemActor, reason, now)
		return nil, nil
	})
	if err != nil {
		s.log.WarnContext(ctx, "record notification", "request_id", id, "event", string(t), "err", err)
		return nil
	}
	return r
}

// deliver delivers the request's ready outbox entries, in order, under a
// lease of its own ("announce:<id>") so that two workers never deliver the
// same entry at once. A delivered entry leaves the outbox (a security
// announcement with an ActAnnounced audit event); a failed one stays for a
// retry with capped backoff at its NextTry (the request's due time). It
// never fails the caller, and returns the request as last read or written
// (r when it did nothing).
func (s *Service) deliver(ctx context.Context, r *Request) *Request {
	if r == nil || len(r.Outbox) == 0 {
		return r
	}
	ctx = context.WithoutCancel(ctx)
	id := r.ID
	// A worker that finds the lease taken leaves its entry to the holder.
	// The holder may have looked at the outbox for the last time before
	// that entry was stored, so after giving the lease back it looks once
	// more and goes on while something is ready: whoever stored an entry
	// either got the lease or was refused it before this look, which then
	// sees it.
	for range 4 {
		release, ok, err := s.claim(ctx, "announce:"+id)
		if err != nil || !ok {
			if err != nil {
				s.log.WarnContext(ctx, "outbox: claim", "request_id", id, "err", err)
			}
			return r
		}
		if cur := s.deliverClaimed(ctx, id); cur != nil {
			r = cur
		}
		release()
		gctx, gcancel := afterCall(ctx)
		cur, err := s.store.Get(gctx, id)
		gcancel()
		if err != nil {
			return r
		}
		r = cur
		if _, ok := cur.nextOutbox(s.clock.Now()); !ok {
			return r
		}
	}
	return r
}

// deliverClaimed is deliver's work once the lease is held. It returns the
// request as last read or written, nil when it could not read it.
func (s *Service) deliverClaimed(ctx context.Context, id string) *Request {
	var last *Request
	for range 16 {
		gctx, gcancel := afterCall(ctx)
		cur, err := s.store.Get(gctx, id)
		gcancel()
		if err != nil {
			return last
		}
		last = cur
		now := s.clock.Now()
		i, ok := cur.nextOutbox(now)
		if !ok {
			return last
		}
		a := cur.Outbox[i]
		n := s.notifierOf()
		var refs []MessageRef
		var perr error
		switch {
		case n != nil:
			refs, perr = s.post(ctx, n, cur, a)
		case a.lane() == "security":
			perr = errors.New("no notifier connected")
		default:
			perr = Permanent(errors.New("no notifier connected"))
		}
		for i := range refs {
			if refs[i].Announcement == "" {
				refs[i].Announcement = a.ID
			}
		}
		dropped := perr != nil && permanentOnly(perr)
		retry := perr != nil && !dropped
		bctx, bcancel := afterCall(ctx)
		rendered, seen := cur.Version, cur.Version
		var tries int
		cur, err = s.store.Update(bctx, id, func(r *Request) ([]AuditEvent, error) {
			seen = r.Version
			i := slices.IndexFunc(r.Outbox, func(o Announcement) bool { return o.ID == a.ID })
			if i < 0 {
				return nil, errNothingDue
			}
			r.Messages = append(r.Messages, refs...)
			if retry {
				o := &r.Outbox[i]
				o.Tries++
				o.LastError = perr.Error()
				o.NextTry = now.Add(s.backoff(o.Tries))
				tries = o.Tries
				return nil, nil
			}
			r.Outbox = slices.Delete(r.Outbox, i, i+1)
			if a.lane() != "security" || a.Type == EvAcked {
				return nil, nil
			}
			ev := s.event(r, ActAnnounced, SystemActor, r.State, r.State, "")
			ev.Detail = string(a.Type) + " delivered"
			for _, ref := range refs {
				ev.Detail += " to " + ref.Channel
			}
			if dropped {
				ev.Detail = string(a.Type) + " not delivered: " + perr.Error()
			}
			if a.Tries > 0 {
				ev.Detail += fmt.Sprintf(" after %d failed tries (last: %s)", a.Tries, a.LastError)
			}
			return []AuditEvent{ev}, nil
		})
		bcancel()
		if errors.Is(err, errNothingDue) {
			continue
		}
		if err != nil {
			// The references of what went out are lost with this write: a
			// retry posts those messages again (the at-least-once window).
			s.log.WarnContext(ctx, "outbox: record delivery", "request_id", id, "announcement", a.ID, "err", err)
			return last
		}
		last = cur
		lag := s.clock.Now().Sub(a.At)
		switch {
		case retry:
			s.log.WarnContext(ctx, "notification not delivered; will retry", "request_id", id, "event", string(a.Type),
				"announcement", a.ID, "tries", tries, "retry_at", cur.nextTryOf(a.ID), "lag", lag, "err", perr)
			s.wake(cur)
		case dropped:
			s.log.ErrorContext(ctx, "notification cannot be delivered; given up", "request_id", id, "event", string(a.Type),
				"announcement", a.ID, "lag", lag, "err", perr)
		case lag > lateDelivery:
			s.log.WarnContext(ctx, "notification delivered late", "request_id", id, "event", string(a.Type),
				"announcement", a.ID, "lag", lag, "tries", a.Tries+1)
		default:
			s.log.InfoContext(ctx, "notification delivered", "request_id", id, "event", string(a.Type),
				"announcement", a.ID, "lag", lag, "tries", a.Tries+1)
		}
		if len(refs) > 0 && n != nil {
			rctx, rcancel := context.WithTimeout(ctx, s.opt.NotifyTimeout)
			s.rerender(rctx, n, cur, rendered, seen, refs)
			rcancel()
		}
	}
	return last
}

// nextTryOf returns the NextTry of outbox entry id (zero when it is gone).
func (r *Request) nextTryOf(id string) time.Time {
	for _, a := range r.Outbox {
		if a.ID == id {
			return a.NextTry
		}
	}
	return time.Time{}
}

// post delivers one outbox entry through the notifier.
func (s *Service) post(ctx context.Context, n Notifier, r *Request, a Announcement) ([]MessageRef, error) {
	role, _ := s.policy.Role(r.Role)
	nctx, cancel := context.WithTimeout(ctx, s.opt.NotifyTimeout)
	defer cancel()
	return n.Notify(nctx, Event{Type: a.Type, Request: r, Actor: a.Actor, Reason: a.Reason, Role: role, ID: a.ID,
		Bundle: s.bundleAt(nctx, r)})
}

// bundleAt returns the members of r's bundle as they are now, r itself
// as given (Event.Bundle); nil for a request of a single role, or when
// they cannot be read (the messages then show r alone).
func (s *Service) bundleAt(ctx context.Context, r *Request) []*Request {
	if r.Bundle == "" {
		return nil
	}
	ms, err := s.members(ctx, r)
	if err != nil {
		s.log.WarnContext(ctx, "outbox: read bundle", "request_id", r.ID, "bundle", r.Bundle, "err", err)
		return nil
	}
	return ms
}

// permanentOnly reports whether every failure joined in err is permanent
// (see IsPermanent): retrying the entry cannot get any of them out.
func permanentOnly(err error) bool {
	switch e := err.(type) {
	case nil:
		return false
	case *PermanentError:
		return true
	case interface{ Unwrap() []error }:
		some := false
		for _, x := range e.Unwrap() {
			if x == nil {
				continue
			}
			if !permanentOnly(x) {
				return false
			}
			some = true
		}
		return some
	case interface{ Unwrap() error }:
		if inner := e.Unwrap(); inner != nil && permanentOnly(inner) {
			return true
		}
	}
	return errors.Is(err, ErrUnknownUser) || errors.Is(err, ErrUserDisabled)
}

// notify tells people about an event that belongs to no stored request
// (group drift, a rotation's problems): there is no record to keep an
// outbox entry on, so it is sent directly, once; a failure is logged.
func (s *Service) notify(ctx context.Context, ev Event) {
	n := s.notifierOf()
	if n == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.opt.NotifyTimeout)
	defer cancel()
	if _, err := n.Notify(ctx, ev); err != nil {
		s.log.WarnContext(ctx, "notification failed", "event", string(ev.Type), "err", err)
	}
}

// rerender makes messages that were just posted show the request's final
// state. They were rendered from version rendered of the request and their
// references saved onto version seen, giving cur. A change that landed in
// between read the request without those references, so it updated none
// of them: they still show the old state (an approval card with its
// buttons after the request was decided, a break-glass announcement
// asking for an acknowledgement already given). The change's own outbox
// entry, delivered after this one, updates them too; rendering them again
// at once, for the state as stored now, until no change slips in between
// (bounded), also covers changes that owe nobody a message.
func (s *Service) rerender(ctx context.Context, n Notifier, cur *Request, rendered, seen int64, refs []MessageRef) {
	// A bundle's card shows its other members too, whose changes until
	// now found no card to update: it is rendered once more in any case.
	lead := cur.Bundle != "" && len(cur.Members) > 0 && cur.Members[0] == cur.ID
	for try := 0; (seen != rendered || (try == 0 && lead)) && try < 5; try++ {
		show := *cur
		show.Messages = refs
		role, _ := s.policy.Role(cur.Role)
		if _, err := n.Notify(ctx, Event{Type: EvRefresh, Request: &show, Actor: SystemActor, Role: role,
			Bundle: s.bundleAt(ctx, &show)}); err != nil {
			s.log.WarnContext(ctx, "refresh messages", "request_id", cur.ID, "err", err)
		}
		next, err := s.store.Get(ctx, cur.ID)
		if err != nil {
			s.log.WarnContext(ctx, "refresh messages", "request_id", cur.ID, "err", err)
			return
		}
		seen, rendered, cur = next.Version, cur.Version, next
	}
}
