package okta_test

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/accessbot/accessbot/access"
	"github.com/accessbot/accessbot/providers/okta"
)

// Okta's own retries stay inside the caller's deadline: a call given 3 s
// against a server answering 503 returns before the deadline with Okta's
// answer, not a bare "deadline exceeded", leaving the caller time to
// record it.
func TestRetriesFitTheDeadline(t *testing.T) {
	f := newFake(t)
	group := f.AddGroup("g")
	f.AddUser("dave@example.com")
	p := newProvider(t, okta.Config{OrgURL: f.URL, APIToken: apiToken}, okta.WithRetry(20, 2*time.Second))
	f.FailNext(1000, http.StatusServiceUnavailable)
	for _, op := range []struct {
		name string
		call func(context.Context, access.Grant) error
	}{{"Grant", p.Grant}, {"Revoke", p.Revoke}} {
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		err := op.call(ctx, access.Grant{Group: group, User: "dave@example.com"})
		left := ctx.Err() == nil
		cancel()
		if err == nil || errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "E0000009") || !left {
			t.Errorf("%s: %v (deadline left: %v), want Okta's E0000009 before the deadline", op.name, err, left)
		}
	}
}

// A request held back because the rate limit is used up (X-Rate-Limit-
// Remaining 0) gives up at once, with the reason, when the reset lies
// beyond the caller's deadline, instead of sleeping into a bare "deadline
// exceeded"; nothing is sent.
func TestRateLimitWaitFitsTheDeadline(t *testing.T) {
	f := newFake(t)
	f.AddUser("dave@example.com")
	f.AddUser("erin@example.com")
	// One request per hour per endpoint family, the server's clock just
	// past the start of a window: the reset is an hour away (the client
	// waits at most two minutes of it).
	f.SetRateLimit(1, time.Hour)
	now := time.Now()
	f.SetClockSkew(now.Truncate(time.Hour).Add(time.Hour + time.Second).Sub(now))
	p := newProvider(t, okta.Config{OrgURL: f.URL, APIToken: apiToken})
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	if err := p.CheckUser(ctx, "dave@example.com"); err != nil {
		t.Fatalf("first user look-up: %v", err)
	}
	start := time.Now()
	err := p.CheckUser(ctx, "erin@example.com") // the users budget is spent
	took := time.Since(start)
	t.Logf("held back for %s: %v", took.Round(time.Millisecond), err)
	if err == nil || errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "rate limit") {
		t.Errorf("err = %v, want the rate limit named, not a bare deadline", err)
	}
	if took > time.Second || ctx.Err() != nil {
		t.Errorf("gave up after %s (deadline left: %v), want at once", took, ctx.Err() == nil)
	}
	if n := f.Throttled(); n != 0 {
		t.Errorf("%d requests sent into the spent budget (429), want 0", n)
	}
}

// A spent rate-limit budget whose reset lies past the caller's deadline is
// not waited out into the deadline: the call returns at once with the
// rate limit as its error, as a 5xx retry that would not fit does.
func TestRateLimitHoldFitsTheDeadline(t *testing.T) {
	f := newFake(t)
	group := f.AddGroup("g")
	f.AddUser("dave@example.com")
	// The server's clock a second into its hour, the budget two requests
	// per hour (the group check and the membership of the first grant):
	// the reset lies far beyond any deadline below.
	now := time.Now()
	f.SetClockSkew(now.Truncate(time.Hour).Add(time.Hour + time.Second).Sub(now))
	f.SetRateLimit(2, time.Hour)
	p := newProvider(t, okta.Config{OrgURL: f.URL, APIToken: apiToken})
	g := access.Grant{Group: group, User: "dave@example.com"}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	if err := p.Grant(ctx, g); err != nil { // spends the groups budget
		t.Fatalf("first grant: %v", err)
	}
	start := time.Now()
	err := p.Revoke(ctx, g)
	took := time.Since(start)
	if err == nil || errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "rate limit") {
		t.Errorf("Revoke with the budget spent: %v, want the rate limit", err)
	}
	if took > time.Second || ctx.Err() != nil {
		t.Errorf("Revoke took %v (deadline left: %v): waited into the deadline", took, ctx.Err() == nil)
	}
	if access.IsPermanent(err) {
		t.Errorf("%v is permanent; a rate limit passes", err)
	}
	t.Logf("%v after %v", err, took)
}
