// Package opsgenie answers who is on call from Opsgenie's Who is On Call
// API (GET /v2/schedules/{id}/on-calls?flat=true&date=...). One Rotation
// serves one schedule. For the EU instance set APIURL to
// https://api.eu.opsgenie.com.
//
// Opsgenie's flat answer names who is on call at a moment but not when
// their turn began or ends, so a Shift is a polling window: Start is the
// asked time and End is Start+CacheFor. Asking again at End gives the next
// window; consecutive windows with the same People mean no handoff
// happened. The schedule is addressed by id when ScheduleID is a UUID and
// by name (scheduleIdentifierType=name) otherwise.
//
// Answers are cached for CacheFor. When Opsgenie cannot be reached
// (network error, 5xx, 429 after two waits) the last good answer taken for
// a time at most StaleFor before the asked one, and fetched less than
// StaleFor ago, is served (a warning is logged once per outage); otherwise
// OnCall fails with an error wrapping ErrUnavailable. A rejected key
// (401/403) is a permanent error and never served from the cache.
//
// With ShiftEnds, each fetch also reads the schedule timeline (GET
// /v2/schedules/{id}/timeline) for the first time after the asked one at
// which any turn of the schedule begins or ends. An answer, fresh or
// stale, is never served for that time or later: with Opsgenie down, a
// person whose turn has ended stops counting at the end of the turn, not
// StaleFor after the last good answer. When the timeline cannot be read,
// StaleFor alone bounds the answer; when it shows no change within the two
// days it covers, the end of those two days does too.
package opsgenie

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/accessbot/accessbot/access"
	"github.com/accessbot/accessbot/internal/httpapi"
	"github.com/accessbot/accessbot/internal/oncallcache"
)

// Defaults.
const (
	DefaultAPIURL   = "https://api.opsgenie.com"
	DefaultCacheFor = oncallcache.DefaultCacheFor
	DefaultStaleFor = oncallcache.DefaultStaleFor

	maxBody = 4 << 20
)

// ErrUnavailable says Opsgenie could not be reached and no recent enough
// answer was cached. The engine falls back to the role's named approvers.
// It is the same error value as pagerduty.ErrUnavailable.
var ErrUnavailable = oncallcache.ErrUnavailable

// Config configures a Rotation. Zero CacheFor/StaleFor take the defaults.
type Config struct {
	Name       string // the accessbot rotation, for the key paths of problems (rotations.<Name>.…)
	APIURL     string
	APIKey     string
	ScheduleID string // a schedule id (UUID) or name
	CacheFor   time.Duration
	StaleFor   time.Duration
	// ShiftEnds reads the schedule timeline with each answer so that no
	// answer outlives the turn it names (one more request per fetch).
	ShiftEnds bool
}

// Option changes how a Rotation talks and tells time (for tests).
type Option func(*Rotation)

// WithHTTPClient sets the HTTP client (default: one with a 15 s timeout).
func WithHTTPClient(c *http.Client) Option { return func(r *Rotation) { r.api.HTTP = c } }

// WithClock sets the clock used for cache ages.
func WithClock(c access.Clock) Option { return func(r *Rotation) { r.clock = c } }

// WithWait sets how the client waits before retrying after a 429.
func WithWait(f func(ctx context.Context, d time.Duration) error) Option {
	return func(r *Rotation) { r.api.Wait = f }
}

// Rotation answers OnCall from one Opsgenie schedule. It is safe for
// concurrent use.
type Rotation struct {
	cfg    Config
	target *url.URL // the on-calls URL without the date
	op     string   // names the on-calls request in errors
	log    *slog.Logger
	api    httpapi.Client
	clock  access.Clock

	answers  *oncallcache.Cache[answer]
	timeline *url.URL // the timeline URL without the date

	timelineWarned atomic.Bool
}

var _ access.OnCall = (*Rotation)(nil)

type answer struct {
	date   time.Time // the time the answer is for
	people []string
	until  time.Time // the next turn change after date; zero: not known
}

var uuidRE = regexp.MustCompile(`^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$`)

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
	target := *base
	id := strings.TrimSpace(cfg.ScheduleID)
	target.Path = strings.TrimRight(base.Path, "/") + "/v2/schedules/" + id + "/on-calls"
	target.RawPath = strings.TrimRight(base.EscapedPath(), "/") + "/v2/schedules/" + url.PathEscape(id) + "/on-calls"
	q := url.Values{"flat": {"true"}}
	if !uuidRE.MatchString(id) {
		q.Set("scheduleIdentifierType", "name")
	}
	target.RawQuery = q.Encode()
	tl := *base
	tl.Path = strings.TrimRight(base.Path, "/") + "/v2/schedules/" + id + "/timeline"
	tl.RawPath = strings.TrimRight(base.EscapedPath(), "/") + "/v2/schedules/" + url.PathEscape(id) + "/timeline"
	tq := url.Values{"interval": {"2"}, "intervalUnit": {"days"}}
	if !uuidRE.MatchString(id) {
		tq.Set("identifierType", "name")
	}
	tl.RawQuery = tq.Encode()

	log = log.With("oncall_source", "opsgenie", "schedule", id)
	r := &Rotation{
		cfg:    cfg,
		target: &target,
		op:     fmt.Sprintf("get on-calls for schedule %q", id),
		log:    log,
		api: httpapi.Client{
			Service: "opsgenie",
			Header: http.Header{
				"Authorization": {"GenieKey " + cfg.APIKey},
				"Accept":        {"application/json"},
			},
			Log:          log,
			MaxBody:      maxBody,
			Rejected:     "api key rejected",
			RejectedHint: "check the key and that its integration may read the schedule",
			Describe:     describe,
		},
		clock:   access.SystemClock{},
		answers: oncallcache.New("opsgenie", log, cfg.CacheFor, cfg.StaleFor, answer.covers),
	}
	if cfg.ShiftEnds {
		r.timeline = &tl
	}
	for _, o := range opts {
		o(r)
	}
	return r, nil
}

