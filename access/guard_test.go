package access_test

import (
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/accessbot/accessbot/access"
	"github.com/accessbot/accessbot/internal/testclock"
	"github.com/accessbot/accessbot/providers/dryrun"
)

// diesInCreate is the store of a replica that dies while it writes a new
// request under the submit guard: its Create never returns (until the
// test lets it fail), and it renews no claim any more.
type diesInCreate struct {
	access.Store
	entered chan struct{}
	release chan struct{}
	dead    atomic.Bool
}

func (d *diesInCreate) Create(ctx context.Context, r *access.Request, evs ...access.AuditEvent) error {
	d.dead.Store(true)
	close(d.entered)
	<-d.release
	return errors.New("replica killed")
}

func (d *diesInCreate) Claim(ctx context.Context, key, owner string, ttl time.Duration) (bool, error) {
	if d.dead.Load() {
		return false, errors.New("replica killed")
	}
	return d.Store.Claim(ctx, key, owner, ttl)
}

// A replica that dies holding a person's submit guard does not turn away
// the same command when another replica takes it over from the chat
// inbox (a whole lease TTL later): the guard is short and lapses first.
// It used to last twice StoreTimeout (20 s by default), so the command
// taken over after the 10 s inbox lease was answered "busy" and lost.
func TestSubmitGuardOfADeadReplicaLapsesBeforeTakeOver(t *testing.T) {
	for name, open := range map[string]func(*testing.T) access.Store{"bolt": boltStore, "redis": redisStore} {
		t.Run(name, func(t *testing.T) {
			st := open(t)
			opt := access.Options{LeaseTTL: 400 * time.Millisecond, StoreTimeout: 10 * time.Second}
			clock := testclock.New(t0)
			dying := &diesInCreate{Store: st, entered: make(chan struct{}), release: make(chan struct{})}
			a, err := access.NewService(access.Deps{Store: dying, Policy: policy(), Providers: map[string]access.Provisioner{"dryrun": dryrun.New(nil)},
				Clock: clock, Options: opt})
			if err != nil {
				t.Fatal(err)
			}
			b, err := access.NewService(access.Deps{Store: st, Policy: policy(), Providers: map[string]access.Provisioner{"dryrun": dryrun.New(nil)},
				Clock: clock, Options: opt})
			if err != nil {
				t.Fatal(err)
			}
			in := access.SubmitInput{Requester: "alice@example.com", Role: "prod-admin", Duration: time.Hour, Reason: "fixing checkout"}
			failed := make(chan error, 1)
			go func() {
				_, err := a.Submit(context.Background(), in)
				failed <- err
			}()
			<-dying.entered
			// The inbox lease (a whole lease TTL) lapses before another
			// replica takes the command over.
			time.Sleep(opt.LeaseTTL)
			r, err := b.Submit(context.Background(), in)
			close(dying.release)
			if err != nil {
				t.Fatalf("the taken-over command was refused: %v", err)
			}
			if r.State != access.StatePending {
				t.Fatalf("stored %s", r.State)
			}
			if err := <-failed; err == nil || !strings.Contains(err.Error(), "replica killed") {
				t.Fatalf("the dying replica's submit: %v", err)
			}
		})
	}
}
