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
