package opsgenie_test

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
	"github.com/accessbot/accessbot/providers/opsgenie"
	"github.com/accessbot/accessbot/providers/opsgenie/ogfake"
)

const (
	key        = "0b8e4d1c-fake-genie-key"
	scheduleID = "d875e654-9b4e-4219-a803-0c1e3b9e4b6c"
)

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

// t0 is given with a UTC offset; the fake refuses a date it cannot parse
// (an unescaped '+' arrives as a space).
var t0 = time.Date(2026, 1, 7, 12, 0, 0, 0, time.FixedZone("CET", 3600))

var turns = []ogfake.Turn{
	{Email: "Alice@Example.com", Start: time.Date(2026, 1, 5, 9, 0, 0, 0, time.UTC), End: time.Date(2026, 1, 12, 9, 0, 0, 0, time.UTC)},
	{Email: "bob@example.com", Start: time.Date(2026, 1, 12, 9, 0, 0, 0, time.UTC), End: time.Date(2026, 1, 19, 9, 0, 0, 0, time.UTC)},
	{Email: "oncall-lead@example.com", Start: time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)}, // open-ended
}

type env struct {
	fake  *ogfake.Server
	clock *testclock.Clock
	log   *logBuf
	waits []time.Duration
}

func setup(t *testing.T) *env {
	t.Helper()
	e := &env{fake: ogfake.New(key), clock: testclock.New(t0), log: &logBuf{}}
	t.Cleanup(e.fake.Close)
	e.fake.Set(scheduleID, "Platform On Call", turns...)
	return e
}

func (e *env) rotation(t *testing.T, cfg opsgenie.Config) *opsgenie.Rotation {
	t.Helper()
	if cfg.APIURL == "" {
		cfg.APIURL = e.fake.URL()
	}
	if cfg.APIKey == "" {
		cfg.APIKey = key
	}
	if cfg.ScheduleID == "" {
		cfg.ScheduleID = scheduleID
	}
	tr := &http.Transport{}
	t.Cleanup(tr.CloseIdleConnections)
	r, err := opsgenie.New(cfg, slog.New(slog.NewTextHandler(e.log, nil)),
		opsgenie.WithHTTPClient(&http.Client{Transport: tr, Timeout: 10 * time.Second}),
		opsgenie.WithClock(e.clock),
		opsgenie.WithWait(func(ctx context.Context, d time.Duration) error {
			e.waits = append(e.waits, d)
			return ctx.Err()
		}))
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func ask(t *testing.T, r *opsgenie.Rotation, when time.Time) access.Shift {
	t.Helper()
	s, err := r.OnCall(context.Background(), "platform", when)
	if err != nil {
		t.Fatalf("OnCall(%v): %v", when, err)
	}
	return s
}

func want(t *testing.T, s access.Shift, people []string, start time.Time, window time.Duration) {
	t.Helper()
	if !slices.Equal(s.People, people) || !s.Start.Equal(start) || !s.End.Equal(start.Add(window)) || s.Rotation != "platform" {
		t.Errorf("shift = %+v\nwant people %v over [%v, +%v), rotation platform", s, people, start, window)
	}
}

func TestAnswersByIDAndByName(t *testing.T) {
	for _, id := range []string{scheduleID, "Platform On Call"} {
		t.Run(id, func(t *testing.T) {
			e := setup(t)
			r := e.rotation(t, opsgenie.Config{ScheduleID: id})
			s := ask(t, r, t0)
			want(t, s, []string{"alice@example.com", "oncall-lead@example.com"}, t0, time.Minute)

			// The next window, asked at End; then the next week.
			s = ask(t, r, s.End)
			want(t, s, []string{"alice@example.com", "oncall-lead@example.com"}, t0.Add(time.Minute), time.Minute)
			s = ask(t, r, time.Date(2026, 1, 12, 9, 0, 0, 0, time.UTC))
			want(t, s, []string{"bob@example.com", "oncall-lead@example.com"}, time.Date(2026, 1, 12, 9, 0, 0, 0, time.UTC), time.Minute)
			if rej := e.fake.Rejected(); len(rej) > 0 {
				t.Errorf("fake refused requests: %v", rej)
			}
		})
	}
}

func TestCache(t *testing.T) {
	e := setup(t)
	r := e.rotation(t, opsgenie.Config{CacheFor: 5 * time.Minute})
	ask(t, r, t0)
	e.clock.Advance(4 * time.Minute)
	s := ask(t, r, t0.Add(4*time.Minute))
	want(t, s, []string{"alice@example.com", "oncall-lead@example.com"}, t0.Add(4*time.Minute), 5*time.Minute)
	if n := e.fake.Requests(); n != 1 {
		t.Errorf("requests = %d, want 1 (second answer from the cache)", n)
	}
	e.clock.Advance(2 * time.Minute)
	ask(t, r, t0.Add(6*time.Minute))
	if n := e.fake.Requests(); n != 2 {
		t.Errorf("requests = %d, want 2 (cache expired)", n)
	}
}

func TestRateLimit(t *testing.T) {
	e := setup(t)
	r := e.rotation(t, opsgenie.Config{})
	e.fake.RateLimit(2, 0)
	want(t, ask(t, r, t0), []string{"alice@example.com", "oncall-lead@example.com"}, t0, time.Minute)
	if !slices.Equal(e.waits, []time.Duration{time.Second, 2 * time.Second}) {
		t.Errorf("waits = %v, want 1s then 2s without Retry-After", e.waits)
	}
	e.waits = nil
	e.clock.Advance(2 * time.Minute)
	e.fake.RateLimit(1, 4)
	ask(t, r, t0.Add(2*time.Minute))
	if !slices.Equal(e.waits, []time.Duration{4 * time.Second}) {
		t.Errorf("waits = %v, want Retry-After honoured", e.waits)
	}

	e2 := setup(t)
	r2 := e2.rotation(t, opsgenie.Config{})
	e2.fake.RateLimit(3, 1)
	_, err := r2.OnCall(context.Background(), "platform", t0)
	if !errors.Is(err, opsgenie.ErrUnavailable) || !strings.Contains(err.Error(), "You are making too many requests") {
		t.Errorf("err = %v, want ErrUnavailable with Opsgenie's message", err)
	}
}

func TestBadKeyAndUnknownSchedule(t *testing.T) {
	e := setup(t)
	r := e.rotation(t, opsgenie.Config{APIKey: "wrong-genie-key"})
	_, err := r.OnCall(context.Background(), "platform", t0)
	if err == nil {
		t.Fatal("bad key accepted")
	}
	for _, w := range []string{"opsgenie: ", "api key rejected", "401", "Could not authenticate (request id "} {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("error %q lacks %q", err, w)
		}
	}
	if strings.Contains(err.Error(), "wrong-genie-key") || errors.Is(err, opsgenie.ErrUnavailable) || !access.IsPermanent(err) {
		t.Errorf("bad key: want a permanent error without the key: %v", err)
	}

	r2 := e.rotation(t, opsgenie.Config{ScheduleID: "No Such Schedule"})
	_, err = r2.OnCall(context.Background(), "platform", t0)
	if err == nil || !strings.Contains(err.Error(), `404 Not Found: Schedule with identifier [No Such Schedule] does not exist`) {
		t.Errorf("err = %v, want the 404 message", err)
	}
	if strings.Contains(e.log.String(), key) {
		t.Error("the key was logged")
	}
}

