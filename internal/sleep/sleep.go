// Package sleep waits for a while unless the context ends first; the
// providers use it between retries (backoff, rate-limit resets).
package sleep

import (
	"context"
	"time"
)

// For waits d, or returns ctx.Err() as soon as ctx is done.
func For(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
