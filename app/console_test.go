package app

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/accessbot/accessbot/access"
	"github.com/accessbot/accessbot/bot/console"
	"github.com/accessbot/accessbot/config"
	"github.com/accessbot/accessbot/internal/redistest"
	"github.com/accessbot/accessbot/internal/testclock"
	"github.com/accessbot/accessbot/providers/dryrun"
	"github.com/accessbot/accessbot/scheduler"
	"github.com/accessbot/accessbot/store/bolt"
	redisstore "github.com/accessbot/accessbot/store/redis"
)

func TestMain(m *testing.M) { redistest.Main(m.Run) }

func writeFile(t *testing.T, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "accessbot.yaml")
	if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}
func (s *syncBuffer) String() string { s.mu.Lock(); defer s.mu.Unlock(); return s.b.String() }

// stack is the demo policy wired by New, with an injected clock.
type stack struct {
	app   *App
	svc   *access.Service
	con   *console.Console
	sched *scheduler.Scheduler
	prov  *dryrun.Provider
	clock *testclock.Clock
	out   *syncBuffer
	store access.Store
}

func newStack(t *testing.T, st access.Store) *stack {
	t.Helper()
	l, err := config.Load("../manifests/examples/demo.yaml")
	if err != nil {
		t.Fatal(err)
	}
	s := &stack{clock: testclock.New(time.Date(2026, 11, 18, 10, 0, 0, 0, time.UTC)), out: &syncBuffer{}, prov: dryrun.New(nil)}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	s.app, err = New(ctx, l, Deps{Clock: s.clock, Store: st, Stdout: s.out,
		Providers: map[string]access.Provisioner{"dryrun": s.prov}})
	if err != nil {
		t.Fatal(err)
	}
	s.svc, s.con, s.sched, s.store = s.app.Service(), s.app.Console(), s.app.Scheduler(), s.app.Store()
	return s
}

func (s *stack) lines(t *testing.T, lines ...string) {
	t.Helper()
	for _, l := range lines {
		if err := s.con.Line(context.Background(), l); err != nil {
			t.Fatal(err)
		}
	}
}

func TestConsoleApproveAndExpire(t *testing.T) {
	st, err := bolt.Open(filepath.Join(t.TempDir(), "a.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	s := newStack(t, st)
	s.lines(t, "alice: /access prod-admin 1m fixing checkout", "alice: approve", "carol: approve", "bob: approve")
	if !s.prov.IsMember("prod-admins", "alice@example.com") {
		t.Fatalf("alice not added:\n%s", s.out)
	}
	s.clock.Advance(59 * time.Second)
	if n, _ := s.sched.Drain(context.Background()); n != 0 || !s.prov.IsMember("prod-admins", "alice@example.com") {
		t.Fatal("revoked before the end time")
	}
	s.clock.Advance(time.Second)
	if _, err := s.sched.Drain(context.Background()); err != nil {
		t.Fatal(err)
	}
	if s.prov.IsMember("prod-admins", "alice@example.com") {
		t.Fatalf("alice not removed at expiry:\n%s", s.out)
	}
	o := s.out.String()
	for _, want := range []string{"revoke_started", "revoked role=prod-admin", "ended at 2026-11-18 10:01 UTC (expired)", "Your prod-admin access has ended"} {
		if !strings.Contains(o, want) {
			t.Errorf("missing %q in\n%s", want, o)
		}
	}
	// A decision on the ended request says what happened and changes nothing.
	s.lines(t, "dave: deny "+lastID(t, s))
	if !strings.Contains(s.out.String(), "is already ended at 2026-11-18 10:01 UTC (expired); nothing was changed") {
		t.Fatalf("stale decision:\n%s", s.out)
	}
}

func lastID(t *testing.T, s *stack) string {
	t.Helper()
	// alice's: New also granted the on-call person's shift (the demo's
	// rotation), which is not the request these tests follow.
	all, err := s.store.List(context.Background(), access.Filter{Requester: "alice@example.com", Limit: 1})
	if err != nil || len(all) == 0 {
		t.Fatal("no request", err)
	}
	return all[0].ID
}

// TestExpiredWhileDownRevokedAtStart writes a grant whose end passed while
// no process ran, then starts the scheduler: its first drain revokes it.
func TestExpiredWhileDownRevokedAtStart(t *testing.T) {
	stores := map[string]func(t *testing.T) (access.Store, func() access.Store){
		"bolt": func(t *testing.T) (access.Store, func() access.Store) {
			p := filepath.Join(t.TempDir(), "r.db")
			st, err := bolt.Open(p)
			if err != nil {
				t.Fatal(err)
			}
			return st, func() access.Store {
				st.Close()
				st2, err := bolt.Open(p)
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { st2.Close() })
				return st2
			}
		},
		"redis": func(t *testing.T) (access.Store, func() access.Store) {
			prefix := redistest.Prefix(t)
			st := redisstore.New(redistest.Client(t), prefix)
			return st, func() access.Store { return redisstore.New(redistest.Client(t), prefix) }
		},
	}
	for name, open := range stores {
		t.Run(name, func(t *testing.T) {
			st, reopen := open(t)
			s := newStack(t, st)
			s.lines(t, "alice: /access prod-admin 1m fixing checkout", "bob: approve")
			if !s.prov.IsMember("prod-admins", "alice@example.com") {
				t.Fatal("not granted")
			}
			// "Down" for ten minutes: a new process over the same data.
			st2 := reopen()
			s2 := newStack(t, st2)
			s2.prov.AddMember("prod-admins", "alice@example.com")
			s2.clock.Advance(10 * time.Minute)
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan error, 1)
			go func() { done <- s2.sched.Run(ctx) }()
			deadline := time.After(20 * time.Second)
			for s2.prov.IsMember("prod-admins", "alice@example.com") {
				select {
				case <-deadline:
					t.Fatal("expired grant not revoked after start")
				case <-time.After(10 * time.Millisecond):
				}
			}
			cancel()
			<-done
			r, _ := st2.Get(context.Background(), lastID(t, s2))
			if r.State != access.StateEnded || r.EndReason != access.EndExpired {
				t.Fatalf("state %s", r.State)
			}
		})
	}
}