func TestDownStaleAndRecovery(t *testing.T) {
	for _, mode := range []struct {
		name string
		m    ogfake.Mode
		text string
	}{{"connection refused", ogfake.Refused, "connection refused"}, {"503", ogfake.Unavailable, "503 Service Unavailable"}} {
		t.Run(mode.name, func(t *testing.T) {
			e := setup(t)
			r := e.rotation(t, opsgenie.Config{CacheFor: time.Minute, StaleFor: time.Hour})
			ask(t, r, t0)

			e.fake.Down(mode.m)
			for _, d := range []time.Duration{5 * time.Minute, 20 * time.Minute} {
				e.clock.Advance(d)
				now := e.clock.Now()
				want(t, ask(t, r, now), []string{"alice@example.com", "oncall-lead@example.com"}, now, time.Minute)
			}
			if n := strings.Count(e.log.String(), "serving the last known on-call answer"); n != 1 {
				t.Errorf("stale warnings = %d, want 1; log:\n%s", n, e.log.String())
			}

			e.clock.Advance(time.Hour)
			_, err := r.OnCall(context.Background(), "platform", e.clock.Now())
			if !errors.Is(err, opsgenie.ErrUnavailable) || !strings.Contains(err.Error(), mode.text) {
				t.Fatalf("err = %v, want ErrUnavailable mentioning %q", err, mode.text)
			}

			if err := e.fake.Up(); err != nil {
				t.Fatal(err)
			}
			e.fake.Set(scheduleID, "Platform On Call", ogfake.Turn{Email: "carol@example.com", Start: t0})
			now := e.clock.Now()
			want(t, ask(t, r, now), []string{"carol@example.com"}, now, time.Minute)
			if !strings.Contains(e.log.String(), "opsgenie reachable again") {
				t.Error("recovery not logged")
			}
		})
	}
}

