package access

// EventType names an Event.
type EventType string

// The event types.
const (
	EvSubmitted   EventType = "submitted" // post approval card, tell requester it is pending
	EvApproval    EventType = "approval"  // one approval of several recorded
	EvDenied      EventType = "denied"
	EvCancelled   EventType = "cancelled"
	EvTimedOut    EventType = "timed_out"
	EvActive      EventType = "active"      // granted until EndsAt
	EvFailed      EventType = "failed"      // grant failed
	EvEnded       EventType = "ended"       // access removed
	EvExtended    EventType = "extended"    // target grant's end moved (Request is the target)
	EvBreakGlass  EventType = "break_glass" // announce in the security channel
	EvAcked       EventType = "acknowledged"
	EvRevokeAlert EventType = "revoke_alert" // revocation failing for too long: security channel
	// EvRevokeRecovered: a revocation (or clean-up) announced with
	// EvRevokeAlert finally went through: security channel.
	EvRevokeRecovered EventType = "revoke_recovered"
	// EvUserGone: the provider no longer knows the user whose access had
	// to end, so there was no membership left to remove; the grant was
	// recorded as ended. Security channel.
	EvUserGone EventType = "user_gone"
	// EvDenyReason: the reason of a denial was added after it; the cards
	// show it and the requester is told.
	EvDenyReason EventType = "deny_reason"
	// EvRefresh asks the notifier to render the messages in
	// Request.Messages again for the request's current state, telling
	// nobody anything new: deliver sends it when the request changed while
	// those messages were being posted.
	EvRefresh EventType = "refresh"
	// EvDrift reports a group whose members and grants disagree (security
	// channel).
	EvDrift EventType = "drift"
	// EvRotationProblem: a rotation's shift grants cannot be kept as they
	// should (nobody on call, an on-call person without an email, the
	// on-call source failing). Reason says what; Request only carries the
	// rotation name. Announced in the security channel once per problem.
	EvRotationProblem EventType = "rotation_problem"
	// EvRotationOK: the problem last announced (Reason) has cleared.
	EvRotationOK EventType = "rotation_ok"
	// EvHandoffIn: the requester of Request has just come on call; Reason
	// is the sentence to tell them.
	EvHandoffIn EventType = "handoff_in"
	// EvHandoffOut: the requester of Request has just handed over; Request
	// is their shift grant with its (grace) end; Reason is the sentence.
	EvHandoffOut EventType = "handoff_out"
	// Reminders and escalation (remind.go).
	// EvReminder: a pending request is still undecided; remind the
	// approvers who have not decided (under the approval card and by DM).
	EvReminder EventType = "reminder"
	// EvEscalated: a pending request went undecided for escalate_after;
	// Request.EscalatedTo may decide it now. Cards show it, the escalated
	// people get the card, the requester is told.
	EvEscalated EventType = "escalated"

	// EvScheduled: a request with a start ahead was approved; it is
	// granted at Request.StartsAt (scheduled access).
	EvScheduled EventType = "scheduled"
)
