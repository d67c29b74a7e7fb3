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

// MessageRef points at a chat message the bot posted about a request: one
// that later state changes update (the approval card, a break-glass
// announcement, the requester's grant DM) or a notice sent once (a DM
// telling the requester what happened). Announcement names the outbox
// entry whose delivery posted it: a retry of that entry after a partial
// failure skips every part that already has a reference.
type MessageRef struct {
	Platform     string `json:"platform"`
	Purpose      string `json:"purpose"` // "approval", "security", "grant", "alert", "notice"
	Channel      string `json:"channel"`
	ID           string `json:"id"`                     // message timestamp / id on the platform
	For          string `json:"for,omitempty"`          // identity the message was sent to (DMs)
	Announcement string `json:"announcement,omitempty"` // Announcement.ID of the outbox entry that posted it
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
	// Outbox holds the messages the request still owes people, in the
	// order they were recorded: approval cards, card updates, DMs and
	// security announcements. Each is added in the same compare-and-set as
	// the change it reports, delivered right after that write by the
	// worker that made it, and removed once delivered (security
	// announcements are audited as ActAnnounced). A failed delivery stays
	// here and is retried at its NextTry; an entry whose worker died is
	// delivered by the sweep (the request's due time includes the outbox).
	Outbox []Announcement `json:"outbox,omitempty"`

	// Reminders and escalation (remind.go), scheduled at submit from the
	// role and kept here so that the due index brings them back: the base
	// interval of the reminders, how many were sent, when the next one is
	// due (zero: none left), when the escalation is due (zero: none, or
	// done), and when it happened and whom it asked.
	RemindEvery time.Duration `json:"remind_every,omitempty"`
	Reminders   int           `json:"reminders,omitempty"`
	RemindAt    time.Time     `json:"remind_at,omitempty"`
	EscalateAt  time.Time     `json:"escalate_at,omitempty"`
	EscalatedAt time.Time     `json:"escalated_at,omitempty"`
	EscalatedTo []string      `json:"escalated_to,omitempty"`
	// Scheduled access (schedule.go): StartsAt is when the grant may
	// start (zero: at approval), StartZone the time zone the start was
	// given in (for display), StartedAt when the start was reached and
	// the grant begun (zero while it waits).
	StartsAt  time.Time `json:"starts_at,omitempty"`
	StartZone string    `json:"start_zone,omitempty"`
	StartedAt time.Time `json:"started_at,omitempty"`
	// Several roles in one request (bundle.go): the requests asked for
	// together share Bundle ("b-" and the lead's id without its "r-"), and
	// each lists in Members the ids of all of them, the lead first. The
	// lead carries the one approval card of the bundle. Both are empty for
	// a request of a single role.
	Bundle  string   `json:"bundle,omitempty"`
	Members []string `json:"members,omitempty"`
	// Request gate (gate.go): AutoApproved is the auto_approve rule that
	// approved the request without a click ("on call for platform during
	// mon-fri 09:00-18:00 Europe/Berlin"); "" when people decided.
	AutoApproved string `json:"auto_approved,omitempty"`
}

// Announcement is one outbox entry: a message (or a set of messages, such
// as an approval card to each approver and a DM to the requester) that
// must get out about a change of the request. Entries are delivered in
// order within their lane (see lane).
type Announcement struct {
	ID        string    `json:"id"` // unique on the request, e.g. "break_glass", "active@4"
	Type      EventType `json:"type"`
	Actor     string    `json:"actor,omitempty"`
	Reason    string    `json:"reason,omitempty"` // Event.Reason
	At        time.Time `json:"at"`               // when it was recorded (delivery lag counts from here)
	Tries     int       `json:"tries,omitempty"`  // failed deliveries so far
	NextTry   time.Time `json:"next_try,omitempty"`
	LastError string    `json:"last_error,omitempty"`
}

// inlineGrace is how long the sweep leaves a fresh outbox entry to the
// worker that recorded it, which delivers it right after its write: the
// sweep does not race that worker for it, and takes it over when the
// worker died before delivering (or while delivering, once its
// "announce:" lease has lapsed).
const inlineGrace = 3 * time.Second

// due returns when the sweep should deliver the entry next.
func (a Announcement) due() time.Time {
	if a.NextTry.IsZero() {
		return a.At
	}
	return a.NextTry
}

// ready reports whether a worker may deliver the entry at now: a fresh
// entry (never tried) at once, a failed one at its NextTry.
func (a Announcement) ready(now time.Time) bool {
	return a.Tries == 0 || !now.Before(a.due())
}

// lane separates the security channel's announcements (and the updates of
// the break-glass card) from the messages to requesters and approvers:
// each lane is delivered in order, and a security channel that keeps
// refusing posts does not hold up a requester's DMs, nor the other way.
func (a Announcement) lane() string {
	switch a.Type {
	case EvBreakGlass, EvAcked, EvRevokeAlert, EvRevokeRecovered, EvUserGone:
		return "security"
	}
	return "people"
}

// announce adds an entry to the outbox, unless one with the same id is
// already waiting. A fresh entry is due for the sweep inlineGrace after
// it was recorded.
func (r *Request) announce(a Announcement) {
	for _, o := range r.Outbox {
		if o.ID == a.ID {
			return
		}
	}
	if a.NextTry.IsZero() && a.Tries == 0 {
		a.NextTry = a.At.Add(inlineGrace)
	}
	r.Outbox = append(r.Outbox, a)
}

// heads returns the index of the first entry of each lane, in outbox order.
func (r *Request) heads() []int {
	var out []int
	var seen [2]string
	n := 0
	for i, a := range r.Outbox {
		l := a.lane()
		if (n > 0 && seen[0] == l) || (n > 1 && seen[1] == l) {
			continue
		}
		seen[n] = l
		n++
		out = append(out, i)
		if n == len(seen) {
			break
		}
	}
	return out
}

// nextOutbox returns the index of the entry to deliver at now: the
// earliest lane head that is ready; false when none is.
func (r *Request) nextOutbox(now time.Time) (int, bool) {
	for _, i := range r.heads() {
		if r.Outbox[i].ready(now) {
			return i, true
		}
	}
	return -1, false
}

// outboxDue returns when the sweep must look at the outbox next (the
// earliest due time of a lane head), false when the outbox is empty.
func (r *Request) outboxDue() (time.Time, bool) {
	var at time.Time
	ok := false
	for _, i := range r.heads() {
		if d := r.Outbox[i].due(); !ok || d.Before(at) {
			at, ok = d, true
		}
	}
	return at, ok
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
		return r.pendingDue()
	case StateApproved:
		if r.awaitingStart() {
			return r.StartsAt, true // scheduled: granted at its start, not before
		}
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
	c.EscalatedTo = append([]string(nil), r.EscalatedTo...)
	c.Members = append([]string(nil), r.Members...)
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
