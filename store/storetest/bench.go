package storetest

import (
	"context"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/accessbot/accessbot/access"
)

// The benchmark bodies below are shared by the store packages. Each
// package builds and seeds its store once per test binary with SeedActive
// (seeding for every b.N round would dominate the run) and calls them from
// its own Benchmark functions.

// SeedActive creates n active requests (ids r-bench0000000 and on) ending
// a day or more after from, using workers concurrent writers, and returns
// their ids. The first error stops the seeding.
func SeedActive(ctx context.Context, s access.Store, n, workers int, from time.Time) ([]string, error) {
	ids := make([]string, n)
	err := spread(n, workers, func(i int) error {
		id := fmt.Sprintf("r-bench%07d", i)
		ids[i] = id
		return s.Create(ctx, &access.Request{
			ID: id, Kind: access.KindRequest, State: access.StateActive,
			Requester: fmt.Sprintf("user%d@example.com", i%5000), Role: "prod-admin",
			Provider: "aws", Group: "g-1", Duration: time.Hour, Reason: "benchmark",
			CreatedAt: from.Add(-time.Hour), UpdatedAt: from.Add(-time.Hour), GrantedAt: from.Add(-time.Hour),
			EndsAt: from.Add(24*time.Hour + time.Duration(i)*time.Second),
		})
	})
	return ids, err
}

// spread calls do(i) for each i in [0, n) from workers goroutines started at
// once, and waits for them. A goroutine stops at its first error; spread
// returns the first error of all.
func spread(n, workers int, do func(i int) error) error {
	var (
		next    atomic.Int64
		wg      sync.WaitGroup
		errOnce sync.Once
		first   error
	)
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1)) - 1
				if i >= n {
					return
				}
				if err := do(i); err != nil {
					errOnce.Do(func() { first = err })
					return
				}
			}
		}()
	}
	wg.Wait()
	return first
}

// BenchDueNoneDue is the sweep's store cost when no grant is due:
// Due(now, 1000) and NextDue. s holds what SeedActive made within the last
// day.
func BenchDueNoneDue(b *testing.B, s access.Store) {
	ctx := context.Background()
	now := time.Now()
	b.ResetTimer()
	for b.Loop() {
		ids, err := s.Due(ctx, now, 1000)
		if err != nil || len(ids) != 0 {
			b.Fatalf("Due = %d ids, %v", len(ids), err)
		}
		if _, ok, err := s.NextDue(ctx); err != nil || !ok {
			b.Fatalf("NextDue = %v, %v", ok, err)
		}
	}
}

// extend is a typical expiry-engine write: state, times and an audit event.
func extend(r *access.Request) ([]access.AuditEvent, error) {
	r.EndsAt = r.EndsAt.Add(time.Second)
	r.Extensions++
	r.UpdatedAt = time.Now()
	return []access.AuditEvent{{At: r.UpdatedAt, RequestID: r.ID, Action: access.ActExtended, Actor: access.SystemActor, Subject: r.Requester, Role: r.Role}}, nil
}

// BenchUpdateParallel updates the requests of ids, round robin, from 64
// goroutines.
func BenchUpdateParallel(b *testing.B, s access.Store, ids []string) {
	ctx := context.Background()
	var next atomic.Int64
	b.SetParallelism(64 / max(1, runtime.GOMAXPROCS(0)))
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			id := ids[int(next.Add(1))%len(ids)]
			if _, err := s.Update(ctx, id, extend); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

// BenchUpdateConcurrent times one op = one update of each request of ids,
// shared out to workers goroutines started at once (an expiry sweep after
// downtime). With as many workers as ids every update starts at once.
func BenchUpdateConcurrent(b *testing.B, s access.Store, ids []string, workers int) {
	ctx := context.Background()
	for b.Loop() {
		_ = spread(len(ids), workers, func(i int) error {
			_, err := s.Update(ctx, ids[i], extend)
			if err != nil {
				b.Error(err)
			}
			return err
		})
	}
}
