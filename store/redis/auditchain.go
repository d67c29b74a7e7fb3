package redis

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"strconv"
	"sync"
	"time"

	"github.com/accessbot/accessbot/access"
	goredis "github.com/redis/go-redis/v9"
)

// The audit chain (access/auditchain.go) and the audit sinks' cursors:
//
//	{prefix}:audit:head        string: Hash of the last chained event
//	{prefix}:cursor:<name>     string: an audit stream id (a sink's last delivered event)
//
// Lua has no SHA-256, so the hashes are computed here: a write links its
// events to the head and hands the script both the head it used and the
// new one. The script writes only if the head is still the one used (and
// sets the new head in the same step); otherwise it writes nothing and
// returns chainMoved, and the write links again (chainLinker).

var (
	_ access.AuditStream  = (*Store)(nil)
	_ access.AuditCursors = (*Store)(nil)
)

// chainMoved is what the writing scripts return when the chain head is no
// longer the one the events were linked to.
const chainMoved = -2

// maxChainTries bounds how often one write links its events again.
const maxChainTries = 500

func (s *Store) auditHeadKey() string { return s.key("audit", "head") }

// chainLinker serialises this process's chained writes: with every
// writer of a process racing for the one head, a burst of concurrent
// writes (an expiry sweep after downtime) would mostly lose and link
// again. One at a time, each starts from the head the previous one wrote,
// without reading it; only another process's write in between costs a
// read and a second run.
type chainLinker struct {
	once  sync.Once
	turn  chan struct{} // a token: holding it is linking
	head  string
	known bool
}

// linked links events to the chain head and calls run with the scripts'
// chain arguments (see chain); run returns the script's reply. On
// chainMoved it reads the head and runs again, a bounded number of times.
// Without events, run is called once with empty chain arguments.
func (s *Store) linked(ctx context.Context, events []access.AuditEvent, run func(chained []any) (int, error)) (int, error) {
	if len(events) == 0 {
		return run([]any{"", ""})
	}
	l := &s.chain
	l.once.Do(func() { l.turn = make(chan struct{}, 1) })
	select {
	case l.turn <- struct{}{}:
	case <-ctx.Done():
		return 0, ctx.Err()
	}
	defer func() { <-l.turn }()
	for try := 0; ; try++ {
		if err := pauseChain(ctx, try); err != nil {
			return 0, err
		}
		if !l.known {
			h, err := s.AuditHead(ctx)
			if err != nil {
				return 0, err
			}
			l.head, l.known = h, true
		}
		chained, err := chain(l.head, events)
		if err != nil {
			return 0, err
		}
		n, err := run(chained)
		switch {
		case err != nil:
			l.known = false // it may or may not have run
			return 0, err
		case n == 1:
			l.head = chained[1].(string)
			return n, nil
		case n != chainMoved:
			l.known = false // a retried run: the head may be ours, or not
			return n, nil
		}
		l.known = false
		if try >= maxChainTries {
			return 0, fmt.Errorf("audit chain head kept moving (%d tries): %w", try+1, access.ErrConflict)
		}
	}
}

// chain links a copy of events to head. It returns the scripts' chain
// arguments: the head used, the new head and each event's JSON.
func chain(head string, events []access.AuditEvent) ([]any, error) {
	evs := make([]access.AuditEvent, len(events))
	for i, ev := range events {
		ev.ID = ""
		evs[i] = ev
	}
	newHead := access.ChainAudit(head, evs)
	out := make([]any, 0, len(evs)+2)
	out = append(out, head, newHead)
	for _, ev := range evs {
		b, err := json.Marshal(ev)
		if err != nil {
			return nil, fmt.Errorf("encode audit event: %w", err)
		}
		out = append(out, b)
	}
	return out, nil
}

// pauseChain waits a short random time before try (try > 1) links again:
// writers of several processes racing for the head spread out.
func pauseChain(ctx context.Context, try int) error {
	if try < 2 {
		return nil
	}
	t := time.NewTimer(rand.N(time.Duration(min(try, 20)) * 100 * time.Microsecond))
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// AuditHead returns the hash of the last chained event, "" when none.
func (s *Store) AuditHead(ctx context.Context) (string, error) {
	h, err := s.c.Get(ctx, s.auditHeadKey()).Result()
	if errors.Is(err, goredis.Nil) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("redis: audit head: %w", err)
	}
	return h, nil
}

// AuditAfter returns up to limit events (all when limit <= 0) written after
// the stream id after ("" from the first), in stream order.
func (s *Store) AuditAfter(ctx context.Context, after string, limit int) ([]access.AuditEvent, error) {
	start := "-"
	if after != "" {
		var err error
		if start, err = afterID(after); err != nil {
			return nil, fmt.Errorf("redis: audit after %q: not an audit event id of this store", after)
		}
	}
	var out []access.AuditEvent
	for limit <= 0 || len(out) < limit {
		n := int64(auditPage)
		if limit > 0 {
			n = int64(min(limit-len(out), auditPage))
		}
		msgs, err := s.c.XRangeN(ctx, s.key("audit"), start, "+", n).Result()
		if err != nil {
			return nil, fmt.Errorf("redis: audit after %q: %w", after, err)
		}
		for _, m := range msgs {
			raw, _ := m.Values["e"].(string)
			var ev access.AuditEvent
			if err := json.Unmarshal([]byte(raw), &ev); err != nil {
				return nil, fmt.Errorf("redis: audit after %q: decode event %s: %w", after, m.ID, err)
			}
			ev.ID = m.ID
			out = append(out, ev)
		}
		if int64(len(msgs)) < n {
			break
		}
		if start, err = afterID(msgs[len(msgs)-1].ID); err != nil {
			return nil, fmt.Errorf("redis: audit after %q: %w", after, err)
		}
	}
	return out, nil
}

// afterID is after, for an id that may also be given as "ms" alone.
func afterID(id string) (string, error) {
	if _, err := strconv.ParseUint(id, 10, 64); err == nil {
		id += "-0"
	}
	return after(id)
}

// AuditCursor returns the position stored under name, "" when none.
func (s *Store) AuditCursor(ctx context.Context, name string) (string, error) {
	v, err := s.c.Get(ctx, s.key("cursor", name)).Result()
	if errors.Is(err, goredis.Nil) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("redis: audit cursor %s: %w", name, err)
	}
	return v, nil
}

// fencedSetScript sets a string behind a fence check.
//
// KEYS: claim, lease record, key. ARGV: token, value.
var fencedSetScript = goredis.NewScript(fenceCheckLua + `
if fenced(KEYS[1], KEYS[2], ARGV[1]) then return -1 end
redis.call('SET', KEYS[3], ARGV[2])
return 1
`)

// SetAuditCursor stores pos under name, behind the fence on ctx if any.
func (s *Store) SetAuditCursor(ctx context.Context, name, pos string) error {
	if name == "" {
		return errors.New("redis: set audit cursor: empty name")
	}
	key := s.key("cursor", name)
	f, ok := access.FenceFrom(ctx)
	if !ok {
		if err := s.c.Set(ctx, key, pos, 0).Err(); err != nil {
			return fmt.Errorf("redis: set audit cursor %s: %w", name, err)
		}
		return nil
	}
	n, err := fencedSetScript.Run(ctx, s.c, append(s.leaseKeys(f.Key), key), strconv.FormatInt(f.Token, 10), pos).Int()
	if err != nil {
		return fmt.Errorf("redis: set audit cursor %s: %w", name, err)
	}
	if n == fencedReply {
		return fmt.Errorf("redis: set audit cursor %s: %w", name, fencedErr(f))
	}
	return nil
}
