package aws_test

import (
	"context"
	"testing"
	"time"

	"github.com/accessbot/accessbot/access"
	"github.com/accessbot/accessbot/providers/aws"
)

// TestIsMemberPaginates: IsMember reads the user's memberships
// (ListGroupMembershipsForMember) page by page with NextToken until it
// finds the group; an unknown user is no member.
func TestIsMemberPaginates(t *testing.T) {
	f := newFake(t)
	f.SetPageSize(2)
	p := newProvider(t, f.URL, testKeyID, testSecret)
	var _ access.GroupMembership = p
	alice := f.AddUser("alice@example.com")
	var gids []string
	for _, name := range []string{"a", "b", "c", "d", "e"} {
		g := f.AddGroup(name)
		gids = append(gids, g)
		f.AddMember(g, alice)
	}
	other := f.AddGroup("not-alices")
	ctx := context.Background()
	in, err := p.IsMember(ctx, "alice@example.com", gids[4])
	if err != nil || !in {
		t.Fatalf("last group: %v %v", in, err)
	}
	if n := f.Calls("ListGroupMembershipsForMember"); n != 3 {
		t.Fatalf("%d pages read for 5 memberships at 2 a page, want 3", n)
	}
	in, err = p.IsMember(ctx, "alice@example.com", other)
	if err != nil || in {
		t.Fatalf("other group: %v %v", in, err)
	}
	in, err = p.IsMember(ctx, "nobody@example.com", gids[0])
	if err != nil || in {
		t.Fatalf("unknown user: %v %v", in, err)
	}
}

// TestIsMemberProviderError: an identity store that keeps failing gives
// an error (the request is refused), never "member".
func TestIsMemberProviderError(t *testing.T) {
	f := newFake(t)
	p := newProvider(t, f.URL, testKeyID, testSecret, aws.WithRetry(2, 10*time.Millisecond))
	alice := f.AddUser("alice@example.com")
	g := f.AddGroup("sre")
	f.AddMember(g, alice)
	f.FailNext(100, 500)
	in, err := p.IsMember(context.Background(), "alice@example.com", g)
	if err == nil || in {
		t.Fatalf("got %v %v, want an error", in, err)
	}
}
