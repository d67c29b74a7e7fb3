package app

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/accessbot/accessbot/access"
	"github.com/accessbot/accessbot/internal/redistest"
	"github.com/accessbot/accessbot/internal/testclock"
	"github.com/accessbot/accessbot/providers/dryrun"
	redisstore "github.com/accessbot/accessbot/store/redis"
)

// takeoverStore sees the fence of every write, and before the first fenced
// write after arm it runs takeover: the job's lease changes hands while
// the job is between two writes, as when its replica pauses past the
// lease.
type takeoverStore struct {
	access.Store
	access.Fencer // the store's own: New locks the jobs with it
	mu            sync.Mutex
	fences        []access.Fence
	takeover      func(ctx context.Context, f access.Fence)
}

func (s *takeoverStore) arm(fn func(ctx context.Context, f access.Fence)) {
	s.mu.Lock()
	s.takeover = fn
	s.mu.Unlock()
}

func (s *takeoverStore) seen() []access.Fence {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]access.Fence(nil), s.fences...)
}

func (s *takeoverStore) write(ctx context.Context) {
	f, ok := access.FenceFrom(ctx)
	if !ok {
		return
	}
	s.mu.Lock()
	s.fences = append(s.fences, f)
	fn := s.takeover
	s.takeover = nil
	s.mu.Unlock()
	if fn != nil {
		fn(ctx, f)
	}
}

func (s *takeoverStore) Create(ctx context.Context, r *access.Request, evs ...access.AuditEvent) error {
	s.write(ctx)
	return s.Store.Create(ctx, r, evs...)
}

func (s *takeoverStore) Update(ctx context.Context, id string, fn func(*access.Request) ([]access.AuditEvent, error)) (*access.Request, error) {
	s.write(ctx)
	return s.Store.Update(ctx, id, fn)
}

func (s *takeoverStore) AppendAudit(ctx context.Context, evs ...access.AuditEvent) error {
	s.write(ctx)
	return s.Store.AppendAudit(ctx, evs...)
}

// TestJobWritesAreFenced: the rotation sync and reconcile jobs write with
// their lock's fence, so once another replica holds the lock (this one's
// lease lapsed while it was paused) their writes fail with ErrFenced and
// nothing of them lands; with the lock free again they work.
func TestJobWritesAreFenced(t *testing.T) {
	l := rotConfig(t, tenHandoffsConfig)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	prefix := redistest.Prefix(t)
	c := redistest.Client(t)
	st := redisstore.New(c, prefix)
	ts := &takeoverStore{Store: st, Fencer: st}
	prov := dryrun.New(nil)
	clock := testclock.New(time.Date(2026, 11, 16, 12, 0, 0, 0, time.UTC))
	var logs syncBuffer
	deps := Deps{Store: ts, Providers: map[string]access.Provisioner{"dryrun": prov}, Clock: clock, Owner: "replica-a",
		Logger: slog.New(slog.NewTextHandler(&logs, nil))}

	// Another replica takes the lock over: the claim lapsed (deleted, as
	// its TTL would) and replica-b holds it now.
	var heldBy []access.Fence
	takeover := func(ctx context.Context, f access.Fence) {
		if err := c.Del(ctx, "{"+prefix+"}:claim:"+f.Key).Err(); err != nil {
			t.Error(err)
		}
		lease, ok, err := st.ClaimFenced(context.WithoutCancel(ctx), f.Key, "replica-b", time.Minute)
		if err != nil || !ok {
			t.Errorf("replica-b's takeover of %s: %v, %v", f.Key, ok, err)
		}
		heldBy = append(heldBy, lease.Fence(f.Key))
	}
	release := func() {
		t.Helper()
		f := heldBy[len(heldBy)-1]
		if ok, err := st.ReleaseFenced(ctx, f.Key, "replica-b"); err != nil || !ok {
			t.Fatalf("replica-b's release of %s: %v, %v", f.Key, ok, err)
		}
	}
	requests := func() []*access.Request {
		t.Helper()
		rs, err := st.List(ctx, access.Filter{})
		if err != nil {
			t.Fatal(err)
		}
		return rs
	}
	audit := func() []access.AuditEvent {
		t.Helper()
		evs, err := st.Audit(ctx, time.Time{})
		if err != nil {
			t.Fatal(err)
		}
		return evs
	}
	const (
		ann, ben = "ann@example.com", "ben@example.com"
		job      = "rotation:sre"
	)

	// The start check (New runs it): its first write finds the lock taken
	// over.
	ts.arm(takeover)
	a, err := New(ctx, l, deps)
	if err != nil {
		t.Fatal(err)
	}
	sched := a.Scheduler()
	fences := ts.seen()
	if len(fences) == 0 || fences[0].Key != "job:"+job || fences[0].Token <= 0 {
		t.Fatalf("the sync's writes carried fences %+v, want the job lock's", fences)
	}
	if !strings.Contains(logs.String(), "first check failed") || !strings.Contains(logs.String(), access.ErrFenced.Error()) {
		t.Errorf("the refused start check was not reported as fenced:\n%s", logs.String())
	}
	if rs, evs := requests(), audit(); len(rs) != 0 || len(evs) != 0 || prov.IsMember("prod-readers", ann) {
		t.Fatalf("the fenced sync left %d requests, %d audit events, member %v; want nothing", len(rs), len(evs), prov.IsMember("prod-readers", ann))
	}

	// The lock is free again: the sync works.
	release()
	if err := sched.RunJob(ctx, job); err != nil {
		t.Fatalf("sync with the lock free: %v", err)
	}
	if rs := requests(); len(rs) != 1 || rs[0].State != access.StateActive || !prov.IsMember("prod-readers", ann) {
		t.Fatalf("after the sync: %d requests, member %v; want ann's active shift grant", len(rs), prov.IsMember("prod-readers", ann))
	}
	nAudit := len(audit())

	// Reconcile finds ann's membership gone and adds it back, but its
	// audit of that is written after the lock changed hands: refused.
	if err := prov.Revoke(ctx, access.Grant{Group: "prod-readers", User: ann}); err != nil {
		t.Fatal(err)
	}
	ts.arm(takeover)
	if err := sched.RunJob(ctx, "reconcile"); err != nil {
		t.Fatalf("reconcile: %v", err)
	}
	if f := ts.seen(); f[len(f)-1].Key != "job:reconcile" {
		t.Errorf("reconcile's write carried fence %+v, want the reconcile lock's", f[len(f)-1])
	}
	for _, ev := range audit()[nAudit:] {
		t.Errorf("a fenced reconcile write landed: %+v", ev)
	}
	release()

	// The next handoff: ben's grant is refused after the takeover.
	clock.Set(time.Date(2026, 11, 17, 9, 0, 0, 0, time.UTC))
	ts.arm(takeover)
	if err := sched.RunJob(ctx, job); !errors.Is(err, access.ErrFenced) {
		t.Fatalf("sync after the takeover = %v, want ErrFenced", err)
	}
	for _, r := range requests() {
		if r.Requester == ben {
			t.Errorf("ben's shift grant was stored: %+v", r)
		}
	}
	if prov.IsMember("prod-readers", ben) {
		t.Error("ben was granted by a fenced sync")
	}
}
