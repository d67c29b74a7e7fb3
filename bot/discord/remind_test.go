package discord_test

import (
	"testing"

	"github.com/accessbot/accessbot/access"
	"github.com/accessbot/accessbot/bot/discord/discordfake"
	"github.com/accessbot/accessbot/handlers"
)

// TestReplyReferencesTheCard: Reply posts in the card's channel as a
// reply that references it (message_reference, type 19), pinging nobody;
// a card that is gone does not fail the reminder (fail_if_not_exists
// false): it goes out as a plain message.
func TestReplyReferencesTheCard(t *testing.T) {
	w := newWorld(t, discordfake.Options{})
	ctx := tctx(t)
	card, err := w.bot.Post(ctx, chApprove, handlers.Message{Title: "alice asks for prod-admin"})
	if err != nil {
		t.Fatal(err)
	}
	ref, err := w.bot.Reply(ctx, card, handlers.Message{Title: "Reminder: still waiting for a decision"})
	if err != nil {
		t.Fatal(err)
	}
	ms := w.fake.Messages(chApprove)
	if len(ms) != 2 || ms[1].ID != ref.ID || ms[1].ReplyTo != card.ID || ref.Channel != chApprove {
		t.Fatalf("messages %+v, reply ref %+v", ms, ref)
	}
	if p, _ := ms[1].AllowedMentions["parse"].([]any); len(p) != 0 {
		t.Fatalf("reply may ping: %v", ms[1].AllowedMentions)
	}
	gone := access.MessageRef{Platform: "discord", Channel: chApprove, ID: "1234567890123456789"}
	if _, err := w.bot.Reply(ctx, gone, handlers.Message{Title: "Reminder"}); err != nil {
		t.Fatalf("reply under a deleted card: %v", err)
	}
	if ms := w.fake.Messages(chApprove); len(ms) != 3 || ms[2].ReplyTo != "" {
		t.Fatalf("messages %+v", ms)
	}
	if _, err := w.bot.Reply(ctx, access.MessageRef{Platform: "slack", Channel: "C1", ID: "1.2"}, handlers.Message{Title: "x"}); err == nil {
		t.Fatal("a Slack reference was accepted")
	}
}
