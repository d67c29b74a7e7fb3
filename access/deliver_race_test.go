package access_test

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/accessbot/accessbot/access"
	"github.com/accessbot/accessbot/internal/testclock"
	"github.com/accessbot/accessbot/providers/dryrun"
	"github.com/accessbot/accessbot/providers/static"
)

// lateAnnouncer stores an announcement on a request while the
// announcement claim of that request is still held, just before the holder
// gives it back: as another worker does that was refused the claim (it
// stored its announcement, found the claim taken and left the posting to
// the holder).
type lateAnnouncer struct {
	access.Store
	once sync.Once
}

func (l *lateAnnouncer) Release(ctx context.Context, key, owner string) error {
	if id, ok := strings.CutPrefix(key, "announce:"); ok {
		l.once.Do(func() {
			_, _ = l.Store.Update(ctx, id, func(r *access.Request) ([]access.AuditEvent, error) {
				r.Outbox = append(r.Outbox, access.Announcement{ID: "late", Type: access.EvRevokeRecovered,
					Actor: access.SystemActor, At: r.UpdatedAt})
				return nil, nil
			})
		})
	}
	return l.Store.Release(ctx, key, owner)
}

// An announcement stored while another worker holds the announcement claim
// is posted by that worker once it gives the claim back, not left for the
// next sweep.
func TestAnnouncementStoredDuringDeliveryIsPosted(t *testing.T) {
	st := &lateAnnouncer{Store: boltStore(t)}
	rot, errs := static.New(static.Config{Name: "platform", Timezone: "Europe/Berlin", Handoff: "monday 09:00",
		Start: "2026-11-16", Members: []string{"bob@example.com", "carol@example.com"}})
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	notes := &recorder{}
	svc, err := access.NewService(access.Deps{Store: st, Policy: policy(),
		Providers: map[string]access.Provisioner{"dryrun": dryrun.New(nil)},
		OnCall:    access.OnCallRouter{"platform": rot}, Notifier: notes, Clock: testclock.New(t0)})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	r, err := svc.BreakGlass(ctx, access.SubmitInput{Requester: "erin@example.com", Role: "prod-admin", Duration: time.Hour, Reason: "fire"})
	if err != nil {
		t.Fatal(err)
	}
	if got := notes.count(access.EvRevokeRecovered); got != 1 {
		t.Fatalf("the announcement stored during the delivery was posted %d times, want 1; events %v", got, notes.types())
	}
	cur := getReq(t, st, r.ID)
	if len(cur.Outbox) != 0 {
		t.Fatalf("outbox at the end: %+v", cur.Outbox)
	}
}
