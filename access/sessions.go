package access

// SessionEnder is the optional capability of a Provisioner whose Revoke,
// for some roles, also ends (or denies) the sessions the user already
// holds: removing someone from a group does not end what they hold, so
// for those roles Revoke returns nil only once both the membership and the
// sessions are gone, and an error (retried and alerted like any failed
// removal) otherwise.
type SessionEnder interface {
	// SessionsNote says, for the audit detail of a completed revocation,
	// what Revoke of g did to the user's sessions (e.g. "okta sessions
	// ended"); "" when it leaves them alone. It makes no call.
	SessionsNote(g Grant) string
}

// sessionsNote is the audit note of provider p for g, "" when it has none.
func sessionsNote(p Provisioner, g Grant) string {
	if se, ok := p.(SessionEnder); ok {
		return se.SessionsNote(g)
	}
	return ""
}
