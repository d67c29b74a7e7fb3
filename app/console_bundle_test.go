package app

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/accessbot/accessbot/store/bolt"
)

// The demo's two-role request, as the README and demo.yaml show it:
// one card; bob's approve grants prod-admin only (prod-read is dave's),
// dave's grants prod-read; both end together.
func TestConsoleTwoRolesOneRequest(t *testing.T) {
	st, err := bolt.Open(filepath.Join(t.TempDir(), "a.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	s := newStack(t, st)
	s.lines(t, "alice: /access prod-admin, prod-read 1m fixing checkout", "bob: approve")
	if !s.prov.IsMember("prod-admins", "alice@example.com") || s.prov.IsMember("prod-readers", "alice@example.com") {
		t.Fatalf("after bob's approve:\n%s", s.out)
	}
	o := s.out.String()
	for _, want := range []string{"alice@example.com asks for prod-admin, prod-read",
		"prod-read: pending, 0 of 1 approvals (dave@example.com)", "Not approved by you: prod-read"} {
		if !strings.Contains(o, want) {
			t.Errorf("missing %q in\n%s", want, o)
		}
	}
	s.clock.Advance(20 * time.Second)
	s.lines(t, "alice: /access list", "dave: approve")
	if !s.prov.IsMember("prod-readers", "alice@example.com") {
		t.Fatalf("after dave's approve:\n%s", s.out)
	}
	s.clock.Advance(40 * time.Second) // one minute after prod-admin's grant
	if _, err := s.sched.Drain(context.Background()); err != nil {
		t.Fatal(err)
	}
	if s.prov.IsMember("prod-admins", "alice@example.com") || s.prov.IsMember("prod-readers", "alice@example.com") {
		t.Fatalf("not both removed at the shared end:\n%s", s.out)
	}
	if o := s.out.String(); strings.Count(o, "ended at 2026-11-18 10:01 UTC (expired)") < 2 {
		t.Errorf("both roles should end at 10:01:\n%s", o)
	}
}
