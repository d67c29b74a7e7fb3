package access_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/accessbot/accessbot/access"
)

// TestDenyNowReasonLater: a deny without a reason denies at once; only the
// approver who denied may add the reason, once, within the limit, and only
// to a denied request; the reason lands on the request and in the audit
// log in one step.
func TestDenyNowReasonLater(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	r := e.submit(t, "alice@example.com", "prod-admin", time.Hour)

	// A pending request has no denial to explain.
	if err := e.svc.CanAddDenyReason(ctx, r.ID, "bob@example.com"); !errors.Is(err, access.ErrNotAllowed) {
		t.Fatalf("reason before a denial: %v", err)
	}
	if _, err := e.svc.AddDenyReason(ctx, r.ID, "bob@example.com", "freeze"); !errors.Is(err, access.ErrNotAllowed) {
		t.Fatalf("reason before a denial: %v", err)
	}

	got, err := e.svc.Decide(ctx, r.ID, "bob@example.com", false, "")
	if err != nil || got.State != access.StateDenied {
		t.Fatalf("deny: %v %v", err, got)
	}
	// Denied means no approval can follow.
	if _, err := e.svc.Decide(ctx, r.ID, "dave@example.com", true, ""); !errors.Is(err, access.ErrAlreadyDecided) {
		t.Fatalf("approve after deny: %v", err)
	}

	for _, c := range []struct {
		by, reason string
		want       error
	}{
		{"dave@example.com", "I say so", access.ErrNotAllowed}, // an approver, but not the one who denied
		{"alice@example.com", "please", access.ErrNotAllowed},  // the requester
		{"bob@example.com", "   ", access.ErrNoReason},
		{"bob@example.com", strings.Repeat("x", access.MaxReasonLen+1), access.ErrReasonTooLong},
	} {
		if _, err := e.svc.AddDenyReason(ctx, r.ID, c.by, c.reason); !errors.Is(err, c.want) {
			t.Errorf("%s adds %.20q: %v, want %v", c.by, c.reason, err, c.want)
		}
		var ue *access.Refusal
		if err := e.svc.CanAddDenyReason(ctx, r.ID, c.by); c.want == access.ErrNotAllowed && !errors.As(err, &ue) {
			t.Errorf("%s may add a reason: %v", c.by, err)
		}
	}
	if err := e.svc.CanAddDenyReason(ctx, r.ID, "Bob@Example.com"); err != nil {
		t.Fatalf("the denier may add a reason: %v", err)
	}
	before := len(e.audit(t, r.ID))
	got, err = e.svc.AddDenyReason(ctx, r.ID, "Bob@Example.com", "  change freeze until Monday ")
	if err != nil {
		t.Fatal(err)
	}
	if got.State != access.StateDenied || len(got.Decisions) != 1 || got.Decisions[0].Reason != "change freeze until Monday" {
		t.Fatalf("after the reason: %s %+v", got.State, got.Decisions)
	}
	acts := e.audit(t, r.ID)
	if len(acts) != before+1 || acts[len(acts)-1] != access.ActDenyReason {
		t.Fatalf("audit %v", acts)
	}
	evs, _ := e.store.Audit(ctx, time.Time{})
	last := evs[len(evs)-1]
	if last.Actor != "bob@example.com" || last.Reason != "change freeze until Monday" || last.From != access.StateDenied || last.To != access.StateDenied {
		t.Fatalf("audit event %+v", last)
	}
	if e.notes.count(access.EvDenyReason) != 1 {
		t.Fatalf("events %v", e.notes.types())
	}
	// Once only.
	if _, err := e.svc.AddDenyReason(ctx, r.ID, "bob@example.com", "another"); !errors.Is(err, access.ErrAlreadyDecided) {
		t.Fatalf("second reason: %v", err)
	}
	if _, err := e.svc.AddDenyReason(ctx, "r-nosuch", "bob@example.com", "x"); !errors.Is(err, access.ErrNotFound) {
		t.Fatalf("unknown request: %v", err)
	}
	if n := len(e.audit(t, r.ID)); n != before+1 {
		t.Fatalf("refusals wrote %d audit events", n-before-1)
	}
}
