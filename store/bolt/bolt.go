// Package bolt is the embedded store: one bbolt file, one accessbot process.
//
// Requests are JSON under their id. Secondary buckets keep the due index
// (time then id, so a cursor walks earliest first), the List indexes
// (requester, state, role, all; newest first), the audit log (event time
// then sequence) and seen event ids with their expiry. Every write of a
// request updates all of them in the same transaction. Writes go through
// db.Batch so that many concurrent updates share one fsync.
package bolt

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/accessbot/accessbot/access"
	bbolt "go.etcd.io/bbolt"
	bolterrors "go.etcd.io/bbolt/errors"
)

var _ access.Store = (*Store)(nil)

var (
	bucketRequests = []byte("requests")
	bucketDue      = []byte("due")         // dueKey(t, id) -> empty
	bucketDueByID  = []byte("due_by_id")   // id -> its current dueKey
	bucketIndex    = []byte("index")       // idxKey -> empty
	bucketAudit    = []byte("audit")       // timeKey(at) + seq -> event JSON
	bucketSeen     = []byte("seen")        // event id -> timeKey(expiry)
	bucketSeenExp  = []byte("seen_expiry") // timeKey(expiry) + event id -> empty
)

var allBuckets = [][]byte{bucketRequests, bucketDue, bucketDueByID, bucketIndex, bucketAudit, bucketSeen, bucketSeenExp,
	bucketAuditOrder, bucketMeta}

// maxUpdateTries bounds the compare-and-set loop of Update.
const maxUpdateTries = 100

// lockTimeout is how long Open waits for the file lock of another process.
const lockTimeout = time.Second

// seenPruneBatch is how many expired seen ids one Seen call deletes at most.
const seenPruneBatch = 64

var empty = []byte{}

// Store is an access.Store on a bbolt file. It is safe for concurrent use
// within one process; the file is locked against other processes.
type Store struct {
	db     *bbolt.DB
	path   string
	now    func() time.Time
	claims claims
	// counters are the in-memory rate-limit counters (counter.go).
	counters counters

	closeOnce sync.Once
	closeErr  error
}

// Open opens (creating it and its parent directories if needed) the store
// file at path. It fails with a clear error when another process holds the
// file (after waiting about a second) or when the file is not a store.
func Open(path string) (*Store, error) {
	if path == "" {
		return nil, errors.New("bolt: store path is empty")
	}
	if dir := filepath.Dir(path); dir != "" {
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return nil, fmt.Errorf("bolt: create directory for store file %s: %w", path, err)
		}
	}
	db, err := bbolt.Open(path, 0o600, &bbolt.Options{Timeout: lockTimeout})
	if errors.Is(err, bolterrors.ErrTimeout) {
		return nil, fmt.Errorf("bolt: store file %s is in use by another accessbot process: %w", path, err)
	}
	if err != nil {
		return nil, fmt.Errorf("bolt: open store file %s: %w", path, err)
	}
	// Coalesce concurrent writes for at most a couple of milliseconds: a
	// single write waits little, a burst of thousands shares few fsyncs.
	db.MaxBatchDelay = 2 * time.Millisecond
	err = db.Update(func(tx *bbolt.Tx) error {
		for _, name := range allBuckets {
			if _, err := tx.CreateBucketIfNotExists(name); err != nil {
				return fmt.Errorf("create bucket %s: %w", name, err)
			}
		}
		return nil
	})
	if err != nil {
		_ = db.Close()
		return nil, fmt.Errorf("bolt: initialise store file %s: %w", path, err)
	}
	if err := db.Update(indexAuditOrder); err != nil {
		_ = db.Close()
		return nil, fmt.Errorf("bolt: initialise store file %s: index the audit log: %w", path, err)
	}
	epoch, err := nextEpoch(db)
	if err != nil {
		_ = db.Close()
		return nil, fmt.Errorf("bolt: initialise store file %s: %w", path, err)
	}
	return &Store{db: db, path: path, now: time.Now, claims: claims{m: map[string]claim{}, base: epoch << seqBits}}, nil
}

