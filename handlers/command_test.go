package handlers_test

import (
	"strings"
	"testing"
)

// TestMistypedDurationIsAnswered: a word where the duration goes that was
// meant as a duration is answered with what is wrong with it; only a
// genuinely missing part opens the form.
func TestMistypedDurationIsAnswered(t *testing.T) {
	h, c, _ := setup(t, "approvals")
	for _, text := range []string{
		"prod-admin banana reason",
		"prod-admin banana",
		"prod-admin two hours for the release",
		"prod-admin 2x",
		"prod-admin 1hour fixing checkout",
	} {
		r := cmd(h, "alice", text)
		word := strings.Fields(text)[1]
		if r.Form != nil || !strings.Contains(r.Text, `"`+word+`" is not a duration`) || !strings.Contains(r.Text, "30m, 2h") {
			t.Errorf("%q: form=%v text=%q; want no form and what is wrong", text, r.Form != nil, r.Text)
		}
	}
	for _, text := range []string{
		"prod-admin",
		"prod-admin 2h",
		"prod-admin fixing checkout",
		"prod-admin investigating the checkout outage",
		"prod-admin INC-1234 checkout down",
		"prod-admin to rotate the database password",
	} {
		if r := cmd(h, "alice", text); r.Form == nil {
			t.Errorf("%q: no form (text %q); a part is missing", text, r.Text)
		}
	}
	if len(c.posts) != 0 {
		t.Fatalf("%d approval cards posted", len(c.posts))
	}
}
