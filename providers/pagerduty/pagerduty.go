// Package pagerduty answers who is on call from PagerDuty's REST API v2
// (GET /oncalls). One Rotation serves one accessbot rotation, built from
// one or more schedules and/or escalation policies.
//
// How a Shift is derived: the client lists the on-calls over the 24 hours
// from the asked time (Lookahead). People are the distinct emails of the
// entries whose [start, end) contains the time (null start/end: on call
// permanently); Start is the latest start among them (zero if all are
// permanent); End is the earliest of their ends and of the starts of
// entries that begin later within the lookahead (zero: nobody's turn is
// known to end). Changes further out than the lookahead show up once they
// are within it. A time with nobody on call gives a Shift with no People
// and no error.
//
// The filters combine (an on-call must match every filter that is set).
// Someone placed directly on an escalation rule is on call permanently and
// has a null schedule: PagerDuty includes such entries in a schedule filter
// only when ScheduleIDs lists the literal "null", so list "null" too (or
// filter by escalation policy only) to see them.
//
// Answers are cached for CacheFor. When PagerDuty cannot be reached (network
// error, 5xx, 429 after waiting for ratelimit-reset twice) the last good
// answer is served while it is younger than StaleFor; after that OnCall
// fails with an error wrapping ErrUnavailable. A rejected token (401/403) is
// a permanent error and never served from the cache.
package pagerduty

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/accessbot/accessbot/access"
	"github.com/accessbot/accessbot/internal/httpapi"
	"github.com/accessbot/accessbot/internal/oncallcache"
)

// Defaults.
const (
	DefaultAPIURL   = "https://api.pagerduty.com"
	DefaultCacheFor = oncallcache.DefaultCacheFor
	DefaultStaleFor = oncallcache.DefaultStaleFor
	// Lookahead is how far ahead of the asked time on-calls are listed.
	Lookahead = 24 * time.Hour

	pageLimit = 100 // PagerDuty's maximum
	maxPages  = 50
	maxBody   = 8 << 20
)

// ErrUnavailable says PagerDuty could not be reached and no recent enough
// answer was cached. The engine falls back to the role's named approvers.
// It is the same error value as opsgenie.ErrUnavailable.
var ErrUnavailable = oncallcache.ErrUnavailable

// Config configures a Rotation. ScheduleIDs and EscalationPolicyIDs select
// the on-calls (at least one of them); EscalationLevels, when set, keeps
// only those levels ([1] = primary only). Zero CacheFor/StaleFor take the
// defaults.
type Config struct {
	Name                string // the accessbot rotation, for the key paths of problems (rotations.<Name>.…)
	APIURL              string
	Token               string
	ScheduleIDs         []string
	EscalationPolicyIDs []string
	EscalationLevels    []int
	CacheFor, StaleFor  time.Duration
}

// Option changes how a Rotation talks and tells time (for tests).
type Option func(*Rotation)

// WithHTTPClient sets the HTTP client (default: one with a 15 s timeout).
func WithHTTPClient(c *http.Client) Option { return func(r *Rotation) { r.api.HTTP = c } }

// WithClock sets the clock used for cache ages.
func WithClock(c access.Clock) Option { return func(r *Rotation) { r.clock = c } }

// WithWait sets how the client waits before retrying after a 429 (default:
// a timer that gives up when ctx is done).
func WithWait(f func(ctx context.Context, d time.Duration) error) Option {
	return func(r *Rotation) { r.api.Wait = f }
}

// Rotation answers OnCall from PagerDuty. It is safe for concurrent use.
type Rotation struct {
	cfg   Config
	base  *url.URL
	log   *slog.Logger
	api   httpapi.Client
	clock access.Clock

	answers *oncallcache.Cache[answer]
}

var _ access.OnCall = (*Rotation)(nil)

// answer is one successful listing of the on-calls over [since, until).
type answer struct {
	since, until time.Time
	oncalls      []entry
}

type entry struct {
	email      string
	start, end time.Time // zero: open
}

// New validates cfg (Validate) and builds a Rotation. It makes no request.
// The error lists every problem with the config.
func New(cfg Config, log *slog.Logger, opts ...Option) (*Rotation, error) {
	if errs := cfg.Validate(); len(errs) > 0 {
		return nil, cfg.problemsError(errs)
	}
	base := httpapi.BaseURL(cfg.APIURL, DefaultAPIURL, func(string, string, ...any) {})
	cfg.CacheFor, cfg.StaleFor = oncallcache.DefaultAges(cfg.CacheFor, cfg.StaleFor)
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	log = log.With("oncall_source", "pagerduty")
	r := &Rotation{
		cfg:  cfg,
		base: base,
		log:  log,
		api: httpapi.Client{
			Service: "pagerduty",
			Header: http.Header{
				"Authorization": {"Token token=" + cfg.Token},
				"Accept":        {"application/vnd.pagerduty+json;version=2"},
			},
			Log:          log,
			RateHeaders:  []string{"ratelimit-reset", "Retry-After"},
			MaxBody:      maxBody,
			Rejected:     "token rejected",
			RejectedHint: "check the API token and its access",
			Describe:     describe,
		},
		clock:   access.SystemClock{},
		answers: oncallcache.New("pagerduty", log, cfg.CacheFor, cfg.StaleFor, answer.covers),
	}
	for _, o := range opts {
		o(r)
	}
	return r, nil
}

