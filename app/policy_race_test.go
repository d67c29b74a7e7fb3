package app

import (
	"context"
	"errors"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/accessbot/accessbot/access"
	"github.com/accessbot/accessbot/internal/redistest"
	"github.com/accessbot/accessbot/internal/testclock"
	"github.com/accessbot/accessbot/providers/dryrun"
	boltstore "github.com/accessbot/accessbot/store/bolt"
	redisstore "github.com/accessbot/accessbot/store/redis"
)

func racePolicy() *access.Policy {
	return &access.Policy{Roles: map[string]access.Role{
		"prod-admin": {Name: "prod-admin", Description: "admin", Provider: "dryrun", Group: "g-admin",
			MaxDuration: 4 * time.Hour, DefaultDuration: time.Hour, ApproverUsers: []string{"dave@example.com"},
			Approvals: 1, PendingTTL: time.Hour},
	}}
}

// raceStores opens each real store: bolt, and redis shared by two services
// (two replicas).
func raceStores(t *testing.T) map[string]func(t *testing.T) (access.Store, access.Store) {
	return map[string]func(t *testing.T) (access.Store, access.Store){
		"bolt": func(t *testing.T) (access.Store, access.Store) {
			st, err := boltstore.Open(filepath.Join(t.TempDir(), "race.db"))
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { st.Close() })
			return st, st
		},
		"redis": func(t *testing.T) (access.Store, access.Store) {
			prefix := redistest.Prefix(t)
			return redisstore.New(redistest.Client(t), prefix), redisstore.New(redistest.Client(t), prefix)
		},
	}
}

func raceService(t *testing.T, st access.Store, clock access.Clock, owner string, opt access.Options) *access.Service {
	t.Helper()
	svc, err := access.NewService(access.Deps{Store: st, Policy: racePolicy(),
		Providers: map[string]access.Provisioner{"dryrun": dryrun.New(nil)}, Clock: clock, Owner: owner, Options: opt})
	if err != nil {
		t.Fatal(err)
	}
	return svc
}

// TestConcurrentExtendsStayWithinMax: eight +3h extends of one 1h grant
// of a 4h role, at once from two replicas: at most one is pending, and
// after every pending extension is approved the grant ends no later than
// 4h from now (before, all eight were stored and the grant ended 25h out).
func TestConcurrentExtendsStayWithinMax(t *testing.T) {
	for name, open := range raceStores(t) {
		t.Run(name, func(t *testing.T) {
			st1, st2 := open(t)
			clock := testclock.New(time.Date(2026, 11, 18, 10, 0, 0, 0, time.UTC))
			svcs := []*access.Service{raceService(t, st1, clock, "replica-1", access.Options{}), raceService(t, st2, clock, "replica-2", access.Options{})}
			ctx := context.Background()
			r, err := svcs[0].Submit(ctx, access.SubmitInput{Requester: "alice@example.com", Role: "prod-admin", Duration: time.Hour, Reason: "x"})
			if err != nil {
				t.Fatal(err)
			}
			if r, err = svcs[0].Decide(ctx, r.ID, "dave@example.com", true, ""); err != nil || r.State != access.StateActive {
				t.Fatalf("approve: %v %v", r, err)
			}
			var wg sync.WaitGroup
			errs := make([]error, 8)
			for i := range errs {
				wg.Add(1)
				go func() {
					defer wg.Done()
					_, errs[i] = svcs[i%2].Extend(ctx, r.ID, "alice@example.com", 3*time.Hour, "more time")
				}()
			}
			wg.Wait()
			pend, err := st1.List(ctx, access.Filter{Requester: "alice@example.com", States: []access.State{access.StatePending}})
			if err != nil {
				t.Fatal(err)
			}
			if len(pend) != 1 {
				t.Fatalf("%d pending extensions after 8 concurrent extends, want 1 (errors %v)", len(pend), errs)
			}
			for _, err := range errs {
				if err != nil && !errors.Is(err, access.ErrDuplicate) && !errors.Is(err, access.ErrConflict) {
					t.Errorf("unexpected refusal: %v", err)
				}
			}
			for i, p := range pend {
				if _, err := svcs[i%2].Decide(ctx, p.ID, "dave@example.com", true, ""); err != nil {
					t.Fatalf("approve extension: %v", err)
				}
			}
			g, err := st1.Get(ctx, r.ID)
			if err != nil {
				t.Fatal(err)
			}
			if max := clock.Now().Add(4 * time.Hour); g.EndsAt.After(max) {
				t.Fatalf("grant ends %v, past the maximum %v", g.EndsAt, max)
			}
			t.Logf("%s: 8 concurrent extends -> %d pending; grant ends %s after now", name, len(pend), g.EndsAt.Sub(clock.Now()))
		})
	}
}

