package access

import (
	"crypto/rand"
	"time"
)

// State is where a request is in its lifecycle.
//
//	pending -> approved -> active -> revoking -> ended
//	pending -> denied | cancelled | timed_out
//	approved -> failed
//
// revoking is the short (or, when the provider keeps failing, long) window
// between "access must end" and "the provider confirmed the removal"; the
// grant is still live in the provider while a request is revoking, which is
// why it is a state of its own and not hidden in ended.
type State string

// The request states.
const (
	StatePending   State = "pending"
	StateApproved  State = "approved"
	StateActive    State = "active"
	StateRevoking  State = "revoking"
	StateEnded     State = "ended"
	StateDenied    State = "denied"
	StateCancelled State = "cancelled"
	StateTimedOut  State = "timed_out"
	StateFailed    State = "failed"
)

// Terminal reports whether nothing can happen to a request in s any more.
func (s State) Terminal() bool {
	switch s {
	case StateEnded, StateDenied, StateCancelled, StateTimedOut, StateFailed:
		return true
	}
	return false
}

// Live reports whether a request in s may hold access in the provider
// (approved and being provisioned, active, or being revoked).
func (s State) Live() bool {
	return s == StateApproved || s == StateActive || s == StateRevoking
}

// Kind tells how a request came about.
type Kind string

// The request kinds.
const (
	KindRequest    Kind = "request"     // asked for, needs approval
	KindBreakGlass Kind = "break_glass" // granted at once, announced, acknowledged later
	KindRotation   Kind = "rotation"    // granted for an on-call shift
	KindExtension  Kind = "extension"   // asks for more time on an active grant (Target)
)

// EndReason says why access ended.
type EndReason string

// The end reasons.
const (
	EndExpired    EndReason = "expired"
	EndRevoked    EndReason = "revoked"    // revoked early, see EndedBy
	EndSuperseded EndReason = "superseded" // replaced by a newer grant of the same access
	EndShiftOver  EndReason = "shift_over" // rotation grant after handoff
)

// Decision is one approver's answer.
type Decision struct {
	By      string    `json:"by"` // approver identity (email)
	Approve bool      `json:"approve"`
	Reason  string    `json:"reason,omitempty"`
	At      time.Time `json:"at"`
}

// MessageRef points at a chat message that later state changes update
// (the approval card, a break-glass announcement, the requester's DM).
type MessageRef struct {
	Platform string `json:"platform"`
	Purpose  string `json:"purpose"` // "approval", "security", "requester"
	Channel  string `json:"channel"`
	ID       string `json:"id"`            // message timestamp / id on the platform
	For      string `json:"for,omitempty"` // identity the message was sent to (DMs)
}

// Request is one access request and, once approved, the grant it became.
// Stores persist it as a whole; Version is the compare-and-set token.
type Request struct {
	ID        string        `json:"id"`
	Version   int64         `json:"version"`
	Kind      Kind          `json:"kind"`
	Requester string        `json:"requester"` // identity (email)
	Role      string        `json:"role"`
	Provider  string        `json:"provider"` // snapshot of the role at submit time
	Group     string        `json:"group"`
	Duration  time.Duration `json:"duration"`
	Reason    string        `json:"reason"`
	State     State         `json:"state"`
	Rotation  string        `json:"rotation,omitempty"` // rotation grants: which rotation
	Target    string        `json:"target,omitempty"`   // extensions: the request being extended

	CreatedAt    time.Time `json:"created_at"`
	UpdatedAt    time.Time `json:"updated_at"`
	PendingUntil time.Time `json:"pending_until,omitempty"` // pending requests time out here

	Approvers []string   `json:"approvers,omitempty"` // who was asked (snapshot, for display)
	Needed    int        `json:"needed,omitempty"`    // approvals needed
	Decisions []Decision `json:"decisions,omitempty"`

	GrantedAt time.Time `json:"granted_at,omitempty"`
	EndsAt    time.Time `json:"ends_at,omitempty"`
	EndedAt   time.Time `json:"ended_at,omitempty"`
	EndReason EndReason `json:"end_reason,omitempty"`
	EndedBy   string    `json:"ended_by,omitempty"`
	Failure   string    `json:"failure,omitempty"` // why a grant failed (user-safe text)

	// Provisioning retries: the next attempt time and how many failed.
	RetryAt        time.Time    `json:"retry_at,omitempty"`
	Attempts       int          `json:"attempts,omitempty"`
	FailingSince   time.Time    `json:"failing_since,omitempty"`
	Alerted        bool         `json:"alerted,omitempty"`
	LastError      string       `json:"last_error,omitempty"`
	KeepMembership bool         `json:"keep_membership,omitempty"` // another live grant needs the same group
	Extensions     int          `json:"extensions,omitempty"`
	AckBy          string       `json:"ack_by,omitempty"` // break-glass: security acknowledgement
	AckAt          time.Time    `json:"ack_at,omitempty"`
	Messages       []MessageRef `json:"messages,omitempty"`

	// Cleanup says a failed or ended request may still hold a membership
	// in the provider: the removal after a failed grant, or the undoing of
	// a grant that landed after its request had ended, did not go through.
	// Process retries the removal at RetryAt (counted in Attempts,
	// FailingSince, LastError, Alerted like a revocation) until it does.
	Cleanup bool `json:"cleanup,omitempty"`
	// Outbox holds the security announcements the request still owes, in
	// order. Each is added in the same compare-and-set as the change it
	// reports, posted afterwards and removed (audited as ActAnnounced) once
	// delivered; a failed post stays here and is retried at its NextTry.
	Outbox []Announcement `json:"outbox,omitempty"`
}

