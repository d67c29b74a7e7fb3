package okta_test

import (
	"context"
	"errors"
	"net/http"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/accessbot/accessbot/access"
	"github.com/accessbot/accessbot/providers/okta"
	"github.com/accessbot/accessbot/store/bolt"
)

// TestIsMemberPaginates: IsMember reads the user's groups page by page
// (Link rel="next") until it finds the group; a user Okta does not know
// is no member.
func TestIsMemberPaginates(t *testing.T) {
	f := newFake(t)
	f.SetPageMax(2)
	p := newProvider(t, okta.Config{OrgURL: f.URL, APIToken: apiToken})
	var _ access.GroupMembership = p
	alice := f.AddUser("alice@example.com")
	var gids []string
	for _, name := range []string{"a", "b", "c", "d", "e"} {
		g := f.AddGroup(name)
		gids = append(gids, g)
		f.AddMember(g, alice)
	}
	other := f.AddGroup("not-alices")
	slices.Sort(gids)
	ctx := context.Background()
	in, err := p.IsMember(ctx, "alice@example.com", gids[4])
	if err != nil || !in {
		t.Fatalf("last group: %v %v", in, err)
	}
	if n := f.Calls("GET /api/v1/users/{id}/groups"); n != 3 {
		t.Fatalf("%d pages read for 5 groups at 2 a page, want 3", n)
	}
	in, err = p.IsMember(ctx, "Alice@example.com", other)
	if err != nil || in {
		t.Fatalf("other group: %v %v", in, err)
	}
	in, err = p.IsMember(ctx, "nobody@example.com", gids[0])
	if err != nil || in {
		t.Fatalf("unknown user: %v %v", in, err)
	}
}

// TestIsMemberProviderError: when Okta keeps failing, IsMember returns an
// error (the request is refused), never "member".
func TestIsMemberProviderError(t *testing.T) {
	f := newFake(t)
	p := newProvider(t, okta.Config{OrgURL: f.URL, APIToken: apiToken}, okta.WithRetry(2, 10*time.Millisecond))
	alice := f.AddUser("alice@example.com")
	g := f.AddGroup("sre")
	f.AddMember(g, alice)
	f.FailNext(1000, http.StatusServiceUnavailable)
	in, err := p.IsMember(context.Background(), "alice@example.com", g)
	if err == nil || in {
		t.Fatalf("got %v %v, want an error", in, err)
	}
}

// TestRequestersThroughOkta: a role whose requesters are an Okta group
// lets a member ask, refuses a non-member, and refuses everyone (storing
// nothing) while Okta cannot answer.
func TestRequestersThroughOkta(t *testing.T) {
	f := newFake(t)
	p := newProvider(t, okta.Config{OrgURL: f.URL, APIToken: apiToken}, okta.WithRetry(2, 10*time.Millisecond))
	sre := f.AddGroup("sre")
	admins := f.AddGroup("prod-admins")
	f.AddMember(sre, f.AddUser("alice@example.com"))
	f.AddUser("bob@example.com")
	f.AddUser("carol@example.com")
	st, err := bolt.Open(filepath.Join(t.TempDir(), "o.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	pol := &access.Policy{Roles: map[string]access.Role{"prod-admin": {Name: "prod-admin", Description: "d", Provider: "okta", Group: admins,
		MaxDuration: time.Hour, DefaultDuration: time.Hour, ApproverUsers: []string{"dave@example.com"}, Approvals: 1, PendingTTL: time.Hour,
		Requesters: &access.Requesters{Groups: []access.GroupRef{{Provider: "okta", Group: sre, Name: "sre"}}}}}}
	svc, err := access.NewService(access.Deps{Store: st, Policy: pol, Providers: map[string]access.Provisioner{"okta": p}})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	ask := func(who string) error {
		_, err := svc.Submit(ctx, access.SubmitInput{Requester: who, Role: "prod-admin", Duration: time.Hour, Reason: "x"})
		return err
	}
	if err := ask("alice@example.com"); err != nil {
		t.Fatalf("member: %v", err)
	}
	if err := ask("bob@example.com"); !errors.Is(err, access.ErrNotAllowed) {
		t.Fatalf("non-member: %v", err)
	}
	f.FailNext(1000, http.StatusServiceUnavailable)
	if err := ask("carol@example.com"); !errors.Is(err, access.ErrRequesterUnchecked) {
		t.Fatalf("okta down: %v", err)
	}
	all, _ := st.List(ctx, access.Filter{})
	if len(all) != 1 || all[0].Requester != "alice@example.com" {
		t.Fatalf("stored %d requests", len(all))
	}
}
