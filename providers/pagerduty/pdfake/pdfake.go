// Package pdfake is a PagerDuty REST API v2 fake for tests: GET /oncalls on
// 127.0.0.1 with the real request checks (Authorization and Accept
// headers, since/until), real response shapes (null schedule, start and
// end for permanent on-calls; user references unless include[]=users),
// limit/offset/more pagination, 429 with ratelimit-reset, and a switch to
// take the service down (connection refused or 503) and bring it back.
package pdfake

import (
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/accessbot/accessbot/internal/fakeswitch"
)

// Accept is the media type PagerDuty's REST API v2 requires.
const Accept = "application/vnd.pagerduty+json;version=2"

// OnCall is one on-call entry: User is on call for PolicyID at Level,
// through ScheduleID (empty: directly on the escalation rule, which
// PagerDuty reports as a null schedule) from Start until End (zero: null,
// permanently on call).
type OnCall struct {
	UserID, Name, Email string
	ScheduleID          string
	PolicyID            string
	Level               int
	Start, End          time.Time
}

// Mode says how the fake fails while it is down.
type Mode = fakeswitch.Mode

// The modes: Up serves normally; Refused closes the listener (clients get
// "connection refused"); Unavailable answers every request with 503 and a
// non-JSON body.
const (
	Up          = fakeswitch.Up
	Refused     = fakeswitch.Refused
	Unavailable = fakeswitch.Unavailable
)

// Server is a running fake. All methods are safe for concurrent use.
type Server struct {
	token string

	sw *fakeswitch.Switch

	mu          sync.Mutex
	oncalls     []OnCall
	pageSize    int
	limited     int // requests still to answer with 429
	resetSecond int
	rejected    []string // why requests were refused (bad auth, accept, input)
}

// New starts a fake that accepts token. Close it when done.
func New(token string) *Server {
	s := &Server{token: token, pageSize: 100}
	s.sw = fakeswitch.Start("pdfake", http.HandlerFunc(s.handle), "<html><body><h1>503 Service Unavailable</h1></body></html>")
	return s
}

// URL is the base API URL (http://127.0.0.1:port); it stays the same
// across Down(Refused) and Up.
func (s *Server) URL() string { return s.sw.URL() }

// Close stops the fake.
func (s *Server) Close() { s.sw.Close() }

// Set replaces who is on call when.
func (s *Server) Set(oncalls ...OnCall) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.oncalls = slices.Clone(oncalls)
}

// SetPageSize caps the page size below PagerDuty's 100, to force pagination.
func (s *Server) SetPageSize(n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.pageSize = max(1, min(n, 100))
}

// RateLimit answers the next n requests with 429 and a ratelimit-reset
// header of resetSeconds.
func (s *Server) RateLimit(n, resetSeconds int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.limited, s.resetSecond = n, resetSeconds
}

// Requests returns how many HTTP requests reached the fake.
func (s *Server) Requests() int { return s.sw.Requests() }

// Rejected returns why requests were refused with 4xx (auth, headers,
// input), for tests that want to prove the client spoke the protocol.
func (s *Server) Rejected() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.rejected)
}

// Down takes the service down in mode m (Refused or Unavailable).
func (s *Server) Down(m Mode) { s.sw.Down(m) }

// Up brings the service back on the same address.
func (s *Server) Up() error { return s.sw.Up() }

type apiError struct {
	Message string   `json:"message"`
	Code    int      `json:"code"`
	Errors  []string `json:"errors,omitempty"`
}

func (s *Server) fail(w http.ResponseWriter, status int, e apiError) {
	s.rejected = append(s.rejected, fmt.Sprintf("%d %s %v", status, e.Message, e.Errors))
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]apiError{"error": e})
}

func (s *Server) handle(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if r.Header.Get("Authorization") != "Token token="+s.token {
		s.fail(w, http.StatusUnauthorized, apiError{Message: "Authentication failed", Code: 2006})
		return
	}
	if r.Header.Get("Accept") != Accept {
		s.fail(w, http.StatusNotAcceptable, apiError{Message: "Unsupported Accept header", Code: 2001,
			Errors: []string{"Accept must be " + Accept}})
		return
	}
	if s.limited > 0 {
		s.limited--
		w.Header().Set("ratelimit-limit", "960")
		w.Header().Set("ratelimit-remaining", "0")
		w.Header().Set("ratelimit-reset", strconv.Itoa(s.resetSecond))
		s.fail(w, http.StatusTooManyRequests, apiError{Message: "Rate Limit Exceeded", Code: 2020})
		return
	}
	if r.Method != http.MethodGet || r.URL.Path != "/oncalls" {
		s.fail(w, http.StatusNotFound, apiError{Message: "Not Found", Code: 2100})
		return
	}
	s.list(w, r)
}

