package redis

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"strconv"
	"time"

	"github.com/accessbot/accessbot/access"
	goredis "github.com/redis/go-redis/v9"
)

// The audit chain (access/auditchain.go) and the audit sinks' cursors:
//
//	{prefix}:audit:head        string: Hash of the last chained event
//	{prefix}:cursor:<name>     string: an audit stream id (a sink's last delivered event)
//
// Lua has no SHA-256, so the hashes are computed here: a write reads the
// head, links its events to it and hands the script both the head it used
// and the new one. The script writes only if the head is still the one
// used (and sets the new head in the same step); otherwise it writes
// nothing and returns chainMoved, and the write links again.

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

// chain reads the chain head and links a copy of events to it. It returns
// the scripts' arguments: the head used, the new head ("" when there are
// no events) and each event's JSON. Between tries it pauses briefly, so
// writers racing for the head spread out.
func (s *Store) chain(ctx context.Context, events []access.AuditEvent) ([]any, error) {
	if len(events) == 0 {
		return []any{"", ""}, nil
	}
	head, err := s.AuditHead(ctx)
	if err != nil {
		return nil, err
	}
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

// pauseChain waits a short random time before try (try > 0) links again.
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