// TestCommandLimitSharedByReplicas: the per-minute command count is kept
// in the store, so two replicas together allow the limit, not twice it.
func TestCommandLimitSharedByReplicas(t *testing.T) {
	prefix := redistest.Prefix(t)
	clock := testclock.New(time.Date(2026, 11, 18, 10, 0, 0, 0, time.UTC))
	opt := access.Options{CommandsPerMinute: 3}
	a := raceService(t, redisstore.New(redistest.Client(t), prefix), clock, "replica-1", opt)
	b := raceService(t, redisstore.New(redistest.Client(t), prefix), clock, "replica-2", opt)
	ctx := context.Background()
	for i, svc := range []*access.Service{a, b, a} {
		if err := svc.Throttle(ctx, "alice@example.com"); err != nil {
			t.Fatalf("command %d: %v", i+1, err)
		}
	}
	if err := b.Throttle(ctx, "alice@example.com"); !errors.Is(err, access.ErrRateLimited) {
		t.Fatalf("4th command on the other replica: %v, want ErrRateLimited", err)
	}
}

// TestConcurrentSubmitsOneRequest: eight submits of the same role at once
// (from two replicas), and eight break-glass requests at once, each leave
// exactly one live request.
func TestConcurrentSubmitsOneRequest(t *testing.T) {
	for name, open := range raceStores(t) {
		t.Run(name, func(t *testing.T) {
			st1, st2 := open(t)
			clock := testclock.New(time.Date(2026, 11, 18, 10, 0, 0, 0, time.UTC))
			pol := racePolicy()
			role := pol.Roles["prod-admin"]
			role.BreakGlass = true
			pol.Roles["prod-admin"] = role
			pol.BreakGlass = []string{"erin@example.com"}
			var svcs []*access.Service
			for i, st := range []access.Store{st1, st2} {
				svc, err := access.NewService(access.Deps{Store: st, Policy: pol, Clock: clock, Owner: "replica-" + string(rune('1'+i)),
					Providers: map[string]access.Provisioner{"dryrun": dryrun.New(nil)}})
				if err != nil {
					t.Fatal(err)
				}
				svcs = append(svcs, svc)
			}
			ctx := context.Background()
			for _, who := range []string{"alice@example.com", "erin@example.com"} {
				var wg sync.WaitGroup
				errs := make([]error, 8)
				for i := range errs {
					wg.Add(1)
					go func() {
						defer wg.Done()
						in := access.SubmitInput{Requester: who, Role: "prod-admin", Duration: time.Hour, Reason: "x"}
						if who == "erin@example.com" {
							_, errs[i] = svcs[i%2].BreakGlass(ctx, in)
						} else {
							_, errs[i] = svcs[i%2].Submit(ctx, in)
						}
					}()
				}
				wg.Wait()
				live, err := st1.List(ctx, access.Filter{Requester: who,
					States: []access.State{access.StatePending, access.StateApproved, access.StateActive}})
				if err != nil {
					t.Fatal(err)
				}
				if len(live) != 1 {
					t.Fatalf("%s: %d live requests after 8 concurrent submits, want 1 (errors %v)", who, len(live), errs)
				}
				for _, err := range errs {
					if err != nil && !errors.Is(err, access.ErrDuplicate) && !errors.Is(err, access.ErrConflict) {
						t.Errorf("unexpected refusal: %v", err)
					}
				}
			}
		})
	}
}
