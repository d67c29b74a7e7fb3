package pagerduty_test

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/accessbot/accessbot/access"
	"github.com/accessbot/accessbot/internal/testclock"
	"github.com/accessbot/accessbot/providers/pagerduty"
	"github.com/accessbot/accessbot/providers/pagerduty/pdfake"
)

const token = "u+fake-secret-token"

type logBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuf) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuf) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

var t0 = time.Date(2026, 1, 7, 12, 0, 0, 0, time.UTC) // a Wednesday

func at(s string) time.Time {
	v, err := time.Parse(time.RFC3339, s)
	if err != nil {
		panic(err)
	}
	return v
}

type env struct {
	fake  *pdfake.Server
	clock *testclock.Clock
	log   *logBuf
	waits []time.Duration
}

func setup(t *testing.T) *env {
	t.Helper()
	e := &env{fake: pdfake.New(token), clock: testclock.New(t0), log: &logBuf{}}
	t.Cleanup(e.fake.Close)
	return e
}

func (e *env) rotation(t *testing.T, cfg pagerduty.Config) *pagerduty.Rotation {
	t.Helper()
	if cfg.APIURL == "" {
		cfg.APIURL = e.fake.URL()
	}
	if cfg.Token == "" {
		cfg.Token = token
	}
	tr := &http.Transport{}
	t.Cleanup(tr.CloseIdleConnections)
	r, err := pagerduty.New(cfg, slog.New(slog.NewTextHandler(e.log, nil)),
		pagerduty.WithHTTPClient(&http.Client{Transport: tr, Timeout: 10 * time.Second}),
		pagerduty.WithClock(e.clock),
		pagerduty.WithWait(func(ctx context.Context, d time.Duration) error {
			e.waits = append(e.waits, d)
			return ctx.Err()
		}))
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func ask(t *testing.T, r *pagerduty.Rotation, when time.Time) access.Shift {
	t.Helper()
	s, err := r.OnCall(context.Background(), "platform", when)
	if err != nil {
		t.Fatalf("OnCall(%v): %v", when, err)
	}
	return s
}

func want(t *testing.T, s access.Shift, people []string, start, end string) {
	t.Helper()
	var ws, we time.Time
	if start != "" {
		ws = at(start)
	}
	if end != "" {
		we = at(end)
	}
	if !slices.Equal(s.People, people) || !s.Start.Equal(ws) || !s.End.Equal(we) || s.Rotation != "platform" {
		t.Errorf("shift = %+v\nwant people %v, start %q, end %q, rotation platform", s, people, start, end)
	}
}

// weekly is a schedule P1 on policy PE1 with a primary (level 1) and a
// secondary (level 2) rotating weekly.
var weekly = []pdfake.OnCall{
	{UserID: "PA", Name: "Alice", Email: "Alice@Example.com", ScheduleID: "P1", PolicyID: "PE1", Level: 1,
		Start: at("2026-01-05T09:00:00Z"), End: at("2026-01-12T09:00:00Z")},
	{UserID: "PB", Name: "Bob", Email: "bob@example.com", ScheduleID: "P2", PolicyID: "PE1", Level: 2,
		Start: at("2026-01-05T09:00:00Z"), End: at("2026-01-12T09:00:00Z")},
	{UserID: "PC", Name: "Carol", Email: "carol@example.com", ScheduleID: "P1", PolicyID: "PE1", Level: 1,
		Start: at("2026-01-12T09:00:00Z"), End: at("2026-01-19T09:00:00Z")},
	{UserID: "PA", Name: "Alice", Email: "Alice@Example.com", ScheduleID: "P2", PolicyID: "PE1", Level: 2,
		Start: at("2026-01-12T09:00:00Z"), End: at("2026-01-19T09:00:00Z")},
}

func TestAnswersAndNextShift(t *testing.T) {
	e := setup(t)
	e.fake.Set(weekly...)
	r := e.rotation(t, pagerduty.Config{ScheduleIDs: []string{"P1", "P2"}})

	s := ask(t, r, t0)
	want(t, s, []string{"alice@example.com", "bob@example.com"}, "2026-01-05T09:00:00Z", "2026-01-12T09:00:00Z")
	next := ask(t, r, s.End)
	want(t, next, []string{"alice@example.com", "carol@example.com"}, "2026-01-12T09:00:00Z", "2026-01-19T09:00:00Z")
	if rej := e.fake.Rejected(); len(rej) > 0 {
		t.Errorf("fake refused requests: %v", rej)
	}

	// Within CacheFor the same question is answered from the cache.
	n := e.fake.Requests()
	e.clock.Advance(30 * time.Second)
	ask(t, r, t0.Add(30*time.Second))
	if got := e.fake.Requests(); got != n {
		t.Errorf("requests = %d, want %d (cached)", got, n)
	}
	e.clock.Advance(31 * time.Second)
	ask(t, r, t0.Add(61*time.Second))
	if got := e.fake.Requests(); got != n+1 {
		t.Errorf("requests = %d, want %d (cache expired)", got, n+1)
	}
}

func TestSomeoneJoinsWithinLookahead(t *testing.T) {
	e := setup(t)
	e.fake.Set(weekly[0], pdfake.OnCall{UserID: "PD", Email: "dave@example.com", ScheduleID: "P1", PolicyID: "PE1", Level: 1,
		Start: at("2026-01-08T00:00:00Z"), End: at("2026-01-08T06:00:00Z")})
	r := e.rotation(t, pagerduty.Config{ScheduleIDs: []string{"P1"}})
	s := ask(t, r, t0)
	want(t, s, []string{"alice@example.com"}, "2026-01-05T09:00:00Z", "2026-01-08T00:00:00Z")
	s = ask(t, r, s.End)
	want(t, s, []string{"alice@example.com", "dave@example.com"}, "2026-01-08T00:00:00Z", "2026-01-08T06:00:00Z")
	s = ask(t, r, at("2026-01-08T12:00:00Z"))
	want(t, s, []string{"alice@example.com"}, "2026-01-05T09:00:00Z", "2026-01-12T09:00:00Z")
}

func TestPagination(t *testing.T) {
	e := setup(t)
	var many []pdfake.OnCall
	var emails []string
	for _, n := range []string{"a", "b", "c", "d", "e"} {
		many = append(many, pdfake.OnCall{UserID: "P" + n, Email: n + "@example.com", ScheduleID: "P1", PolicyID: "PE1", Level: 1,
			Start: at("2026-01-05T09:00:00Z"), End: at("2026-01-12T09:00:00Z")})
		emails = append(emails, n+"@example.com")
	}
	e.fake.Set(many...)
	e.fake.SetPageSize(2)
	r := e.rotation(t, pagerduty.Config{ScheduleIDs: []string{"P1"}})
	want(t, ask(t, r, t0), emails, "2026-01-05T09:00:00Z", "2026-01-12T09:00:00Z")
	if got := e.fake.Requests(); got != 3 {
		t.Errorf("requests = %d, want 3 pages of 2", got)
	}
}

func TestPermanentOnCallAndLevels(t *testing.T) {
	permanent := pdfake.OnCall{UserID: "PM", Email: "manager@example.com", PolicyID: "PE1", Level: 2} // null schedule, start, end
	primary := weekly[0]
	tests := []struct {
		name       string
		cfg        pagerduty.Config
		set        []pdfake.OnCall
		people     []string
		start, end string
	}{
		{"permanent plus scheduled", pagerduty.Config{EscalationPolicyIDs: []string{"PE1"}}, []pdfake.OnCall{primary, permanent},
			[]string{"alice@example.com", "manager@example.com"}, "2026-01-05T09:00:00Z", "2026-01-12T09:00:00Z"},
		{"only permanent: until further notice", pagerduty.Config{EscalationPolicyIDs: []string{"PE1"}}, []pdfake.OnCall{permanent},
			[]string{"manager@example.com"}, "", ""},
		{"schedule filter leaves out the permanent entry", pagerduty.Config{ScheduleIDs: []string{"P1"}}, []pdfake.OnCall{primary, permanent},
			[]string{"alice@example.com"}, "2026-01-05T09:00:00Z", "2026-01-12T09:00:00Z"},
		{"schedule filter with \"null\" includes it", pagerduty.Config{ScheduleIDs: []string{"P1", "null"}}, []pdfake.OnCall{primary, permanent},
			[]string{"alice@example.com", "manager@example.com"}, "2026-01-05T09:00:00Z", "2026-01-12T09:00:00Z"},
		{"primary only", pagerduty.Config{EscalationPolicyIDs: []string{"PE1"}, EscalationLevels: []int{1}}, append([]pdfake.OnCall{permanent}, weekly...),
			[]string{"alice@example.com"}, "2026-01-05T09:00:00Z", "2026-01-12T09:00:00Z"},
		{"secondary only", pagerduty.Config{EscalationPolicyIDs: []string{"PE1"}, EscalationLevels: []int{2}}, append([]pdfake.OnCall{permanent}, weekly...),
			[]string{"bob@example.com", "manager@example.com"}, "2026-01-05T09:00:00Z", "2026-01-12T09:00:00Z"},
		{"nobody on call", pagerduty.Config{ScheduleIDs: []string{"P9"}}, weekly, nil, "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := setup(t)
			e.fake.Set(tt.set...)
			r := e.rotation(t, tt.cfg)
			want(t, ask(t, r, t0), tt.people, tt.start, tt.end)
		})
	}
}

