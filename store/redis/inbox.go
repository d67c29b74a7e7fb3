package redis

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/accessbot/accessbot/access"
)

var _ access.Inbox = (*Store)(nil)

// The inbox lives in three kinds of keys (all under the store's hash tag):
//
//	{prefix}:inbox:lease        zset: entry id scored by lease expiry (server unix ms)
//	{prefix}:inbox:e:<id>       hash: o (owner), d (entry JSON), n (attempts)
//	{prefix}:inbox:done:<id>    string, with a TTL: handled recently
//
// Lease times are the Redis server's clock (TIME), so replicas with skewed
// clocks agree on when a lease lapsed.

// inboxData is the stored part of an entry that does not change.
type inboxData struct {
	Platform string    `json:"platform"`
	Payload  []byte    `json:"payload"`
	Received time.Time `json:"received"`
}

const luaNow = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
`

// KEYS: entry, lease zset, done marker. ARGV: id, owner, lease ms, data,
// the call's token. An entry that holds this call's token was written by
// this very call (its reply was lost and the client sent it again): that
// is a success, not a duplicate, or the event would be dropped.
var inboxPutScript = goredis.NewScript(luaNow + `
if redis.call('EXISTS', KEYS[1]) == 1 then
  if redis.call('HGET', KEYS[1], 't') == ARGV[5] then
    return 1
  end
  return 0
end
if redis.call('EXISTS', KEYS[3]) == 1 then
  return 0
end
redis.call('HSET', KEYS[1], 'o', ARGV[2], 'd', ARGV[4], 'n', 0, 't', ARGV[5])
redis.call('ZADD', KEYS[2], now + tonumber(ARGV[3]), ARGV[1])
return 1
`)

// KEYS: lease zset, entry keys. ARGV: owner, lease ms, ids (one per entry key).
// Returns id, data, attempts triples of the entries taken.
var inboxTakeScript = goredis.NewScript(luaNow + `
local out = {}
for i = 2, #KEYS do
  local id = ARGV[i + 1]
  local s = redis.call('ZSCORE', KEYS[1], id)
  if s and tonumber(s) <= now then
    local d = redis.call('HGET', KEYS[i], 'd')
    if d then
      local n = redis.call('HINCRBY', KEYS[i], 'n', 1)
      redis.call('HSET', KEYS[i], 'o', ARGV[1])
      redis.call('ZADD', KEYS[1], now + tonumber(ARGV[2]), id)
      table.insert(out, id)
      table.insert(out, d)
      table.insert(out, tostring(n))
    else
      redis.call('ZREM', KEYS[1], id)
    end
  end
end
return out
`)

// KEYS: entry, lease zset. ARGV: id, owner, lease ms.
var inboxRenewScript = goredis.NewScript(luaNow + `
if redis.call('HGET', KEYS[1], 'o') ~= ARGV[2] then
  return 0
end
redis.call('ZADD', KEYS[2], now + tonumber(ARGV[3]), ARGV[1])
return 1
`)

// KEYS: entry, lease zset, done marker. ARGV: id, owner, remember ms.
var inboxDoneScript = goredis.NewScript(`
local o = redis.call('HGET', KEYS[1], 'o')
if not o then
  return 1
end
if o ~= ARGV[2] then
  return 0
