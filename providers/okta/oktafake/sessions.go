package oktafake

import (
	"net/http"
	"strconv"
	"time"
)

// SessionEnd is one DELETE /api/v1/users/{id}/sessions the fake carried out.
type SessionEnd struct {
	UserID      string
	OAuthTokens bool // oauthTokens=true: the user's OAuth tokens were revoked too
	Sessions    int  // how many sessions the user held before
	At          time.Time
}

type sessionState struct {
	open     map[string]int // user id -> open sessions
	ended    []SessionEnd
	failWith int // status every session end answers with; 0: none
	throttle int // session ends still to answer 429
}

// ThrottleSessionEnds makes the next n session ends answer 429 E0000047
// with the budget spent until the next second (X-Rate-Limit-Remaining 0,
// X-Rate-Limit-Reset one second after Date), as Okta does when a rate
// limit is hit.
func (s *Server) ThrottleSessionEnds(n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.sessions.throttle = n
}

// AddSession opens an Okta session for the user (a sign-in), so that a
// test can see it ended.
func (s *Server) AddSession(userID string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.sessions.open == nil {
		s.sessions.open = map[string]int{}
	}
	s.sessions.open[userID]++
}

// Sessions returns how many sessions the user has open.
func (s *Server) Sessions(userID string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.sessions.open[userID]
}

// SessionEnds returns every session end the API carried out, oldest first.
func (s *Server) SessionEnds() []SessionEnd {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]SessionEnd(nil), s.sessions.ended...)
}

// FailSessionEnds makes every DELETE /api/v1/users/{id}/sessions answer
// with status (a 5xx answers E0000009, a 403 E0000006) until it is called
// with 0.
func (s *Server) FailSessionEnds(status int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.sessions.failWith = status
}

// clearSessions is DELETE /api/v1/users/{id}/sessions[?oauthTokens=true]:
// 204, or 404 E0000007 for an unknown user (ids only, as Okta documents).
func (s *Server) clearSessions(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.sessions.throttle > 0 {
		s.sessions.throttle--
		now := s.now()
		w.Header().Set("X-Rate-Limit-Remaining", "0")
		w.Header().Set("X-Rate-Limit-Reset", strconv.FormatInt(now.Unix()+1, 10))
		s.throttled.Add(1)
		oktaError(w, http.StatusTooManyRequests, "E0000047", "API call exceeded rate limit due to too many requests.")
		return
	}
	switch st := s.sessions.failWith; {
	case st == http.StatusForbidden:
		oktaError(w, st, "E0000006", "You do not have permission to perform the requested action")
		return
	case st >= 500:
		oktaError(w, st, "E0000009", "Internal Server Error")
		return
	case st != 0:
		oktaError(w, st, "E0000001", "Api validation failed")
		return
	}
	if s.users[id] == nil {
		notFound(w, id, "User")
		return
	}
	q := r.URL.Query().Get("oauthTokens")
	if q != "" && q != "true" && q != "false" {
		oktaError(w, http.StatusBadRequest, "E0000001", "Api validation failed: oauthTokens", "oauthTokens: must be true or false")
		return
	}
	s.sessions.ended = append(s.sessions.ended, SessionEnd{UserID: id, OAuthTokens: q == "true", Sessions: s.sessions.open[id], At: time.Now()})
	delete(s.sessions.open, id)
	w.WriteHeader(http.StatusNoContent)
}
