package console_test

import (
	"context"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/accessbot/accessbot/access"
	"github.com/accessbot/accessbot/bot/console"
	"github.com/accessbot/accessbot/handlers"
	"github.com/accessbot/accessbot/providers/dryrun"
	"github.com/accessbot/accessbot/store/bolt"
)

type buffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (b *buffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *buffer) String() string { b.mu.Lock(); defer b.mu.Unlock(); return b.b.String() }

// TestDenyAtOnceThenReason: on the console, deny denies at once (card
// updated, requester told, a later approve refused); the denier alone adds
// the reason afterwards, which reaches the card and the audit log.
func TestDenyAtOnceThenReason(t *testing.T) {
	st, err := bolt.Open(filepath.Join(t.TempDir(), "c.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	out := &buffer{}
	con := console.New(console.Config{Users: map[string]string{"alice": "alice@example.com", "bob": "bob@example.com", "carol": "carol@example.com"}}, out)
	pol := &access.Policy{Roles: map[string]access.Role{
		"prod-admin": {Name: "prod-admin", Description: "admin", Provider: "dryrun", Group: "g", MaxDuration: 4 * time.Hour,
			DefaultDuration: time.Hour, ApproverUsers: []string{"bob@example.com", "carol@example.com"}, Approvals: 1, PendingTTL: time.Hour},
	}}
	prov := dryrun.New(nil)
	svc, err := access.NewService(access.Deps{Store: st, Policy: pol, Providers: map[string]access.Provisioner{"dryrun": prov}})
	if err != nil {
		t.Fatal(err)
	}
	con.SetHandler(handlers.New(svc, con, nil))
	svc.SetNotifier(handlers.NewNotifier(con, nil))
	ctx := context.Background()
	line := func(l string) string {
		t.Helper()
		before := len(out.String())
		if err := con.Line(ctx, l); err != nil {
			t.Fatal(err)
		}
		return out.String()[before:]
	}
	line("alice: /access prod-admin 1h fixing checkout")
	all, err := st.List(ctx, access.Filter{Limit: 1})
	if err != nil || len(all) != 1 {
		t.Fatalf("List = %v, %v; want the request", all, err)
	}
	id := all[0].ID

	o := line("bob: deny")
	if r, _ := svc.Get(ctx, id); r.State != access.StateDenied {
		t.Fatalf("request %s after deny:\n%s", r.State, o)
	}
	for _, want := range []string{"updated", "denied by bob@example.com", "[Add a reason]", "[dm to alice]", "was denied", "You denied request " + id} {
		if !strings.Contains(o, want) {
			t.Errorf("deny: missing %q in\n%s", want, o)
		}
	}
	if o := line("carol: approve " + id); !strings.Contains(o, "already denied") || prov.IsMember("g", "alice@example.com") {
		t.Errorf("approve after deny:\n%s", o)
	}
	if o := line("carol: reason " + id + " because"); !strings.Contains(o, "only the approver who denied") {
		t.Errorf("carol's reason:\n%s", o)
	}
	if o := line("bob: reason"); !strings.Contains(o, "Why did you deny request "+id+"?") || !strings.Contains(o, "bob: reason "+id+" <text>") {
		t.Errorf("reason without text:\n%s", o)
	}
	o = line("bob: add_reason change freeze")
	for _, want := range []string{"denied by bob@example.com: “change freeze”", "Why request " + id + " was denied", "Your reason is on request " + id} {
		if !strings.Contains(o, want) {
			t.Errorf("reason: missing %q in\n%s", want, o)
		}
	}
	evs, err := svc.Audit(ctx, time.Time{})
	if err != nil || len(evs) == 0 {
		t.Fatalf("Audit = %v, %v; want the events", evs, err)
	}
	if last := evs[len(evs)-1]; last.Action != access.ActDenyReason || last.Reason != "change freeze" || last.Actor != "bob@example.com" {
		t.Errorf("audit %+v", last)
	}
	if t.Failed() {
		t.Logf("output:\n%s", out.String())
	}
}
