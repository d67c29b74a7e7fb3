package access_test

import (
	"context"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/accessbot/accessbot/access"
	"github.com/accessbot/accessbot/internal/testclock"
	"github.com/accessbot/accessbot/providers/dryrun"
	"github.com/accessbot/accessbot/providers/static"
)

// Taking over a request's lease that its holder left to lapse (the holder
// died mid-call) is logged as such, naming the previous holder, from what
// the store knows rather than from a guess.
func TestLapsedLeaseTakeoverIsLogged(t *testing.T) {
	st := boltStore(t)
	if _, ok := st.(access.Fencer); !ok {
		t.Fatal("the bolt store hands out no fencing tokens")
	}
	rot, errs := static.New(static.Config{Name: "platform", Timezone: "Europe/Berlin", Handoff: "monday 09:00",
		Start: "2026-11-16", Members: []string{"bob@example.com", "carol@example.com"}})
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	c := testclock.New(t0)
	logs := &syncBuffer{}
	const ttl = 150 * time.Millisecond
	svc, err := access.NewService(access.Deps{Store: st, Policy: policy(),
		Providers: map[string]access.Provisioner{"dryrun": dryrun.New(nil)},
		OnCall:    access.OnCallRouter{"platform": rot}, Notifier: &recorder{}, Clock: c, Owner: "replica-b",
		Logger:  slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelWarn})),
		Options: access.Options{LeaseTTL: ttl}})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	r, err := svc.Submit(ctx, access.SubmitInput{Requester: "alice@example.com", Role: "prod-admin", Duration: time.Hour, Reason: "fixing checkout"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := svc.Decide(ctx, r.ID, "bob@example.com", true, ""); err != nil {
		t.Fatal(err)
	}
	// A replica took the revocation's lease and died: it never renews nor
	// releases it.
	if ok, err := st.Claim(ctx, "request:"+r.ID, "replica-a:dead", ttl); err != nil || !ok {
		t.Fatalf("claim: %v %v", ok, err)
	}
	c.Advance(time.Hour + time.Minute)
	if err := svc.Process(ctx, r.ID); err != nil {
		t.Fatal(err)
	}
	if got := getReq(t, st, r.ID); got.State == access.StateEnded {
		t.Fatal("the revocation ran while another replica held its lease")
	}
	time.Sleep(2 * ttl) // the dead holder's lease lapses (the store keeps real time)
	if err := svc.Process(ctx, r.ID); err != nil {
		t.Fatal(err)
	}
	if got := getReq(t, st, r.ID); got.State != access.StateEnded {
		t.Fatalf("state %s after the lapsed lease was taken over, want ended", got.State)
	}
	out := logs.String()
	if !strings.Contains(out, "lease taken over from a holder whose lease lapsed") || !strings.Contains(out, "previous_owner=replica-a:dead") ||
		!strings.Contains(out, "lease=request:"+r.ID) {
		t.Fatalf("the takeover is not logged with its previous holder:\n%s", out)
	}
}
