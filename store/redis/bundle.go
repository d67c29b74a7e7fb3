package redis

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"

	goredis "github.com/redis/go-redis/v9"

	"github.com/accessbot/accessbot/access"
)

// createManyLua stores several new requests, all or none: when any of
// them exists (or one id is given twice) it writes nothing and returns 0.
// Each is written like writeScript writes a new request (version 1, due
// and list index entries, the write's token in field w); the audit events
// are appended once, linked to the audit chain whose head must still be
// the one they were linked to (auditchain.go): otherwise it writes
// nothing and returns chainMoved (-2).
//
// KEYS: due, audit, chain head, then for each request: request, then its
// index keys (4).
// ARGV: number of requests, the write's token, number of events, the
// chain head the events were linked to, the new chain head ("" when there
// are no events), event JSON..., then for each request: JSON, id, due
// score or "", created score.
const createManyLua = `
local n = tonumber(ARGV[1])
local nev = tonumber(ARGV[3])
local seen = {}
for i = 0, n - 1 do
  local k = KEYS[4 + i * 5]
  if seen[k] or redis.call('EXISTS', k) == 1 then return 0 end
  seen[k] = true
end
if ARGV[5] ~= '' and (redis.call('GET', KEYS[3]) or '') ~= ARGV[4] then return -2 end
for i = 0, n - 1 do
  local k = 4 + i * 5
  local a = 6 + nev + i * 4
  redis.call('HSET', KEYS[k], 'v', '1', 'data', ARGV[a], 'w', ARGV[2])
  if ARGV[a + 2] ~= '' then
    redis.call('ZADD', KEYS[1], ARGV[a + 2], ARGV[a + 1])
  end
  for j = 1, 4 do
    redis.call('ZADD', KEYS[k + j], ARGV[a + 3], ARGV[a + 1])
  end
end
for i = 6, 5 + nev do
  redis.call('XADD', KEYS[2], '*', 'e', ARGV[i])
end
if ARGV[5] ~= '' then redis.call('SET', KEYS[3], ARGV[5]) end
return 1
`

var createManyScript = goredis.NewScript(createManyLua)

// fencedCreateManyScript is createManyScript behind a fence check.
//
// KEYS: claim, lease record, then createManyScript's keys.
// ARGV: token, then createManyScript's arguments.
var fencedCreateManyScript = goredis.NewScript(fenceCheckLua + `
local function create(KEYS, ARGV)
` + createManyLua + `
end
if fenced(KEYS[1], KEYS[2], ARGV[1]) then return -1 end
local keys, args = {}, {}
for i = 3, #KEYS do keys[#keys + 1] = KEYS[i] end
for i = 2, #ARGV do args[#args + 1] = ARGV[i] end
return create(keys, args)
`)

// CreateMany stores the requests (each at Version 1, also on the caller's
// copies) with the audit events in one script run: all or none.
// ErrExists when any id is taken (or given twice).
func (s *Store) CreateMany(ctx context.Context, rs []*access.Request, events ...access.AuditEvent) error {
	if len(rs) == 0 {
		return errors.New("redis: create many: no requests")
	}
	tok := writeToken()
	keys := []string{s.key("due"), s.key("audit"), s.auditHeadKey()}
	var tail []any // each request's arguments, after the events
	for _, r := range rs {
		if r == nil {
			return errors.New("redis: create many: request is nil")
		}
		if r.ID == "" {
			return errors.New("redis: create many: request has no id")
		}
		next := r.Clone()
		next.Version = 1
		data, err := json.Marshal(next)
		if err != nil {
			return fmt.Errorf("redis: create %s: encode: %w", r.ID, err)
		}
		keys = append(keys, s.reqKey(r.ID))
		keys = append(keys, s.indexKeys(next)...)
		due := ""
		if t, ok := next.DueAt(); ok {
			due = strconv.FormatInt(dueScore(t), 10)
		}
		tail = append(tail, data, r.ID, due, strconv.FormatInt(next.CreatedAt.UnixMilli(), 10))
	}
	n, err := s.linked(ctx, events, func(chained []any) (int, error) {
		// chained: the head used, the new head, then each event's JSON.
		args := []any{len(rs), tok, len(chained) - 2}
		args = append(args, chained...)
		args = append(args, tail...)
		if f, ok := access.FenceFrom(ctx); ok {
			n, err := fencedCreateManyScript.Run(ctx, s.c, append(s.leaseKeys(f.Key), keys...),
				append([]any{strconv.FormatInt(f.Token, 10)}, args...)...).Int()
			if err == nil && n == fencedReply {
				err = fencedErr(f)
			}
			return n, err
		}
		return createManyScript.Run(ctx, s.c, keys, args...).Int()
	})
	if err != nil {
		return fmt.Errorf("redis: create many: %w", err)
	}
	if n == 0 && !s.landed(ctx, rs[0].ID, 1, tok) { // a landed retry, whose first reply was lost, is success
		return fmt.Errorf("redis: create many (%s, ...): %w", rs[0].ID, access.ErrExists)
	}
	for _, r := range rs {
		r.Version = 1
	}
	return nil
}
