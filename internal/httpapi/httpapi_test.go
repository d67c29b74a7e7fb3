package httpapi_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/accessbot/accessbot/access"
	"github.com/accessbot/accessbot/internal/httpapi"
	"github.com/accessbot/accessbot/internal/oncallcache"
)

const secret = "s3cret-credential"

// server answers with the statuses in order (the last one repeats); a 200
// carries {"n":1}, others body. It records the Authorization headers.
type server struct {
	*httptest.Server
	mu       sync.Mutex
	statuses []int
	header   http.Header // sent with non-200 answers
	body     string
	auth     []string
}

func newServer(t *testing.T, body string, header http.Header, statuses ...int) *server {
	t.Helper()
	s := &server{statuses: statuses, header: header, body: body}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		code := s.statuses[0]
		if len(s.statuses) > 1 {
			s.statuses = s.statuses[1:]
		}
		s.auth = append(s.auth, r.Header.Get("Authorization"))
		s.mu.Unlock()
		if code == http.StatusOK {
			fmt.Fprint(w, `{"n":1}`)
			return
		}
		for k, vs := range s.header {
			w.Header()[k] = vs
		}
		w.WriteHeader(code)
		fmt.Fprint(w, s.body)
	}))
	t.Cleanup(s.Close)
	return s
}

func (s *server) requests() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.auth)
}

type waits struct {
	mu sync.Mutex
	d  []time.Duration
}

func (w *waits) wait(ctx context.Context, d time.Duration) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.d = append(w.d, d)
	return ctx.Err()
}

func (w *waits) got() []time.Duration {
	w.mu.Lock()
	defer w.mu.Unlock()
	return slices.Clone(w.d)
}

func client(w *waits) *httpapi.Client {
	return &httpapi.Client{
		Service:      "svc",
		Header:       http.Header{"Authorization": {"Key " + secret}},
		Wait:         w.wait,
		Rejected:     "key rejected",
		RejectedHint: "check the key",
	}
}

func target(t *testing.T, s *server) *url.URL {
	t.Helper()
	u, err := url.Parse(s.URL + "/v1/things?secret=" + secret + "&date=2026-01-07")
	if err != nil {
		t.Fatal(err)
	}
	return u
}

// unavailable reports whether err is marked as a failure a cached answer
// may cover: with nothing cached, the cache turns it into ErrUnavailable.
func unavailable(err error) bool {
	c := oncallcache.New("svc", nil, time.Minute, time.Hour, func(int, time.Time, time.Duration) bool { return true })
	_, got := c.Answer(context.Background(), time.Now(), time.Now(), func() (int, error) { return 0, err })
	return errors.Is(got, oncallcache.ErrUnavailable)
}

func TestGetDecodesAndSendsHeaders(t *testing.T) {
	s := newServer(t, "", nil, http.StatusOK)
	var out struct{ N int }
	if err := client(&waits{}).Get(context.Background(), "list things", target(t, s), &out); err != nil {
		t.Fatal(err)
	}
	if out.N != 1 {
		t.Errorf("decoded %+v, want N=1", out)
	}
	if s.auth[0] != "Key "+secret {
		t.Errorf("Authorization %q, want the configured header", s.auth[0])
	}
}

