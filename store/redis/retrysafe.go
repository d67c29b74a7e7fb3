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

// appendScript appends audit events once per token: a retried run finds
// its token and appends nothing.
//
// KEYS: audit stream, token key. ARGV: token TTL (ms), event JSON...
var appendScript = goredis.NewScript(`
if not redis.call('SET', KEYS[2], '1', 'NX', 'PX', ARGV[1]) then
  return 0
end
for i = 2, #ARGV do
  redis.call('XADD', KEYS[1], '*', 'e', ARGV[i])
end
return 1
`)

// appendOnce appends the encoded events in one step, once even when the
// client retries the command.
func (s *Store) appendOnce(ctx context.Context, vals []any) error {
	args := make([]any, 0, len(vals)+1)
	args = append(args, ttlArg(appendTokenTTL))
	args = append(args, vals...)
	return appendScript.Run(ctx, s.c, []string{s.key("audit"), s.key("appended", writeToken())}, args...).Err()
}