// Close closes the file. Calling it again returns the first result.
func (s *Store) Close() error {
	s.closeOnce.Do(func() {
		if err := s.db.Close(); err != nil {
			s.closeErr = fmt.Errorf("bolt: close %s: %w", s.path, err)
		}
	})
	return s.closeErr
}

// Create stores r (Version set to 1, also on r) with its audit events
// atomically. ErrExists when the id is taken.
func (s *Store) Create(ctx context.Context, r *access.Request, events ...access.AuditEvent) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("bolt: create: %w", err)
	}
	if r == nil {
		return errors.New("bolt: create: request is nil")
	}
	if r.ID == "" {
		return errors.New("bolt: create: request has no id")
	}
	next := r.Clone()
	next.Version = 1
	data, err := json.Marshal(next)
	if err != nil {
		return fmt.Errorf("bolt: create %s: encode: %w", r.ID, err)
	}
	var exists bool
	check, done := s.fence(ctx)
	defer done()
	err = s.db.Batch(func(tx *bbolt.Tx) error {
		if err := check(); err != nil {
			return err
		}
		exists = tx.Bucket(bucketRequests).Get([]byte(next.ID)) != nil
		if exists {
			return nil
		}
		return write(tx, nil, next, data, events)
	})
	if err != nil {
		return fmt.Errorf("bolt: create %s: %w", r.ID, err)
	}
	if exists {
		return fmt.Errorf("bolt: create %s: %w", r.ID, access.ErrExists)
	}
	r.Version = 1
	return nil
}

// Get returns a copy of the request, or ErrNotFound.
func (s *Store) Get(ctx context.Context, id string) (*access.Request, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("bolt: get %s: %w", id, err)
	}
	r, _, err := s.load(id)
	if err != nil {
		return nil, fmt.Errorf("bolt: get %s: %w", id, err)
	}
	return r, nil
}

// load reads a request and its raw bytes (the compare-and-set token).
func (s *Store) load(id string) (*access.Request, []byte, error) {
	var raw []byte
	err := s.db.View(func(tx *bbolt.Tx) error {
		if v := tx.Bucket(bucketRequests).Get([]byte(id)); v != nil {
			raw = bytes.Clone(v)
		}
		return nil
	})
	if err != nil {
		return nil, nil, err
	}
	if raw == nil {
		return nil, nil, access.ErrNotFound
	}
	r, err := decode(id, raw)
	if err != nil {
		return nil, nil, err
	}
	return r, raw, nil
}

func decode(id string, raw []byte) (*access.Request, error) {
	var r access.Request
	if err := json.Unmarshal(raw, &r); err != nil {
		return nil, fmt.Errorf("decode stored request %s: %w", id, err)
	}
	return &r, nil
}

// Update loads the request, applies fn to a copy and writes it with the
// returned audit events if nobody wrote the request in between; otherwise
// it tries again (fn may run several times). An error from fn is returned
// unchanged. ErrNotFound for an unknown id, ErrConflict after too many
// lost races.
func (s *Store) Update(ctx context.Context, id string, fn func(r *access.Request) ([]access.AuditEvent, error)) (*access.Request, error) {
	for try := 0; try < maxUpdateTries; try++ {
		if err := ctx.Err(); err != nil {
			return nil, fmt.Errorf("bolt: update %s: %w", id, err)
		}
		cur, raw, err := s.load(id)
		if err != nil {
			return nil, fmt.Errorf("bolt: update %s: %w", id, err)
		}
		next := cur.Clone()
		events, err := fn(next)
		if err != nil {
			return nil, err
		}
		next.ID = id
		next.Version = cur.Version + 1
		data, err := json.Marshal(next)
		if err != nil {
			return nil, fmt.Errorf("bolt: update %s: encode: %w", id, err)
		}
		var stale bool
		check, done := s.fence(ctx)
		err = s.db.Batch(func(tx *bbolt.Tx) error {
			if err := check(); err != nil {
				return err
			}
			// Any write changes the stored bytes (the version at least),
			// so equal bytes mean nobody wrote in between.
			stale = !bytes.Equal(tx.Bucket(bucketRequests).Get([]byte(id)), raw)
			if stale {
				return nil
			}
			return write(tx, cur, next, data, events)
		})
		done()
		if err != nil {
			return nil, fmt.Errorf("bolt: update %s: %w", id, err)
		}
		if !stale {
			return next.Clone(), nil
		}
	}
	return nil, fmt.Errorf("bolt: update %s: %d tries lost: %w", id, maxUpdateTries, access.ErrConflict)
}

