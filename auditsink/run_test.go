package auditsink_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/accessbot/accessbot/access"
	"github.com/accessbot/accessbot/auditsink"
	"github.com/accessbot/accessbot/internal/testclock"
)

// recorder is a sink that keeps what it took and who delivered it.
type recorder struct {
	mu   sync.Mutex
	got  []access.AuditEvent
	by   map[string]int
	done chan struct{}
	want int
}

type ownedSink struct {
	r     *recorder
	owner string
}

func (s ownedSink) Deliver(_ context.Context, evs []access.AuditEvent) error {
	s.r.mu.Lock()
	defer s.r.mu.Unlock()
	s.r.got = append(s.r.got, evs...)
	s.r.by[s.owner] += len(evs)
	if len(s.r.got) == s.r.want {
		close(s.r.done)
	}
	return nil
}

// Two replicas run the same sink's worker: the fenced claim makes one of
// them the deliverer, the sink gets every event once and in order, and
// the claim is released when the workers stop.
func TestRunOneDelivererPerSink(t *testing.T) {
	st := openStore(t)
	clock := testclock.New(t0)
	appendEvents(t, st, clock, 1, 35)
	rec := &recorder{by: map[string]int{}, done: make(chan struct{}), want: 35}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for _, owner := range []string{"replica-a", "replica-b"} {
		w := &auditsink.Worker{Name: "siem", Sink: ownedSink{rec, owner}, Store: st, Fencer: st, Owner: owner,
			Clock: clock, Batch: 10, Poll: time.Millisecond, LeaseTTL: time.Minute}
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := w.Run(ctx); err != nil {
				t.Errorf("Run(%s): %v", owner, err)
			}
		}()
	}
	select {
	case <-rec.done:
	case <-time.After(10 * time.Second): // a bound on a hang, not a timing assertion
		t.Fatalf("delivered %d of 35", len(rec.got))
	}
	cancel()
	wg.Wait()
	all, _, _ := access.ReadAuditChain(context.Background(), st)
	rec.mu.Lock()
	defer rec.mu.Unlock()
	if len(rec.got) != len(all) {
		t.Fatalf("sink got %d events, want %d once each", len(rec.got), len(all))
	}
	for i := range all {
		if rec.got[i].ID != all[i].ID {
			t.Fatalf("event %d is %s, want %s", i+1, rec.got[i].ID, all[i].ID)
		}
	}
	if len(rec.by) != 1 {
		t.Errorf("delivered by %v, want one replica", rec.by)
	}
	// Released: a third owner takes the claim at once.
	if _, ok, err := st.ClaimFenced(context.Background(), "audit-sink:siem", "replica-c", time.Minute); err != nil || !ok {
		t.Errorf("claim after both stopped = %v, %v; want it free", ok, err)
	}
}
