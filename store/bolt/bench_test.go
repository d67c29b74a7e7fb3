package bolt_test

import (
	"context"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/accessbot/accessbot/store/bolt"
	"github.com/accessbot/accessbot/store/storetest"
)

// Benchmark stores are built once per test binary (setting up 100,000
// requests for every b.N round would dominate the run) and removed in
// TestMain. The benchmark bodies are storetest's.
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

// BenchmarkDueNoneDue is the sweep's store cost with 100,000 active grants
// of which none is due: Due(now, 1000) and NextDue.
func BenchmarkDueNoneDue(b *testing.B) {
	benchOnce["due"].Do(func() {
		benchDue = benchStore(b, "due")
		_, benchErr = storetest.SeedActive(context.Background(), benchDue, 100_000, 256, time.Now())
	})
	if benchErr != nil {
		b.Fatal(benchErr)
	}
	storetest.BenchDueNoneDue(b, benchDue)
}

// updateStore is the store of the update benchmarks, with 20,000 active
// requests.
func updateStore(b *testing.B) (*bolt.Store, []string) {
	b.Helper()
	benchOnce["update"].Do(func() {
		benchUpd = benchStore(b, "update")
		benchIDs, benchErr = storetest.SeedActive(context.Background(), benchUpd, 20_000, 256, time.Now())
	})
	if benchErr != nil {
		b.Fatal(benchErr)
	}
	return benchUpd, benchIDs
}

// BenchmarkUpdateParallel updates distinct requests from 64 goroutines.
func BenchmarkUpdateParallel(b *testing.B) {
	s, ids := updateStore(b)
	storetest.BenchUpdateParallel(b, s, ids)
}

// BenchmarkUpdate10000Concurrent times one op = 10,000 updates of distinct
// requests started at once (an expiry sweep after downtime).
func BenchmarkUpdate10000Concurrent(b *testing.B) {
	s, ids := updateStore(b)
	storetest.BenchUpdateConcurrent(b, s, ids[:10_000], 10_000)
}