func TestConfigValidation(t *testing.T) {
	_, err := opsgenie.New(opsgenie.Config{APIURL: "api.opsgenie.com", APIKey: "a b", CacheFor: -1, StaleFor: -1}, nil)
	if err == nil {
		t.Fatal("bad config accepted")
	}
	for _, w := range []string{
		`opsgenie: api_url "api.opsgenie.com" is not an http(s) URL`,
		"opsgenie: api_key contains white space",
		"opsgenie: schedule_id is empty",
		"opsgenie: cache_for -1ns is negative",
		"opsgenie: stale_for -1ns is negative",
	} {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("error lacks %q:\n%v", w, err)
		}
	}
	if _, err := opsgenie.New(opsgenie.Config{}, nil); err == nil || !strings.Contains(err.Error(), "opsgenie: api_key is empty") {
		t.Errorf("err = %v, want api_key is empty", err)
	}
	if _, err := opsgenie.New(opsgenie.Config{APIKey: "k", ScheduleID: "ops"}, nil); err != nil {
		t.Errorf("minimal config refused: %v", err)
	}
}

func TestConcurrentCallers(t *testing.T) {
	e := setup(t)
	r := e.rotation(t, opsgenie.Config{})
	var wg sync.WaitGroup
	errs := make(chan error, 16)
	for i := range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s, err := r.OnCall(context.Background(), "platform", t0.Add(time.Duration(i)*time.Second))
			if err == nil && !slices.Equal(s.People, []string{"alice@example.com", "oncall-lead@example.com"}) {
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

// With ShiftEnds, no answer outlives the turn it names: with Opsgenie down,
// alice (whose turn ends at 09:00 on 12 January) stops counting at 09:00,
// although the last answer is younger than StaleFor; before it she still
// counts. A fresh answer is not served past a handoff either.
func TestShiftEndsBoundStaleAnswers(t *testing.T) {
	handoff := time.Date(2026, 1, 12, 9, 0, 0, 0, time.UTC)
	for _, id := range []string{scheduleID, "Platform On Call"} {
		t.Run(id, func(t *testing.T) {
			e := setup(t)
			r := e.rotation(t, opsgenie.Config{ScheduleID: id, CacheFor: 5 * time.Minute, StaleFor: time.Hour, ShiftEnds: true})
			before := handoff.Add(-3 * time.Minute)
			e.clock.Set(before)
			want(t, ask(t, r, before), []string{"alice@example.com", "oncall-lead@example.com"}, before, 5*time.Minute)
			// Within CacheFor but past the handoff: asked again, bob.
			e.clock.Set(handoff)
			want(t, ask(t, r, handoff), []string{"bob@example.com", "oncall-lead@example.com"}, handoff, 5*time.Minute)
			if rej := e.fake.Rejected(); len(rej) > 0 {
				t.Errorf("fake refused requests: %v", rej)
			}

			// Down, with alice's answer the last one for the days before
			// the next change (bob's turn ends on the 19th).
			e.fake.Set(scheduleID, "Platform On Call", turns...)
			e.clock.Set(before)
			r = e.rotation(t, opsgenie.Config{ScheduleID: id, CacheFor: 5 * time.Minute, StaleFor: time.Hour, ShiftEnds: true})
			ask(t, r, before)
			e.fake.Down(ogfake.Refused)
			almost := handoff.Add(-time.Second)
			e.clock.Set(almost)
			want(t, ask(t, r, almost), []string{"alice@example.com", "oncall-lead@example.com"}, almost, 5*time.Minute)
			for _, at := range []time.Time{handoff, handoff.Add(10 * time.Minute)} {
				e.clock.Set(at)
				s, err := r.OnCall(context.Background(), "platform", at)
				if !errors.Is(err, opsgenie.ErrUnavailable) {
					t.Errorf("OnCall(%v) with Opsgenie down after alice's turn = %+v, %v; want ErrUnavailable", at, s, err)
				}
			}
		})
	}
}

// Without a readable timeline StaleFor alone bounds a stale answer (as
// without ShiftEnds), and the problem is logged once.
func TestShiftEndsWithoutTimeline(t *testing.T) {
	e := setup(t)
	e.fake.RefuseTimeline(true)
	handoff := time.Date(2026, 1, 12, 9, 0, 0, 0, time.UTC)
	r := e.rotation(t, opsgenie.Config{CacheFor: time.Minute, StaleFor: time.Hour, ShiftEnds: true})
	for _, at := range []time.Time{handoff.Add(-5 * time.Minute), handoff.Add(-3 * time.Minute)} {
		e.clock.Set(at)
		want(t, ask(t, r, at), []string{"alice@example.com", "oncall-lead@example.com"}, at, time.Minute)
	}
	if n := strings.Count(e.log.String(), "cannot read the schedule timeline"); n != 1 {
		t.Errorf("timeline warnings = %d, want 1; log:\n%s", n, e.log.String())
	}
	e.fake.Down(ogfake.Refused)
	at := handoff.Add(10 * time.Minute)
	e.clock.Set(at)
	want(t, ask(t, r, at), []string{"alice@example.com", "oncall-lead@example.com"}, at, time.Minute)
	e.clock.Set(handoff.Add(57 * time.Minute))
	if _, err := r.OnCall(context.Background(), "platform", e.clock.Now()); !errors.Is(err, opsgenie.ErrUnavailable) {
		t.Errorf("past StaleFor: %v, want ErrUnavailable", err)
	}
}