func TestRateLimit(t *testing.T) {
	e := setup(t)
	e.fake.Set(weekly...)
	r := e.rotation(t, pagerduty.Config{ScheduleIDs: []string{"P1"}})

	e.fake.RateLimit(2, 3)
	want(t, ask(t, r, t0), []string{"alice@example.com"}, "2026-01-05T09:00:00Z", "2026-01-12T09:00:00Z")
	if !slices.Equal(e.waits, []time.Duration{3 * time.Second, 3 * time.Second}) {
		t.Errorf("waits = %v, want two of 3s (ratelimit-reset)", e.waits)
	}

	// Three 429s in a row: give up; the cached answer is too old for the
	// cache but young enough to serve as stale.
	e.clock.Advance(2 * time.Minute)
	e.fake.RateLimit(3, 1)
	s, err := r.OnCall(context.Background(), "platform", t0.Add(2*time.Minute))
	if err != nil {
		t.Fatalf("rate limited with a fresh cache: %v", err)
	}
	want(t, s, []string{"alice@example.com"}, "2026-01-05T09:00:00Z", "2026-01-12T09:00:00Z")

	// Without any cached answer it is ErrUnavailable.
	e2 := setup(t)
	r2 := e2.rotation(t, pagerduty.Config{ScheduleIDs: []string{"P1"}})
	e2.fake.RateLimit(3, 1)
	_, err = r2.OnCall(context.Background(), "platform", t0)
	if !errors.Is(err, pagerduty.ErrUnavailable) || !strings.Contains(err.Error(), "Rate Limit Exceeded (code 2020)") {
		t.Errorf("err = %v, want ErrUnavailable with the rate limit message", err)
	}

	// A reset too far away is not waited for.
	e3 := setup(t)
	r3 := e3.rotation(t, pagerduty.Config{ScheduleIDs: []string{"P1"}})
	e3.fake.RateLimit(1, 3600)
	if _, err := r3.OnCall(context.Background(), "platform", t0); !errors.Is(err, pagerduty.ErrUnavailable) || len(e3.waits) != 0 {
		t.Errorf("err = %v, waits = %v; want ErrUnavailable without waiting an hour", err, e3.waits)
	}
}

