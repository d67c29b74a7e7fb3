package handlers_test

import (
	"strings"
	"testing"

	"github.com/accessbot/accessbot/handlers"
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

// TestReasonCommand: "/access deny <id>" denies without a reason and
// points at "/access reason", which only the denier may use; the reason
// reaches the approval card and the requester.
func TestReasonCommand(t *testing.T) {
	h, c, _ := setup(t, "approvals")
	cmd(h, "alice", "prod-admin 1h fixing checkout")
	id := c.posts[0].Buttons[0].Value
	if r := cmd(h, "bob", "deny "+id); !strings.Contains(r.Text, "You denied request "+id) || !strings.Contains(r.Text, "/access reason "+id) {
		t.Fatalf("deny: %q", r.Text)
	}
	last := c.updates[len(c.updates)-1]
	if len(last.Buttons) != 1 || last.Buttons[0].Action != handlers.ActionAddReason || last.Buttons[0].Value != id {
		t.Fatalf("denied card buttons %+v", last.Buttons)
	}
	if r := cmd(h, "bob", "reason"); !strings.Contains(r.Text, "/access reason <request-id> <reason>") {
		t.Fatalf("no id: %q", r.Text)
	}
	if r := cmd(h, "dave", "reason "+id+" me too"); !strings.Contains(r.Text, "only the approver who denied") {
		t.Fatalf("dave: %q", r.Text)
	}
	if r := cmd(h, "bob", "reason "+id); r.Ask == nil || r.Ask.Action != handlers.ActionAddReason || r.Ask.RequestID != id {
		t.Fatalf("no text: %+v", r)
	}
	if r := cmd(h, "bob", "reason "+id+" change freeze"); !strings.Contains(r.Text, "Your reason is on request "+id) {
		t.Fatalf("bob: %q", r.Text)
	}
	last = c.updates[len(c.updates)-1]
	status := ""
	for _, f := range last.Fields {
		if f.Label == "Status" {
			status = f.Value
		}
	}
	if status != "denied by bob@example.com: “change freeze”" || len(last.Buttons) != 0 {
		t.Fatalf("card status %q buttons %+v", status, last.Buttons)
	}
	dms := c.dms["alice@example.com"]
	if m := dms[len(dms)-1]; !strings.Contains(m.Title, "Why request "+id+" was denied") || !strings.Contains(m.Text, "“change freeze”") {
		t.Fatalf("alice's DM %+v", m)
	}
}
