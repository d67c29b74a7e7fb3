// Package redis is the store for several replicas: requests, their due
// index, list indexes, the audit stream, claims and seen event ids live in
// Redis (go-redis/v9).
//
// Every key of one store shares the hash tag {prefix}, so the Lua scripts
// that write a request together with its indexes and audit events touch one
// slot and also work on Redis Cluster:
//
//	{prefix}:req:<id>              hash: v (version), data (request JSON)
//	{prefix}:due                   zset: id scored by DueAt (unix ms, rounded up)
//	{prefix}:idx:all               zset: id scored by CreatedAt (unix ms)
//	{prefix}:idx:requester:<who>   zset, likewise
//	{prefix}:idx:state:<state>     zset, likewise
//	{prefix}:idx:role:<role>       zset, likewise
//	{prefix}:audit                 stream: field e = event JSON
//	{prefix}:audit:head            string: the audit chain head (auditchain.go)
//	{prefix}:cursor:<name>         string: an audit sink's last delivered event id
//	{prefix}:claim:<id>            string: owner, with a TTL
//	{prefix}:lease:<id>            hash: token, owner of the claim's holding (fence.go)
//	{prefix}:fence                 string: the last fencing token handed out
//	{prefix}:seen:<event id>       string, with a TTL
//	{prefix}:appended:<token>      string, with a TTL: an AppendAudit that ran (retrysafe.go)
//
// The due index keeps milliseconds: a DueAt with a sub-millisecond part is
// rounded up, so an entry is due at most 1ms late and never early.
package redis

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/url"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/accessbot/accessbot/access"
	goredis "github.com/redis/go-redis/v9"
)

var _ access.Store = (*Store)(nil)

// DefaultPrefix is the key prefix when none is given.
const DefaultPrefix = "accessbot"

// maxUpdateTries bounds the compare-and-set loop of Update.
const maxUpdateTries = 100

// Page sizes for reading indexes and the audit stream.
const (
	listPage  = 100
	auditPage = 1000
)

// Store is an access.Store on Redis. It is safe for concurrent use and for
// use by several processes sharing one prefix.
type Store struct {
	c         goredis.UniversalClient
	tag       string // "{prefix}"
	ownClient bool

	closeOnce sync.Once
	closeErr  error

	// The audit chain (auditchain.go): this process's writers link one
	// at a time, starting from the head they last wrote.
	chain chainLinker
}

// New returns a store on c with keys under prefix (DefaultPrefix when
// empty; braces in it are replaced by underscores so the hash tag stays
// whole). The caller keeps owning c: Close does not close it.
func New(c goredis.UniversalClient, prefix string) *Store {
	if prefix == "" {
		prefix = DefaultPrefix
	}
	prefix = strings.NewReplacer("{", "_", "}", "_").Replace(prefix)
	return &Store{c: c, tag: "{" + prefix + "}"}
}

// Open connects to the redis:// or rediss:// URL, waiting with capped
// exponential backoff until the server answers or ctx ends (see OpenWith),
// and returns a store that closes its client on Close. Errors name the URL
// without its password.
func Open(ctx context.Context, rawURL, prefix string) (*Store, error) {
	return OpenWith(ctx, rawURL, prefix, OpenOptions{})
}

// redact hides the password (and, if the URL does not parse, the whole
// user info) of a URL.
func redact(raw string) string {
	if u, err := url.Parse(raw); err == nil {
		return u.Redacted()
	}
	rest := raw
	scheme := ""
	if i := strings.Index(raw, "://"); i >= 0 {
		scheme, rest = raw[:i+3], raw[i+3:]
	}
	host := rest
	if i := strings.IndexAny(rest, "/?#"); i >= 0 {
		host = rest[:i]
	}
	if i := strings.LastIndex(host, "@"); i >= 0 {
		return scheme + "xxxxx@" + rest[i+1:]
	}
	return raw
}

// Close closes the client if Open created it. Calling it again returns the
// first result.
func (s *Store) Close() error {
	s.closeOnce.Do(func() {
		if s.ownClient {
			if err := s.c.Close(); err != nil {
				s.closeErr = fmt.Errorf("redis: close: %w", err)
			}
		}
	})
	return s.closeErr
}

