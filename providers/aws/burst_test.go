package aws_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/accessbot/accessbot/access"
	"github.com/accessbot/accessbot/providers/aws"
	"github.com/accessbot/accessbot/providers/aws/awsfake"
)

const burstWorkers = 64

type burst struct {
	elapsed   time.Duration
	throttled int64
}

// revokeBurst revokes n memberships from burstWorkers goroutines against a
// fake that throttles every API above fakeRate requests/second (burst
// fakeRate, HTTP 400 ThrottlingException). Every revocation must succeed
// and leave no member behind. Each costs a GetUserId, a
// GetGroupMembershipId and a DeleteGroupMembership.
func revokeBurst(tb testing.TB, n int, fakeRate float64, opts ...aws.Option) burst {
	tb.Helper()
	f := newFake(tb)
	f.SetThrottle(fakeRate, int(fakeRate), 0, 0)
	group := f.AddGroup("prod-admin")
	grants := make(chan access.Grant, n)
	for i := range n {
		email := fmt.Sprintf("burst%04d@example.com", i)
		f.AddMember(group, f.AddUser(email))
		grants <- access.Grant{RequestID: fmt.Sprint(i), Group: group, User: email}
	}
	close(grants)
	p := newProvider(tb, f.URL, testKeyID, testSecret, opts...)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	if b, ok := tb.(*testing.B); ok {
		b.ResetTimer()
	}
	start := time.Now()
	var mu sync.Mutex
	var failed []error
	var wg sync.WaitGroup
	for range burstWorkers {
		wg.Go(func() {
			for g := range grants {
				if err := p.Revoke(ctx, g); err != nil {
					mu.Lock()
					failed = append(failed, err)
					mu.Unlock()
				}
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	if b, ok := tb.(*testing.B); ok {
		b.StopTimer()
	}
	if len(failed) > 0 {
		tb.Errorf("%d of %d revocations failed; first: %v", len(failed), n, failed[0])
	}
	if left := len(f.Members(group)); left != 0 {
		tb.Errorf("%d members left after %d revocations", left, n)
	}
	for _, api := range []string{"GetUserId", "GetGroupMembershipId", "DeleteGroupMembership"} {
		if calls := f.Calls(api); calls < n {
			tb.Errorf("%d %s calls for %d revocations", calls, api, n)
		}
	}
	tb.Logf("%d revocations, %d goroutines, fake limit %v/s per API: %v (%.1f/s), %d throttled responses; calls GetUserId=%d GetGroupMembershipId=%d DeleteGroupMembership=%d",
		n, burstWorkers, fakeRate, elapsed.Round(time.Millisecond), float64(n)/elapsed.Seconds(), f.Throttled(),
		f.Calls("GetUserId"), f.Calls("GetGroupMembershipId"), f.Calls("DeleteGroupMembership"))
	return burst{elapsed: elapsed, throttled: f.Throttled()}
}

// TestRevokeBurst: 2,000 revocations from 64 goroutines all succeed under
// throttling. The fake's limit and the client's are raised (1,000/s and
// 950/s per API, the same ratio as the service's 20/s and the default 19/s)
// so that it takes seconds; BenchmarkRevokeBurst keeps the real figures.
func TestRevokeBurst(t *testing.T) {
	revokeBurst(t, 2000, 1000, aws.WithRateLimit(950))
}

// BenchmarkRevokeBurst revokes b.N memberships from 64 goroutines with the
// production defaults (client limit aws.DefaultRate) against the fake at
// the service's 20 requests/second per API, and reports revocations/s and
// throttled responses. The acceptance figure, 2,000 revocations, takes
// about 105 s:
//
//	go test -run '^$' -bench RevokeBurst -benchtime 2000x ./providers/aws
func BenchmarkRevokeBurst(b *testing.B) {
	r := revokeBurst(b, b.N, awsfake.DefaultRate)
	b.ReportMetric(float64(b.N)/r.elapsed.Seconds(), "revocations/s")
	b.ReportMetric(float64(r.throttled), "throttled")
}
