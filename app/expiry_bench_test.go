package app

import (
	"context"
	"fmt"
	"path/filepath"
	"sort"
	"sync"
	"testing"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/accessbot/accessbot/access"
	"github.com/accessbot/accessbot/internal/redistest"
	"github.com/accessbot/accessbot/providers/dryrun"
	"github.com/accessbot/accessbot/scheduler"
	"github.com/accessbot/accessbot/store/bolt"
	redisstore "github.com/accessbot/accessbot/store/redis"
)

// benchStores opens each store kind fresh for a benchmark.
var benchStores = []struct {
	name string
	open func(b *testing.B) access.Store
}{
	{"bolt", func(b *testing.B) access.Store {
		st, err := bolt.Open(filepath.Join(b.TempDir(), "bench.db"))
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { st.Close() })
		return st
	}},
	{"redis", func(b *testing.B) access.Store {
		st := redisstore.New(redistest.Client(b), redistest.Prefix(b))
		b.Cleanup(func() { st.Close() })
		return st
	}},
}

func benchPolicy() *access.Policy {
	return &access.Policy{Roles: map[string]access.Role{"prod-admin": {Name: "prod-admin", Provider: "dryrun",
		Group: "g", MaxDuration: 24 * time.Hour, DefaultDuration: time.Hour, Approvals: 1,
		ApproverUsers: []string{"bob@example.com"}, PendingTTL: time.Hour}}}
}

// seed stores n active grants ending at ends(i), from 64 goroutines.
func seed(b *testing.B, st access.Store, n int, ends func(i int) time.Time) []string {
	b.Helper()
	ids := make([]string, n)
	g, ctx := errgroup.WithContext(context.Background())
	g.SetLimit(64)
	now := time.Now()
	for i := 0; i < n; i++ {
		g.Go(func() error {
			r := &access.Request{ID: fmt.Sprintf("r-b%07d", i), Kind: access.KindRequest,
				Requester: fmt.Sprintf("user%d@example.com", i), Role: "prod-admin", Provider: "dryrun", Group: "g",
				Duration: time.Hour, Reason: "bench", State: access.StateActive, CreatedAt: now, UpdatedAt: now,
				GrantedAt: now, EndsAt: ends(i)}
			ids[i] = r.ID
			return st.Create(ctx, r)
		})
	}
	if err := g.Wait(); err != nil {
		b.Fatal(err)
	}
	return ids
}

// BenchmarkExpiry10k: 10,000 grants end within the same second; the real
// scheduler and service revoke them through the dry-run provider. Reports
// lateness (end time to Revoke call) p50/p99 and revocations per second.
func BenchmarkExpiry10k(b *testing.B) {
	const n = 10000
	for _, sk := range benchStores {
		b.Run(sk.name, func(b *testing.B) {
			var p50, p99, rate float64
			for it := 0; it < b.N; it++ {
				st := sk.open(b)
				prov := dryrun.New(nil)
				var mu sync.Mutex
				called := make(map[string]time.Time, n)
				done := make(chan struct{})
				prov.Observe(func(c dryrun.Change) {
					if c.Op != "revoke" {
						return
					}
					mu.Lock()
					called[c.Grant.RequestID] = time.Now()
					if len(called) == n {
						close(done)
					}
					mu.Unlock()
				})
				svc, err := access.NewService(access.Deps{Store: st, Policy: benchPolicy(),
					Providers: map[string]access.Provisioner{"dryrun": prov}})
				if err != nil {
					b.Fatal(err)
				}
				sched := scheduler.New(st, svc, nil, nil, scheduler.Options{Workers: 64})
				svc.SetWaker(sched)
				// Seed first with a far end, measuring how long seeding takes,
				// so the real run's ends fall after seeding is over.
				b.StopTimer()
				setupStart := time.Now()
				endBase := setupStart.Add(30 * time.Second).Truncate(time.Second).Add(time.Second)
				ends := make([]time.Time, n)
				for i := range ends {
					ends[i] = endBase.Add(time.Duration(i) * (time.Second / n)) // all within one second
				}
				seed(b, st, n, func(i int) time.Time { return ends[i] })
				if time.Now().After(endBase) {
					b.Fatalf("seeding took %v, longer than the lead time", time.Since(setupStart))
				}
				ctx, cancel := context.WithCancel(context.Background())
				runDone := make(chan error, 1)
				go func() { runDone <- sched.Run(ctx) }()
				time.Sleep(time.Until(endBase))
				b.StartTimer()
				select {
				case <-done:
				case <-time.After(5 * time.Minute):
					b.Fatalf("only %d of %d revoked", len(called), n)
				}
				b.StopTimer()
				cancel()
				<-runDone
				late := make([]time.Duration, 0, n)
				var last time.Time
				for i := 0; i < n; i++ {
					at := called[fmt.Sprintf("r-b%07d", i)]
					late = append(late, at.Sub(ends[i]))
					if at.After(last) {
						last = at
					}
				}
				sort.Slice(late, func(i, j int) bool { return late[i] < late[j] })
				p50 = float64(late[n/2].Milliseconds())
				p99 = float64(late[n*99/100].Milliseconds())
				rate = float64(n) / last.Sub(endBase).Seconds()
				if late[0] < 0 {
					b.Fatalf("a grant was revoked %v before its end", -late[0])
				}
				b.StartTimer()
			}
			b.ReportMetric(p50, "p50-late-ms")
			b.ReportMetric(p99, "p99-late-ms")
			b.ReportMetric(rate, "revokes/s")
		})
	}
}

// BenchmarkSweepIdle: one sweep (a scheduler drain) over 100,000 active
// grants of which none is due.
func BenchmarkSweepIdle(b *testing.B) {
	const n = 100000
	for _, sk := range benchStores {
		b.Run(sk.name, func(b *testing.B) {
			st := sk.open(b)
			far := time.Now().Add(24 * time.Hour)
			seed(b, st, n, func(i int) time.Time { return far.Add(time.Duration(i) * time.Millisecond) })
			svc, err := access.NewService(access.Deps{Store: st, Policy: benchPolicy(),
				Providers: map[string]access.Provisioner{"dryrun": dryrun.New(nil)}})
			if err != nil {
				b.Fatal(err)
			}
			sched := scheduler.New(st, svc, nil, nil, scheduler.Options{})
			ctx := context.Background()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				k, err := sched.Drain(ctx)
				if err != nil || k != 0 {
					b.Fatalf("drain: %d %v", k, err)
				}
				if _, _, err := st.NextDue(ctx); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
