package access

import (
	"context"
	"errors"
	"time"
)

// ErrInboxNotHeld is returned by Inbox.InboxRenew and Inbox.InboxDone when
// the caller no longer holds the entry: its lease lapsed and another owner
// took it.
var ErrInboxNotHeld = errors.New("inbox entry held by another owner")

// InboxEntry is one incoming chat event, made durable before the chat
// platform is told it arrived, so that an event acknowledged by a replica
// that dies before handling it is handled by another.
type InboxEntry struct {
	// ID is the event's de-duplication key (for Slack the stable id of the
	// command or click, else the envelope id); a second Put of the same ID
	// is refused.
	ID       string
	Platform string    // "slack", …
	Payload  []byte    // the event as the platform sent it (Slack: the Socket Mode envelope)
	Received time.Time // when the first replica received it
	// Attempts counts how often the entry was taken from a lapsed holder:
	// 0 after Put, set by the store. A handler uses it to give up on an
	// event whose handling keeps killing its replica.
	Attempts int
}

// Inbox is the optional capability of a Store to hold incoming chat events
// until they are handled. Each entry is held by one owner (a replica) under
// a short lease that the owner renews while it works; an entry whose lease
// lapsed (its owner died) is taken by another owner and handled again, so
// handlers must be idempotent. Leases are measured on the store's clock
// (for Redis, the server's), not the callers'.
type Inbox interface {
	// InboxPut records e, held by owner for lease, in one atomic write. It
	// returns false and changes nothing when an entry with e.ID is in the
	// inbox or was marked done within the remember time given to
	// InboxDone. An error means the entry may not be stored: the event
	// must not be acknowledged.
	InboxPut(ctx context.Context, e InboxEntry, owner string, lease time.Duration) (bool, error)

	// InboxTake claims for owner, with a new lease, up to n entries whose
	// lease lapsed, the earliest lapsed first, and returns them with
	// Attempts incremented. Two concurrent callers never get the same
	// entry.
	InboxTake(ctx context.Context, owner string, n int, lease time.Duration) ([]InboxEntry, error)

	// InboxRenew extends owner's lease on the entry id to lease from now.
	// It fails with ErrInboxNotHeld when the entry is gone or held by
	// another owner. A lapsed lease that nobody took yet is renewed.
	InboxRenew(ctx context.Context, id, owner string, lease time.Duration) error

	// InboxDone removes the entry id held by owner and remembers its ID
	// for remember, so that a late second delivery of the event is refused
	// by InboxPut. It fails with ErrInboxNotHeld when another owner holds
	// the entry (nothing changes); an entry already gone is no error.
	InboxDone(ctx context.Context, id, owner string, remember time.Duration) error
}
