package access

import (
	"context"
	"errors"
	"strings"
)

// A Deny click denies at once (Decide with approve=false); the reason, which
// is optional, may come afterwards from the approver who denied.

// AddDenyReason records why request id was denied, after the denial: one
// compare-and-set that sets the reason of the deny decision and writes an
// ActDenyReason audit event, then updates the cards and tells the
// requester. Only the approver who denied may, once, and only while the
// request is denied; otherwise it returns a *UserError (ErrNotAllowed,
// ErrAlreadyDecided, ErrNoReason, ErrReasonTooLong, ErrNotFound) and
// changes nothing.
func (s *Service) AddDenyReason(ctx context.Context, id, by, reason string) (*Request, error) {
	by = normID(by)
	reason = strings.TrimSpace(reason)
	if reason == "" {
		return nil, userErr(ErrNoReason, "say why you denied request %s", clip(id, 40))
	}
	if n := len([]rune(reason)); n > MaxReasonLen {
		return nil, userErr(ErrReasonTooLong, "the reason is %d characters long; the limit is %d", n, MaxReasonLen)
	}
	now := s.clock.Now()
	r, err := s.store.Update(ctx, strings.TrimSpace(id), func(r *Request) ([]AuditEvent, error) {
		i, err := denial(r, by)
		if err != nil {
			return nil, err
		}
		r.Decisions[i].Reason = reason
		r.UpdatedAt = now
		s.owe(r, EvDenyReason, by, reason, now)
		return []AuditEvent{s.event(r, ActDenyReason, by, StateDenied, StateDenied, reason)}, nil
	})
	if errors.Is(err, ErrNotFound) {
		return nil, userErr(ErrNotFound, "there is no request %s", clip(id, 40))
	}
	if err != nil {
		return nil, err
	}
	s.log.InfoContext(ctx, "deny reason added", "request_id", r.ID, "approver", by)
	return s.deliver(ctx, r), nil
}

// CanAddDenyReason returns nil when by may add the reason of request id's
// denial now, else the error AddDenyReason would return. Transports ask
// before they open a form for the reason.
func (s *Service) CanAddDenyReason(ctx context.Context, id, by string) error {
	r, err := s.Get(ctx, id)
	if err != nil {
		return err
	}
	_, err = denial(r, normID(by))
	return err
}

// denial returns the index of r's deny decision when by may give its
// reason. The refusals name neither the denier nor the reason.
func denial(r *Request, by string) (int, error) {
	if r.State != StateDenied {
		return -1, userErr(ErrNotAllowed, "request %s was not denied; there is no denial to give a reason for", r.ID)
	}
	for i, d := range r.Decisions {
		if d.Approve {
			continue
		}
		if d.By != by {
			return -1, userErr(ErrNotAllowed, "only the approver who denied request %s can give the reason", r.ID)
		}
		if d.Reason != "" {
			return -1, userErr(ErrAlreadyDecided, "the reason for denying request %s is already recorded", r.ID)
		}
		return i, nil
	}
	return -1, userErr(ErrNotAllowed, "request %s has no deny decision to give a reason for", r.ID)
}