end
redis.call('DEL', KEYS[1])
redis.call('ZREM', KEYS[2], ARGV[1])
redis.call('SET', KEYS[3], 1, 'PX', ARGV[3])
return 1
`)

func (s *Store) inboxKeys(id string) (entry, lease, done string) {
	return s.key("inbox", "e", id), s.key("inbox", "lease"), s.key("inbox", "done", id)
}

func checkLease(op, id, owner string, lease time.Duration) error {
	if id == "" || owner == "" {
		return fmt.Errorf("redis: inbox %s %q for %q: id and owner are required", op, id, owner)
	}
	if lease <= 0 {
		return fmt.Errorf("redis: inbox %s %s: lease %v is not positive", op, id, lease)
	}
	return nil
}

// InboxPut stores e held by owner for lease, unless its id is in the inbox
// or was done recently, in one script (one round trip).
func (s *Store) InboxPut(ctx context.Context, e access.InboxEntry, owner string, lease time.Duration) (bool, error) {
	if err := checkLease("put", e.ID, owner, lease); err != nil {
		return false, err
	}
	data, err := json.Marshal(inboxData{Platform: e.Platform, Payload: e.Payload, Received: e.Received})
	if err != nil {
		return false, fmt.Errorf("redis: inbox put %s: encode: %w", e.ID, err)
	}
	entry, leases, done := s.inboxKeys(e.ID)
	n, err := inboxPutScript.Run(ctx, s.c, []string{entry, leases, done}, e.ID, owner, ttlArg(lease), data, writeToken()).Int()
	if err != nil {
		return false, fmt.Errorf("redis: inbox put %s: %w", e.ID, err)
	}
	return n == 1, nil
}

// InboxTake reads the n entries with the earliest lease expiry and, in one
// script, takes those whose lease lapsed.
func (s *Store) InboxTake(ctx context.Context, owner string, n int, lease time.Duration) ([]access.InboxEntry, error) {
	if owner == "" {
		return nil, errors.New("redis: inbox take: owner is required")
	}
	if lease <= 0 {
		return nil, fmt.Errorf("redis: inbox take: lease %v is not positive", lease)
	}
	if n <= 0 {
		return nil, nil
	}
	_, leases, _ := s.inboxKeys("")
	ids, err := s.c.ZRange(ctx, leases, 0, int64(n)-1).Result()
	if err != nil {
		return nil, fmt.Errorf("redis: inbox take: %w", err)
	}
	if len(ids) == 0 {
		return nil, nil
	}
	keys := []string{leases}
	args := []any{owner, ttlArg(lease)}
	for _, id := range ids {
		entry, _, _ := s.inboxKeys(id)
		keys = append(keys, entry)
		args = append(args, id)
	}
	res, err := inboxTakeScript.Run(ctx, s.c, keys, args...).StringSlice()
	if err != nil {
		return nil, fmt.Errorf("redis: inbox take: %w", err)
	}
	var out []access.InboxEntry
	for i := 0; i+2 < len(res); i += 3 {
		var d inboxData
		if err := json.Unmarshal([]byte(res[i+1]), &d); err != nil {
			return out, fmt.Errorf("redis: inbox take: decode entry %s: %w", res[i], err)
		}
		attempts, _ := strconv.Atoi(res[i+2])
		out = append(out, access.InboxEntry{ID: res[i], Platform: d.Platform, Payload: d.Payload, Received: d.Received, Attempts: attempts})
	}
	return out, nil
}

// InboxRenew extends owner's lease on id.
func (s *Store) InboxRenew(ctx context.Context, id, owner string, lease time.Duration) error {
	if err := checkLease("renew", id, owner, lease); err != nil {
		return err
	}
	entry, leases, _ := s.inboxKeys(id)
	n, err := inboxRenewScript.Run(ctx, s.c, []string{entry, leases}, id, owner, ttlArg(lease)).Int()
	if err != nil {
		return fmt.Errorf("redis: inbox renew %s: %w", id, err)
	}
	if n == 0 {
		return fmt.Errorf("redis: inbox renew %s: %w", id, access.ErrInboxNotHeld)
	}
	return nil
}

// InboxDone removes id if owner holds it and remembers it for remember.
func (s *Store) InboxDone(ctx context.Context, id, owner string, remember time.Duration) error {
	if err := checkLease("done", id, owner, remember); err != nil {
		return err
	}
	entry, leases, done := s.inboxKeys(id)
	n, err := inboxDoneScript.Run(ctx, s.c, []string{entry, leases, done}, id, owner, ttlArg(remember)).Int()
	if err != nil {
		return fmt.Errorf("redis: inbox done %s: %w", id, err)
	}
	if n == 0 {
		return fmt.Errorf("redis: inbox done %s: %w", id, access.ErrInboxNotHeld)
	}
	return nil
}
