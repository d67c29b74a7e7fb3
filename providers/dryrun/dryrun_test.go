package dryrun_test

import (
	"context"
	"testing"

	"github.com/accessbot/accessbot/access"
	"github.com/accessbot/accessbot/providers/dryrun"
)

// Members are kept in the one normal form (access.NormalizeIdentity): ASCII
// case is folded, a look-alike (the Kelvin sign K, U+212A) is not.
func TestIdentitiesNormalisedOnce(t *testing.T) {
	p := dryrun.New(nil)
	ctx := context.Background()
	if err := p.Grant(ctx, access.Grant{Group: "g", User: "\u212Aate@example.com"}); err != nil {
		t.Fatal(err)
	}
	if p.IsMember("g", "kate@example.com") {
		t.Errorf("granting the Kelvin-sign address made kate@example.com a member")
	}
	if n := p.Count("grant", "kate@example.com"); n != 0 {
		t.Errorf("Count(grant, kate@) = %d, want 0", n)
	}
	if err := p.Grant(ctx, access.Grant{Group: "g", User: " Kate@Example.COM "}); err != nil {
		t.Fatal(err)
	}
	if !p.IsMember("g", "kate@example.com") || p.Count("grant", "KATE@example.com") != 1 {
		t.Errorf("ASCII case is not folded")
	}
	got, err := p.Members(ctx, "g")
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 {
		t.Errorf("Members = %q, want two distinct people", got)
	}
}
