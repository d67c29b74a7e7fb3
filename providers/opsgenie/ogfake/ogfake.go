// Package ogfake is an Opsgenie "Who is on call" API fake for tests:
// GET /v2/schedules/{identifier}/on-calls on 127.0.0.1 with the GenieKey
// check, scheduleIdentifierType (id or name), flat and date parameters;
// GET /v2/schedules/{identifier}/timeline (identifierType, date, interval,
// intervalUnit) with the turns as the final timeline's periods;
// Opsgenie's response and error shapes ({"data":...,"took","requestId"},
// {"message","took","requestId"}), 429 throttling, and a switch to take the
// service down (connection refused or 503) and bring it back.
package ogfake

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

// Turn puts Email on call for a schedule from Start until End (zero End:
// open-ended).
type Turn struct {
	Email      string
	Start, End time.Time
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

type schedule struct {
	id, name string
	turns    []Turn
}

// Server is a running fake. All methods are safe for concurrent use.
type Server struct {
	key string

	sw *fakeswitch.Switch

	mu         sync.Mutex
	schedules  []*schedule
	limited    int
	retryAfter int
	seq        int
	rejected   []string
	noTimeline bool
}

// New starts a fake that accepts apiKey. Close it when done.
func New(apiKey string) *Server {
	s := &Server{key: apiKey}
	s.sw = fakeswitch.Start("ogfake", s.mux(), "<html><body><h1>503 Service Temporarily Unavailable</h1></body></html>")
	return s
}

// URL is the base API URL (http://127.0.0.1:port); it stays the same
// across Down(Refused) and Up.
func (s *Server) URL() string { return s.sw.URL() }

// Close stops the fake.
func (s *Server) Close() { s.sw.Close() }

// Set creates or replaces the schedule with this id and name and who is on
// call when.
func (s *Server) Set(id, name string, turns ...Turn) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, sc := range s.schedules {
		if sc.id == id {
			sc.name, sc.turns = name, slices.Clone(turns)
			return
		}
	}
	s.schedules = append(s.schedules, &schedule{id: id, name: name, turns: slices.Clone(turns)})
}

// RateLimit answers the next n requests with 429; retryAfter > 0 adds a
// Retry-After header with that many seconds.
func (s *Server) RateLimit(n, retryAfter int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.limited, s.retryAfter = n, retryAfter
}

// RefuseTimeline makes the timeline API answer 403, as for an integration
// that may not read it (refuse false: serve it again).
func (s *Server) RefuseTimeline(refuse bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.noTimeline = refuse
}

// Requests returns how many HTTP requests reached the fake.
func (s *Server) Requests() int { return s.sw.Requests() }

// Rejected returns why requests were refused with 4xx.
func (s *Server) Rejected() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.rejected)
}

// Down takes the service down in mode m (Refused or Unavailable).
func (s *Server) Down(m Mode) { s.sw.Down(m) }

// Up brings the service back on the same address.
func (s *Server) Up() error { return s.sw.Up() }

func (s *Server) mux() http.Handler {
	m := http.NewServeMux()
	m.HandleFunc("GET /v2/schedules/{identifier}/on-calls", s.onCalls)
	m.HandleFunc("GET /v2/schedules/{identifier}/timeline", s.timeline)
	return s.guard(m)
}

func (s *Server) requestID() string {
	s.seq++
	return fmt.Sprintf("7a3c1f2e-0000-4000-8000-%012d", s.seq)
}

func (s *Server) fail(w http.ResponseWriter, status int, msg string) {
	s.rejected = append(s.rejected, fmt.Sprintf("%d %s", status, msg))
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]any{"message": msg, "took": 0.001, "requestId": s.requestID()})
}

// guard does what happens before routing: outages, auth, throttling.
func (s *Server) guard(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		defer s.mu.Unlock()
		if r.Header.Get("Authorization") != "GenieKey "+s.key {
			s.fail(w, http.StatusUnauthorized, "Could not authenticate")
			return
		}
		if s.limited > 0 {
			s.limited--
			w.Header().Set("X-RateLimit-State", "THROTTLED")
			if s.retryAfter > 0 {
				w.Header().Set("Retry-After", strconv.Itoa(s.retryAfter))
			}
			s.fail(w, http.StatusTooManyRequests, "You are making too many requests! To avoid errors, we recommend you limit requests.")
			return
		}
		next.ServeHTTP(w, r)
	})
}

