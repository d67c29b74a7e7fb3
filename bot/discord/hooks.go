package discord

import (
	"context"
	"time"

	"github.com/bwmarrin/discordgo"
)

// Hooks are optional callbacks for an observer (metrics). They are called
// synchronously from discordgo's event handlers and must return quickly.
type Hooks struct {
	// Connected is told when the gateway session is ready or resumed
	// (true, each time, the first one included) and when the socket is
	// lost or Run ends (false).
	Connected func(up bool)
	// Acked is told, for each interaction answered with its first
	// response, how long it waited from its receipt to that response.
	Acked func(waited time.Duration)
}

// SetHooks installs h; call it before Run.
func (b *Bot) SetHooks(h Hooks) { b.hooks = h }

func (b *Bot) connected(up bool) {
	if f := b.hooks.Connected; f != nil {
		f(up)
	}
}

func (b *Bot) onDisconnect(_ *discordgo.Session, _ *discordgo.Disconnect) { b.connected(false) }

type receivedKey struct{}

// received marks ctx with the time its interaction arrived.
func received(ctx context.Context, at time.Time) context.Context {
	return context.WithValue(ctx, receivedKey{}, at)
}

// acked reports the wait of the interaction of ctx to the Acked hook.
func (b *Bot) acked(ctx context.Context) {
	if f := b.hooks.Acked; f != nil {
		if at, ok := ctx.Value(receivedKey{}).(time.Time); ok {
			f(time.Since(at))
		}
	}
}
