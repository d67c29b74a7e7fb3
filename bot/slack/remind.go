package slack

import (
	"context"
	"errors"
	"fmt"

	goslack "github.com/slack-go/slack"

	"github.com/accessbot/accessbot/access"
	"github.com/accessbot/accessbot/handlers"
)

// Reply posts m in the thread of the message ref points at
// (chat.postMessage with thread_ts), paced like any post to that channel.
// Reminders go there, under the approval card.
func (b *Bot) Reply(ctx context.Context, ref access.MessageRef, m handlers.Message) (access.MessageRef, error) {
	if ref.Platform != "" && ref.Platform != platform {
		return access.MessageRef{}, fmt.Errorf("slack: reply: message of platform %q", ref.Platform)
	}
	if ref.Channel == "" || ref.ID == "" {
		return access.MessageRef{}, errors.New("slack: reply: message reference without channel or ts")
	}
	ch, ts, err := b.postMessage(ctx, ref.Channel, m, goslack.MsgOptionTS(ref.ID))
	if err != nil {
		return access.MessageRef{}, fmt.Errorf("slack: reply under %s: %w", ref.ID, err)
	}
	return access.MessageRef{Platform: platform, Channel: ch, ID: ts}, nil
}
