package slack

import "time"

// SetPostPause replaces how the per-channel pacing of chat.postMessage
// waits for the next slot of a channel (tests hand out slots one by one).
// Call it before the bot posts anything.
func SetPostPause(b *Bot, pause func(channel string, d time.Duration)) {
	b.pacer.mu.Lock()
	b.pacer.pause = pause
	b.pacer.mu.Unlock()
}

// SetPostClock makes the per-channel pacing of chat.postMessage read now
// instead of the wall clock. Call it before the bot posts anything.
func SetPostClock(b *Bot, now func() time.Time) {
	b.pacer.mu.Lock()
	b.pacer.now = now
	b.pacer.mu.Unlock()
}

// PostsWaiting counts the posts waiting for a slot of channel: urgent ones
// and bulk ones (new approval cards).
func PostsWaiting(b *Bot, channel string) (urgent, bulk int) {
	return b.pacer.waiting(channel)
}

// SetAckBudget replaces how long a form submission or an options request
// may take before it is acknowledged anyway. Call it before Run.
func SetAckBudget(b *Bot, d time.Duration) { b.ackBudget = d }
