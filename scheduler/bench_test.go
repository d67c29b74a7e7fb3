package scheduler

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/accessbot/accessbot/access"
	"github.com/accessbot/accessbot/internal/testclock"
)

// stampProcessor records when it was called for each id and then ends it
// through end (removing it from the due index).
type stampProcessor struct {
	pos   map[string]int
	mu    sync.Mutex
	stamp []time.Time
	end   func(ctx context.Context, id string) error
}

func (p *stampProcessor) Process(ctx context.Context, id string) error {
	now := time.Now()
	p.mu.Lock()
	p.stamp[p.pos[id]] = now
	p.mu.Unlock()
	return p.end(ctx, id)
}

// BenchmarkDrain10k: 10,000 ids fall due at the same instant and the drain
// starts at that instant (as the timer would). It reports how late each
// Process call came (p50, p99) and the throughput. "index" runs against the
// in-memory test index (scheduler overhead; the index re-sorts on every Due
// call), "redis" against the Redis store with a Process that ends each grant
// through Store.Update (no provider call).
func BenchmarkDrain10k(b *testing.B) {
	const n = 10000
	ids := make([]string, n)
	pos := make(map[string]int, n)
	for i := range ids {
		ids[i] = fmt.Sprintf("r-%05d", i)
		pos[ids[i]] = i
	}

	b.Run("index", func(b *testing.B) {
		benchDrain(b, ids, pos, func(_ context.Context, at time.Time) (DueIndex, func(context.Context, string) error) {
			idx := newMemIndex()
			for _, id := range ids {
				idx.Set(id, at)
			}
			return idx, func(_ context.Context, id string) error { idx.Remove(id); return nil }
		})
	})

	b.Run("redis", func(b *testing.B) {
		benchDrain(b, ids, pos, func(ctx context.Context, at time.Time) (DueIndex, func(context.Context, string) error) {
			store := realStores()[1].open(b) // a fresh prefix each time
			for _, id := range ids {
				if err := store.Create(ctx, activeGrant(id, at.Add(-time.Hour), at)); err != nil {
					b.Fatalf("create: %v", err)
				}
			}
			return store, func(ctx context.Context, id string) error {
				_, err := store.Update(ctx, id, func(r *access.Request) ([]access.AuditEvent, error) {
					r.State = access.StateEnded
					r.EndReason = access.EndExpired
					r.UpdatedAt = time.Now()
					return nil, nil
				})
				return err
			}
		})
	})
}

// benchDrain runs one drain per iteration over the index setup fills with
// ids due at at; setup also says how Process ends an id.
func benchDrain(b *testing.B, ids []string, pos map[string]int,
	setup func(ctx context.Context, at time.Time) (DueIndex, func(context.Context, string) error)) {
	ctx := context.Background()
	p := &stampProcessor{pos: pos, stamp: make([]time.Time, len(ids))}
	// The scheduler's clock reads the due instant when the drain starts, as
	// it would when the timer fires on time; lateness is wall time from then.
	clock := testclock.New(time.Time{})
	var late []time.Duration
	var busy time.Duration
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		clear(p.stamp)
		due := time.Now().UTC().Truncate(time.Millisecond)
		idx, end := setup(ctx, due)
		p.end = end
		clock.Set(due)
		s := New(idx, p, clock, nil, Options{})
		b.StartTimer()
		began := time.Now()
		got, err := s.Drain(ctx)
		busy += time.Since(began)
		b.StopTimer()
		if err != nil || got != len(ids) {
			b.Fatalf("Drain = %d, %v; want %d, nil", got, err, len(ids))
		}
		for _, at := range p.stamp {
			late = append(late, at.Sub(began))
		}
		if _, ok, _ := idx.NextDue(ctx); ok {
			b.Fatal("items left due after the drain")
		}
	}
	slices.Sort(late)
	q := func(f float64) float64 { return float64(late[int(f*float64(len(late)-1))]) / float64(time.Millisecond) }
	b.ReportMetric(q(0.50), "p50-late-ms")
	b.ReportMetric(q(0.99), "p99-late-ms")
	b.ReportMetric(float64(len(late))/busy.Seconds(), "items/s")
}

// BenchmarkRunWhileOneHangs: one item's Process never returns (a provider
// that does not answer) while 1,000 other ids fall due at the same instant
// and are woken for, as a store write wakes Run. It reports how late each of
// the others is processed (p50, p99): none waits for the hung call.
func BenchmarkRunWhileOneHangs(b *testing.B) {
	const n = 1000
	ids := make([]string, n)
	pos := make(map[string]int, n)
	for i := range ids {
		ids[i] = fmt.Sprintf("r-%04d", i)
		pos[ids[i]] = i
	}
	var late []time.Duration
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		idx := newMemIndex()
		idx.Set("stuck", time.Now().Add(-time.Minute))
		var wg sync.WaitGroup
		wg.Add(n)
		p := &stampProcessor{pos: pos, stamp: make([]time.Time, n), end: func(_ context.Context, id string) error {
			idx.Remove(id)
			wg.Done()
			return nil
		}}
		started := make(chan struct{})
		h := &hangProcessor{next: p, hang: "stuck", started: started}
		s := New(idx, h, nil, nil, Options{Sweep: time.Hour, ItemTimeout: time.Hour})
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() { _ = s.Run(ctx); close(done) }()
		<-started
		due := time.Now()
		for _, id := range ids {
			idx.Set(id, due)
		}
		b.StartTimer()
		s.Wake(due)
		wg.Wait()
		b.StopTimer()
		for _, at := range p.stamp {
			late = append(late, at.Sub(due))
		}
		cancel()
		<-done
	}
	slices.Sort(late)
	q := func(f float64) float64 { return float64(late[int(f*float64(len(late)-1))]) / float64(time.Millisecond) }
	b.ReportMetric(q(0.50), "p50-late-ms")
	b.ReportMetric(q(0.99), "p99-late-ms")
}
