// Package httpapi is the GET side of the on-call clients (PagerDuty,
// Opsgenie): one request with the client's headers, 429 answers waited out
// a few times, the answer's status mapped to the error classes the engine
// tells apart, and transport errors stripped of their URL.
//
// The classes: network errors, 5xx, a short read and a 429 not waited out
// are marked oncallcache.Unavailable (a cached answer may cover them); 401
// and 403 are access.Permanent (a rejected credential does not heal by
// itself); a cancelled context is returned as it is; any other status is a
// plain error carrying the service's own message.
package httpapi

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/accessbot/accessbot/access"
	"github.com/accessbot/accessbot/internal/oncallcache"
	"github.com/accessbot/accessbot/internal/sleep"
)

// Defaults of Client.
const (
	DefaultRateWaits   = 2
	DefaultMaxRateWait = 30 * time.Second
	DefaultRateGap     = time.Second
	DefaultMaxBody     = 4 << 20

	excerptLen = 200
)

var defaultHTTP = &http.Client{Timeout: 15 * time.Second}

// Client does GETs against one JSON API. Service and Header are required;
// zero values of the other fields take the defaults. A Client is safe for
// concurrent use once built; copy it to change a field for some calls.
type Client struct {
	// Service prefixes errors and log lines ("pagerduty").
	Service string
	// Header is sent with every request (credentials, Accept). It is never
	// logged or put into an error.
	Header http.Header
	// HTTP is the client (default: one with a 15 s timeout).
	HTTP *http.Client
	// Log receives the rate-limit waits (default: discard).
	Log *slog.Logger
	// Wait waits between a 429 and the next try (default: sleep.For).
	Wait func(ctx context.Context, d time.Duration) error

	// RateWaits is how many 429s are waited out before giving up; a
	// negative value waits none (one try).
	RateWaits int
	// MaxRateWait: a 429 asking for a longer wait is not waited for.
	MaxRateWait time.Duration
	// RateHeaders are read in order for the seconds to wait after a 429
	// (default Retry-After); without any, the wait is RateGap, doubled
	// after each wait.
	RateHeaders []string
	RateGap     time.Duration
	// MaxBody caps how much of an answer is read.
	MaxBody int64

	// Rejected and RejectedHint make the 401/403 text: "<service>: <op>:
	// <Rejected> (<status>); <RejectedHint><described body>".
	Rejected, RejectedHint string
	// Describe renders the service's error body (default: Excerpt).
	Describe func(body []byte) string
}

// Get fetches u and decodes the JSON answer of a 200 into out. op names the
// call in errors and logs ("list on-calls"). See the package documentation
// for the error classes. It only reads.
func (c *Client) Get(ctx context.Context, op string, u *url.URL, out any) error {
	hc := c.HTTP
	if hc == nil {
		hc = defaultHTTP
	}
	wait := c.Wait
	if wait == nil {
		wait = sleep.For
	}
	describe := c.Describe
	if describe == nil {
		describe = Excerpt
	}
	retries := c.RateWaits
	if retries == 0 {
		retries = DefaultRateWaits
	}
	maxWait := cmp.Or(c.MaxRateWait, DefaultMaxRateWait)
	gap := cmp.Or(c.RateGap, DefaultRateGap)
	maxBody := cmp.Or(c.MaxBody, DefaultMaxBody)

	for attempt := 0; ; attempt++ {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
		if err != nil {
			return fmt.Errorf("%s: build request: %w", c.Service, Redact(err))
		}
		for k, vs := range c.Header {
			req.Header[k] = vs
		}
		resp, err := hc.Do(req)
		if err != nil {
			if ctx.Err() != nil {
				return fmt.Errorf("%s: %s: %w", c.Service, op, ctx.Err())
			}
			return oncallcache.Unavailable(fmt.Errorf("%s: %w", op, Redact(err)))
		}
		body, rerr := io.ReadAll(io.LimitReader(resp.Body, maxBody))
		resp.Body.Close()
		switch code := resp.StatusCode; {
		case code == http.StatusOK:
			if rerr != nil {
				return oncallcache.Unavailable(fmt.Errorf("%s: read answer: %w", op, Redact(rerr)))
			}
			if err := json.Unmarshal(body, out); err != nil {
				return fmt.Errorf("%s: %s: decode answer: %w", c.Service, op, err)
			}
			return nil
		case code == http.StatusTooManyRequests:
			d := rateWait(resp.Header, c.RateHeaders, gap)
			gap *= 2
			if attempt >= retries || d > maxWait {
				return oncallcache.Unavailable(fmt.Errorf("%s: rate limited (reset in %v)%s", op, d, describe(body)))
			}
			if c.Log != nil {
				c.Log.InfoContext(ctx, c.Service+" rate limit; waiting", "op", op, "wait", d.String(), "attempt", attempt+1)
			}
			if err := wait(ctx, d); err != nil {
				return fmt.Errorf("%s: %s: waiting for the rate limit: %w", c.Service, op, err)
			}
		case code == http.StatusUnauthorized || code == http.StatusForbidden:
			return access.Permanent(fmt.Errorf("%s: %s: %s (%s); %s%s",
				c.Service, op, cmp.Or(c.Rejected, "credentials rejected"), resp.Status, c.RejectedHint, describe(body)))
		case code >= 500:
			return oncallcache.Unavailable(fmt.Errorf("%s: %s%s", op, resp.Status, describe(body)))
		default:
			return fmt.Errorf("%s: %s: %s%s", c.Service, op, resp.Status, describe(body))
		}
	}
}

// BaseURL parses an API base URL (def when raw is empty) and reports one
// that is not an http(s) URL with a host to bad under the key api_url.
func BaseURL(raw, def string, bad func(key, format string, args ...any)) *url.URL {
	raw = cmp.Or(raw, def)
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		bad("api_url", "%q is not an http(s) URL", raw)
		return &url.URL{}
	}
	return u
}

// CheckSecret reports a credential that is empty or holds white space to
// bad under its config key; env names the variable to suggest for an empty
// one. The value is never part of the message.
func CheckSecret(key, env, v string, bad func(key, format string, args ...any)) {
	if strings.TrimSpace(v) == "" {
		bad(key, "is empty; set it from the environment, e.g. ${%s}", env)
	} else if strings.ContainsAny(v, " \t\r\n") {
		bad(key, "contains white space (check how it is quoted)")
	}
}

// rateWait reads the first header of names holding a number of seconds
// (Retry-After when names is empty); gap when none does.
func rateWait(h http.Header, names []string, gap time.Duration) time.Duration {
	if len(names) == 0 {
		names = []string{"Retry-After"}
	}
	for _, k := range names {
		if v := strings.TrimSpace(h.Get(k)); v != "" {
			if n, err := strconv.ParseFloat(v, 64); err == nil && n >= 0 {
				return time.Duration(n * float64(time.Second))
			}
		}
	}
	return gap
}

// Excerpt renders a body that is not the service's error JSON as ": " and
// its first 200 characters with white space folded; "" for an empty body.
func Excerpt(body []byte) string {
	t := strings.Join(strings.Fields(string(body)), " ")
	if t == "" {
		return ""
	}
	if len(t) > excerptLen {
		t = t[:excerptLen] + "..."
	}
	return ": " + t
}

// Redact drops the URL from a transport error, keeping the operation and
// the cause: the query makes errors long, and a URL may carry what should
// not be logged. Other errors come back unchanged.
func Redact(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return fmt.Errorf("%s: %w", strings.ToLower(ue.Op), ue.Err)
	}
	return err
}
