package oncallcache

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"testing"
	"time"
)

// window is an answer for [from, from+1h).
type window struct{ from time.Time }

func (w window) covers(at time.Time, _ time.Duration) bool {
	return !at.Before(w.from) && at.Before(w.from.Add(time.Hour))
}

func TestAnswer(t *testing.T) {
	var log bytes.Buffer
	c := New("pager", slog.New(slog.NewTextHandler(&log, nil)), time.Minute, 10*time.Minute, window.covers)
	ctx := context.Background()
	t0 := time.Date(2026, 1, 7, 12, 0, 0, 0, time.UTC)
	fetches := 0
	answer := func(a window, err error) func() (window, error) {
		return func() (window, error) { fetches++; return a, err }
	}
	down := Unavailable(errors.New("connection refused"))

	if a, err := c.Answer(ctx, t0, t0, answer(window{t0}, nil)); err != nil || !a.from.Equal(t0) || fetches != 1 {
		t.Fatalf("first answer = %v, %v after %d fetches", a, err, fetches)
	}
	if _, err := c.Answer(ctx, t0.Add(30*time.Second), t0.Add(30*time.Second), answer(window{}, down)); err != nil || fetches != 1 {
		t.Fatalf("fresh answer not served from the cache: %v, %d fetches", err, fetches)
	}
	for _, d := range []time.Duration{2 * time.Minute, 5 * time.Minute} {
		if a, err := c.Answer(ctx, t0.Add(d), t0.Add(d), answer(window{}, down)); err != nil || !a.from.Equal(t0) {
			t.Fatalf("stale answer at +%v = %v, %v", d, a, err)
		}
	}
	if n := strings.Count(log.String(), "pager unreachable; serving the last known on-call answer"); n != 1 {
		t.Errorf("stale warnings = %d, want 1; log:\n%s", n, log.String())
	}
	refused := errors.New("bad request")
	if _, err := c.Answer(ctx, t0.Add(6*time.Minute), t0.Add(6*time.Minute), answer(window{}, refused)); err != refused {
		t.Errorf("err = %v, want the fetch error as it is", err)
	}
	_, err := c.Answer(ctx, t0.Add(10*time.Minute), t0.Add(10*time.Minute), answer(window{}, down))
	if !errors.Is(err, ErrUnavailable) || err.Error() != "pager: on-call service unavailable (no answer younger than 10m0s to fall back on): connection refused" {
		t.Errorf("err = %v, want ErrUnavailable with the cause", err)
	}
	if _, err := c.Answer(ctx, t0.Add(11*time.Minute), t0.Add(11*time.Minute), answer(window{t0.Add(11 * time.Minute)}, nil)); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(log.String(), "pager reachable again") {
		t.Error("recovery not logged")
	}

	// At most keepAnswers are kept, and none fetched StaleFor ago.
	for i := range 2 * keepAnswers {
		now := t0.Add(12*time.Minute + time.Duration(i)*time.Second)
		at := t0.Add(time.Duration(i+1) * 2 * time.Hour) // a window no earlier answer covers
		if _, err := c.Answer(ctx, at, now, answer(window{at}, nil)); err != nil {
			t.Fatal(err)
		}
	}
	if n := len(c.answers); n != keepAnswers {
		t.Errorf("%d answers kept, want %d", n, keepAnswers)
	}
	later := t0.Add(time.Hour)
	if _, err := c.Answer(ctx, later, later, answer(window{later}, nil)); err != nil {
		t.Fatal(err)
	}
	if n := len(c.answers); n != 1 {
		t.Errorf("%d answers kept after StaleFor, want only the new one", n)
	}
}

func TestAges(t *testing.T) {
	var bad []string
	CheckAges(-time.Second, -time.Minute, func(key, format string, args ...any) { bad = append(bad, key+" "+fmt.Sprintf(format, args...)) })
	if want := []string{"cache_for -1s is negative", "stale_for -1m0s is negative"}; !slices.Equal(bad, want) {
		t.Errorf("negative ages reported as %q, want %q", bad, want)
	}
	if c, s := DefaultAges(0, 0); c != DefaultCacheFor || s != DefaultStaleFor {
		t.Errorf("DefaultAges(0, 0) = %v, %v", c, s)
	}
	if c, s := DefaultAges(time.Second, 2*time.Second); c != time.Second || s != 2*time.Second {
		t.Errorf("DefaultAges kept %v, %v", c, s)
	}
}
