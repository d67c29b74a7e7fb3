package handlers_test

import (
	"strings"
	"testing"
)

// TestOverflowingDurationRefused: "213504d" used to parse as 25m26s and
// was sent for approval.
func TestOverflowingDurationRefused(t *testing.T) {
	h, c, _ := setup(t, "approvals")
	r := cmd(h, "alice", "prod-admin 213504d fixing checkout")
	if !strings.Contains(r.Text, `"213504d" is longer than 366d`) {
		t.Fatalf("reply %q", r.Text)
	}
	if len(c.posts) != 0 {
		t.Fatalf("%d approval cards posted", len(c.posts))
	}
}

// TestNonASCIIIdentityRefused: a chat account whose email is "ſam@..."
// (U+017F) is refused with a clear message before anything is sent.
func TestNonASCIIIdentityRefused(t *testing.T) {
	h, c, _ := setup(t, "approvals")
	for _, user := range []string{"\u017fam", "\u212aate"} {
		r := cmd(h, user, "prod-admin 1h fixing checkout")
		if !strings.Contains(r.Text, "plain ASCII") {
			t.Errorf("%s: reply %q", user, r.Text)
		}
	}
	if len(c.posts) != 0 {
		t.Fatalf("%d approval cards posted", len(c.posts))
	}
}