func (s *Store) key(parts ...string) string {
	return s.tag + ":" + strings.Join(parts, ":")
}

func (s *Store) reqKey(id string) string { return s.key("req", id) }

func (s *Store) indexKeys(r *access.Request) []string {
	return []string{
		s.key("idx", "all"),
		s.key("idx", "requester", r.Requester),
		s.key("idx", "state", string(r.State)),
		s.key("idx", "role", r.Role),
	}
}

// dueScore is DueAt in unix milliseconds, rounded up.
func dueScore(t time.Time) int64 {
	ms := t.UnixMilli()
	if time.UnixMilli(ms).Before(t) {
		ms++
	}
	return ms
}

// writeScript stores a request if its version is the expected one ("0":
// it must not exist), and in the same step moves its due and list index
// entries and appends the audit events, linked to the audit chain whose
// head must still be the one they were linked to (auditchain.go).
//
// KEYS: request, due, audit, chain head, old index keys (ARGV[7] of them),
// new index keys.
// ARGV: expected version, new version, request JSON, id, due score or "",
// created score, number of old index keys, the write's token, the chain
// head the events were linked to, the new chain head ("" when there are no
// events), event JSON...
// The token is kept with the request (field w): a retried run of the same
// write that finds it knows its first run took effect (retrysafe.go).
// It returns 1 when written, 0 on a version mismatch and chainMoved when
// the chain head moved.
var writeScript = goredis.NewScript(writeLua)

// writeLua is writeScript's source; fencedWriteScript (fence.go) runs it
// after its fence check.
const writeLua = `
local v = redis.call('HGET', KEYS[1], 'v')
if not v then v = '0' end
if v ~= ARGV[1] then return 0 end
if ARGV[10] ~= '' and (redis.call('GET', KEYS[4]) or '') ~= ARGV[9] then return -2 end
redis.call('HSET', KEYS[1], 'v', ARGV[2], 'data', ARGV[3], 'w', ARGV[8])
if ARGV[5] == '' then
  redis.call('ZREM', KEYS[2], ARGV[4])
else
  redis.call('ZADD', KEYS[2], ARGV[5], ARGV[4])
end
local nold = tonumber(ARGV[7])
for i = 5, 4 + nold do
  redis.call('ZREM', KEYS[i], ARGV[4])
end
for i = 5 + nold, #KEYS do
  redis.call('ZADD', KEYS[i], ARGV[6], ARGV[4])
end
for i = 11, #ARGV do
  redis.call('XADD', KEYS[3], '*', 'e', ARGV[i])
end
if ARGV[10] ~= '' then redis.call('SET', KEYS[4], ARGV[10]) end
return 1
`

// write runs writeScript; it reports false when the version did not match.
// When the audit chain's head moved between reading it and the script (a
// concurrent writer), it links the events again to the new head and runs
// the script again.
func (s *Store) write(ctx context.Context, old, r *access.Request, expected int64, events []access.AuditEvent) (bool, error) {
	data, err := json.Marshal(r)
	if err != nil {
		return false, fmt.Errorf("encode: %w", err)
	}
	keys := []string{s.reqKey(r.ID), s.key("due"), s.key("audit"), s.auditHeadKey()}
	tok := writeToken()
	nOld := 0
	if old != nil {
		keys = append(keys, s.indexKeys(old)...)
		nOld = len(keys) - 4
	}
	keys = append(keys, s.indexKeys(r)...)
	due := ""
	if t, ok := r.DueAt(); ok {
		due = strconv.FormatInt(dueScore(t), 10)
	}
	base := []any{
		strconv.FormatInt(expected, 10), strconv.FormatInt(r.Version, 10), data, r.ID,
		due, strconv.FormatInt(r.CreatedAt.UnixMilli(), 10), nOld, tok,
	}
	n, err := s.linked(ctx, events, func(chained []any) (int, error) {
		return s.runWrite(ctx, keys, append(slices.Clone(base), chained...))
	})
	if err != nil {
		return false, err
	}
	if n == 0 && s.landed(ctx, r.ID, r.Version, tok) {
		return true, nil // a retry of this write, whose first run's reply was lost
	}
	return n == 1, nil
}

