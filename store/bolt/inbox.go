package bolt

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	bbolt "go.etcd.io/bbolt"

	"github.com/accessbot/accessbot/access"
)

var _ access.Inbox = (*Store)(nil)

// The inbox buckets are created on first use (an older file has none).
// Entries done recently are remembered as seen ids under inboxDonePrefix,
// so the seen buckets' pruning forgets them.
var (
	bucketInbox      = []byte("inbox")       // id -> inboxRecord JSON
	bucketInboxLease = []byte("inbox_lease") // timeKey(lease expiry) + id -> empty
)

const inboxDonePrefix = "\x00inbox-done:"

type inboxRecord struct {
	Owner    string    `json:"owner"`
	Until    time.Time `json:"until"`
	Attempts int       `json:"attempts"`
	Platform string    `json:"platform"`
	Payload  []byte    `json:"payload"`
	Received time.Time `json:"received"`
}

func (r *inboxRecord) entry(id string) access.InboxEntry {
	return access.InboxEntry{ID: id, Platform: r.Platform, Payload: r.Payload, Received: r.Received, Attempts: r.Attempts}
}

func inboxBuckets(tx *bbolt.Tx) (entries, leases *bbolt.Bucket, err error) {
	if entries, err = tx.CreateBucketIfNotExists(bucketInbox); err != nil {
		return nil, nil, err
	}
	if leases, err = tx.CreateBucketIfNotExists(bucketInboxLease); err != nil {
		return nil, nil, err
	}
	return entries, leases, nil
}

func getInbox(entries *bbolt.Bucket, id string) (*inboxRecord, error) {
	v := entries.Get([]byte(id))
	if v == nil {
		return nil, nil
	}
	var r inboxRecord
	if err := json.Unmarshal(v, &r); err != nil {
		return nil, fmt.Errorf("decode inbox entry %s: %w", id, err)
	}
	return &r, nil
}

// putInbox writes r and moves its lease index entry from old (nil: none).
func putInbox(entries, leases *bbolt.Bucket, id string, old, r *inboxRecord) error {
	if old != nil {
		if err := leases.Delete(dueKey(old.Until, id)); err != nil {
			return err
		}
	}
	data, err := json.Marshal(r)
	if err != nil {
		return fmt.Errorf("encode inbox entry %s: %w", id, err)
	}
	if err := entries.Put([]byte(id), data); err != nil {
		return err
	}
	return leases.Put(dueKey(r.Until, id), empty)
}

func checkLease(op, id, owner string, lease time.Duration) error {
	if id == "" || owner == "" {
		return fmt.Errorf("bolt: inbox %s %q for %q: id and owner are required", op, id, owner)
	}
	if lease <= 0 {
		return fmt.Errorf("bolt: inbox %s %s: lease %v is not positive", op, id, lease)
	}
	return nil
}

// InboxPut stores e held by owner for lease, unless its id is in the inbox
// or was done recently, in one transaction.
func (s *Store) InboxPut(ctx context.Context, e access.InboxEntry, owner string, lease time.Duration) (bool, error) {
	if err := ctx.Err(); err != nil {
		return false, fmt.Errorf("bolt: inbox put: %w", err)
	}
	if err := checkLease("put", e.ID, owner, lease); err != nil {
		return false, err
	}
	now := s.now()
	var added bool
	err := s.db.Batch(func(tx *bbolt.Tx) error {
		added = false
		entries, leases, err := inboxBuckets(tx)
		if err != nil {
			return err
		}
		if entries.Get([]byte(e.ID)) != nil {
			return nil
		}
		if v := tx.Bucket(bucketSeen).Get([]byte(inboxDonePrefix + e.ID)); v != nil && now.Before(keyTime(v)) {
			return nil
		}
		added = true
		return putInbox(entries, leases, e.ID, nil, &inboxRecord{
			Owner: owner, Until: now.Add(lease), Platform: e.Platform, Payload: e.Payload, Received: e.Received,
		})
	})
	if err != nil {
		return false, fmt.Errorf("bolt: inbox put %s: %w", e.ID, err)
	}
	return added, nil
}

