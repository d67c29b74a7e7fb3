package access

import (
	"errors"
	"fmt"
)

// Sentinel errors. Handlers map them (errors.Is) to fixed user-facing text;
// the wrapped message adds specifics that are safe to show.
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

// UserError is an error whose message is safe to show to the person who
// caused it (validation of their input). Handlers show Msg as it is.
type UserError struct {
	Msg string
	Err error // sentinel, for errors.Is
}

func (e *UserError) Error() string { return e.Msg }
func (e *UserError) Unwrap() error { return e.Err }

func userErr(sentinel error, format string, args ...any) error {
	return &UserError{Msg: fmt.Sprintf(format, args...), Err: sentinel}
}
