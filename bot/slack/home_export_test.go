package slack

import (
	"context"
	"time"
)

// SetHomePause replaces the pause before each batch of Home refreshes
// (tests release batches by hand). Call it before Run.
func SetHomePause(b *Bot, pause func(ctx context.Context)) { b.home.pause = pause }

// SetHomeDebounce replaces the pause before each batch of Home refreshes.
// Call it before Run.
func SetHomeDebounce(b *Bot, d time.Duration) { b.home.debounce = d }

// HomeOff reports whether the bot stopped publishing Homes on changes
// after Slack answered not_enabled.
func HomeOff(b *Bot) bool { return b.home.off.Load() }