// InboxTake takes up to n entries whose lease lapsed, earliest lapsed first.
func (s *Store) InboxTake(ctx context.Context, owner string, n int, lease time.Duration) ([]access.InboxEntry, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("bolt: inbox take: %w", err)
	}
	if owner == "" {
		return nil, errors.New("bolt: inbox take: owner is required")
	}
	if lease <= 0 {
		return nil, fmt.Errorf("bolt: inbox take: lease %v is not positive", lease)
	}
	if n <= 0 {
		return nil, nil
	}
	now := s.now()
	var out []access.InboxEntry
	err := s.db.Update(func(tx *bbolt.Tx) error {
		out = nil
		entries, leases, err := inboxBuckets(tx)
		if err != nil {
			return err
		}
		nowKey := timeKey(now)
		var ids []string
		c := leases.Cursor()
		for k, _ := c.First(); k != nil && len(ids) < n; k, _ = c.Next() {
			if len(k) < 8 || bytes.Compare(k[:8], nowKey) > 0 {
				break
			}
			ids = append(ids, string(k[8:]))
		}
		for _, id := range ids {
			old, err := getInbox(entries, id)
			if err != nil {
				return err
			}
			if old == nil {
				continue
			}
			r := *old
			r.Owner, r.Until = owner, now.Add(lease)
			r.Attempts++
			if err := putInbox(entries, leases, id, old, &r); err != nil {
				return err
			}
			out = append(out, r.entry(id))
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("bolt: inbox take: %w", err)
	}
	return out, nil
}

// InboxRenew extends owner's lease on id.
func (s *Store) InboxRenew(ctx context.Context, id, owner string, lease time.Duration) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("bolt: inbox renew %s: %w", id, err)
	}
	if err := checkLease("renew", id, owner, lease); err != nil {
		return err
	}
	now := s.now()
	err := s.db.Batch(func(tx *bbolt.Tx) error {
		entries, leases, err := inboxBuckets(tx)
		if err != nil {
			return err
		}
		old, err := getInbox(entries, id)
		if err != nil {
			return err
		}
		if old == nil || old.Owner != owner {
			return access.ErrInboxNotHeld
		}
		r := *old
		r.Until = now.Add(lease)
		return putInbox(entries, leases, id, old, &r)
	})
	if err != nil {
		return fmt.Errorf("bolt: inbox renew %s: %w", id, err)
	}
	return nil
}

// InboxDone removes id if owner holds it and remembers it for remember.
func (s *Store) InboxDone(ctx context.Context, id, owner string, remember time.Duration) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("bolt: inbox done %s: %w", id, err)
	}
	if err := checkLease("done", id, owner, remember); err != nil {
		return err
	}
	now := s.now()
	err := s.db.Batch(func(tx *bbolt.Tx) error {
		entries, leases, err := inboxBuckets(tx)
		if err != nil {
			return err
		}
		old, err := getInbox(entries, id)
		if err != nil || old == nil {
			return err
		}
		if old.Owner != owner {
			return access.ErrInboxNotHeld
		}
		if err := entries.Delete([]byte(id)); err != nil {
			return err
		}
		if err := leases.Delete(dueKey(old.Until, id)); err != nil {
			return err
		}
		ids, exp := tx.Bucket(bucketSeen), tx.Bucket(bucketSeenExp)
		key := []byte(inboxDonePrefix + id)
		if v := ids.Get(key); v != nil {
			if err := exp.Delete(append(bytes.Clone(v), key...)); err != nil {
				return err
			}
		}
		until := timeKey(now.Add(remember))
		if err := ids.Put(key, until); err != nil {
			return err
		}
		if err := exp.Put(append(bytes.Clone(until), key...), empty); err != nil {
			return err
		}
		return pruneSeen(ids, exp, now)
	})
	if err != nil {
		return fmt.Errorf("bolt: inbox done %s: %w", id, err)
	}
	return nil
}
