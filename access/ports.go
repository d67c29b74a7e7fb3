package access

import (
	"context"
	"time"
)

// Requests stores requests: create, read, list and change them with a
// compare-and-set that writes their audit events in the same step.
type Requests interface {
	// Create stores a new request with its audit events in one atomic step.
	// It fails with ErrExists when the id is taken.
	Create(ctx context.Context, r *Request, events ...AuditEvent) error

	// CreateMany stores several new requests (the members of a bundle)
	// with their audit events in one atomic step: all of them or none.
	// It fails with ErrExists, storing nothing, when any id is taken.
	CreateMany(ctx context.Context, rs []*Request, events ...AuditEvent) error

	// Get returns a copy of the request, or ErrNotFound.
	Get(ctx context.Context, id string) (*Request, error)

	// Update is a compare-and-set: it loads the request, calls fn on a copy
	// and, when fn returns no error, writes the copy (Version incremented,
	// UpdatedAt untouched: fn sets it), the due index entry (from DueAt) and
	// the returned audit events atomically, but only if nobody else wrote the
	// request in between; otherwise it reloads and calls fn again (fn must
	// therefore be free of side effects). An error from fn is returned as it
	// is and nothing is written. ErrNotFound for an unknown id; ErrConflict
	// when the CAS keeps losing (after a bounded number of tries).
	Update(ctx context.Context, id string, fn func(r *Request) ([]AuditEvent, error)) (*Request, error)

	// List returns requests matching the filter, newest first.
	List(ctx context.Context, f Filter) ([]*Request, error)
}

// DueIndex is the index of when each request next needs work (its DueAt),
// written by Requests.Create and Requests.Update; the expiry engine reads it.
type DueIndex interface {
	// Due returns up to limit request ids whose DueAt is at or before t,
	// earliest first.
	Due(ctx context.Context, t time.Time, limit int) ([]string, error)

	// NextDue returns the earliest DueAt in the index, false when it is empty.
	NextDue(ctx context.Context) (time.Time, bool, error)
}

// Claims are exclusive, expiring claims on keys.
type Claims interface {
	// Claim takes an exclusive, expiring claim on work for id (revoking,
	// granting) so that two replicas never call the provider for the same
	// request at once. It returns false when someone else holds the claim.
	// Release gives it back early (only if owner still holds it).
	Claim(ctx context.Context, id, owner string, ttl time.Duration) (bool, error)
	Release(ctx context.Context, id, owner string) error
}

// AuditLog reads the audit log and appends to it what goes with no
// request's state change.
type AuditLog interface {
	// Audit returns audit events at or after since, oldest first.
	Audit(ctx context.Context, since time.Time) ([]AuditEvent, error)

	// AppendAudit appends audit events that go with no request's state
	// change (a drift removal of a member who had no grant), all or none.
	AppendAudit(ctx context.Context, events ...AuditEvent) error
}

// Dedup remembers incoming event ids.
type Dedup interface {
	// Seen records an incoming event id (a chat envelope id) and reports
	// whether it was seen before within ttl. The first caller gets false.
	Seen(ctx context.Context, eventID string, ttl time.Duration) (bool, error)
}

// Store is all of them in one implementation: store/bolt (one replica)
// and store/redis (several). store/storetest is the conformance suite
// every implementation must pass. Optional capabilities (Fencer, Counter,
// Inbox) are separate interfaces, found once when a Service is built.
type Store interface {
	Requests
	DueIndex
	Claims
	AuditLog
	Dedup

	// Close releases the store's resources.
	Close() error
}

// Filter selects requests for Store.List. Empty fields match everything.
type Filter struct {
	Requester string  // identity, exact (case-insensitive emails are lowered by the service)
	States    []State // any of
	Role      string
	Limit     int // 0: no limit
}

// Grant is what a provider is asked to add or remove: one identity in one group.
type Grant struct {
	RequestID string
	Role      string
	Group     string
	User      string // identity (email)
}

// Provisioner adds and removes group membership in an identity provider.
// Both calls are idempotent: Grant of an existing membership and Revoke of a
// missing one succeed. Errors that retrying cannot fix are wrapped with
// Permanent (or are ErrUnknownUser / ErrUserDisabled).
type Provisioner interface {
	Grant(ctx context.Context, g Grant) error
	Revoke(ctx context.Context, g Grant) error
}

// MemberLister is the optional drift-check capability of a Provisioner.
type MemberLister interface {
	Members(ctx context.Context, group string) ([]string, error)
}

// UserChecker is the optional capability of a Provisioner to tell, before a
// request is posted, whether the user exists (ErrUnknownUser, ErrUserDisabled).
type UserChecker interface {
	CheckUser(ctx context.Context, identity string) error
}

// Shift is who is on call for a rotation between Start and End.
// A zero End means "until further notice".
type Shift struct {
	Rotation string
	People   []string // identities (emails)
	Start    time.Time
	End      time.Time
}

// OnCall answers who is on call for a rotation at a time.
type OnCall interface {
	OnCall(ctx context.Context, rotation string, at time.Time) (Shift, error)
}

// Notifier tells people about what happened to a request. Implementations
// render messages for a chat platform. Notify returns references to the
// messages it posted (every one, DMs included), also when it fails part
// way: the service stores them on the request, next to those of earlier
// tries. Notification failures never undo a state change.
//
// The service delivers each outbox entry until Notify returns no error, so
// Notify must be safe to repeat: it renders the request as it is now
// (updates of posted messages are idempotent), posts a card (the approval
// card to each approver or channel, the break-glass card) only when
// Request.Messages has none for that target yet, and posts any other
// message of the event only when Request.Messages has no reference for
// that target with Announcement equal to Event.ID. A failure that retrying
// cannot fix (no chat account for the identity, no channel configured) is
// wrapped with Permanent: when every failure of a try is permanent the
// entry is done and the failures are logged.
type Notifier interface {
	Notify(ctx context.Context, ev Event) ([]MessageRef, error)
}

// Event is a state change (or alert) worth telling people about.
type Event struct {
	Type    EventType
	Request *Request // as it is now (at delivery), with the references of messages posted so far
	Actor   string   // who caused it
	Reason  string   // deny reason, revoke reason, alert detail
	Role    Role     // the role as configured now
	// ID is the outbox entry being delivered (Announcement.ID); empty for
	// events told directly (EvDrift, rotation problems, EvRefresh).
	ID string

	// Several roles in one request: every member of Request's bundle as it
	// is at delivery (Request itself among them), the lead first. Empty
	// for a request of a single role.
	Bundle []*Request
}

// Clock is the time source; tests inject a fixed or stepping clock.
type Clock interface {
	Now() time.Time
}

// SystemClock is the wall clock.
type SystemClock struct{}

// Now returns time.Now().
func (SystemClock) Now() time.Time { return time.Now() }

// Waker is told when a due time is stored that may be earlier than the one
// the expiry engine is waiting for. The scheduler implements it.
type Waker interface {
	Wake(at time.Time)
}
