package pagerduty_test

import (
	"testing"

	"github.com/accessbot/accessbot/providers/pagerduty"
	"github.com/accessbot/accessbot/providers/pagerduty/pdfake"
)

// TestOnCallEmailsFoldedOneWay: an on-call email with the Kelvin sign
// (U+212A) is not lower-cased into kate@example.com, which would make the
// look-alike an approver in kate's name; ASCII case is still folded.
func TestOnCallEmailsFoldedOneWay(t *testing.T) {
	e := setup(t)
	e.fake.Set(pdfake.OnCall{UserID: "PK", Email: "\u212aate@Example.com", ScheduleID: "P1", PolicyID: "PE1", Level: 1,
		Start: at("2026-01-05T09:00:00Z"), End: at("2026-01-12T09:00:00Z")},
		pdfake.OnCall{UserID: "PA", Email: "Alice@Example.com", ScheduleID: "P1", PolicyID: "PE1", Level: 1,
			Start: at("2026-01-05T09:00:00Z"), End: at("2026-01-12T09:00:00Z")})
	r := e.rotation(t, pagerduty.Config{ScheduleIDs: []string{"P1"}})
	s := ask(t, r, t0)
	for _, p := range s.People {
		if p == "kate@example.com" {
			t.Fatalf("people %q: the Kelvin sign was folded to k", s.People)
		}
	}
	want(t, s, []string{"alice@example.com", "\u212aate@example.com"}, "2026-01-05T09:00:00Z", "2026-01-12T09:00:00Z")
}
