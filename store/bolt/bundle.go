package bolt

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"go.etcd.io/bbolt"

	"github.com/accessbot/accessbot/access"
)

// CreateMany stores the requests (each at Version 1, also on the caller's
// copies) with the audit events in one transaction: all or none.
// ErrExists when any id is taken (or given twice).
func (s *Store) CreateMany(ctx context.Context, rs []*access.Request, events ...access.AuditEvent) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("bolt: create many: %w", err)
	}
	if len(rs) == 0 {
		return errors.New("bolt: create many: no requests")
	}
	nexts := make([]*access.Request, len(rs))
	datas := make([][]byte, len(rs))
	for i, r := range rs {
		if r == nil {
			return errors.New("bolt: create many: request is nil")
		}
		if r.ID == "" {
			return errors.New("bolt: create many: request has no id")
		}
		next := r.Clone()
		next.Version = 1
		data, err := json.Marshal(next)
		if err != nil {
			return fmt.Errorf("bolt: create %s: encode: %w", r.ID, err)
		}
		nexts[i], datas[i] = next, data
	}
	var taken string
	check, done := s.fence(ctx)
	defer done()
	err := s.db.Batch(func(tx *bbolt.Tx) error {
		taken = ""
		if err := check(); err != nil {
			return err
		}
		seen := map[string]bool{}
		for _, next := range nexts {
			if seen[next.ID] || tx.Bucket(bucketRequests).Get([]byte(next.ID)) != nil {
				taken = next.ID
				return nil
			}
			seen[next.ID] = true
		}
		for i, next := range nexts {
			var evs []access.AuditEvent
			if i == 0 {
				evs = events
			}
			if err := write(tx, nil, next, datas[i], evs); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("bolt: create many: %w", err)
	}
	if taken != "" {
		return fmt.Errorf("bolt: create %s: %w", taken, access.ErrExists)
	}
	for _, r := range rs {
		r.Version = 1
	}
	return nil
}
