package redis

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/accessbot/accessbot/access"
	goredis "github.com/redis/go-redis/v9"
)

// Claims and their fencing tokens.
//
// A claim is {prefix}:claim:<key> (the owner, expiring with the claim, as
// before fencing existed, so a replica of an older version still sees the
// same lock). Its holding is {prefix}:lease:<key>, a hash of the token and
// the owner; it outlives the claim by lapseMemory, so the next acquisition
// can tell that the previous holding lapsed instead of being released
// (Release deletes both). Tokens come from the one counter {prefix}:fence:
// unique over every key, increasing, and persisted with the store. Should
// the counter be lost with the rest of Redis's data, it restarts from the
// server's clock in microseconds, above any token handed out before.

var _ access.Fencer = (*Store)(nil)

// lapseMemory is how long a lease record outlives its claim.
const lapseMemory = 24 * time.Hour

// claimScript takes or renews a claim and reports its holding.
//
// KEYS: claim, lease record, token counter.
// ARGV: owner, ttl ms, lease record ttl ms.
// Returns {1, token, lapsed owner, lapsed token} or {0}.
var claimScript = goredis.NewScript(`
-- Tokens go to Redis as strings in %d: how Redis would print a Lua number
-- depends on its version.
local function newToken()
  if redis.call('EXISTS', KEYS[3]) == 0 then
    local t = redis.call('TIME')
    redis.call('SET', KEYS[3], string.format('%d', tonumber(t[1]) * 1000000 + tonumber(t[2])))
  end
  return redis.call('INCR', KEYS[3])
end
local v = redis.call('GET', KEYS[1])
if v and v ~= ARGV[1] then return {0} end
local rec = redis.call('HMGET', KEYS[2], 'token', 'owner')
if v then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  if rec[1] and rec[2] == ARGV[1] then
    redis.call('PEXPIRE', KEYS[2], ARGV[3])
    return {1, tonumber(rec[1]), '', 0}
  end
  -- Held without a record (claimed by an older version): give it one.
  local tok = newToken()
  redis.call('DEL', KEYS[2])
  redis.call('HSET', KEYS[2], 'token', string.format('%d', tok), 'owner', ARGV[1])
  redis.call('PEXPIRE', KEYS[2], ARGV[3])
  return {1, tok, '', 0}
end
local tok = newToken()
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
redis.call('DEL', KEYS[2])
redis.call('HSET', KEYS[2], 'token', string.format('%d', tok), 'owner', ARGV[1])
redis.call('PEXPIRE', KEYS[2], ARGV[3])
if rec[1] then
  return {1, tok, rec[2] or '', tonumber(rec[1])}
end
return {1, tok, '', 0}
`)

// releaseScript ends owner's holding. KEYS: claim, lease record. ARGV: owner.
var releaseScript = goredis.NewScript(`
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
redis.call('DEL', KEYS[1])
if redis.call('HGET', KEYS[2], 'owner') == ARGV[1] then
  redis.call('DEL', KEYS[2])
end
return 1
`)

// fenceCheckLua defines fenced(claim, record, token): true when the claim
// is not held with token.
const fenceCheckLua = `
local function fenced(claim, record, token)
  local owner = redis.call('GET', claim)
  if not owner then return true end
  local rec = redis.call('HMGET', record, 'token', 'owner')
  return rec[1] ~= token or rec[2] ~= owner
end
`

// fencedReply is what the fenced scripts return when the fence refuses.
const fencedReply = -1

// fencedWriteScript is writeScript behind a fence check.
//
// KEYS: claim, lease record, then writeScript's keys.
// ARGV: token, then writeScript's arguments.
var fencedWriteScript = goredis.NewScript(fenceCheckLua + `
local function write(KEYS, ARGV)
` + writeLua + `
end
if fenced(KEYS[1], KEYS[2], ARGV[1]) then return -1 end
local keys, args = {}, {}
for i = 3, #KEYS do keys[#keys + 1] = KEYS[i] end
for i = 2, #ARGV do args[#args + 1] = ARGV[i] end
return write(keys, args)
`)

// fencedAuditScript appends audit events behind a fence check, linked to
// the audit chain whose head must still be the one they were linked to.
//
// KEYS: claim, lease record, audit stream, chain head. ARGV: token, the
// chain head the events were linked to, the new head, event JSON...
var fencedAuditScript = goredis.NewScript(fenceCheckLua + `
if fenced(KEYS[1], KEYS[2], ARGV[1]) then return -1 end
if (redis.call('GET', KEYS[4]) or '') ~= ARGV[2] then return -2 end
for i = 4, #ARGV do
  redis.call('XADD', KEYS[3], '*', 'e', ARGV[i])
end
redis.call('SET', KEYS[4], ARGV[3])
return 1
`)

