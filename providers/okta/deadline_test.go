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