// OnCall returns who is on call at at, as the window [at, at+CacheFor)
// (see the package documentation). rotation only fills Shift.Rotation.
// Errors: ErrUnavailable (wrapped) when Opsgenie is unreachable and no
// recent answer is cached; a permanent error for a rejected key; other
// errors for requests Opsgenie refused (unknown schedule). It only reads.
func (r *Rotation) OnCall(ctx context.Context, rotation string, at time.Time) (access.Shift, error) {
	a, err := r.answers.Answer(ctx, at, r.clock.Now(), func() (answer, error) {
		date := at.Truncate(time.Second)
		people, err := r.fetch(ctx, date)
		if err != nil || r.timeline == nil {
			return answer{date: date, people: people}, err
		}
		return answer{date: date, people: people, until: r.nextChange(ctx, date)}, nil
	})
	if err != nil {
		return access.Shift{}, err
	}
	return access.Shift{Rotation: rotation, People: slices.Clone(a.people), Start: at, End: at.Add(r.cfg.CacheFor)}, nil
}

// covers says whether a, taken for a time in (at-maxAge, at], may stand
// for at: the flat answer says nothing about later handoffs, so only the
// timeline's next change (when read) ends it sooner.
func (a answer) covers(at time.Time, maxAge time.Duration) bool {
	return !at.Before(a.date) && at.Sub(a.date) < maxAge && (a.until.IsZero() || at.Before(a.until))
}

type timelineResponse struct {
	Data *struct {
		EndDate       time.Time `json:"endDate"`
		FinalTimeline struct {
			Rotations []struct {
				Periods []struct {
					StartDate time.Time `json:"startDate"`
					EndDate   time.Time `json:"endDate"`
				} `json:"periods"`
			} `json:"rotations"`
		} `json:"finalTimeline"`
	} `json:"data"`
}

// nextChange reads the timeline from date and returns the first time after
// it at which a period begins or ends (the window's end when none does),
// or zero when the timeline cannot be read. One try, no waits: the answer
// it qualifies has already been fetched.
func (r *Rotation) nextChange(ctx context.Context, date time.Time) time.Time {
	u := *r.timeline
	q := u.Query()
	q.Set("date", date.UTC().Format(time.RFC3339))
	u.RawQuery = q.Encode()
	fail := func(err error) time.Time {
		if !r.timelineWarned.Swap(true) {
			r.log.WarnContext(ctx, "opsgenie: cannot read the schedule timeline; a stale answer may outlive its turn by up to stale_for",
				"err", err)
		}
		return time.Time{}
	}
	once := r.api
	once.RateWaits = -1 // the answer it qualifies has already been fetched
	var out timelineResponse
	if err := once.Get(ctx, "get the schedule timeline", &u, &out); err != nil {
		return fail(err)
	}
	if out.Data == nil {
		return fail(errors.New("opsgenie: get the schedule timeline: answer has no data"))
	}
	next := out.Data.EndDate
	for _, rot := range out.Data.FinalTimeline.Rotations {
		for _, p := range rot.Periods {
			for _, t := range []time.Time{p.StartDate, p.EndDate} {
				if t.After(date) && (next.IsZero() || t.Before(next)) {
					next = t
				}
			}
		}
	}
	if !next.After(date) {
		return time.Time{}
	}
	r.timelineWarned.Store(false)
	return next
}

type onCallResponse struct {
	Data *struct {
		OnCallRecipients []string `json:"onCallRecipients"`
	} `json:"data"`
	RequestID string `json:"requestId"`
}

// fetch asks who is on call at date, waiting out up to two 429s.
func (r *Rotation) fetch(ctx context.Context, date time.Time) ([]string, error) {
	u := *r.target
	q := u.Query()
	q.Set("date", date.UTC().Format(time.RFC3339))
	u.RawQuery = q.Encode()
	var out onCallResponse
	if err := r.api.Get(ctx, r.op, &u, &out); err != nil {
		return nil, err
	}
	if out.Data == nil {
		return nil, fmt.Errorf("opsgenie: %s: answer has no data (request id %s)", r.op, out.RequestID)
	}
	var people []string
	for _, p := range out.Data.OnCallRecipients {
		p = access.NormalizeIdentity(p)
		if p != "" && !slices.Contains(people, p) {
			people = append(people, p)
		}
	}
	slices.Sort(people)
	return people, nil
}

// describe renders Opsgenie's error body {"message","took","requestId"} as
// ": message (request id X)", or a short excerpt of a non-JSON body.
func describe(body []byte) string {
	var e struct {
		Message   string `json:"message"`
		RequestID string `json:"requestId"`
	}
	if json.Unmarshal(body, &e) == nil && e.Message != "" {
		s := ": " + e.Message
		if e.RequestID != "" {
			s += " (request id " + e.RequestID + ")"
		}
		return s
	}
	return httpapi.Excerpt(body)
}
