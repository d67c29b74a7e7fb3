package bolt

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"

	"github.com/accessbot/accessbot/access"
	bbolt "go.etcd.io/bbolt"
)

// The audit chain and the audit sinks' cursors. The audit bucket is keyed
// by event time (for Audit's since); the chain's order is the write order,
// the sequence, which bucketAuditOrder indexes. The chain head and the
// cursors live in bucketMeta; appendAudit moves the head in the
// transaction that writes the events.

var (
	_ access.AuditStream  = (*Store)(nil)
	_ access.AuditCursors = (*Store)(nil)
)

var (
	bucketAuditOrder = []byte("audit_order") // seqKey(seq) -> audit bucket key
	bucketMeta       = []byte("meta")        // keyAuditHead, cursor:<name>
	keyAuditHead     = []byte("audit_head")
)

func cursorKey(name string) []byte { return []byte("cursor:" + name) }

// indexAuditOrder fills bucketAuditOrder from the audit bucket when it is
// empty: a store file written before the index existed.
func indexAuditOrder(tx *bbolt.Tx) error {
	order := tx.Bucket(bucketAuditOrder)
	if k, _ := order.Cursor().First(); k != nil {
		return nil
	}
	c := tx.Bucket(bucketAudit).Cursor()
	for k, _ := c.First(); k != nil; k, _ = c.Next() {
		if len(k) != 16 {
			continue
		}
		if err := order.Put(bytes.Clone(k[8:]), bytes.Clone(k)); err != nil {
			return err
		}
	}
	return nil
}

// AuditAfter returns up to limit events (all when limit <= 0) written after
// the event with ID after ("" from the first), in write order.
func (s *Store) AuditAfter(ctx context.Context, after string, limit int) ([]access.AuditEvent, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("bolt: audit after %q: %w", after, err)
	}
	var from []byte
	if after != "" {
		n, err := strconv.ParseUint(after, 10, 64)
		if err != nil {
			return nil, fmt.Errorf("bolt: audit after %q: not an audit event id of this store", after)
		}
		from = seqKey(n + 1)
	}
	var out []access.AuditEvent
	err := s.db.View(func(tx *bbolt.Tx) error {
		audit := tx.Bucket(bucketAudit)
		c := tx.Bucket(bucketAuditOrder).Cursor()
		k, ak := c.First()
		if from != nil {
			k, ak = c.Seek(from)
		}
		for ; k != nil && (limit <= 0 || len(out) < limit); k, ak = c.Next() {
			v := audit.Get(ak)
			if v == nil {
				continue // the event is gone; the chain check will say so
			}
			var ev access.AuditEvent
			if err := json.Unmarshal(v, &ev); err != nil {
				return fmt.Errorf("decode audit event %d: %w", binary.BigEndian.Uint64(k), err)
			}
			ev.ID = strconv.FormatUint(binary.BigEndian.Uint64(k), 10)
			out = append(out, ev)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("bolt: audit after %q: %w", after, err)
	}
	return out, nil
}

// AuditHead returns the hash of the last chained event, "" when none.
func (s *Store) AuditHead(ctx context.Context) (string, error) {
	return s.getMeta(ctx, "audit head", keyAuditHead)
}

// AuditCursor returns the position stored under name, "" when none.
func (s *Store) AuditCursor(ctx context.Context, name string) (string, error) {
	return s.getMeta(ctx, "audit cursor "+name, cursorKey(name))
}

func (s *Store) getMeta(ctx context.Context, what string, key []byte) (string, error) {
	if err := ctx.Err(); err != nil {
		return "", fmt.Errorf("bolt: %s: %w", what, err)
	}
	var v string
	err := s.db.View(func(tx *bbolt.Tx) error {
		v = string(tx.Bucket(bucketMeta).Get(key))
		return nil
	})
	if err != nil {
		return "", fmt.Errorf("bolt: %s: %w", what, err)
	}
	return v, nil
}

// SetAuditCursor stores pos under name, behind the fence on ctx if any.
func (s *Store) SetAuditCursor(ctx context.Context, name, pos string) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("bolt: set audit cursor %s: %w", name, err)
	}
	if name == "" {
		return errors.New("bolt: set audit cursor: empty name")
	}
	check, done := s.fence(ctx)
	defer done()
	err := s.db.Batch(func(tx *bbolt.Tx) error {
		if err := check(); err != nil {
			return err
		}
		return tx.Bucket(bucketMeta).Put(cursorKey(name), []byte(pos))
	})
	if err != nil {
		return fmt.Errorf("bolt: set audit cursor %s: %w", name, err)
	}
	return nil
}
