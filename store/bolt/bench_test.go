package bolt_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/accessbot/accessbot/access"
	"github.com/accessbot/accessbot/store/bolt"
)

// Benchmark stores are built once per test binary (setting up 100,000
// requests for every b.N round would dominate the run) and removed in
// TestMain.
var (
	benchDir  string
	benchOnce = map[string]*sync.Once{"due": {}, "update": {}}
	benchDue  *bolt.Store
	benchUpd  *bolt.Store
	benchIDs  []string
	benchErr  error
)

func TestMain(m *testing.M) {
	code := m.Run()
	for _, s := range []*bolt.Store{benchDue, benchUpd} {
		if s != nil {
			_ = s.Close()
		}
	}
	if benchDir != "" {
		_ = os.RemoveAll(benchDir)
	}
	os.Exit(code)
}

func benchStore(b *testing.B, name string) *bolt.Store {
	b.Helper()
	if benchDir == "" {
		if benchDir, benchErr = os.MkdirTemp("", "accessbot-bolt-bench-"); benchErr != nil {
			b.Fatal(benchErr)
		}
	}
	s, err := bolt.Open(filepath.Join(benchDir, name+".db"))
	if err != nil {
		b.Fatal(err)
	}
	return s
}

// seedActive creates n active requests ending after from, using workers
// concurrent writers.
func seedActive(ctx context.Context, s access.Store, n, workers int, from time.Time) ([]string, error) {
	ids := make([]string, n)
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
				id := fmt.Sprintf("r-bench%07d", i)
				ids[i] = id
				r := &access.Request{
					ID: id, Kind: access.KindRequest, State: access.StateActive,
					Requester: fmt.Sprintf("user%d@example.com", i%5000), Role: "prod-admin",
					Provider: "aws", Group: "g-1", Duration: time.Hour, Reason: "benchmark",
					CreatedAt: from.Add(-time.Hour), UpdatedAt: from.Add(-time.Hour), GrantedAt: from.Add(-time.Hour),
					EndsAt: from.Add(24*time.Hour + time.Duration(i)*time.Second),
				}
				if err := s.Create(ctx, r); err != nil {
					errOnce.Do(func() { first = err })
					return
				}
			}
		}()
	}
	wg.Wait()
	return ids, first
}

// BenchmarkDueNoneDue is the sweep's store cost with 100,000 active grants
// of which none is due: Due(now, 1000) and NextDue.
func BenchmarkDueNoneDue(b *testing.B) {
	ctx := context.Background()
	now := time.Now()
	benchOnce["due"].Do(func() {
		benchDue = benchStore(b, "due")
		_, benchErr = seedActive(ctx, benchDue, 100_000, 256, now)
	})
	if benchErr != nil {
		b.Fatal(benchErr)
	}
	b.ResetTimer()
	for b.Loop() {
		ids, err := benchDue.Due(ctx, now, 1000)
		if err != nil || len(ids) != 0 {
			b.Fatalf("Due = %d ids, %v", len(ids), err)
		}
		if _, ok, err := benchDue.NextDue(ctx); err != nil || !ok {
			b.Fatalf("NextDue = %v, %v", ok, err)
		}
	}
}

func updateStore(b *testing.B) []string {
	b.Helper()
	benchOnce["update"].Do(func() {
		benchUpd = benchStore(b, "update")
		benchIDs, benchErr = seedActive(context.Background(), benchUpd, 20_000, 256, time.Now())
	})
	if benchErr != nil {
		b.Fatal(benchErr)
	}
	return benchIDs
}

// extend is a typical expiry-engine write: state, times and an audit event.
func extend(r *access.Request) ([]access.AuditEvent, error) {
	r.EndsAt = r.EndsAt.Add(time.Second)
	r.Extensions++
	r.UpdatedAt = time.Now()
	return []access.AuditEvent{{At: r.UpdatedAt, RequestID: r.ID, Action: access.ActExtended, Actor: access.SystemActor, Subject: r.Requester, Role: r.Role}}, nil
}

// BenchmarkUpdateParallel updates distinct requests from 64 goroutines.
func BenchmarkUpdateParallel(b *testing.B) {
	ids := updateStore(b)
	ctx := context.Background()
	var next atomic.Int64
	b.SetParallelism(64 / max(1, runtimeProcs()))
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			id := ids[int(next.Add(1))%len(ids)]
			if _, err := benchUpd.Update(ctx, id, extend); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

// BenchmarkUpdate10000Concurrent times one op = 10,000 updates of distinct
// requests started at once (an expiry sweep after downtime).
func BenchmarkUpdate10000Concurrent(b *testing.B) {
	ids := updateStore(b)
	ctx := context.Background()
	for b.Loop() {
		var wg sync.WaitGroup
		for _, id := range ids[:10_000] {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if _, err := benchUpd.Update(ctx, id, extend); err != nil {
					b.Error(err)
				}
			}()
		}
		wg.Wait()
	}
}

func runtimeProcs() int { return runtime.GOMAXPROCS(0) }
