package redis_test

import (
	"context"
	"fmt"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/accessbot/accessbot/access"
	"github.com/accessbot/accessbot/internal/redistest"
	"github.com/accessbot/accessbot/store/redis"
	goredis "github.com/redis/go-redis/v9"
)

// Benchmark stores are built once per test binary (setting up 100,000
// requests for every b.N round would dominate the run); their keys are
// deleted when the benchmark binary's tests are done (see cleanupBench).
var (
	benchMu     sync.Mutex
	benchStores = map[string]*redis.Store{}
	benchIDs    = map[string][]string{}
	benchClient *goredis.Client
	benchPrefix = fmt.Sprintf("bench:%d", time.Now().UnixNano())
)

// cleanupBench deletes the benchmark keys; TestMain calls it.
func cleanupBench() {
	benchMu.Lock()
	defer benchMu.Unlock()
	if benchClient == nil {
		return
	}
	if err := deleteKeys(benchClient, "{"+benchPrefix+"*"); err != nil {
		fmt.Fprintf(os.Stderr, "delete benchmark keys: %v\n", err)
	}
	_ = benchClient.Close()
	benchClient = nil
}

func benchStore(b *testing.B, name string, n int) (*redis.Store, []string) {
	b.Helper()
	benchMu.Lock()
	defer benchMu.Unlock()
	if s, ok := benchStores[name]; ok {
		return s, benchIDs[name]
	}
	if benchClient == nil {
		opt, err := goredis.ParseURL(redistest.URL(b))
		if err != nil {
			b.Fatal(err)
		}
		opt.PoolSize = 256
		benchClient = goredis.NewClient(opt)
	}
	s := redis.New(benchClient, benchPrefix+":"+name)
	ids, err := seedActive(context.Background(), s, n, 64, time.Now())
	if err != nil {
		b.Fatal(err)
	}
	benchStores[name], benchIDs[name] = s, ids
	return s, ids
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
	s, _ := benchStore(b, "due", 100_000)
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

// BenchmarkUpdateParallel updates distinct requests from 64 goroutines.
func BenchmarkUpdateParallel(b *testing.B) {
	s, ids := benchStore(b, "update", 20_000)
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

// BenchmarkUpdate10000Concurrent times one op = 10,000 updates of distinct
// requests from 256 workers (an expiry sweep after downtime).
func BenchmarkUpdate10000Concurrent(b *testing.B) {
	s, ids := benchStore(b, "update", 20_000)
	ctx := context.Background()
	for b.Loop() {
		var (
			wg   sync.WaitGroup
			next atomic.Int64
		)
		for range 256 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for {
					i := int(next.Add(1)) - 1
					if i >= 10_000 {
						return
					}
					if _, err := s.Update(ctx, ids[i], extend); err != nil {
						b.Error(err)
						return
					}
				}
			}()
		}
		wg.Wait()
	}
}
