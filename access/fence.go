package access

import (
	"context"
	"errors"
	"time"
)

// ErrFenced is returned (wrapped) by a store write made under a Fence
// (WithFence) whose lease is no longer held with that fence's token: the
// lease lapsed, was released, or another holder took it over. The write
// changed nothing. Work that gets it has lost its lease and must stop; its
// outcome is the new holder's to record.
var ErrFenced = errors.New("fenced: the lease this write depends on is no longer held with its token")

// Fence names one holding of a lease: the claim key and the fencing token
// the store handed out when the lease was acquired (Fencer.ClaimFenced).
type Fence struct {
	Key   string
	Token int64
}

// Holder is one holding of a lease: its owner and its fencing token.
type Holder struct {
	Owner string
	Token int64
}

// Lease is what Fencer.ClaimFenced reports about a claim it granted.
type Lease struct {
	// Token is the fencing token of this holding. A new acquisition of a
	// key gets a token greater than every token the key had before, also
	// across restarts of the store; a renewal by the holder keeps it.
	Token int64
	// Lapsed is the previous holding when this call newly acquired a
	// lease that had expired without being released: its holder died,
	// paused or lost the store for longer than its TTL. It is nil for a
	// renewal, a first acquisition and one after a Release (and may be
	// nil when the store no longer remembers a holding that lapsed long
	// ago, or that lapsed before the store restarted).
	Lapsed *Holder
}

// Fence returns the fence of this holding of key.
func (l Lease) Fence(key string) Fence { return Fence{Key: key, Token: l.Token} }

// Fencer is the optional capability of a Store to hand out fencing tokens
// with its claims and to check them on writes. ClaimFenced and
// Store.Claim are one lock per key: a key claimed through either is held
// against both, a claim by the holder renews it whichever call made it,
// and Store.Release ends it (cleanly: not a lapse). Every new acquisition
// through either call gets a new token.
//
// A write (Create, Update, AppendAudit) whose context carries a Fence
// (WithFence) is made only if, in the same atomic step as the write, the
// fence's key is held, unexpired, with the fence's token; otherwise it
// fails with an error wrapping ErrFenced and writes nothing. A stale
// holder (paused past its lease by a GC pause or a network partition)
// therefore cannot write after another took the lease over.
type Fencer interface {
	// ClaimFenced takes, or renews when owner already holds it, the
	// expiring claim on key for ttl. ok is false (and the Lease zero) when
	// another owner holds it. A claim that lapsed is a new acquisition,
	// also for its old owner. Errors: an empty key or owner, a ttl that
	// is not positive, the store failing; nothing is claimed then.
	ClaimFenced(ctx context.Context, key, owner string, ttl time.Duration) (Lease, bool, error)

	// ReleaseFenced gives the claim on key back if owner holds it and
	// reports whether it did; false when it had lapsed, was released
	// before or is held by someone else (then nothing changes). Calling
	// it again is harmless.
	ReleaseFenced(ctx context.Context, key, owner string) (bool, error)
}

type fenceKey struct{}

// WithFence returns a context whose store writes are fenced by f: a store
// that is a Fencer refuses them (ErrFenced) unless f.Key is held with
// f.Token when they are written. The fence survives context.WithoutCancel,
// so bookkeeping after a cancelled call is fenced too. A later WithFence
// replaces an earlier one.
func WithFence(ctx context.Context, f Fence) context.Context {
	return context.WithValue(ctx, fenceKey{}, f)
}

// FenceFrom returns the fence WithFence put on ctx, false when there is none.
func FenceFrom(ctx context.Context) (Fence, bool) {
	f, ok := ctx.Value(fenceKey{}).(Fence)
	return f, ok
}
