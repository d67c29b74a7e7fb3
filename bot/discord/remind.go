package discord

import (
	"context"
	"errors"
	"fmt"

	"github.com/bwmarrin/discordgo"

	"github.com/accessbot/accessbot/access"
	"github.com/accessbot/accessbot/handlers"
)

// Reply posts m in the channel of the message ref points at, as a reply
// that references it (message_reference; no ping of its author, and sent
// as a plain message should the original be gone). Reminders go there,
// under the approval card.
func (b *Bot) Reply(ctx context.Context, ref access.MessageRef, m handlers.Message) (access.MessageRef, error) {
	if ref.Platform != "" && ref.Platform != platform {
		return access.MessageRef{}, fmt.Errorf("discord: reply: message of platform %q", ref.Platform)
	}
	if ref.Channel == "" || ref.ID == "" {
		return access.MessageRef{}, errors.New("discord: reply: message reference without channel or id")
	}
	send := sendOf(m, nil)
	no := false
	send.Reference = &discordgo.MessageReference{MessageID: ref.ID, ChannelID: ref.Channel, FailIfNotExists: &no}
	msg, err := b.s.ChannelMessageSendComplex(ref.Channel, send, discordgo.WithContext(ctx))
	if err != nil {
		return access.MessageRef{}, fmt.Errorf("discord: reply under %s/%s: %w", ref.Channel, ref.ID, err)
	}
	return access.MessageRef{Platform: platform, Channel: ref.Channel, ID: msg.ID}, nil
}