func TestRateLimitWaits(t *testing.T) {
	for _, c := range []struct {
		name      string
		headers   []string // Client.RateHeaders
		header    http.Header
		statuses  []int
		rateWaits int
		waits     []time.Duration
		ok        bool
	}{
		{"reset header, twice", []string{"ratelimit-reset", "Retry-After"}, http.Header{"Ratelimit-Reset": {"3"}},
			[]int{429, 429, 200}, 0, []time.Duration{3 * time.Second, 3 * time.Second}, true},
		{"second header when the first is missing", []string{"ratelimit-reset", "Retry-After"}, http.Header{"Retry-After": {"0.5"}},
			[]int{429, 200}, 0, []time.Duration{500 * time.Millisecond}, true},
		{"no header: the gap doubles", nil, nil,
			[]int{429, 429, 200}, 0, []time.Duration{time.Second, 2 * time.Second}, true},
		{"a third 429 gives up", nil, http.Header{"Retry-After": {"1"}},
			[]int{429}, 0, []time.Duration{time.Second, time.Second}, false},
		{"a reset too far away is not waited for", nil, http.Header{"Retry-After": {"3600"}},
			[]int{429, 200}, 0, nil, false},
		{"one try", nil, http.Header{"Retry-After": {"1"}},
			[]int{429, 200}, -1, nil, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			s := newServer(t, `{"message":"slow down"}`, c.header, c.statuses...)
			w := &waits{}
			cl := client(w)
			cl.RateHeaders = c.headers
			cl.RateWaits = c.rateWaits
			cl.Describe = func(b []byte) string { return ": described " + string(b) }
			var out struct{ N int }
			err := cl.Get(context.Background(), "list things", target(t, s), &out)
			if !slices.Equal(w.got(), c.waits) {
				t.Errorf("waits = %v, want %v", w.got(), c.waits)
			}
			if c.ok {
				if err != nil || out.N != 1 {
					t.Errorf("Get = %v (out %+v), want the answer after the waits", err, out)
				}
				return
			}
			if err == nil || !unavailable(err) || access.IsPermanent(err) {
				t.Fatalf("Get = %v, want an error marked unavailable", err)
			}
			if !strings.HasPrefix(err.Error(), "list things: rate limited (reset in ") || !strings.HasSuffix(err.Error(), `: described {"message":"slow down"}`) {
				t.Errorf("error %q, want the op, the reset and the described body", err)
			}
			if want := len(c.waits) + 1; s.requests() != want {
				t.Errorf("%d requests, want %d", s.requests(), want)
			}
		})
	}
}

func TestWaitEndsWithContext(t *testing.T) {
	s := newServer(t, "", http.Header{"Retry-After": {"1"}}, 429)
	ctx, cancel := context.WithCancel(context.Background())
	cl := client(nil)
	cl.Wait = func(context.Context, time.Duration) error { cancel(); return context.Canceled }
	err := cl.Get(ctx, "list things", target(t, s), new(any))
	if !errors.Is(err, context.Canceled) || unavailable(err) || err.Error() != "svc: list things: waiting for the rate limit: context canceled" {
		t.Errorf("Get = %v, want the cancelled wait, not unavailable", err)
	}
}

func TestStatusClasses(t *testing.T) {
	for _, c := range []struct {
		status      int
		body        string
		want        string
		unavailable bool
		permanent   bool
	}{
		{401, `{"message":"Could not authenticate"}`, `svc: list things: key rejected (401 Unauthorized); check the key: Could not authenticate`, false, true},
		{403, ``, `svc: list things: key rejected (403 Forbidden); check the key`, false, true},
		{503, "<html>\n  <h1>503   Service Unavailable</h1></html>", `list things: 503 Service Unavailable: <html> <h1>503 Service Unavailable</h1></html>`, true, false},
		{500, ``, `list things: 500 Internal Server Error`, true, false},
		{404, `{"message":"no such thing"}`, `svc: list things: 404 Not Found: no such thing`, false, false},
	} {
		t.Run(fmt.Sprint(c.status), func(t *testing.T) {
			s := newServer(t, c.body, nil, c.status)
			cl := client(&waits{})
			cl.Describe = func(b []byte) string {
				var m string
				if _, err := fmt.Sscanf(string(b), `{"message":%q}`, &m); err == nil {
					return ": " + m
				}
				return httpapi.Excerpt(b)
			}
			err := cl.Get(context.Background(), "list things", target(t, s), new(any))
			if err == nil || err.Error() != c.want {
				t.Errorf("Get = %v\nwant %s", err, c.want)
			}
			if unavailable(err) != c.unavailable || access.IsPermanent(err) != c.permanent {
				t.Errorf("unavailable %v, permanent %v; want %v, %v", unavailable(err), access.IsPermanent(err), c.unavailable, c.permanent)
			}
			if strings.Contains(err.Error(), secret) {
				t.Errorf("error %q shows the credential", err)
			}
			if s.requests() != 1 {
				t.Errorf("%d requests, want 1 (only 429 is retried)", s.requests())
			}
		})
	}
}

