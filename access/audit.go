package access

import "time"

// Action names what an audit event records.
type Action string

// The audited actions.
const (
	ActSubmitted    Action = "submitted"
	ActApproved     Action = "approved" // one approval (of N)
	ActDenied       Action = "denied"
	ActCancelled    Action = "cancelled"
	ActTimedOut     Action = "timed_out"
	ActGranted      Action = "granted" // provider confirmed; active until EndsAt
	ActGrantFailed  Action = "grant_failed"
	ActGrantRetry   Action = "grant_retry"
	ActRevokeStart  Action = "revoke_started" // access must end now
	ActRevoked      Action = "revoked"        // provider confirmed removal; ended
	ActRevokeRetry  Action = "revoke_retry"
	ActRevokeAlert  Action = "revoke_alert" // revocation failing for too long
	ActExtended     Action = "extended"
	ActBreakGlass   Action = "break_glass"
	ActAcknowledged Action = "acknowledged"
	ActHandoff      Action = "handoff"
	ActAnnounced    Action = "announced"    // a security announcement was delivered (Detail: which, where)
	ActGrantUndone  Action = "grant_undone" // a grant landed after its request ended and was removed again
	ActCleanedUp    Action = "cleaned_up"   // a pending clean-up removal went through
	// ActDenyReason: a reason added to a denial after it.
	ActDenyReason Action = "deny_reason"
	// ActDriftReapplied is audited on a grant whose membership reconcile
	// added again. Unexpected members have no request: they are logged and
	// reported.
	ActDriftReapplied Action = "drift_reapplied"
	// ActDriftRemoved is audited (with no request id) for each member
	// without a grant that reconcile removed because a role of the group
	// says `reconcile: remove`.
	ActDriftRemoved Action = "drift_removed"
	// ActShiftMoved is audited when a shift grant's end moves because the
	// shift changed (an override, a schedule change, the person is no
	// longer on call, a rolling window extended).
	ActShiftMoved Action = "shift_moved"
	// Reminders and escalation (remind.go).
	// ActReminded: the undecided approvers of a pending request were
	// reminded (Detail: which reminder, who).
	ActReminded Action = "reminded"
	// ActEscalated: a pending request was escalated (Detail: to whom).
	ActEscalated Action = "escalated"

	// Scheduled access: ActStarted when an approved request's start is
	// reached and its grant begins; ActRevokedBeforeStart when it was
	// revoked before its start (nothing was granted, the provider not
	// called).
	ActStarted            Action = "started"
	ActRevokedBeforeStart Action = "revoked_before_start"
)

// AuditEvent is one line of the audit log. Stores write it in the same
// atomic step as the state change it describes.
type AuditEvent struct {
	ID        string    `json:"id,omitempty"` // assigned by the store (stream id / sequence)
	At        time.Time `json:"at"`
	RequestID string    `json:"request_id"`
	Action    Action    `json:"action"`
	Actor     string    `json:"actor"`   // who did it: identity, or "accessbot" for the scheduler
	Subject   string    `json:"subject"` // whose access: the requester
	Role      string    `json:"role"`
	From      State     `json:"from,omitempty"`
	To        State     `json:"to,omitempty"`
	Reason    string    `json:"reason,omitempty"`
	Detail    string    `json:"detail,omitempty"`

	// Tamper-evident chain (auditchain.go): set by the store when it
	// writes the event, in the same atomic step.
	PrevHash string `json:"prev_hash,omitempty"` // Hash of the event written before it; "" for the first of a chain
	Hash     string `json:"hash,omitempty"`      // AuditHash of this event (hex SHA-256)
}

// SystemActor is the actor of events the bot does on its own (expiry,
// timeouts, rotation handoffs).
const SystemActor = "accessbot"
