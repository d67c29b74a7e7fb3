package scheduler

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/accessbot/accessbot/access"
	"github.com/accessbot/accessbot/internal/redistest"
	"github.com/accessbot/accessbot/internal/testclock"
)

// pausingLocker hands out locks whose renewals stand still while the
// process is "paused" (a GC pause, a frozen VM, a partition): Refresh
// blocks, deaf to its context as a frozen process is, until resume closes.
type pausingLocker struct {
	Locker
	resume <-chan struct{}
}

func (p *pausingLocker) Obtain(ctx context.Context, key string, ttl time.Duration) (Lock, error) {
	l, err := p.Locker.Obtain(ctx, key, ttl)
	if err != nil {
		return nil, err
	}
	return &pausingLock{Lock: l, resume: p.resume}, nil
}

type pausingLock struct {
	Lock
	resume <-chan struct{}
}

func (l *pausingLock) Refresh(ctx context.Context, ttl time.Duration) error {
	<-l.resume
	return l.Lock.Refresh(context.WithoutCancel(ctx), ttl)
}

// TestStaleLeaderCannotWrite: leader A of a singleton job pauses past its
// lease; B takes the job over and writes; when A wakes up and writes, on
// its job context, the store refuses every write with ErrFenced and
// nothing of A's lands.
func TestStaleLeaderCannotWrite(t *testing.T) {
	ctx := testCtx(t)
	prefix := redistest.Prefix(t)
	const ttl = 300 * time.Millisecond
	stA, stB := redisStore(t, prefix), redisStore(t, prefix)
	var logsB lockedBuffer
	logB := slog.New(slog.NewTextHandler(&logsB, nil))

	shared := &access.Request{ID: "r-shared234", Requester: "alice@example.com", Role: "prod-admin",
		State: access.StatePending, CreatedAt: t0, UpdatedAt: t0}
	if err := stB.Create(ctx, shared); err != nil {
		t.Fatal(err)
	}

	// Replica A: its job starts, then the process pauses (renewals and
	// job alike) until resumed.
	resume := make(chan struct{})
	idxA := newMemIndex()
	schedA := New(idxA, newRecorder(idxA, testclock.New(t0)), nil, testLogger(t),
		Options{Sweep: time.Hour, LockTTL: ttl, Locker: &pausingLocker{Locker: NewStoreLocker(stA, "replica-a", testLogger(t)), resume: resume}})
	entered := make(chan struct{})
	type outcome struct{ create, update, audit error }
	gotA := make(chan outcome, 1)
	must(t, schedA.AddJob("sync", "@hourly", func(jctx context.Context) error {
		close(entered)
		<-resume // paused past the lease
		// Bookkeeping is written on a context detached from the job's
		// cancellation (as the service's writes are), so the renewal
		// noticing the loss would not stop it: only the fence does.
		jctx = context.WithoutCancel(jctx)
		var o outcome
		o.create = stA.Create(jctx, &access.Request{ID: "r-fromA234", Requester: "bob@example.com", Role: "prod-admin",
			State: access.StatePending, CreatedAt: t0}, access.AuditEvent{RequestID: "r-fromA234", Action: access.ActSubmitted, Actor: "replica-a", At: t0})
		_, o.update = stA.Update(jctx, shared.ID, func(r *access.Request) ([]access.AuditEvent, error) {
			r.Reason = "written by replica-a"
			return []access.AuditEvent{{RequestID: shared.ID, Action: access.ActDenied, Actor: "replica-a", At: t0}}, nil
		})
		o.audit = stA.AppendAudit(jctx, access.AuditEvent{Action: access.ActDriftRemoved, Actor: "replica-a", At: t0})
		gotA <- o
		return errors.Join(o.create, o.update, o.audit)
	}))

	// Replica B: the same job, writing on its job context.
	idxB := newMemIndex()
	schedB := New(idxB, newRecorder(idxB, testclock.New(t0)), nil, logB,
		Options{Sweep: time.Hour, LockTTL: ttl, Locker: NewStoreLocker(stB, "replica-b", logB)})
	must(t, schedB.AddJob("sync", "@hourly", func(jctx context.Context) error {
		if _, err := stB.Update(jctx, shared.ID, func(r *access.Request) ([]access.AuditEvent, error) {
			r.Reason = "written by replica-b"
			return nil, nil
		}); err != nil {
			return err
		}
		return stB.AppendAudit(jctx, access.AuditEvent{Action: access.ActDriftRemoved, Actor: "replica-b", At: t0})
	}))

	doneA := make(chan error, 1)
	go func() { doneA <- schedA.RunJob(ctx, "sync") }()
	select {
	case <-entered:
	case <-ctx.Done():
		t.Fatal("A's job never started")
	}
	// B takes over once A's lease has lapsed (A renews nothing while
	// paused): real time, as Redis's TTLs run on it, about ttl.
	for {
		err := schedB.RunJob(ctx, "sync")
		if err == nil {
			break
		}
		if !errors.Is(err, ErrNotObtained) {
			t.Fatalf("B's run: %v", err)
		}
		select {
		case <-ctx.Done():
			t.Fatal("B never took the job over")
		case <-time.After(20 * time.Millisecond):
		}
	}

	close(resume) // A wakes up, believing it still leads, and writes
	o := <-gotA
	for what, err := range map[string]error{"Create": o.create, "Update": o.update, "AppendAudit": o.audit} {
		if !errors.Is(err, access.ErrFenced) {
			t.Errorf("stale leader's %s = %v, want ErrFenced", what, err)
		}
	}
	if err := <-doneA; !errors.Is(err, access.ErrFenced) {
		t.Errorf("A's RunJob = %v, want its job's ErrFenced", err)
	}

	// Nothing of A's landed; B's writes did.
	if _, err := stB.Get(ctx, "r-fromA234"); !errors.Is(err, access.ErrNotFound) {
		t.Errorf("A's request was stored (Get = %v)", err)
	}
	got, err := stB.Get(ctx, shared.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.Reason != "written by replica-b" || got.State != access.StatePending {
		t.Errorf("shared request = %q, %s; want B's write only", got.Reason, got.State)
	}
	evs, err := stB.Audit(ctx, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	if len(evs) != 1 || evs[0].Actor != "replica-b" {
		t.Errorf("audit = %+v, want B's one event", evs)
	}

	// B said it took over from a holder whose lease lapsed, naming A.
	if out := logsB.String(); !strings.Contains(out, "level=WARN") || !strings.Contains(out, "lapsed") ||
		!strings.Contains(out, "previous_owner=replica-a:") || !strings.Contains(out, "lock=job:sync") {
		t.Errorf("B's log lacks the lapsed takeover of A's lock:\n%s", out)
	}
}

// TestJobWritesCarryFence: a job's context carries its lock's fence, and a
// write with the fence of an earlier run fails.
func TestJobWritesCarryFence(t *testing.T) {
	for _, tc := range []struct {
		name  string
		store func(t *testing.T) interface {
			access.Store
			access.Fencer
		}
	}{
		{"bolt", func(t *testing.T) interface {
			access.Store
			access.Fencer
		} {
			return boltStore(t)
		}},
		{"redis", func(t *testing.T) interface {
			access.Store
			access.Fencer
		} {
			return redisStore(t, redistest.Prefix(t))
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := testCtx(t)
			st := tc.store(t)
			s := New(st, newRecorder(newMemIndex(), testclock.New(t0)), nil, testLogger(t), quiet)
			var fences []access.Fence
			must(t, s.AddJob("reconcile", "@hourly", func(jctx context.Context) error {
				f, ok := access.FenceFrom(jctx)
				if !ok {
					return errors.New("the job's context carries no fence")
				}
				fences = append(fences, f)
				return st.AppendAudit(jctx, access.AuditEvent{Action: access.ActDriftRemoved, Actor: "run", At: t0})
			}))
			must(t, s.RunJob(ctx, "reconcile"))
			must(t, s.RunJob(ctx, "reconcile"))
			if len(fences) != 2 || fences[0].Key != "job:reconcile" || fences[1].Token <= fences[0].Token {
				t.Fatalf("fences = %+v, want job:reconcile with increasing tokens", fences)
			}
			// The first run's fence is stale now, and so is the second's
			// once its run released the lock.
			for _, f := range fences {
				err := st.AppendAudit(access.WithFence(ctx, f), access.AuditEvent{Action: access.ActDriftRemoved, Actor: "stale", At: t0})
				if !errors.Is(err, access.ErrFenced) {
					t.Errorf("write with the fence of a finished run %+v = %v, want ErrFenced", f, err)
				}
			}
			if evs, _ := st.Audit(ctx, time.Time{}); len(evs) != 2 {
				t.Errorf("audit has %d events, want the two runs' own", len(evs))
			}
		})
	}
}
