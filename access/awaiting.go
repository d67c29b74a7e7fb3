package access

import "context"

// AwaitingDecision returns the pending requests that approver was asked to
// decide on and has not decided yet, newest first: those whose Approvers
// (the people asked when the request was posted) or, once it was
// escalated, EscalatedTo (the people asked then) name approver, that
// approver did not make, and whose pending time has not run out. It only
// reads; whether a decision is still allowed is checked by Decide.
func (s *Service) AwaitingDecision(ctx context.Context, approver string) ([]*Request, error) {
	who := normID(approver)
	if who == "" {
		return nil, nil
	}
	pending, err := s.store.List(ctx, Filter{States: []State{StatePending}})
	if err != nil {
		return nil, err
	}
	now := s.clock.Now()
	var out []*Request
	for _, r := range pending {
		asked := contains(r.Approvers, who) || (!r.EscalatedAt.IsZero() && contains(r.EscalatedTo, who))
		if r.Requester == who || !asked || r.DecidedBy(who) {
			continue
		}
		if !r.PendingUntil.IsZero() && !now.Before(r.PendingUntil) {
			continue // timed out; the sweep will say so
		}
		out = append(out, r)
	}
	return out, nil
}
