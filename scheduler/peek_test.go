package scheduler

import (
	"testing"
	"time"

	"github.com/accessbot/accessbot/access"
)

// A due time stored by another replica (no Wake reaches this scheduler:
// the grant or revocation whose worker died there) is found by the peek at
// the index within about Peek, not only at the next sweep.
func TestPeekFindsDueTimeStoredElsewhere(t *testing.T) {
	ctx := testCtx(t)
	clock := access.SystemClock{}
	idx := newMemIndex()
	idx.Set("later", clock.Now().Add(time.Hour))
	rec := newRecorder(idx, clock)
	opts := quiet
	opts.Sweep = time.Hour // the sweep cannot be what finds it
	opts.Peek = 50 * time.Millisecond
	s := New(idx, rec, clock, testLogger(t), opts)
	armed := watchArm(s)
	start(t, s)
	select { // the first drain is over and the timer armed for "later"
	case <-armed:
	case <-ctx.Done():
		t.Fatal("Run never armed its timer")
	}

	due := clock.Now().Add(200 * time.Millisecond)
	idx.Set("elsewhere", due) // stored by another replica: no Wake
	c := rec.awaitID(ctx, t, "elsewhere")
	if late := c.at.Sub(due); late < 0 || late > time.Second {
		t.Fatalf("processed %v after its due time, want within about Peek (50ms)", late)
	}
	if rec.count("later") != 0 {
		t.Error("the later item was processed too")
	}
}