// write stores r (encoded as data), replaces old's due and list index
// entries (old is nil on create) and appends the audit events.
func write(tx *bbolt.Tx, old, r *access.Request, data []byte, events []access.AuditEvent) error {
	id := []byte(r.ID)
	if err := tx.Bucket(bucketRequests).Put(id, data); err != nil {
		return fmt.Errorf("put request: %w", err)
	}

	due, dueByID := tx.Bucket(bucketDue), tx.Bucket(bucketDueByID)
	if k := dueByID.Get(id); k != nil {
		if err := due.Delete(bytes.Clone(k)); err != nil {
			return fmt.Errorf("delete due entry: %w", err)
		}
	}
	if t, ok := r.DueAt(); ok {
		k := dueKey(t, r.ID)
		if err := due.Put(k, empty); err != nil {
			return fmt.Errorf("put due entry: %w", err)
		}
		if err := dueByID.Put(id, k); err != nil {
			return fmt.Errorf("put due entry: %w", err)
		}
	} else if err := dueByID.Delete(id); err != nil {
		return fmt.Errorf("delete due entry: %w", err)
	}

	idx := tx.Bucket(bucketIndex)
	if old != nil {
		for _, k := range indexKeys(old) {
			if err := idx.Delete(k); err != nil {
				return fmt.Errorf("delete index entry: %w", err)
			}
		}
	}
	for _, k := range indexKeys(r) {
		if err := idx.Put(k, empty); err != nil {
			return fmt.Errorf("put index entry: %w", err)
		}
	}

	return appendAudit(tx, events)
}

// appendAudit appends events to the audit log, each under a new sequence,
// links them to the audit chain and moves its head (auditchain.go).
func appendAudit(tx *bbolt.Tx, events []access.AuditEvent) error {
	if len(events) == 0 {
		return nil
	}
	audit := tx.Bucket(bucketAudit)
	events = slices.Clone(events)
	for i := range events {
		events[i].ID = ""
	}
	meta := tx.Bucket(bucketMeta)
	head := access.ChainAudit(string(meta.Get(keyAuditHead)), events)
	for _, ev := range events {
		seq, err := audit.NextSequence()
		if err != nil {
			return fmt.Errorf("audit sequence: %w", err)
		}
		ev.ID = strconv.FormatUint(seq, 10)
		b, err := json.Marshal(ev)
		if err != nil {
			return fmt.Errorf("encode audit event: %w", err)
		}
		k := append(timeKey(ev.At), seqKey(seq)...)
		if err := audit.Put(k, b); err != nil {
			return fmt.Errorf("put audit event: %w", err)
		}
		if err := tx.Bucket(bucketAuditOrder).Put(seqKey(seq), k); err != nil {
			return fmt.Errorf("put audit order: %w", err)
		}
	}
	if err := meta.Put(keyAuditHead, []byte(head)); err != nil {
		return fmt.Errorf("put audit chain head: %w", err)
	}
	return nil
}

func indexKeys(r *access.Request) [][]byte {
	return [][]byte{
		idxKey(idxAll, "", r.CreatedAt, r.ID),
		idxKey(idxRequester, r.Requester, r.CreatedAt, r.ID),
		idxKey(idxState, string(r.State), r.CreatedAt, r.ID),
		idxKey(idxRole, r.Role, r.CreatedAt, r.ID),
	}
}