// Create stores r (Version set to 1, also on r) with its audit events
// atomically. ErrExists when the id is taken.
func (s *Store) Create(ctx context.Context, r *access.Request, events ...access.AuditEvent) error {
	if r == nil {
		return errors.New("redis: create: request is nil")
	}
	if r.ID == "" {
		return errors.New("redis: create: request has no id")
	}
	next := r.Clone()
	next.Version = 1
	ok, err := s.write(ctx, nil, next, 0, events)
	if err != nil {
		return fmt.Errorf("redis: create %s: %w", r.ID, err)
	}
	if !ok {
		return fmt.Errorf("redis: create %s: %w", r.ID, access.ErrExists)
	}
	r.Version = 1
	return nil
}

// Get returns a copy of the request, or ErrNotFound.
func (s *Store) Get(ctx context.Context, id string) (*access.Request, error) {
	r, _, err := s.load(ctx, id)
	if err != nil {
		return nil, fmt.Errorf("redis: get %s: %w", id, err)
	}
	return r, nil
}

// load reads a request and its stored version (the compare-and-set token).
func (s *Store) load(ctx context.Context, id string) (*access.Request, int64, error) {
	vals, err := s.c.HMGet(ctx, s.reqKey(id), "v", "data").Result()
	if err != nil {
		return nil, 0, err
	}
	vs, _ := vals[0].(string)
	data, _ := vals[1].(string)
	if vs == "" || data == "" {
		return nil, 0, access.ErrNotFound
	}
	v, err := strconv.ParseInt(vs, 10, 64)
	if err != nil {
		return nil, 0, fmt.Errorf("stored version %q of %s: %w", vs, id, err)
	}
	r, err := decode(id, data)
	if err != nil {
		return nil, 0, err
	}
	r.Version = v
	return r, v, nil
}

func decode(id, data string) (*access.Request, error) {
	var r access.Request
	if err := json.Unmarshal([]byte(data), &r); err != nil {
		return nil, fmt.Errorf("decode stored request %s: %w", id, err)
	}
	return &r, nil
}

// Update loads the request, applies fn to a copy and writes it with the
// returned audit events if its version is unchanged; otherwise it tries
// again after a short random pause (fn may run several times). An error
// from fn is returned unchanged. ErrNotFound for an unknown id, ErrConflict
// after too many lost races.
func (s *Store) Update(ctx context.Context, id string, fn func(r *access.Request) ([]access.AuditEvent, error)) (*access.Request, error) {
	for try := 0; try < maxUpdateTries; try++ {
		if try > 0 {
			pause := time.NewTimer(rand.N(time.Duration(min(try, 10)) * 200 * time.Microsecond))
			select {
			case <-ctx.Done():
				pause.Stop()
				return nil, fmt.Errorf("redis: update %s: %w", id, ctx.Err())
			case <-pause.C:
			}
		}
		cur, version, err := s.load(ctx, id)
		if err != nil {
			return nil, fmt.Errorf("redis: update %s: %w", id, err)
		}
		next := cur.Clone()
		events, err := fn(next)
		if err != nil {
			return nil, err
		}
		next.ID = id
		next.Version = version + 1
		ok, err := s.write(ctx, cur, next, version, events)
		if err != nil {
			return nil, fmt.Errorf("redis: update %s: %w", id, err)
		}
		if ok {
			return next.Clone(), nil
		}
	}
	return nil, fmt.Errorf("redis: update %s: %d tries lost: %w", id, maxUpdateTries, access.ErrConflict)
}