func TestBadTokenAndErrorBodies(t *testing.T) {
	e := setup(t)
	e.fake.Set(weekly...)
	r := e.rotation(t, pagerduty.Config{ScheduleIDs: []string{"P1"}, Token: "wrong-secret"})
	_, err := r.OnCall(context.Background(), "platform", t0)
	if err == nil {
		t.Fatal("bad token accepted")
	}
	msg := err.Error()
	for _, w := range []string{"pagerduty: ", "token rejected", "401", "Authentication failed (code 2006)"} {
		if !strings.Contains(msg, w) {
			t.Errorf("error %q lacks %q", msg, w)
		}
	}
	if strings.Contains(msg, "wrong-secret") {
		t.Errorf("error %q contains the token", msg)
	}
	if errors.Is(err, pagerduty.ErrUnavailable) || !access.IsPermanent(err) {
		t.Errorf("bad token: want a permanent error, not ErrUnavailable: %v", err)
	}

	// Another error status: the body's message is surfaced.
	r2 := e.rotation(t, pagerduty.Config{ScheduleIDs: []string{"P1"}, APIURL: e.fake.URL() + "/v9"})
	_, err = r2.OnCall(context.Background(), "platform", t0)
	if err == nil || !strings.Contains(err.Error(), "404 Not Found: Not Found (code 2100)") || errors.Is(err, pagerduty.ErrUnavailable) {
		t.Errorf("err = %v, want the 404 body surfaced", err)
	}
	if strings.Contains(e.log.String(), token) {
		t.Error("the token was logged")
	}
}

