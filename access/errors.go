package access

import (
	"errors"
	"fmt"
	"time"
)

// Sentinel errors. Handlers map them (errors.Is) to fixed user-facing
// text; a *Refusal wrapping one carries the specifics for that text.
var (
	ErrNotFound       = errors.New("not found")         // no such request
	ErrConflict       = errors.New("concurrent update") // CAS lost too often; retry
	ErrExists         = errors.New("already exists")    // Create with a used id
	ErrUnknownRole    = errors.New("unknown role")
	ErrBadDuration    = errors.New("bad duration")
	ErrTooLong        = errors.New("duration over the maximum")
	ErrNoReason       = errors.New("a reason is required")
	ErrReasonTooLong  = errors.New("reason too long")
	ErrNoIdentity     = errors.New("no identity mapping for this chat user")
	ErrNotAllowed     = errors.New("not allowed") // authorisation refused
	ErrSelfApproval   = errors.New("self-approval is not allowed for this role")
	ErrAlreadyDecided = errors.New("already decided") // the request is no longer pending
	ErrTimedOut       = errors.New("request timed out")
	ErrNotActive      = errors.New("no active grant")
	ErrDuplicate      = errors.New("duplicate request") // overlapping request for the same role
	ErrNoApprovers    = errors.New("nobody can approve this role right now")
	ErrUnknownUser    = errors.New("user unknown to the provider")
	ErrUserDisabled   = errors.New("user disabled in the provider")
)

// StateError says a request was not in a state that allows the action.
// It wraps ErrAlreadyDecided, ErrTimedOut or ErrNotActive so handlers can
// tell what happened.
type StateError struct {
	ID    string
	State State
	Want  string // what the action needed, e.g. "pending"
	Err   error
}

func (e *StateError) Error() string {
	return fmt.Sprintf("request %s is %s, not %s", e.ID, e.State, e.Want)
}

func (e *StateError) Unwrap() error { return e.Err }

// PermanentError marks a provider error that retrying cannot fix (unknown
// user, unknown group, bad credentials). Providers wrap such errors with
// Permanent; anything else is treated as transient.
type PermanentError struct{ Err error }

func (e *PermanentError) Error() string { return e.Err.Error() }
func (e *PermanentError) Unwrap() error { return e.Err }

// Permanent wraps err as a PermanentError (nil stays nil).
func Permanent(err error) error {
	if err == nil {
		return nil
	}
	return &PermanentError{Err: err}
}

// IsPermanent reports whether err (or anything it wraps) is permanent.
func IsPermanent(err error) bool {
	var p *PermanentError
	return errors.As(err, &p) || errors.Is(err, ErrUnknownUser) || errors.Is(err, ErrUserDisabled)
}

// Refusal is a command the workflow refused because of what the person
// asked or who they are; it changes nothing. Code says which refusal and
// the fields carry what handlers need to word it for the person (the
// workflow holds no user-facing text); fields a code does not use are
// zero. Err is the sentinel it wraps, for errors.Is (ErrNotAllowed,
// ErrUnknownRole, ...).
type Refusal struct {
	Code RefusalCode
	Err  error

	ID       string        // the request concerned (as the person gave it where it is unknown)
	Other    string        // a second request: the grant an extension targets
	Role     string        // the role (as the person gave it where it is unknown)
	Provider string        // the role's provider
	User     string        // the identity concerned: the holder, who acknowledged first
	State    State         // the request's state
	Duration time.Duration // what was asked for
	Max      time.Duration // the limit it broke (a role's max_duration, MinDuration)
	Left     time.Duration // the most that may still be asked for
	At       time.Time     // an end time; for a rate limit, when commands are taken again
	Count    int           // how many: characters of a reason (0: not counted), requests, approvers, approvals
	Limit    int           // the most allowed, or how many are needed
	People   []string      // who may decide, or acknowledge

	// Scheduled access: the time zone a start was read in.
	Zone string
	// Request gate (gate.go): who may request a role, what its reasons say.
	Groups    []string // provider groups whose members may request Role (their names)
	Rotations []string // rotations whose on-call people may request Role
	Pattern   string   // the reason pattern the reason did not match
	Hint      string   // how to write such a reason
}

// RefusalCode names a Refusal.
type RefusalCode string