// List returns matching requests, newest (CreatedAt, in milliseconds)
// first, ties by id descending. It walks the most selective index:
// requester, else role, else the states, else all requests.
func (s *Store) List(ctx context.Context, f access.Filter) ([]*access.Request, error) {
	var iters []*zIter
	switch {
	case f.Requester != "":
		iters = append(iters, &zIter{key: s.key("idx", "requester", f.Requester)})
	case f.Role != "":
		iters = append(iters, &zIter{key: s.key("idx", "role", f.Role)})
	case len(f.States) > 0:
		for _, st := range slices.Compact(slices.Sorted(slices.Values(f.States))) {
			iters = append(iters, &zIter{key: s.key("idx", "state", string(st))})
		}
	default:
		iters = append(iters, &zIter{key: s.key("idx", "all")})
	}
	page := int64(listPage)
	if f.Limit > 0 && f.Limit < listPage {
		page = int64(f.Limit)
	}
	var out []*access.Request
	taken := map[string]bool{}
	for f.Limit <= 0 || len(out) < f.Limit {
		// Take the next page of candidates, newest first across iterators.
		var ids []string
		for int64(len(ids)) < page {
			var best *zIter
			for _, it := range iters {
				ok, err := it.fill(ctx, s.c, page)
				if err != nil {
					return nil, fmt.Errorf("redis: list: %w", err)
				}
				if ok && (best == nil || newer(it.peek(), best.peek())) {
					best = it
				}
			}
			if best == nil {
				break
			}
			id := best.pop()
			if !taken[id] {
				taken[id] = true
				ids = append(ids, id)
			}
		}
		if len(ids) == 0 {
			break
		}
		rs, err := s.loadMany(ctx, ids)
		if err != nil {
			return nil, fmt.Errorf("redis: list: %w", err)
		}
		for _, r := range rs {
			if r != nil && matches(r, f) && (f.Limit <= 0 || len(out) < f.Limit) {
				out = append(out, r)
			}
		}
	}
	return out, nil
}

func newer(a, b goredis.Z) bool {
	if a.Score != b.Score {
		return a.Score > b.Score
	}
	return a.Member.(string) > b.Member.(string)
}