func TestDownStaleAndRecovery(t *testing.T) {
	for _, mode := range []struct {
		name string
		m    pdfake.Mode
		text string
	}{{"connection refused", pdfake.Refused, "connection refused"}, {"503", pdfake.Unavailable, "503 Service Unavailable"}} {
		t.Run(mode.name, func(t *testing.T) {
			e := setup(t)
			e.fake.Set(weekly...)
			r := e.rotation(t, pagerduty.Config{ScheduleIDs: []string{"P1"}, CacheFor: time.Minute, StaleFor: time.Hour})
			want(t, ask(t, r, t0), []string{"alice@example.com"}, "2026-01-05T09:00:00Z", "2026-01-12T09:00:00Z")

			e.fake.Down(mode.m)
			// Fresh enough: the stale answer is served, with one warning.
			for _, d := range []time.Duration{5 * time.Minute, 20 * time.Minute} {
				e.clock.Advance(d)
				s := ask(t, r, e.clock.Now())
				want(t, s, []string{"alice@example.com"}, "2026-01-05T09:00:00Z", "2026-01-12T09:00:00Z")
			}
			if n := strings.Count(e.log.String(), "serving the last known on-call answer"); n != 1 {
				t.Errorf("stale warnings = %d, want 1; log:\n%s", n, e.log.String())
			}

			// Too old: ErrUnavailable, saying why.
			e.clock.Advance(time.Hour)
			_, err := r.OnCall(context.Background(), "platform", e.clock.Now())
			if !errors.Is(err, pagerduty.ErrUnavailable) || !strings.Contains(err.Error(), mode.text) {
				t.Fatalf("err = %v, want ErrUnavailable mentioning %q", err, mode.text)
			}

			// Recovery: fresh answers again.
			if err := e.fake.Up(); err != nil {
				t.Fatal(err)
			}
			e.fake.Set(weekly[2])
			s := ask(t, r, at("2026-01-13T00:00:00Z"))
			want(t, s, []string{"carol@example.com"}, "2026-01-12T09:00:00Z", "2026-01-19T09:00:00Z")
			if !strings.Contains(e.log.String(), "pagerduty reachable again") {
				t.Error("recovery not logged")
			}
		})
	}
}

func TestCancelledContextIsNotAnOutage(t *testing.T) {
	e := setup(t)
	e.fake.Set(weekly...)
	r := e.rotation(t, pagerduty.Config{ScheduleIDs: []string{"P1"}})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := r.OnCall(ctx, "platform", t0)
	if !errors.Is(err, context.Canceled) || errors.Is(err, pagerduty.ErrUnavailable) {
		t.Errorf("err = %v, want context.Canceled", err)
	}
}

