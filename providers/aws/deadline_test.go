package aws_test

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/accessbot/accessbot/access"
	"github.com/accessbot/accessbot/providers/aws"
)

// The SDK's retries stay inside the caller's deadline: with the default
// 10 attempts and backoff up to 20 s, a call given 5 s returns before its
// deadline with the service's own error (not "canceled"), leaving the
// caller time to record it.
func TestRetriesFitTheDeadline(t *testing.T) {
	f := newFake(t)
	group := f.AddGroup("g")
	f.AddUser("dave@example.com")
	p := newProvider(t, f.URL, testKeyID, testSecret, aws.WithRetry(aws.DefaultMaxAttempts, aws.DefaultMaxBackoff))
	f.FailNext(1000, http.StatusInternalServerError)
	for _, op := range []struct {
		name string
		call func(context.Context, access.Grant) error
	}{{"Grant", p.Grant}, {"Revoke", p.Revoke}} {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		start := time.Now()
		err := op.call(ctx, access.Grant{Group: group, User: "dave@example.com"})
		took := time.Since(start)
		deadlineLeft := ctx.Err() == nil
		cancel()
		if err == nil || !strings.Contains(err.Error(), "InternalServerException") || errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("%s: %v, want the service's InternalServerException", op.name, err)
		}
		t.Logf("%s: %v after %v", op.name, err, took)
		if !deadlineLeft {
			t.Errorf("%s took %v: used up the whole deadline", op.name, took)
		}
	}
	// Throttled with a Retry-After longer than the time left: no wait at all.
	f.FailNext(0, 0)
	f.SetThrottle(1, 1, http.StatusTooManyRequests, 30)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = p.Grant(ctx, access.Grant{Group: group, User: "dave@example.com"}) // spends the one token
	err := p.Grant(ctx, access.Grant{Group: group, User: "dave@example.com"})
	if ctx.Err() != nil {
		t.Fatalf("waited into the deadline for a 30 s Retry-After: %v", err)
	}
}
