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
// request is denied; otherwise it returns a *Refusal (ErrNotAllowed,
// ErrAlreadyDecided, ErrNoReason, ErrReasonTooLong, ErrNotFound) and
// changes nothing.
func (s *Service) AddDenyReason(ctx context.Context, id, by, reason string) (*Request, error) {
	by = normID(by)
	reason = strings.TrimSpace(reason)
	if reason == "" {
		return nil, &Refusal{Code: RefuseDenyNoReason, Err: ErrNoReason, ID: id}
	}
	if n := len([]rune(reason)); n > MaxReasonLen {
		return nil, &Refusal{Code: RefuseReasonTooLong, Err: ErrReasonTooLong, Count: n, Limit: MaxReasonLen}
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
		return nil, &Refusal{Code: RefuseNoSuchRequest, Err: ErrNotFound, ID: id}
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
		return -1, &Refusal{Code: RefuseNotDenied, Err: ErrNotAllowed, ID: r.ID}
	}
	for i, d := range r.Decisions {
		if d.Approve {
			continue
		}
		if d.By != by {
			return -1, &Refusal{Code: RefuseNotDenier, Err: ErrNotAllowed, ID: r.ID}
		}
		if d.Reason != "" {
			return -1, &Refusal{Code: RefuseDenyReasonRecorded, Err: ErrAlreadyDecided, ID: r.ID}
		}
		return i, nil
	}
	return -1, &Refusal{Code: RefuseNoDenyDecision, Err: ErrNotAllowed, ID: r.ID}
}
