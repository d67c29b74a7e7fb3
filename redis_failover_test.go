package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/accessbot/accessbot/access"
	"github.com/accessbot/accessbot/internal/redistest"
	"github.com/accessbot/accessbot/providers/dryrun"
	"github.com/accessbot/accessbot/scheduler"
	redisstore "github.com/accessbot/accessbot/store/redis"
)

// shiftClock is the wall clock moved by an offset, so grants of the
// minimum duration (1 m) can be made to end a few seconds from now.
type shiftClock struct{ off atomic.Int64 }

func (c *shiftClock) Now() time.Time { return time.Now().Add(time.Duration(c.off.Load())) }

// The store follows a Sentinel failover by itself: a real primary, a
// replica and three sentinels run on loopback; 60 grants made through the
// service end one every 200 ms while the primary is killed (SIGKILL) and
// the sentinels promote the replica, and more requests are submitted and
// approved during the outage. Every grant is revoked (none lost), no grant
// is applied twice, every membership the provider holds at the end has an
// active request with a due revocation, and the same store object works
// again without being reopened. The time without a store and the lateness
// of the revocations are logged.
func TestRedisSentinelFailover(t *testing.T) {
	if testing.Short() {
		t.Skip("starts five redis-server processes and waits for a failover")
	}
	g := redistest.StartSentinelGroup(t, "mymaster", 3, time.Second, 3*time.Second)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	cfg := redisstore.Config{Prefix: "failover", Sentinel: &redisstore.SentinelConfig{Master: g.Master, Addrs: g.SentinelAddrs()}}
	st, err := redisstore.OpenConfig(ctx, cfg, redisstore.OpenOptions{Logger: quiet})
	if err != nil {
		t.Fatalf("OpenConfig(sentinel): %v", err)
	}
	defer st.Close()

	prov := dryrun.New(nil)
	var mu sync.Mutex
	grants := map[string]int{}          // request id -> successful Grant calls
	revokes := map[string]int{}         // request id -> successful Revoke calls
	revokedAt := map[string]time.Time{} // request id -> first successful Revoke
	grantAfterRevoke := 0
	prov.Observe(func(c dryrun.Change) {
		if c.Err != nil {
			return
		}
		mu.Lock()
		defer mu.Unlock()
		id := c.Grant.RequestID
		switch c.Op {
		case "grant":
			grants[id]++
			if revokes[id] > 0 {
				grantAfterRevoke++
			}
		case "revoke":
			revokes[id]++
			if _, ok := revokedAt[id]; !ok {
				revokedAt[id] = time.Now()
			}
		}
	})
	clock := &shiftClock{}
	policy := &access.Policy{Roles: map[string]access.Role{"prod-admin": {Name: "prod-admin", Provider: "dryrun",
		Group: "g", MaxDuration: time.Hour, DefaultDuration: time.Minute, Approvals: 1,
		ApproverUsers: []string{"bob@example.com"}, PendingTTL: time.Hour}}}
	svc, err := access.NewService(access.Deps{Store: st, Policy: policy, Clock: clock, Logger: quiet,
		Providers: map[string]access.Provisioner{"dryrun": prov},
		Options:   access.Options{MaxBackoff: 2 * time.Second, MaxPendingPerUser: -1, CommandsPerMinute: -1}})
	if err != nil {
		t.Fatal(err)
	}
	grant := func(ctx context.Context, user string) (*access.Request, error) {
		r, err := svc.Submit(ctx, access.SubmitInput{Requester: user, Role: "prod-admin", Duration: time.Minute, Reason: "failover test"})
		if err != nil {
			return nil, fmt.Errorf("submit: %w", err)
		}
		r, err = svc.Decide(ctx, r.ID, "bob@example.com", true, "")
		if err != nil {
			return r, fmt.Errorf("approve %s: %w", r.ID, err)
		}
		return r, nil
	}

	// 60 grants ending every 200 ms from start+6s: the clock is set back
	// before each so that its minute ends at the wanted time.
	const n, spacing = 60, 200 * time.Millisecond
	start := time.Now()
	t0 := start.Add(6 * time.Second)
	ends := map[string]time.Time{}
	for i := 0; i < n; i++ {
		want := t0.Add(time.Duration(i) * spacing)
		clock.off.Store(int64(want.Add(-time.Minute).Sub(time.Now())))
		r, err := grant(ctx, fmt.Sprintf("user%02d@example.com", i))
		if err != nil || r.State != access.StateActive {
			t.Fatalf("grant %d before the failover: %v, %v", i, r, err)
		}
		ends[r.ID] = r.EndsAt
	}
	clock.off.Store(0)
	if time.Now().After(t0) {
		t.Fatalf("granting took %v, past the first end", time.Since(start))
	}

	sched := scheduler.New(st, svc, clock, quiet, scheduler.Options{Sweep: time.Second, Workers: 8})
	svc.SetWaker(sched)
	runCtx, stopRun := context.WithCancel(ctx)
	runDone := make(chan error, 1)
	go func() { runDone <- sched.Run(runCtx) }()
	defer func() { stopRun(); <-runDone }()

	// A probe writes through the store every 50 ms (each write bounded to
	// 1 s), recording when writes fail and succeed.
	type probe struct {
		at time.Time
		ok bool
	}
	var (
		pmu    sync.Mutex
		probes []probe
	)
	probeCtx, stopProbe := context.WithCancel(ctx)
	probeDone := make(chan struct{})
	go func() {
		defer close(probeDone)
		for i := 0; probeCtx.Err() == nil; i++ {
			wctx, cancel := context.WithTimeout(probeCtx, time.Second)
			_, err := st.Seen(wctx, fmt.Sprintf("probe-%d", i), time.Minute)
			cancel()
			pmu.Lock()
			probes = append(probes, probe{time.Now(), err == nil})
			pmu.Unlock()
			select {
			case <-probeCtx.Done():
			case <-time.After(50 * time.Millisecond):
			}
		}
	}()

	// New requests keep coming during the outage: one every 300 ms for 10 s.
	var during struct {
		sync.Mutex
		ok, failed int
		errs       []string
	}
	duringDone := make(chan struct{})
	go func() {
		defer close(duringDone)
		for i := 0; i < 34; i++ {
			rctx, cancel := context.WithTimeout(ctx, 15*time.Second)
			r, err := grant(rctx, fmt.Sprintf("late%02d@example.com", i))
			cancel()
			during.Lock()
			if err == nil && r.State == access.StateActive {
				during.ok++
			} else {
				during.failed++
				if len(during.errs) < 5 {
					during.errs = append(during.errs, fmt.Sprint(err))
				}
			}
			during.Unlock()
			time.Sleep(300 * time.Millisecond)
		}
	}()

	// Kill the primary 2 s after the first grant ends.
	time.Sleep(time.Until(t0.Add(2 * time.Second)))
	old := g.Primary.Addr()
	killedAt := time.Now()
	g.Primary.Kill()

	// Every grant is revoked within 30 s of the last end.
	lastEnd := t0.Add((n - 1) * spacing)
	deadline := lastEnd.Add(30 * time.Second)
	for {
		mu.Lock()
		done := len(revokedAt)
		mu.Unlock()
		if done >= n {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d grants revoked 30 s after the last end", done, n)
		}
		time.Sleep(50 * time.Millisecond)
	}
	<-duringDone
	stopProbe()
	<-probeDone
	now, err := g.PrimaryAddr(ctx)
	if err != nil || now == old {
		t.Fatalf("primary after the failover = %q, %v; want the replica, not %s", now, err, old)
	}

	// Time without a store: from the kill to the first write that
	// succeeded afterwards; and how long writes kept failing.
	var recovered, firstFail, lastFail time.Time
	pmu.Lock()
	for _, p := range probes {
		if !p.ok && !p.at.Before(killedAt) {
			if firstFail.IsZero() {
				firstFail = p.at
			}
			lastFail = p.at
		}
	}
	for _, p := range probes {
		if p.ok && !p.at.Before(killedAt) && p.at.After(lastFail) {
			recovered = p.at
			break
		}
	}
	pmu.Unlock()
	if recovered.IsZero() {
		t.Fatal("no write through the store succeeded after the kill: it did not reconnect by itself")
	}

	// Lateness of every revocation, and of those that fell due while the
	// store was away.
	mu.Lock()
	var all, inOutage []time.Duration
	for id, end := range ends {
		late := revokedAt[id].Sub(end)
		if late < 0 {
			t.Errorf("%s revoked %v before its end", id, -late)
		}
		all = append(all, late)
		if !end.Before(killedAt) && !end.After(recovered) {
			inOutage = append(inOutage, late)
		}
	}
	doubles := 0
	for id, k := range grants {
		if k > 1 {
			doubles++
			t.Errorf("request %s granted %d times", id, k)
		}
	}
	if grantAfterRevoke > 0 {
		t.Errorf("%d grants applied after their request was revoked", grantAfterRevoke)
	}
	nGranted := len(grants)
	mu.Unlock()

	// Every membership the provider holds belongs to an active request
	// with a revocation due, and every expired grant's request says so.
	rctx, rcancel := context.WithTimeout(ctx, 30*time.Second)
	defer rcancel()
	members, err := prov.Members(rctx, "g")
	if err != nil {
		t.Fatal(err)
	}
	active, err := st.List(rctx, access.Filter{States: []access.State{access.StateActive}})
	if err != nil {
		t.Fatalf("List after the failover: %v", err)
	}
	byUser := map[string]*access.Request{}
	for _, r := range active {
		byUser[r.Requester] = r
	}
	lost := 0
	for _, m := range members {
		r, ok := byUser[m]
		if !ok || r.EndsAt.IsZero() {
			lost++
			t.Errorf("%s is a member with no active request ending it: its revocation is lost", m)
		}
	}
	next, ok, err := st.NextDue(rctx)
	if len(active) > 0 && (err != nil || !ok || next.After(time.Now().Add(2*time.Minute))) {
		t.Errorf("NextDue = %v, %v, %v with %d active grants", next, ok, err, len(active))
	}
	for id := range ends {
		r, err := st.Get(rctx, id)
		if err != nil || r.State == access.StateActive {
			t.Errorf("expired grant %s: %v, %v", id, r, err)
		}
	}

	pct := func(d []time.Duration, p int) time.Duration {
		if len(d) == 0 {
			return 0
		}
		slices.Sort(d)
		return d[min(len(d)-1, len(d)*p/100)].Round(time.Millisecond)
	}
	during.Lock()
	t.Logf("failover: primary %s killed, sentinels promoted %s; writes failed from +%v to +%v, first write after: +%v (time without a store %v)",
		old, now, firstFail.Sub(killedAt).Round(time.Millisecond), lastFail.Sub(killedAt).Round(time.Millisecond),
		recovered.Sub(killedAt).Round(time.Millisecond), recovered.Sub(killedAt).Round(time.Millisecond))
	t.Logf("revocations: %d/%d done, lost 0 of %d memberships checked (%d lost); lateness p50 %v, p99 %v, max %v; of the %d ending during the outage: p50 %v, max %v",
		len(all), n, len(members), lost, pct(all, 50), pct(all, 99), pct(all, 100), len(inOutage), pct(inOutage, 50), pct(inOutage, 100))
	t.Logf("requests during the outage: %d granted, %d refused with an error (%q); %d requests granted in all, %d granted twice, %d grants after a revoke",
		during.ok, during.failed, during.errs, nGranted, doubles, grantAfterRevoke)
	during.Unlock()
}
