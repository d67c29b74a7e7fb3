package access_test

import (
	"errors"
	"testing"
	"time"

	"github.com/accessbot/accessbot/access"
)

// TestParseDurationOverflow: a value past MaxParsedDuration is refused and
// never wraps around int64 nanoseconds to a short duration.
func TestParseDurationOverflow(t *testing.T) {
	for _, in := range []string{
		"213504d",            // wrapped to 25m26s
		"106752d", "106751d", // around the int64 limit
		"367d", "366d1s", "8785h", "527041m", "31622401s",
		"366d366d", "200d200d", // the sum is past the bound, each part is not
		"9223372036854775807s", "9223372036854775808s", "99999999999999999999d",
		"1000000d",
	} {
		d, err := access.ParseDuration(in)
		if !errors.Is(err, access.ErrBadDuration) || !errors.Is(err, access.ErrTooLong) {
			t.Errorf("%q: got %v, %v; want ErrBadDuration and ErrTooLong", in, d, err)
		}
	}
	for in, want := range map[string]time.Duration{"366d": 366 * 24 * time.Hour, "365d23h59m60s": 366 * 24 * time.Hour, "8784h": 8784 * time.Hour} {
		if got, err := access.ParseDuration(in); err != nil || got != want {
			t.Errorf("%q: %v %v, want %v", in, got, err, want)
		}
	}
}

// FuzzParseDuration: whatever the input, an accepted duration is positive
// and at most MaxParsedDuration.
func FuzzParseDuration(f *testing.F) {
	for _, s := range []string{"30m", "213504d", "1d12h", "9223372036854775807s", "366d", "1h1h1h"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		d, err := access.ParseDuration(s)
		if err != nil {
			return
		}
		if d <= 0 || d > access.MaxParsedDuration {
			t.Fatalf("%q parsed as %v", s, d)
		}
	})
}