// find looks the schedule up by identifier and identifier type (the
// on-calls API names the parameter scheduleIdentifierType, the timeline API
// identifierType), and the date parameter; it answers the error itself.
func (s *Server) find(w http.ResponseWriter, r *http.Request, typeParam string) (*schedule, time.Time, bool) {
	q := r.URL.Query()
	ident := r.PathValue("identifier")
	var sc *schedule
	switch typ := q.Get(typeParam); typ {
	case "", "id":
		for _, c := range s.schedules {
			if c.id == ident {
				sc = c
			}
		}
	case "name":
		for _, c := range s.schedules {
			if c.name == ident {
				sc = c
			}
		}
	default:
		s.fail(w, http.StatusUnprocessableEntity, "Invalid schedule identifier type ["+typ+"]")
		return nil, time.Time{}, false
	}
	if sc == nil {
		s.fail(w, http.StatusNotFound, "Schedule with identifier ["+ident+"] does not exist")
		return nil, time.Time{}, false
	}
	date := time.Now()
	if v, ok := q["date"]; ok {
		t, err := time.Parse("2006-01-02T15:04:05Z07:00", v[0])
		if err != nil {
			s.fail(w, http.StatusUnprocessableEntity, "Date ["+v[0]+"] is not in yyyy-MM-dd'T'HH:mm:ssZ format")
			return nil, time.Time{}, false
		}
		date = t
	}
	return sc, date, true
}

func (s *Server) onCalls(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	sc, date, ok := s.find(w, r, "scheduleIdentifierType")
	if !ok {
		return
	}
	var emails []string
	for _, t := range sc.turns {
		if !t.Start.After(date) && (t.End.IsZero() || date.Before(t.End)) && !slices.Contains(emails, t.Email) {
			emails = append(emails, t.Email)
		}
	}
	data := map[string]any{"_parent": map[string]any{"id": sc.id, "name": sc.name, "enabled": true}}
	if q.Get("flat") == "true" {
		data["onCallRecipients"] = append([]string{}, emails...)
	} else {
		parts := []map[string]any{}
		for _, e := range emails {
			parts = append(parts, map[string]any{"id": "u-" + e, "name": e, "type": "user"})
		}
		data["onCallParticipants"] = parts
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(map[string]any{"data": data, "took": 0.012, "requestId": s.requestID()})
}

// timeline answers the schedule timeline over [date, date+interval units)
// (units: days, weeks, months; default 1 week), each turn overlapping it a
// period of one rotation of the final timeline, clipped to the window.
func (s *Server) timeline(w http.ResponseWriter, r *http.Request) {
	if s.noTimeline {
		s.fail(w, http.StatusForbidden, "You are not authorized to access this resource")
		return
	}
	q := r.URL.Query()
	sc, date, ok := s.find(w, r, "identifierType")
	if !ok {
		return
	}
	n := 1
	if v := q.Get("interval"); v != "" {
		var err error
		if n, err = strconv.Atoi(v); err != nil || n < 1 {
			s.fail(w, http.StatusUnprocessableEntity, "Interval ["+v+"] is not valid")
			return
		}
	}
	var end time.Time
	switch u := q.Get("intervalUnit"); u {
	case "days":
		end = date.AddDate(0, 0, n)
	case "", "weeks":
		end = date.AddDate(0, 0, 7*n)
	case "months":
		end = date.AddDate(0, n, 0)
	default:
		s.fail(w, http.StatusUnprocessableEntity, "Interval unit ["+u+"] is not valid")
		return
	}
	const layout = "2006-01-02T15:04:05Z"
	periods := []map[string]any{}
	for _, t := range sc.turns {
		if !t.Start.Before(end) || (!t.End.IsZero() && !t.End.After(date)) {
			continue
		}
		from, to := t.Start, t.End
		if from.Before(date) {
			from = date
		}
		if to.IsZero() || to.After(end) {
			to = end
		}
		periods = append(periods, map[string]any{
			"startDate": from.UTC().Format(layout), "endDate": to.UTC().Format(layout), "type": "default",
			"recipient": map[string]any{"id": "u-" + t.Email, "type": "user", "name": t.Email},
		})
	}
	data := map[string]any{
		"_parent":   map[string]any{"id": sc.id, "name": sc.name, "enabled": true},
		"startDate": date.UTC().Format(layout), "endDate": end.UTC().Format(layout),
		"finalTimeline": map[string]any{"rotations": []map[string]any{
			{"id": "rot-" + sc.id, "name": "Rotation", "order": 1, "periods": periods},
		}},
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(map[string]any{"data": data, "took": 0.02, "requestId": s.requestID()})
}