func (s *Server) list(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	invalid := func(errs ...string) {
		s.fail(w, http.StatusBadRequest, apiError{Message: "Invalid Input Provided", Code: 2001, Errors: errs})
	}
	tz := q.Get("time_zone")
	loc := time.UTC
	if tz != "" {
		l, err := time.LoadLocation(tz)
		if err != nil {
			invalid("Time zone is invalid")
			return
		}
		loc = l
	}
	now := time.Now()
	since, until := now, now
	var err error
	if v := q.Get("since"); v != "" {
		if since, err = time.Parse(time.RFC3339, v); err != nil {
			invalid("Since is not a valid ISO 8601 date")
			return
		}
		until = since
	}
	if v := q.Get("until"); v != "" {
		if until, err = time.Parse(time.RFC3339, v); err != nil {
			invalid("Until is not a valid ISO 8601 date")
			return
		}
	}
	if until.Before(since) {
		invalid("Until must be after since")
		return
	}
	if until.Sub(since) > 90*24*time.Hour {
		invalid("The range must not exceed 90 days")
		return
	}
	limit, offset := 25, 0
	if v := q.Get("limit"); v != "" {
		if limit, err = strconv.Atoi(v); err != nil || limit < 1 {
			invalid("Limit must be a positive integer")
			return
		}
	}
	if v := q.Get("offset"); v != "" {
		if offset, err = strconv.Atoi(v); err != nil || offset < 0 {
			invalid("Offset must be a non-negative integer")
			return
		}
	}
	limit = min(limit, s.pageSize)
	schedules, policies := q["schedule_ids[]"], q["escalation_policy_ids[]"]
	withUsers := slices.Contains(q["include[]"], "users")

	var match []OnCall
	for _, o := range s.oncalls {
		// "null" in schedule_ids[] selects entries without a schedule
		// (direct user targets of an escalation rule).
		sid := o.ScheduleID
		if sid == "" {
			sid = "null"
		}
		if len(schedules) > 0 && !slices.Contains(schedules, sid) {
			continue
		}
		if len(policies) > 0 && !slices.Contains(policies, o.PolicyID) {
			continue
		}
		// Overlap with [since, until]; a zero-length range asks for "at since".
		if !o.End.IsZero() && !o.End.After(since) {
			continue
		}
		if !o.Start.IsZero() {
			late := o.Start.After(until)
			if until.After(since) {
				late = !o.Start.Before(until)
			}
			if late {
				continue
			}
		}
		match = append(match, o)
	}
	slices.SortStableFunc(match, func(a, b OnCall) int {
		if a.Level != b.Level {
			return a.Level - b.Level
		}
		return a.Start.Compare(b.Start)
	})

	page := []map[string]any{}
	for i := offset; i < len(match) && i < offset+limit; i++ {
		page = append(page, s.render(match[i], withUsers, loc))
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(map[string]any{
		"oncalls": page,
		"limit":   limit,
		"offset":  offset,
		"more":    offset+limit < len(match),
		"total":   nil,
	})
}

func (s *Server) render(o OnCall, withUsers bool, loc *time.Location) map[string]any {
	base := "https://acme.pagerduty.com"
	ref := func(kind, id, summary string) map[string]any {
		return map[string]any{
			"id": id, "type": kind + "_reference", "summary": summary,
			"self":     "https://api.pagerduty.com/" + kind + "s/" + id,
			"html_url": base + "/" + kind + "s/" + id,
		}
	}
	user := ref("user", o.UserID, o.Name)
	if withUsers {
		user = map[string]any{
			"id": o.UserID, "type": "user", "summary": o.Name, "name": o.Name, "email": o.Email,
			"time_zone": "Etc/UTC", "role": "user", "job_title": nil,
			"self":     "https://api.pagerduty.com/users/" + o.UserID,
			"html_url": base + "/users/" + o.UserID,
		}
	}
	var schedule any
	if o.ScheduleID != "" {
		schedule = ref("schedule", o.ScheduleID, "Schedule "+o.ScheduleID)
	}
	ts := func(t time.Time) any {
		if t.IsZero() {
			return nil
		}
		return t.In(loc).Format(time.RFC3339)
	}
	return map[string]any{
		"escalation_policy": ref("escalation_policy", o.PolicyID, "Policy "+o.PolicyID),
		"escalation_level":  o.Level,
		"schedule":          schedule,
		"user":              user,
		"start":             ts(o.Start),
		"end":               ts(o.End),
	}
}