// OnCall returns who is on call at at (see the package documentation for
// how the Shift is derived). rotation only fills Shift.Rotation. Errors:
// ErrUnavailable (wrapped) when PagerDuty is unreachable and no answer
// younger than StaleFor covers at; a permanent error for a rejected token;
// other errors for answers PagerDuty refused. It only reads.
func (r *Rotation) OnCall(ctx context.Context, rotation string, at time.Time) (access.Shift, error) {
	a, err := r.answers.Answer(ctx, at, r.clock.Now(), func() (answer, error) {
		since := at.Truncate(time.Second)
		entries, err := r.fetch(ctx, since, since.Add(Lookahead))
		return answer{since: since, until: since.Add(Lookahead), oncalls: entries}, err
	})
	if err != nil {
		return access.Shift{}, err
	}
	return a.shift(rotation, at), nil
}

// covers says whether a listed the on-calls at at; the listing names each
// turn's start and end, so the age limit does not narrow it.
func (a answer) covers(at time.Time, _ time.Duration) bool {
	return !at.Before(a.since) && at.Before(a.until)
}

func (a answer) shift(rotation string, at time.Time) access.Shift {
	s := access.Shift{Rotation: rotation}
	for _, e := range a.oncalls {
		starts := e.start.IsZero() || !e.start.After(at)
		ends := e.end.IsZero() || e.end.After(at)
		switch {
		case starts && ends:
			if !slices.Contains(s.People, e.email) {
				s.People = append(s.People, e.email)
			}
			if e.start.After(s.Start) {
				s.Start = e.start
			}
			if !e.end.IsZero() && (s.End.IsZero() || e.end.Before(s.End)) {
				s.End = e.end
			}
		case !starts: // begins later: the set of people changes then
			if s.End.IsZero() || e.start.Before(s.End) {
				s.End = e.start
			}
		}
	}
	slices.Sort(s.People)
	return s
}

// fetch lists all on-calls over [since, until), following pagination.
func (r *Rotation) fetch(ctx context.Context, since, until time.Time) ([]entry, error) {
	q := url.Values{}
	for _, id := range r.cfg.ScheduleIDs {
		q.Add("schedule_ids[]", id)
	}
	for _, id := range r.cfg.EscalationPolicyIDs {
		q.Add("escalation_policy_ids[]", id)
	}
	q.Set("since", since.UTC().Format(time.RFC3339))
	q.Set("until", until.UTC().Format(time.RFC3339))
	q.Set("include[]", "users")
	q.Set("time_zone", "UTC")
	q.Set("limit", strconv.Itoa(pageLimit))

	var out []entry
	offset := 0
	for page := 0; ; page++ {
		if page == maxPages {
			return nil, fmt.Errorf("pagerduty: list on-calls: more than %d pages; narrow the schedules or policies", maxPages)
		}
		q.Set("offset", strconv.Itoa(offset))
		u := *r.base
		u.Path = strings.TrimRight(u.Path, "/") + "/oncalls"
		u.RawQuery = q.Encode()
		var body listResponse
		if err := r.api.Get(ctx, "list on-calls", &u, &body); err != nil {
			return nil, err
		}
		for _, o := range body.OnCalls {
			if len(r.cfg.EscalationLevels) > 0 && !slices.Contains(r.cfg.EscalationLevels, o.EscalationLevel) {
				continue
			}
			e, err := o.entry()
			if err != nil {
				return nil, fmt.Errorf("pagerduty: list on-calls: %w", err)
			}
			if e.email == "" {
				r.log.WarnContext(ctx, "pagerduty on-call user has no email; skipped", "user_id", o.User.ID)
				continue
			}
			out = append(out, e)
		}
		if !body.More {
			return out, nil
		}
		if len(body.OnCalls) == 0 {
			return nil, fmt.Errorf("pagerduty: list on-calls: more=true with an empty page at offset %d", offset)
		}
		offset += len(body.OnCalls)
	}
}

type listResponse struct {
	OnCalls []onCall `json:"oncalls"`
	Limit   int      `json:"limit"`
	Offset  int      `json:"offset"`
	More    bool     `json:"more"`
}

// onCall is one entry of GET /oncalls; schedule and escalation policy are
// not needed (the query already selects them).
type onCall struct {
	User struct {
		ID    string `json:"id"`
		Email string `json:"email"` // present with include[]=users
	} `json:"user"`
	EscalationLevel int     `json:"escalation_level"`
	Start           *string `json:"start"` // null: permanently on call
	End             *string `json:"end"`
}

func (o *onCall) entry() (entry, error) {
	e := entry{email: access.NormalizeIdentity(o.User.Email)}
	var err error
	if o.Start != nil {
		if e.start, err = time.Parse(time.RFC3339, *o.Start); err != nil {
			return e, fmt.Errorf("on-call start %q: %w", *o.Start, err)
		}
	}
	if o.End != nil {
		if e.end, err = time.Parse(time.RFC3339, *o.End); err != nil {
			return e, fmt.Errorf("on-call end %q: %w", *o.End, err)
		}
	}
	return e, nil
}

// describe renders PagerDuty's error body {"error":{"message","code","errors"}}
// as ": message (code N): detail; detail", or a short excerpt of a body
// that is not JSON.
func describe(body []byte) string {
	var e struct {
		Error *struct {
			Message string   `json:"message"`
			Code    int      `json:"code"`
			Errors  []string `json:"errors"`
		} `json:"error"`
	}
	if json.Unmarshal(body, &e) == nil && e.Error != nil {
		s := ": " + e.Error.Message
		if e.Error.Code != 0 {
			s += fmt.Sprintf(" (code %d)", e.Error.Code)
		}
		if len(e.Error.Errors) > 0 {
			s += ": " + strings.Join(e.Error.Errors, "; ")
		}
		return s
	}
	return httpapi.Excerpt(body)
}