// Announcement is a message to the security channel that must get out:
// a break-glass grant, a revocation that keeps failing, its recovery.
type Announcement struct {
	ID        string    `json:"id"` // unique on the request, e.g. "break_glass", "revoke_alert"
	Type      EventType `json:"type"`
	Actor     string    `json:"actor,omitempty"`
	Reason    string    `json:"reason,omitempty"` // Event.Reason
	At        time.Time `json:"at"`               // when it became due
	Tries     int       `json:"tries,omitempty"`  // failed posts so far
	NextTry   time.Time `json:"next_try,omitempty"`
	LastError string    `json:"last_error,omitempty"`
}

// due returns when the announcement should be posted next.
func (a Announcement) due() time.Time {
	if a.NextTry.IsZero() {
		return a.At
	}
	return a.NextTry
}

// announce adds an announcement to the outbox, unless one with the same id
// is already waiting.
func (r *Request) announce(a Announcement) {
	for _, o := range r.Outbox {
		if o.ID == a.ID {
			return
		}
	}
	r.Outbox = append(r.Outbox, a)
}

// outboxDue returns when the first waiting announcement is due, false when
// the outbox is empty.
func (r *Request) outboxDue() (time.Time, bool) {
	if len(r.Outbox) == 0 {
		return time.Time{}, false
	}
	return r.Outbox[0].due(), true
}

// needsRemoval reports whether the provider must still be asked to remove
// the request's membership: it is revoking, or a clean-up is pending.
func (r *Request) needsRemoval() bool {
	return r.State == StateRevoking || (r.Cleanup && r.State.Terminal())
}

// DefaultLeaseTTL is the default of Options.LeaseTTL: how long a worker's
// lease on a request's provider work lasts without renewal.
const DefaultLeaseTTL = 10 * time.Second

// approvedLiveFor is how long an approved request may wait for its grant
// before the expiry engine looks at it again: a replica may have died
// between the decision and the grant. It is the lease TTL: by then a dead
// worker's lease has lapsed (the request is taken over at once), while a
// live worker whose provider call takes longer still holds its renewed
// lease and is left alone (the engine looks again a moment later).
const approvedLiveFor = DefaultLeaseTTL

// DueAt returns when the expiry engine must look at the request next, and
// false when nothing is scheduled: the earlier of its state's next step
// and its first waiting announcement. Stores keep this in their due index
// and update it atomically with every write of the request.
func (r *Request) DueAt() (time.Time, bool) {
	at, ok := r.stateDue()
	if ob, has := r.outboxDue(); has && (!ok || ob.Before(at)) {
		return ob, true
	}
	return at, ok
}

// stateDue is when the request's state needs its next step.
func (r *Request) stateDue() (time.Time, bool) {
	if r.Cleanup && r.State.Terminal() {
		return r.RetryAt, true
	}
	switch r.State {
	case StatePending:
		return r.PendingUntil, !r.PendingUntil.IsZero()
	case StateApproved:
		if !r.RetryAt.IsZero() {
			return r.RetryAt, true
		}
		return r.UpdatedAt.Add(approvedLiveFor), true
	case StateActive:
		return r.EndsAt, !r.EndsAt.IsZero()
	case StateRevoking:
		if !r.RetryAt.IsZero() {
			return r.RetryAt, true
		}
		return r.UpdatedAt, true
	}
	return time.Time{}, false
}

// Clone returns a deep copy, so a store can hand out requests that callers
// may change freely.
func (r *Request) Clone() *Request {
	c := *r
	c.Approvers = append([]string(nil), r.Approvers...)
	c.Decisions = append([]Decision(nil), r.Decisions...)
	c.Messages = append([]MessageRef(nil), r.Messages...)
	c.Outbox = append([]Announcement(nil), r.Outbox...)
	return &c
}

// Approvals counts the distinct approvers who approved.
func (r *Request) Approvals() int {
	n := 0
	for _, d := range r.Decisions {
		if d.Approve {
			n++
		}
	}
	return n
}

// DecidedBy reports whether identity already decided on the request.
func (r *Request) DecidedBy(identity string) bool {
	for _, d := range r.Decisions {
		if SameIdentity(d.By, identity) {
			return true
		}
	}
	return false
}

const idAlphabet = "23456789abcdefghjkmnpqrstuvwxyz" // no 0/1/i/l/o: easy to type from a screen

// NewID returns a short random request id like "r-7k3m9q2x".
func NewID() string {
	var b [8]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic(err) // crypto/rand never fails on supported platforms
	}
	out := []byte("r-")
	for _, c := range b {
		out = append(out, idAlphabet[int(c)%len(idAlphabet)])
	}
	return string(out)
}

// EndApplied closes an extension request once its time was added to the grant.
const EndApplied EndReason = "applied"
