package fakeswitch

import (
	"context"
	"sync"
	"sync/atomic"
)

// Blackhole holds requests unanswered while it is on, as a dropped network
// path or an overloaded endpoint does: a fake calls Hold at the top of its
// handler. The zero value is off and ready to use; it is safe for
// concurrent use.
type Blackhole struct {
	mu   sync.Mutex
	gate chan struct{} // non-nil while on; closed to let held requests go
	held atomic.Int64
}

// Set turns the blackhole on or off. Turning it off lets every held
// request go on to be served.
func (b *Blackhole) Set(on bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	switch {
	case on && b.gate == nil:
		b.gate = make(chan struct{})
	case !on && b.gate != nil:
		close(b.gate)
		b.gate = nil
	}
}

// Hold blocks while the blackhole is on, until it is turned off (true: go
// on and serve the request) or ctx ends (false: the client gave up, answer
// nothing). It returns true at once when the blackhole is off.
func (b *Blackhole) Hold(ctx context.Context) bool {
	b.mu.Lock()
	gate := b.gate
	b.mu.Unlock()
	if gate == nil {
		return true
	}
	b.held.Add(1)
	select {
	case <-gate:
		return true
	case <-ctx.Done():
		return false
	}
}

// Held returns how many requests were held.
func (b *Blackhole) Held() int64 { return b.held.Load() }
