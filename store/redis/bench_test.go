package redis_test

import (
	"context"
	"fmt"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/accessbot/accessbot/internal/redistest"
	"github.com/accessbot/accessbot/store/redis"
	"github.com/accessbot/accessbot/store/storetest"
	goredis "github.com/redis/go-redis/v9"
)

// Benchmark stores are built once per test binary (setting up 100,000
// requests for every b.N round would dominate the run); their keys are
// deleted when the benchmark binary's tests are done (see cleanupBench).
// The benchmark bodies are storetest's.
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
	ids, err := storetest.SeedActive(context.Background(), s, n, 64, time.Now())
	if err != nil {
		b.Fatal(err)
	}
	benchStores[name], benchIDs[name] = s, ids
	return s, ids
}

// BenchmarkDueNoneDue is the sweep's store cost with 100,000 active grants
// of which none is due: Due(now, 1000) and NextDue.
func BenchmarkDueNoneDue(b *testing.B) {
	s, _ := benchStore(b, "due", 100_000)
	storetest.BenchDueNoneDue(b, s)
}

// BenchmarkUpdateParallel updates distinct requests from 64 goroutines.
func BenchmarkUpdateParallel(b *testing.B) {
	s, ids := benchStore(b, "update", 20_000)
	storetest.BenchUpdateParallel(b, s, ids)
}

// BenchmarkUpdate10000Concurrent times one op = 10,000 updates of distinct
// requests from 256 workers (an expiry sweep after downtime).
func BenchmarkUpdate10000Concurrent(b *testing.B) {
	s, ids := benchStore(b, "update", 20_000)
	storetest.BenchUpdateConcurrent(b, s, ids[:10_000], 256)
}
