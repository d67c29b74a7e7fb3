package access_test

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/accessbot/accessbot/access"
	"github.com/accessbot/accessbot/internal/testclock"
	"github.com/accessbot/accessbot/providers/dryrun"
	"github.com/accessbot/accessbot/store/bolt"
)

// sessionProvider is a dryrun provider whose Revoke (it says) also ends
// the user's sessions for role "prod-admin".
type sessionProvider struct{ *dryrun.Provider }

func (sessionProvider) SessionsNote(g access.Grant) string {
	if g.Role == "prod-admin" {
		return "test sessions ended"
	}
	return ""
}

// TestRevokedDetailNamesSessions: the audit detail of a completed
// revocation says what the provider did to the user's sessions (the
// SessionEnder capability), and says nothing for roles it leaves alone.
func TestRevokedDetailNamesSessions(t *testing.T) {
	st, err := bolt.Open(filepath.Join(t.TempDir(), "s.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	clock := testclock.New(t0)
	prov := sessionProvider{dryrun.New(nil)}
	svc, err := access.NewService(access.Deps{Store: st, Policy: policy(),
		Providers: map[string]access.Provisioner{"dryrun": prov}, Notifier: &recorder{}, Clock: clock})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	details := map[string]string{}
	for _, role := range []string{"prod-admin", "self-ok"} {
		r, err := svc.Submit(ctx, access.SubmitInput{Requester: "alice@example.com", Role: role, Duration: 30 * time.Minute, Reason: "x"})
		if err != nil {
			t.Fatal(err)
		}
		approver := "dave@example.com"
		if role == "self-ok" {
			approver = "alice@example.com"
		}
		if _, err := svc.Decide(ctx, r.ID, approver, true, ""); err != nil {
			t.Fatal(err)
		}
		if _, err := svc.Revoke(ctx, r.ID, "alice@example.com", ""); err != nil {
			t.Fatal(err)
		}
		evs, _ := st.Audit(ctx, time.Time{})
		for _, ev := range evs {
			if ev.RequestID == r.ID && ev.Action == access.ActRevoked {
				details[role] = ev.Detail
			}
		}
	}
	if details["prod-admin"] != "revoked; test sessions ended" || details["self-ok"] != "revoked" {
		t.Errorf("details %q", details)
	}
}