// List returns matching requests, newest (CreatedAt) first, ties by id
// descending. It walks the most selective index: requester, else role,
// else the states, else all requests.
func (s *Store) List(ctx context.Context, f access.Filter) ([]*access.Request, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("bolt: list: %w", err)
	}
	var out []*access.Request
	err := s.db.View(func(tx *bbolt.Tx) error {
		idx, reqs := tx.Bucket(bucketIndex), tx.Bucket(bucketRequests)
		var iters []*revIter
		switch {
		case f.Requester != "":
			iters = append(iters, newRevIter(idx, idxPrefix(idxRequester, f.Requester)))
		case f.Role != "":
			iters = append(iters, newRevIter(idx, idxPrefix(idxRole, f.Role)))
		case len(f.States) > 0:
			seen := map[access.State]bool{}
			for _, st := range f.States {
				if !seen[st] {
					seen[st] = true
					iters = append(iters, newRevIter(idx, idxPrefix(idxState, string(st))))
				}
			}
		default:
			iters = append(iters, newRevIter(idx, idxPrefix(idxAll, "")))
		}
		for f.Limit <= 0 || len(out) < f.Limit {
			var best *revIter
			for _, it := range iters {
				if it.k != nil && (best == nil || bytes.Compare(it.tail(), best.tail()) > 0) {
					best = it
				}
			}
			if best == nil {
				return nil
			}
			id := string(best.tail()[8:])
			best.next()
			raw := reqs.Get([]byte(id))
			if raw == nil {
				continue
			}
			r, err := decode(id, raw)
			if err != nil {
				return err
			}
			if matches(r, f) {
				out = append(out, r)
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("bolt: list: %w", err)
	}
	return out, nil
}

func matches(r *access.Request, f access.Filter) bool {
	if f.Requester != "" && r.Requester != f.Requester {
		return false
	}
	if f.Role != "" && r.Role != f.Role {
		return false
	}
	if len(f.States) == 0 {
		return true
	}
	for _, st := range f.States {
		if r.State == st {
			return true
		}
	}
	return false
}

// revIter walks the keys under a prefix from the last to the first.
type revIter struct {
	c      *bbolt.Cursor
	prefix []byte
	k      []byte // current key, nil when done
}

func newRevIter(b *bbolt.Bucket, prefix []byte) *revIter {
	it := &revIter{c: b.Cursor(), prefix: prefix}
	k, _ := it.c.Seek(prefixEnd(prefix))
	if k == nil {
		k, _ = it.c.Last()
	} else {
		k, _ = it.c.Prev()
	}
	it.set(k)
	return it
}

func (it *revIter) set(k []byte) {
	if k != nil && bytes.HasPrefix(k, it.prefix) && len(k) >= len(it.prefix)+8 {
		it.k = k
	} else {
		it.k = nil
	}
}

func (it *revIter) next() {
	k, _ := it.c.Prev()
	it.set(k)
}

// tail is the created-at time and id part of the current key.
func (it *revIter) tail() []byte { return it.k[len(it.prefix):] }

// Due returns up to limit (all when limit <= 0) ids whose DueAt is at or
// before t, earliest first.
func (s *Store) Due(ctx context.Context, t time.Time, limit int) ([]string, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("bolt: due: %w", err)
	}
	end := timeKey(t)
	var ids []string
	err := s.db.View(func(tx *bbolt.Tx) error {
		c := tx.Bucket(bucketDue).Cursor()
		for k, _ := c.First(); k != nil && (limit <= 0 || len(ids) < limit); k, _ = c.Next() {
			if len(k) < 8 || bytes.Compare(k[:8], end) > 0 {
				break
			}
			ids = append(ids, string(k[8:]))
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("bolt: due: %w", err)
	}
	return ids, nil
}

// NextDue returns the earliest DueAt in the index, false when it is empty.
func (s *Store) NextDue(ctx context.Context) (time.Time, bool, error) {
	if err := ctx.Err(); err != nil {
		return time.Time{}, false, fmt.Errorf("bolt: next due: %w", err)
	}
	var (
		at time.Time
		ok bool
	)
	err := s.db.View(func(tx *bbolt.Tx) error {
		k, _ := tx.Bucket(bucketDue).Cursor().First()
		if len(k) >= 8 {
			at, ok = keyTime(k), true
		}
		return nil
	})
	if err != nil {
		return time.Time{}, false, fmt.Errorf("bolt: next due: %w", err)
	}
	return at, ok, nil
}

// AppendAudit appends events that go with no request to the audit log in
// one transaction.
func (s *Store) AppendAudit(ctx context.Context, events ...access.AuditEvent) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("bolt: append audit: %w", err)
	}
	if len(events) == 0 {
		return nil
	}
	check, done := s.fence(ctx)
	defer done()
	err := s.db.Batch(func(tx *bbolt.Tx) error {
		if err := check(); err != nil {
			return err
		}
		return appendAudit(tx, events)
	})
	if err != nil {
		return fmt.Errorf("bolt: append audit: %w", err)
	}
	return nil
}

// Audit returns the audit events with At at or after since, oldest first
// (events with equal At in the order they were written).
func (s *Store) Audit(ctx context.Context, since time.Time) ([]access.AuditEvent, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("bolt: audit: %w", err)
	}
	var out []access.AuditEvent
	err := s.db.View(func(tx *bbolt.Tx) error {
		c := tx.Bucket(bucketAudit).Cursor()
		for k, v := c.Seek(timeKey(since)); k != nil; k, v = c.Next() {
			var ev access.AuditEvent
			if err := json.Unmarshal(v, &ev); err != nil {
				return fmt.Errorf("decode audit event: %w", err)
			}
			// The key clamps times outside its range; the event's own
			// time decides.
			if !ev.At.Before(since) {
				out = append(out, ev)
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("bolt: audit: %w", err)
	}
	return out, nil
}

// Seen records eventID for ttl and reports whether it was recorded before
// and has not expired. Expired ids are pruned a few at a time.
func (s *Store) Seen(ctx context.Context, eventID string, ttl time.Duration) (bool, error) {
	if err := ctx.Err(); err != nil {
		return false, fmt.Errorf("bolt: seen: %w", err)
	}
	if eventID == "" {
		return false, errors.New("bolt: seen: event id is empty")
	}
	if ttl <= 0 {
		return false, fmt.Errorf("bolt: seen %s: ttl %v is not positive", eventID, ttl)
	}
	now := s.now()
	id := []byte(eventID)
	var seen bool
	err := s.db.Batch(func(tx *bbolt.Tx) error {
		ids, exp := tx.Bucket(bucketSeen), tx.Bucket(bucketSeenExp)
		seen = false
		if v := ids.Get(id); v != nil {
			if now.Before(keyTime(v)) {
				seen = true
				return nil
			}
			if err := exp.Delete(append(bytes.Clone(v), id...)); err != nil {
				return err
			}
		}
		until := timeKey(now.Add(ttl))
		if err := ids.Put(id, until); err != nil {
			return err
		}
		if err := exp.Put(append(bytes.Clone(until), id...), empty); err != nil {
			return err
		}
		return pruneSeen(ids, exp, now)
	})
	if err != nil {
		return false, fmt.Errorf("bolt: seen %s: %w", eventID, err)
	}
	return seen, nil
}

func pruneSeen(ids, exp *bbolt.Bucket, now time.Time) error {
	nowKey := timeKey(now)
	var expired [][]byte
	c := exp.Cursor()
	for k, _ := c.First(); k != nil && len(expired) < seenPruneBatch; k, _ = c.Next() {
		if len(k) < 8 || bytes.Compare(k[:8], nowKey) > 0 {
			break
		}
		expired = append(expired, bytes.Clone(k))
	}
	for _, k := range expired {
		if err := exp.Delete(k); err != nil {
			return err
		}
		if err := ids.Delete(k[8:]); err != nil {
			return err
		}
	}
	return nil
}
