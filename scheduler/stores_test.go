package scheduler

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/accessbot/accessbot/access"
	"github.com/accessbot/accessbot/internal/redistest"
	"github.com/accessbot/accessbot/internal/testclock"
	"github.com/accessbot/accessbot/store/bolt"
	storeredis "github.com/accessbot/accessbot/store/redis"
	goredis "github.com/redis/go-redis/v9"
)

// realStores opens each real store, cleaned up when the test ends.
func realStores() []struct {
	name string
	open func(t testing.TB) access.Store
} {
	return []struct {
		name string
		open func(t testing.TB) access.Store
	}{
		{"bolt", func(t testing.TB) access.Store {
			s, err := bolt.Open(filepath.Join(t.TempDir(), "accessbot.db"))
			if err != nil {
				t.Fatalf("bolt: %v", err)
			}
			t.Cleanup(func() { _ = s.Close() })
			return s
		}},
		{"redis", func(t testing.TB) access.Store {
			prefix := redistest.Prefix(t)
			c := redistest.Client(t)
			// The store's keys start with "{prefix}", out of redistest's sight.
			t.Cleanup(func() { deleteKeys(c, "{"+prefix+"}*") })
			s := storeredis.New(c, prefix)
			t.Cleanup(func() { _ = s.Close() })
			return s
		}},
	}
}

func deleteKeys(c *goredis.Client, pattern string) {
	ctx := context.Background()
	iter := c.Scan(ctx, 0, pattern, 1000).Iterator()
	var keys []string
	for iter.Next(ctx) {
		keys = append(keys, iter.Val())
	}
	for len(keys) > 0 {
		n := min(len(keys), 1000)
		c.Del(ctx, keys[:n]...)
		keys = keys[n:]
	}
}

// expirer ends active grants whose time is up, as the service's Process
// does (without the provider call), and reports each call.
type expirer struct {
	store access.Store
	clock access.Clock
	calls chan string
}

func (e *expirer) Process(ctx context.Context, id string) error {
	defer func() { e.calls <- id }()
	now := e.clock.Now()
	_, err := e.store.Update(ctx, id, func(r *access.Request) ([]access.AuditEvent, error) {
		if r.State != access.StateActive || now.Before(r.EndsAt) {
			return nil, errNothingDue
		}
		r.State = access.StateEnded
		r.EndReason = access.EndExpired
		r.EndedAt = now
		r.UpdatedAt = now
		return nil, nil
	})
	if errors.Is(err, errNothingDue) {
		return nil
	}
	return err
}

var errNothingDue = errors.New("nothing due")

func activeGrant(id string, granted, ends time.Time) *access.Request {
	return &access.Request{
		ID:        id,
		Kind:      access.KindRequest,
		Requester: "alice@example.com",
		Role:      "prod-admin",
		Provider:  "aws",
		Group:     "g-prod-admin",
		Duration:  ends.Sub(granted),
		Reason:    "fixing the checkout outage",
		State:     access.StateActive,
		CreatedAt: granted,
		UpdatedAt: granted,
		GrantedAt: granted,
		EndsAt:    ends,
	}
}

func awaitN(ctx context.Context, t *testing.T, ch <-chan string, n int) map[string]int {
	t.Helper()
	got := map[string]int{}
	for i := 0; i < n; i++ {
		select {
		case id := <-ch:
			got[id]++
		case <-ctx.Done():
			t.Fatalf("%d of %d Process calls before the deadline", i, n)
		}
	}
	return got
}

func TestRealStores(t *testing.T) {
	for _, st := range realStores() {
		t.Run(st.name, func(t *testing.T) {
			ctx := testCtx(t)
			store := st.open(t)
			clock := testclock.New(t0)
			granted := t0.Add(-4 * time.Hour)
			// Expired while the process was down, and still running.
			for i := range 50 {
				r := activeGrant(fmt.Sprintf("r-down%02d", i), granted, t0.Add(-time.Duration(i+1)*time.Minute))
				must(t, store.Create(ctx, r))
			}
			for i := range 5 {
				r := activeGrant(fmt.Sprintf("r-live%02d", i), granted, t0.Add(time.Hour+time.Duration(i)*time.Second))
				must(t, store.Create(ctx, r))
			}
			e := &expirer{store: store, clock: clock, calls: make(chan string, 1000)}
			s := New(store, e, clock, testLogger(t), Options{Sweep: time.Hour, Workers: 4, Batch: 7})
			armed := watchArm(s)
			start(t, s)

			got := awaitN(ctx, t, e.calls, 50)
			armed.await(ctx, t, t0.Add(time.Hour)) // the next grant's end
			for i := range 50 {
				id := fmt.Sprintf("r-down%02d", i)
				if got[id] != 1 {
					t.Errorf("%s processed %d times at start, want 1", id, got[id])
				}
				if r, err := store.Get(ctx, id); err != nil || r.State != access.StateEnded {
					t.Errorf("%s after start: %v, %v; want ended", id, r.State, err)
				}
			}
			for i := range 5 {
				if r, _ := store.Get(ctx, fmt.Sprintf("r-live%02d", i)); r.State != access.StateActive {
					t.Errorf("r-live%02d is %s before its end, want active", i, r.State)
				}
			}

			// Their time comes; a Wake (as the service sends) makes it act.
			clock.Set(t0.Add(time.Hour + 10*time.Second))
			s.Wake(t0.Add(time.Hour))
			awaitN(ctx, t, e.calls, 5)
			armed.await(ctx, t, time.Time{}) // nothing left to wait for
			if _, ok, err := store.NextDue(ctx); ok || err != nil {
				t.Errorf("NextDue after everything ended = %v, %v; want none", ok, err)
			}
			for i := range 5 {
				if r, _ := store.Get(ctx, fmt.Sprintf("r-live%02d", i)); r.State != access.StateEnded {
					t.Errorf("r-live%02d is %s after its end, want ended", i, r.State)
				}
			}
		})
	}
}