func TestConfigValidation(t *testing.T) {
	_, err := pagerduty.New(pagerduty.Config{
		APIURL:           "ftp://x",
		Token:            "has space",
		ScheduleIDs:      []string{""},
		EscalationLevels: []int{0},
		CacheFor:         -time.Second,
		StaleFor:         -time.Second,
	}, nil)
	if err == nil {
		t.Fatal("bad config accepted")
	}
	for _, w := range []string{
		`pagerduty: api_url "ftp://x" is not an http(s) URL`,
		"pagerduty: token contains white space",
		"pagerduty: schedule_ids[0] is empty",
		"pagerduty: escalation_levels[0] is 0; levels start at 1",
		"pagerduty: cache_for -1s is negative",
		"pagerduty: stale_for -1s is negative",
	} {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("error lacks %q:\n%v", w, err)
		}
	}
	if strings.Contains(err.Error(), "has space") {
		t.Error("error shows the token")
	}
	_, err = pagerduty.New(pagerduty.Config{}, nil)
	for _, w := range []string{"pagerduty: token is empty", "pagerduty: set schedule_ids or escalation_policy_ids"} {
		if err == nil || !strings.Contains(err.Error(), w) {
			t.Errorf("error %v lacks %q", err, w)
		}
	}
	if _, err := pagerduty.New(pagerduty.Config{Token: "x", ScheduleIDs: []string{"P1"}}, nil); err != nil {
		t.Errorf("minimal config refused: %v", err)
	}
}

func TestConcurrentCallers(t *testing.T) {
	e := setup(t)
	e.fake.Set(weekly...)
	r := e.rotation(t, pagerduty.Config{ScheduleIDs: []string{"P1"}})
	var wg sync.WaitGroup
	errs := make(chan error, 16)
	for i := range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s, err := r.OnCall(context.Background(), "platform", t0.Add(time.Duration(i)*time.Second))
			if err == nil && !slices.Equal(s.People, []string{"alice@example.com"}) {
				err = errors.New("wrong people: " + strings.Join(s.People, ","))
			}
			errs <- err
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
}

// A stale answer never outlives the turns it lists: with PagerDuty down,
// alice stops counting at the end of her turn (09:00), although the last
// answer is younger than StaleFor; the next turn listed in it (carol's)
// counts from its start, and after a turn nobody follows, nobody does.
func TestStaleAnswerEndsWithItsTurns(t *testing.T) {
	for _, c := range []struct {
		name  string
		calls []pdfake.OnCall
		after []string
	}{{"handoff", weekly, []string{"carol@example.com"}}, {"gap", weekly[:1], nil}} {
		t.Run(c.name, func(t *testing.T) {
			e := setup(t)
			e.fake.Set(c.calls...)
			r := e.rotation(t, pagerduty.Config{ScheduleIDs: []string{"P1"}, CacheFor: time.Minute, StaleFor: time.Hour})
			e.clock.Set(at("2026-01-12T08:50:00Z"))
			want(t, ask(t, r, e.clock.Now()), []string{"alice@example.com"}, "2026-01-05T09:00:00Z", "2026-01-12T09:00:00Z")
			e.fake.Down(pdfake.Refused)
			e.clock.Set(at("2026-01-12T08:59:59Z"))
			if s := ask(t, r, e.clock.Now()); !slices.Equal(s.People, []string{"alice@example.com"}) {
				t.Errorf("before the end of her turn: %v, want alice", s.People)
			}
			for _, when := range []string{"2026-01-12T09:00:00Z", "2026-01-12T09:30:00Z"} {
				e.clock.Set(at(when))
				if s := ask(t, r, e.clock.Now()); !slices.Equal(s.People, c.after) {
					t.Errorf("at %s with PagerDuty down: %v, want %v", when, s.People, c.after)
				}
			}
		})
	}
}