// loadMany reads requests in one round trip; missing ones come back nil.
func (s *Store) loadMany(ctx context.Context, ids []string) ([]*access.Request, error) {
	cmds := make([]*goredis.StringCmd, len(ids))
	_, err := s.c.Pipelined(ctx, func(p goredis.Pipeliner) error {
		for i, id := range ids {
			cmds[i] = p.HGet(ctx, s.reqKey(id), "data")
		}
		return nil
	})
	if err != nil && !errors.Is(err, goredis.Nil) {
		return nil, err
	}
	out := make([]*access.Request, len(ids))
	for i, cmd := range cmds {
		data, err := cmd.Result()
		if errors.Is(err, goredis.Nil) {
			continue
		}
		if err != nil {
			return nil, err
		}
		if out[i], err = decode(ids[i], data); err != nil {
			return nil, err
		}
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
	return len(f.States) == 0 || slices.Contains(f.States, r.State)
}

// zIter pages through a sorted set from the highest score down.
type zIter struct {
	key  string
	buf  []goredis.Z
	next int64 // rank of the next page
	done bool
}

// fill makes sure a member is buffered; false when the set is exhausted.
func (it *zIter) fill(ctx context.Context, c goredis.UniversalClient, page int64) (bool, error) {
	if len(it.buf) > 0 {
		return true, nil
	}
	if it.done {
		return false, nil
	}
	zs, err := c.ZRevRangeWithScores(ctx, it.key, it.next, it.next+page-1).Result()
	if err != nil {
		return false, err
	}
	it.next += page
	it.done = int64(len(zs)) < page
	it.buf = zs
	return len(zs) > 0, nil
}

func (it *zIter) peek() goredis.Z { return it.buf[0] }

func (it *zIter) pop() string {
	m := it.buf[0].Member.(string)
	it.buf = it.buf[1:]
	return m
}

// Due returns up to limit (all when limit <= 0) ids whose DueAt is at or
// before t, earliest first (at millisecond precision, see the package doc).
func (s *Store) Due(ctx context.Context, t time.Time, limit int) ([]string, error) {
	opt := &goredis.ZRangeBy{Min: "-inf", Max: strconv.FormatInt(t.UnixMilli(), 10)}
	if limit > 0 {
		opt.Count = int64(limit)
	}
	ids, err := s.c.ZRangeByScore(ctx, s.key("due"), opt).Result()
	if err != nil {
		return nil, fmt.Errorf("redis: due: %w", err)
	}
	return ids, nil
}

// NextDue returns the earliest DueAt in the index (rounded up to the
// millisecond), false when it is empty.
func (s *Store) NextDue(ctx context.Context) (time.Time, bool, error) {
	zs, err := s.c.ZRangeWithScores(ctx, s.key("due"), 0, 0).Result()
	if err != nil {
		return time.Time{}, false, fmt.Errorf("redis: next due: %w", err)
	}
	if len(zs) == 0 {
		return time.Time{}, false, nil
	}
	return time.UnixMilli(int64(zs[0].Score)).UTC(), true, nil
}

// AppendAudit appends events that go with no request to the audit stream
// in one step (a script), linked to the audit chain, once even when the
// client retries it.
func (s *Store) AppendAudit(ctx context.Context, events ...access.AuditEvent) error {
	if len(events) == 0 {
		return nil
	}
	tok := writeToken()
	_, err := s.linked(ctx, events, func(chained []any) (int, error) {
		if f, ok := access.FenceFrom(ctx); ok {
			return s.appendAuditFenced(ctx, f, chained)
		}
		return s.appendOnce(ctx, tok, chained)
	})
	if err != nil {
		return fmt.Errorf("redis: append audit: %w", err)
	}
	return nil
}

// Audit returns the audit events with At at or after since, oldest first
// (events with equal At in the order they were written). Stream ids are
// the server's clock and At is the service's, so it reads the whole
// stream, a page at a time.
func (s *Store) Audit(ctx context.Context, since time.Time) ([]access.AuditEvent, error) {
	var out []access.AuditEvent
	start := "-"
	for {
		msgs, err := s.c.XRangeN(ctx, s.key("audit"), start, "+", auditPage).Result()
		if err != nil {
			return nil, fmt.Errorf("redis: audit: %w", err)
		}
		for _, m := range msgs {
			raw, _ := m.Values["e"].(string)
			var ev access.AuditEvent
			if err := json.Unmarshal([]byte(raw), &ev); err != nil {
				return nil, fmt.Errorf("redis: audit: decode event %s: %w", m.ID, err)
			}
			ev.ID = m.ID
			if !ev.At.Before(since) {
				out = append(out, ev)
			}
		}
		if len(msgs) < auditPage {
			break
		}
		if start, err = after(msgs[len(msgs)-1].ID); err != nil {
			return nil, fmt.Errorf("redis: audit: %w", err)
		}
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].At.Before(out[j].At) })
	return out, nil
}

// after returns the smallest stream id greater than id ("ms-seq").
func after(id string) (string, error) {
	ms, seq, ok := strings.Cut(id, "-")
	n, err := strconv.ParseUint(seq, 10, 64)
	if !ok || err != nil {
		return "", fmt.Errorf("unexpected stream id %q", id)
	}
	return ms + "-" + strconv.FormatUint(n+1, 10), nil
}

// ttlArg is ttl in milliseconds, at least 1.
func ttlArg(ttl time.Duration) int64 {
	return max(1, (ttl + time.Millisecond - 1).Milliseconds())
}

// Seen records eventID for ttl and reports whether it was recorded before
// and has not expired (SET NX PX; a retried call recognises its own
// record, see setOnce).
func (s *Store) Seen(ctx context.Context, eventID string, ttl time.Duration) (bool, error) {
	if eventID == "" {
		return false, errors.New("redis: seen: event id is empty")
	}
	if ttl <= 0 {
		return false, fmt.Errorf("redis: seen %s: ttl %v is not positive", eventID, ttl)
	}
	set, err := s.setOnce(ctx, s.key("seen", eventID), time.Duration(ttlArg(ttl))*time.Millisecond)
	if err != nil {
		return false, fmt.Errorf("redis: seen %s: %w", eventID, err)
	}
	return !set, nil
}
