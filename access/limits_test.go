package access_test

import (
	"context"
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

// TestIdentityOneFolding: identities are compared in one way only (ASCII
// lower-casing); ſ (U+017F) and the Kelvin sign K (U+212A), which
// strings.EqualFold and strings.ToLower turn into s and k, never stand in
// for another person.
func TestIdentityOneFolding(t *testing.T) {
	const longS, kelvin = "\u017f", "\u212a"
	for in, want := range map[string]string{
		" Sam@Example.COM ":        "sam@example.com",
		longS + "am@example.com":   longS + "am@example.com",
		kelvin + "ate@example.com": kelvin + "ate@example.com",
		"KATE@EXAMPLE.COM":         "kate@example.com",
		"\u00c9mile@example.com":   "\u00c9mile@example.com", // É is not folded either
	} {
		if got := access.NormalizeIdentity(in); got != want {
			t.Errorf("NormalizeIdentity(%q) = %q, want %q", in, got, want)
		}
	}
	p := &access.Policy{Admins: []string{"sam@example.com", "kate@example.com"}, BreakGlass: []string{"sam@example.com"},
		Acknowledgers: []string{"kate@example.com"}}
	for _, who := range []string{longS + "am@example.com", kelvin + "ate@example.com"} {
		if p.IsAdmin(who) || p.MayBreakGlass(who) || p.MayAcknowledge(who, "alice@example.com") {
			t.Errorf("%q passes for an ASCII look-alike", who)
		}
		if err := access.CheckIdentity(who); !errors.Is(err, access.ErrBadIdentity) {
			t.Errorf("CheckIdentity(%q) = %v", who, err)
		}
	}
	if !p.IsAdmin("SAM@example.com") || !p.MayAcknowledge("Kate@Example.com", "sam@example.com") {
		t.Error("ASCII case differences must still match")
	}
	if err := access.CheckIdentity("sam@example.com"); err != nil {
		t.Errorf("CheckIdentity(ascii) = %v", err)
	}
	r := &access.Request{Decisions: []access.Decision{{By: "sam@example.com", Approve: true}}}
	if r.DecidedBy(longS+"am@example.com") || !r.DecidedBy("Sam@example.com") {
		t.Error("DecidedBy folds beyond ASCII")
	}

	// A request from a non-ASCII identity is refused with a clear message.
	e := newEnv(t)
	_, err := e.svc.Submit(context.Background(), access.SubmitInput{Requester: longS + "am@example.com", Role: "prod-admin", Duration: time.Hour, Reason: "x"})
	var rf *access.Refusal // the wording: handlers.TestRefusalWording
	if !errors.Is(err, access.ErrBadIdentity) || !errors.As(err, &rf) || rf.Code != access.RefuseBadIdentity {
		t.Fatalf("submit as %s: %v", longS+"am", err)
	}
}
