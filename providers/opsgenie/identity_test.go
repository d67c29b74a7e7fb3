package opsgenie_test

import (
	"slices"
	"testing"
	"time"

	"github.com/accessbot/accessbot/providers/opsgenie"
	"github.com/accessbot/accessbot/providers/opsgenie/ogfake"
)

// TestOnCallEmailsFoldedOneWay: an on-call recipient with the Kelvin sign
// (U+212A) is not lower-cased into kate@example.com; ASCII case is still
// folded.
func TestOnCallEmailsFoldedOneWay(t *testing.T) {
	e := setup(t)
	e.fake.Set(scheduleID, "Platform On Call",
		ogfake.Turn{Email: "\u212aate@Example.com", Start: time.Date(2026, 1, 5, 9, 0, 0, 0, time.UTC), End: time.Date(2026, 1, 12, 9, 0, 0, 0, time.UTC)},
		ogfake.Turn{Email: "Alice@Example.com", Start: time.Date(2026, 1, 5, 9, 0, 0, 0, time.UTC), End: time.Date(2026, 1, 12, 9, 0, 0, 0, time.UTC)})
	r := e.rotation(t, opsgenie.Config{})
	s := ask(t, r, t0)
	if slices.Contains(s.People, "kate@example.com") || !slices.Contains(s.People, "\u212aate@example.com") || !slices.Contains(s.People, "alice@example.com") {
		t.Fatalf("people %q", s.People)
	}
}