// leaseKeys are the claim and lease record keys of key.
func (s *Store) leaseKeys(key string) []string {
	return []string{s.key("claim", key), s.key("lease", key)}
}

// fencedErr says that f refused a write.
func fencedErr(f access.Fence) error {
	return fmt.Errorf("lease %s token %d: %w", f.Key, f.Token, access.ErrFenced)
}

// runWrite runs writeScript, behind the fence on ctx if there is one.
func (s *Store) runWrite(ctx context.Context, keys []string, args []any) (int, error) {
	f, ok := access.FenceFrom(ctx)
	if !ok {
		return writeScript.Run(ctx, s.c, keys, args...).Int()
	}
	keys = append(s.leaseKeys(f.Key), keys...)
	args = append([]any{strconv.FormatInt(f.Token, 10)}, args...)
	n, err := fencedWriteScript.Run(ctx, s.c, keys, args...).Int()
	if err != nil {
		return 0, err
	}
	if n == fencedReply {
		return 0, fencedErr(f)
	}
	return n, nil
}

// appendAuditFenced appends the chained events (s.chain) behind f. It
// returns 1, or chainMoved when the chain head moved.
func (s *Store) appendAuditFenced(ctx context.Context, f access.Fence, chained []any) (int, error) {
	keys := append(s.leaseKeys(f.Key), s.key("audit"), s.auditHeadKey())
	args := append([]any{strconv.FormatInt(f.Token, 10)}, chained...)
	n, err := fencedAuditScript.Run(ctx, s.c, keys, args...).Int()
	if err != nil {
		return 0, err
	}
	if n == fencedReply {
		return 0, fencedErr(f)
	}
	return n, nil
}

// ClaimFenced takes or renews the claim on key for owner (see
// access.Fencer): one Lua script reads the holding, draws a new token on a
// new acquisition and reports a previous holding that lapsed.
func (s *Store) ClaimFenced(ctx context.Context, key, owner string, ttl time.Duration) (access.Lease, bool, error) {
	if key == "" || owner == "" {
		return access.Lease{}, false, fmt.Errorf("redis: claim %q for %q: key and owner are required", key, owner)
	}
	if ttl <= 0 {
		return access.Lease{}, false, fmt.Errorf("redis: claim %s: ttl %v is not positive", key, ttl)
	}
	keys := append(s.leaseKeys(key), s.key("fence"))
	ttlMS := ttlArg(ttl)
	res, err := claimScript.Run(ctx, s.c, keys, owner, ttlMS, ttlMS+lapseMemory.Milliseconds()).Slice()
	if err != nil {
		return access.Lease{}, false, fmt.Errorf("redis: claim %s: %w", key, err)
	}
	if len(res) == 1 {
		return access.Lease{}, false, nil
	}
	if len(res) != 4 {
		return access.Lease{}, false, fmt.Errorf("redis: claim %s: unexpected reply %v", key, res)
	}
	tok, _ := res[1].(int64)
	prevOwner, _ := res[2].(string)
	prevTok, _ := res[3].(int64)
	l := access.Lease{Token: tok}
	if prevOwner != "" {
		l.Lapsed = &access.Holder{Owner: prevOwner, Token: prevTok}
	}
	return l, true, nil
}

// ReleaseFenced gives the claim on key back if owner holds it and reports
// whether it did.
func (s *Store) ReleaseFenced(ctx context.Context, key, owner string) (bool, error) {
	n, err := releaseScript.Run(ctx, s.c, s.leaseKeys(key), owner).Int()
	if err != nil {
		return false, fmt.Errorf("redis: release %s: %w", key, err)
	}
	return n == 1, nil
}

// Claim takes an expiring claim on id for owner. It returns true when the
// claim is free, expired or already owner's (the expiry is then renewed).
// It is ClaimFenced without the token.
func (s *Store) Claim(ctx context.Context, id, owner string, ttl time.Duration) (bool, error) {
	_, ok, err := s.ClaimFenced(ctx, id, owner, ttl)
	return ok, err
}

// Release gives the claim on id back if owner holds it; otherwise it does
// nothing. It is idempotent.
func (s *Store) Release(ctx context.Context, id, owner string) error {
	_, err := s.ReleaseFenced(ctx, id, owner)
	return err
}
