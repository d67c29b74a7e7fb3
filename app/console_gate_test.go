package app

import (
	"context"
	"path/filepath"
	"strings"
	"testing"

	"github.com/accessbot/accessbot/access"
	"github.com/accessbot/accessbot/store/bolt"
)

// TestConsoleDemoRequestGate plays the demo policy's prod-deploy role:
// refusals for who may not ask and for a reason off the pattern, a card
// in the role's own channel, a DM of the outcome to its notify list, and
// the on-call person auto-approved in office hours (Wednesday 11:00 in
// Berlin; bob is on call).
func TestConsoleDemoRequestGate(t *testing.T) {
	st, err := bolt.Open(filepath.Join(t.TempDir(), "g.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	s := newStack(t, st)
	s.lines(t, "carol: /access prod-deploy 1h INC-1 hotfix", "alice: /access prod-deploy 1h hotfix")
	o := s.out.String()
	for _, want := range []string{
		"you may not request prod-deploy; who may: alice@example.com, whoever is on call for platform",
		"must match ^(INC|CHG)-[0-9]+ : start with the incident or change id, e.g. INC-1234 checkout down",
	} {
		if !strings.Contains(o, want) {
			t.Errorf("missing %q in\n%s", want, o)
		}
	}
	if all, _ := s.store.List(context.Background(), access.Filter{Role: "prod-deploy"}); len(all) != 0 {
		t.Fatalf("refusals stored %d requests", len(all))
	}
	s.lines(t, "alice: /access prod-deploy 1h INC-1234 checkout down")
	id := lastID(t, s)
	s.lines(t, "dave: approve "+id)
	if !s.prov.IsMember("prod-deployers", "alice@example.com") {
		t.Fatalf("alice not granted:\n%s", s.out)
	}
	o = s.out.String()
	for _, want := range []string{"[#deploy-approvals] message", "[dm to erin]", "alice@example.com's request " + id + " for prod-deploy is active"} {
		if !strings.Contains(o, want) {
			t.Errorf("missing %q in\n%s", want, o)
		}
	}
	s.lines(t, "bob: /access prod-deploy 1h INC-1234 hotfix")
	if !s.prov.IsMember("prod-deployers", "bob@example.com") {
		t.Fatalf("bob not auto-approved:\n%s", s.out)
	}
	if !strings.Contains(s.out.String(), "was auto-approved (on call for platform during mon-fri 09:00-18:00 Europe/Berlin)") {
		t.Errorf("no auto-approval in\n%s", s.out)
	}
}