func TestUndecodableAnswer(t *testing.T) {
	s := newServer(t, "", nil, http.StatusOK)
	var out []string // {"n":1} is not a list
	err := client(&waits{}).Get(context.Background(), "list things", target(t, s), &out)
	if err == nil || !strings.HasPrefix(err.Error(), "svc: list things: decode answer: ") || unavailable(err) {
		t.Errorf("Get = %v, want a decode error that is not an outage", err)
	}
}

func TestTransportErrorsAreRedactedAndUnavailable(t *testing.T) {
	s := newServer(t, "", nil, http.StatusOK)
	u := target(t, s)
	s.Close()
	err := client(&waits{}).Get(context.Background(), "list things", u, new(any))
	if err == nil || !unavailable(err) {
		t.Fatalf("Get = %v, want an error marked unavailable", err)
	}
	if !strings.HasPrefix(err.Error(), "list things: get: ") || !strings.Contains(err.Error(), "connection refused") {
		t.Errorf("error %q, want the op, the method and the cause", err)
	}
	if strings.Contains(err.Error(), secret) || strings.Contains(err.Error(), "127.0.0.1:") && strings.Contains(err.Error(), "/v1/things") {
		t.Errorf("error %q shows the URL", err)
	}

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	err = client(&waits{}).Get(ctx, "list things", u, new(any))
	if !errors.Is(err, context.Canceled) || unavailable(err) || err.Error() != "svc: list things: context canceled" {
		t.Errorf("cancelled: %v, want context.Canceled, not an outage", err)
	}
}

func TestExcerpt(t *testing.T) {
	long := strings.Repeat("x", 250)
	for in, want := range map[string]string{
		"":                    "",
		" \n\t ":              "",
		"a \n b":              ": a b",
		long:                  ": " + long[:200] + "...",
		"<h1>503</h1>\n\n ok": ": <h1>503</h1> ok",
	} {
		if got := httpapi.Excerpt([]byte(in)); got != want {
			t.Errorf("Excerpt(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestRedact(t *testing.T) {
	cause := errors.New("connection refused")
	err := httpapi.Redact(&url.Error{Op: "Get", URL: "https://api.example.com/x?key=" + secret, Err: cause})
	if err.Error() != "get: connection refused" || !errors.Is(err, cause) {
		t.Errorf("Redact = %q, want %q wrapping the cause", err, "get: connection refused")
	}
	if other := errors.New("plain"); httpapi.Redact(other) != other {
		t.Error("Redact changed an error without a URL")
	}
}

func TestBaseURLAndCheckSecret(t *testing.T) {
	var problems []string
	bad := func(key, format string, args ...any) {
		problems = append(problems, key+" "+fmt.Sprintf(format, args...))
	}
	if u := httpapi.BaseURL("", "https://api.example.com", bad); u.String() != "https://api.example.com" {
		t.Errorf("default base = %v", u)
	}
	if u := httpapi.BaseURL("http://127.0.0.1:8080/v2", "https://api.example.com", bad); u.Host != "127.0.0.1:8080" || u.Path != "/v2" {
		t.Errorf("base = %v", u)
	}
	httpapi.BaseURL("api.example.com", "https://api.example.com", bad)
	httpapi.BaseURL("ftp://x", "", bad)
	httpapi.CheckSecret("token", "PD_TOKEN", "good-token", bad)
	httpapi.CheckSecret("token", "PD_TOKEN", " \t", bad)
	httpapi.CheckSecret("api_key", "OG_KEY", "has "+secret, bad)
	want := []string{
		`api_url "api.example.com" is not an http(s) URL`,
		`api_url "ftp://x" is not an http(s) URL`,
		"token is empty; set it from the environment, e.g. ${PD_TOKEN}",
		"api_key contains white space (check how it is quoted)",
	}
	if !slices.Equal(problems, want) {
		t.Errorf("problems:\n%q\nwant\n%q", problems, want)
	}
}