// The refusals.
const (
	RefuseNoIdentity         RefusalCode = "no_identity"          // requester without an identity (ErrNoIdentity)
	RefuseDecideNoIdentity   RefusalCode = "decide_no_identity"   // approver without an identity (ErrNoIdentity)
	RefuseBadIdentity        RefusalCode = "bad_identity"         // identity not plain ASCII (ErrBadIdentity)
	RefuseNoRole             RefusalCode = "no_role"              // no role named (ErrUnknownRole)
	RefuseUnknownRole        RefusalCode = "unknown_role"         // Role as typed (ErrUnknownRole)
	RefuseRoleGone           RefusalCode = "role_gone"            // Role of request ID no longer configured (ErrUnknownRole)
	RefuseTooShort           RefusalCode = "too_short"            // Duration under Max (MinDuration) (ErrBadDuration)
	RefuseTooLong            RefusalCode = "too_long"             // Duration over Role's Max (ErrTooLong)
	RefuseNoReason           RefusalCode = "no_reason"            // Role, Duration asked without a reason (ErrNoReason)
	RefuseReasonTooLong      RefusalCode = "reason_too_long"      // Count characters (0: not counted), Limit (ErrReasonTooLong)
	RefuseUnknownUser        RefusalCode = "unknown_user"         // User has no account in Provider for Role (ErrUnknownUser)
	RefuseUserDisabled       RefusalCode = "user_disabled"        // User's Provider account is disabled (ErrUserDisabled)
	RefuseAlreadyPending     RefusalCode = "already_pending"      // Role already asked for in pending ID (ErrDuplicate)
	RefuseAlreadyHeld        RefusalCode = "already_held"         // Role already held until At by ID (ErrDuplicate)
	RefuseExtensionPending   RefusalCode = "extension_pending"    // an extension ID of Other is pending (ErrDuplicate)
	RefuseNoApprovers        RefusalCode = "no_approvers"         // nobody can approve Role (ErrNoApprovers)
	RefuseTooFewApprovers    RefusalCode = "too_few_approvers"    // Role needs Limit approvals, Count approvers (ErrNoApprovers)
	RefuseBusy               RefusalCode = "busy"                 // another request of the person is being stored (ErrConflict)
	RefuseTooManyPending     RefusalCode = "too_many_pending"     // Count requests pending already (ErrRateLimited)
	RefuseThrottled          RefusalCode = "throttled"            // over Limit commands a minute, again at At (ErrRateLimited)
	RefuseNoRequest          RefusalCode = "no_request"           // no request ID the person can act on (ErrNotFound or ErrNotAllowed)
	RefuseNoSuchRequest      RefusalCode = "no_such_request"      // no request ID at all (ErrNotFound)
	RefuseNotApprover        RefusalCode = "not_approver"         // not an approver of Role, cannot decide ID (ErrNotAllowed)
	RefuseNotApproverNow     RefusalCode = "not_approver_now"     // not an approver of Role now; People may (ErrNotAllowed)
	RefuseSelfDecide         RefusalCode = "self_decide"          // own request for Role (ErrSelfApproval)
	RefuseApprovedAlready    RefusalCode = "approved_already"     // already approved ID, Count of Limit (ErrAlreadyDecided)
	RefuseCancelNotYours     RefusalCode = "cancel_not_yours"     // only User can cancel ID (ErrNotAllowed)
	RefuseRevokeNotYours     RefusalCode = "revoke_not_yours"     // only User, an approver of Role or an admin can revoke ID (ErrNotAllowed)
	RefuseExtendNotYours     RefusalCode = "extend_not_yours"     // only User can extend ID (ErrNotAllowed)
	RefuseNothingToExtend    RefusalCode = "nothing_to_extend"    // ID is in State, not active (ErrNotActive)
	RefuseShiftGrant         RefusalCode = "shift_grant"          // ID is a shift grant, not extendable (ErrNotAllowed)
	RefuseExtendTooLong      RefusalCode = "extend_too_long"      // Duration more would hold Role until At, past Max; Left at most (ErrTooLong)
	RefuseNotBreakGlassUser  RefusalCode = "not_break_glass_user" // not on the break-glass list; ask for Role (ErrNotAllowed)
	RefuseNoBreakGlass       RefusalCode = "no_break_glass"       // Role allows no break-glass (ErrNotAllowed)
	RefuseSelfAcknowledge    RefusalCode = "self_acknowledge"     // own break-glass access (ErrSelfApproval)
	RefuseNotAcknowledger    RefusalCode = "not_acknowledger"     // only People can acknowledge (ErrNotAllowed)
	RefuseNotBreakGlass      RefusalCode = "not_break_glass"      // ID is no break-glass grant (ErrNotAllowed)
	RefuseAcknowledged       RefusalCode = "acknowledged"         // User already acknowledged ID (ErrAlreadyDecided)
	RefuseDenyNoReason       RefusalCode = "deny_no_reason"       // no reason given for denying ID (ErrNoReason)
	RefuseNotDenied          RefusalCode = "not_denied"           // ID was not denied (ErrNotAllowed)
	RefuseNotDenier          RefusalCode = "not_denier"           // only who denied ID can give the reason (ErrNotAllowed)
	RefuseDenyReasonRecorded RefusalCode = "deny_reason_recorded" // the reason of denying ID is recorded (ErrAlreadyDecided)
	RefuseNoDenyDecision     RefusalCode = "no_deny_decision"     // ID has no deny decision (ErrNotAllowed)

	// Several roles in one request (bundle.go).
	RefuseTooManyRoles   RefusalCode = "too_many_roles"   // Count roles named, at most Limit (ErrTooManyRoles)
	RefuseBundleNoneOpen RefusalCode = "bundle_none_open" // no role of bundle ID is in the state the action needs (ErrNotActive or ErrAlreadyDecided)
	// Request gate (gate.go).
	RefuseNotRequester       RefusalCode = "not_requester"       // not among Role's requesters: People, Groups, Rotations may (ErrNotAllowed)
	RefuseRequesterUnchecked RefusalCode = "requester_unchecked" // who may request Role could not be checked; Provider or Rotations failed (ErrRequesterUnchecked)
	RefuseReasonPattern      RefusalCode = "reason_pattern"      // the reason for Role does not match Pattern; Hint says how (ErrReasonPattern)
)

// Error describes the refusal for logs: its code and sentinel, the
// request and, for a user the provider cannot grant to, who and where
// (as Request.Failure says it). People are shown the handlers' wording.
func (e *Refusal) Error() string {
	what := fmt.Sprint(e.Err)
	if s, ok := accountProblem(e.Err, e.User, e.Provider); ok {
		what = s
	}
	if e.ID != "" {
		return fmt.Sprintf("access: refused (%s) for request %q: %s", e.Code, e.ID, what)
	}
	return fmt.Sprintf("access: refused (%s): %s", e.Code, what)
}

func (e *Refusal) Unwrap() error { return e.Err }
