package redis

import (
	"context"
	"errors"
	"fmt"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/accessbot/accessbot/access"
)

var _ access.Counter = (*Store)(nil)

// incrScript counts and sets the expiry on the first increment only, in
// one step, so a counter can never be left without an expiry.
var incrScript = goredis.NewScript(`
local n = redis.call('INCR', KEYS[1])
if n == 1 then
  redis.call('PEXPIRE', KEYS[1], ARGV[1])
end
return n
`)

// Incr adds one to the counter key and returns the new count; the counter
// is forgotten ttl after its first increment. All replicas share it.
func (s *Store) Incr(ctx context.Context, key string, ttl time.Duration) (int64, error) {
	if key == "" {
		return 0, errors.New("redis: incr: key is empty")
	}
	if ttl <= 0 {
		return 0, fmt.Errorf("redis: incr %s: ttl %v is not positive", key, ttl)
	}
	n, err := incrScript.Run(ctx, s.c, []string{s.key("count", key)}, ttlArg(ttl)).Int64()
	if err != nil {
		return 0, fmt.Errorf("redis: incr %s: %w", key, err)
	}
	return n, nil
}
