package console_test

import (
	"context"
	"strings"
	"testing"

	"github.com/accessbot/accessbot/bot/console"
	"github.com/accessbot/accessbot/handlers"
)

// TestReplyIsPrintedUnderItsMessage: a reply (a reminder under the
// approval card) names the message it answers, in the channel or DM of
// that message.
func TestReplyIsPrintedUnderItsMessage(t *testing.T) {
	out := &buffer{}
	con := console.New(console.Config{Users: map[string]string{"bob": "bob@example.com"}, ApprovalsChannel: "approvals"}, out)
	ctx := context.Background()
	card, err := con.Post(ctx, "approvals", handlers.Message{Title: "alice asks for prod-admin"})
	if err != nil {
		t.Fatal(err)
	}
	r, err := con.Reply(ctx, card, handlers.Message{Title: "Reminder: still waiting for a decision"})
	if err != nil || r.Channel != "approvals" || r.ID == card.ID {
		t.Fatalf("reply ref %+v, %v", r, err)
	}
	dm, _ := con.DM(ctx, "bob@example.com", handlers.Message{Title: "card"})
	if _, err := con.Reply(ctx, dm, handlers.Message{Title: "Reminder for bob"}); err != nil {
		t.Fatal(err)
	}
	s := out.String()
	for _, want := range []string{"[#approvals] message " + r.ID + ", reply to " + card.ID + "\n    Reminder: still waiting for a decision",
		"[dm to bob] message m4, reply to " + dm.ID + "\n    Reminder for bob"} {
		if !strings.Contains(s, want) {
			t.Errorf("missing %q in:\n%s", want, s)
		}
	}
}
