package redis

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"strconv"
	"time"

	goredis "github.com/redis/go-redis/v9"
)

// The client retries a command whose connection broke (parseURL: to ride
// out a Redis restart). A command can break after the server ran it and
// before its reply arrived; the retry then runs it a second time. The
// writes below are made safe against that: each one recognises its own
// earlier run and reports what that run did, instead of a conflict with
// itself (Create: ErrExists; Update: a lost compare-and-set that runs fn
// again on its own result), a duplicate (Seen: "seen before"), or a
// second copy (AppendAudit). Claim and Release are safe as they are: the
// owner's token is unique per lease and the claim script renews a claim
// its owner already holds.

// landed reports whether the request id is stored at version by the
// write whose token is tok: a write whose reply was lost took effect. The
// token is random per write, so two writers that happen to produce the
// same data (two concurrent decisions by the same approver at the same
// clock reading) are still told apart: only the one that wrote it landed.
func (s *Store) landed(ctx context.Context, id string, version int64, tok string) bool {
	vals, err := s.c.HMGet(ctx, s.reqKey(id), "v", "w").Result()
	if err != nil {
		return false
	}
	vs, _ := vals[0].(string)
	stored, _ := vals[1].(string)
	return vs == strconv.FormatInt(version, 10) && stored == tok
}

// writeToken returns a random token that names one write.
func writeToken() string {
	var b [12]byte
	_, _ = rand.Read(b[:]) // crypto/rand never fails on supported platforms
	return hex.EncodeToString(b[:])
}

// setOnce sets key for ttl unless it exists and reports whether this call
// set it, also when its first try set it and the reply was lost: the value
// is a token of this call, so a retry that finds its own token knows.
func (s *Store) setOnce(ctx context.Context, key string, ttl time.Duration) (bool, error) {
	tok := writeToken()
	set, err := s.c.SetNX(ctx, key, tok, ttl).Result()
	if err != nil || set {
		return set, err
	}
	cur, err := s.c.Get(ctx, key).Result()
	if errors.Is(err, goredis.Nil) {
		return false, nil // expired meanwhile: it was set by someone
	}
	if err != nil {
		return false, err
	}
	return cur == tok, nil
}

// appendTokenTTL is how long an AppendAudit remembers that it ran: longer
// than the client's retries of one command take.
const appendTokenTTL = 10 * time.Minute

// appendScript appends audit events once per token, linked to the audit
// chain whose head must still be the one they were linked to: a retried
// run finds its token and appends nothing; a run that finds the head moved
// appends nothing and leaves no token (the caller links again).
//
// KEYS: audit stream, token key, chain head. ARGV: token TTL (ms), the
// chain head the events were linked to, the new head, event JSON...
var appendScript = goredis.NewScript(`
if redis.call('EXISTS', KEYS[2]) == 1 then return 0 end
if (redis.call('GET', KEYS[3]) or '') ~= ARGV[2] then return -2 end
redis.call('SET', KEYS[2], '1', 'PX', ARGV[1])
for i = 4, #ARGV do
  redis.call('XADD', KEYS[1], '*', 'e', ARGV[i])
end
redis.call('SET', KEYS[3], ARGV[3])
return 1
`)

// appendOnce appends the chained events (s.chain) in one step, once per
// token even when the client retries the command. It returns 1 (or 0 for
// a retried run), or chainMoved when the chain head moved.
func (s *Store) appendOnce(ctx context.Context, tok string, chained []any) (int, error) {
	args := make([]any, 0, len(chained)+1)
	args = append(args, ttlArg(appendTokenTTL))
	args = append(args, chained...)
	return appendScript.Run(ctx, s.c, []string{s.key("audit"), s.key("appended", tok), s.auditHeadKey()}, args...).Int()
}
