package slack

import (
	"sync"
	"time"

	"github.com/slack-go/slack/socketmode"
)

// Hooks are optional callbacks for an observer (metrics). They are called
// synchronously from the event reader and must return quickly.
type Hooks struct {
	// Connected is told when the Socket Mode connection comes up (true,
	// each time, the first one included) and when it is lost or Run ends
	// (false).
	Connected func(up bool)
	// Acked is told, for each envelope acknowledged, how long it waited
	// from its receipt to its ack.
	Acked func(waited time.Duration)
}

// SetHooks installs h; call it before Run.
func (b *Bot) SetHooks(h Hooks) {
	b.hooks.h = h
}

// maxPendingAcks bounds the receipt times kept for envelopes not yet
// acknowledged (one lost ack must not grow the map for ever).
const maxPendingAcks = 10000

// ackTimes measures receipt-to-ack waits for the Acked hook.
type ackTimes struct {
	h  Hooks
	mu sync.Mutex
	at map[string]time.Time // envelope id -> received
}

// observe passes a connection event of the Socket Mode client to the
// Connected hook.
func (a *ackTimes) observe(evt socketmode.Event, now time.Time) {
	if a.h.Connected != nil {
		switch evt.Type {
		case socketmode.EventTypeConnected:
			a.h.Connected(true)
		case socketmode.EventTypeConnecting, socketmode.EventTypeDisconnect, socketmode.EventTypeConnectionError,
			socketmode.EventTypeInvalidAuth:
			a.h.Connected(false)
		}
	}
	if a.h.Acked == nil || evt.Request == nil || evt.Request.EnvelopeID == "" {
		return
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.at == nil || len(a.at) >= maxPendingAcks {
		a.at = map[string]time.Time{}
	}
	if _, ok := a.at[evt.Request.EnvelopeID]; !ok {
		a.at[evt.Request.EnvelopeID] = now
	}
}

// acked reports the wait of envelopeID to the Acked hook.
func (a *ackTimes) acked(envelopeID string) {
	if a.h.Acked == nil {
		return
	}
	a.mu.Lock()
	at, ok := a.at[envelopeID]
	delete(a.at, envelopeID)
	a.mu.Unlock()
	if ok {
		a.h.Acked(time.Since(at))
	}
}

// stopped tells the Connected hook that Run ended.
func (a *ackTimes) stopped() {
	if a.h.Connected != nil {
		a.h.Connected(false)
	}
}
