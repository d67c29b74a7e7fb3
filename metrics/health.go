package metrics

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/accessbot/accessbot/access"
)

// health is the state behind /healthz and /readyz.
type health struct {
	m *Metrics

	mu       sync.Mutex
	lastBeat time.Time       // zero until the scheduler loop first turned
	config   bool            // ConfigLoaded was called
	store    access.Store    // WrapStore's store: readiness asks it
	chats    map[string]bool // platform -> connected
	seen     map[string]bool // platform -> connected at least once
	checks   []check
}

type check struct {
	name string
	fn   func(ctx context.Context) error
}

func (h *health) init(m *Metrics) {
	h.m = m
	h.chats = map[string]bool{}
	h.seen = map[string]bool{}
}

func (h *health) beat(now time.Time) {
	h.mu.Lock()
	h.lastBeat = now
	h.mu.Unlock()
}

func (h *health) setStore(st access.Store) {
	h.mu.Lock()
	h.store = st
	h.mu.Unlock()
}

// chatUp marks platform connected and reports whether it had been
// connected before (a reconnect).
func (h *health) chatUp(platform string) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	again := h.seen[platform]
	h.seen[platform], h.chats[platform] = true, true
	return again
}

func (h *health) chatDown(platform string) {
	h.mu.Lock()
	h.chats[platform] = false
	h.mu.Unlock()
}

// ConfigLoaded marks the configuration as loaded and valid: /readyz fails
// with "config: not loaded" until it is called.
func (m *Metrics) ConfigLoaded() {
	m.health.mu.Lock()
	m.health.config = true
	m.health.mu.Unlock()
}

// ExpectChat makes platform part of /readyz before its first connection
// (ChatConnected does so from its first call on): not ready until it is
// connected.
func (m *Metrics) ExpectChat(platform string) {
	m.health.mu.Lock()
	if _, ok := m.health.chats[platform]; !ok {
		m.health.chats[platform] = false
	}
	m.health.mu.Unlock()
	m.chatConnected.WithLabelValues(platform).Add(0)
}

// AddCheck adds a readiness check: /readyz fails while fn returns an
// error (fn gets Options.CheckTimeout). Use it for a dependency the
// metrics do not see, such as a store that is still being opened
// (store/redis's Readiness).
func (m *Metrics) AddCheck(name string, fn func(ctx context.Context) error) {
	m.health.mu.Lock()
	m.health.checks = append(m.health.checks, check{name, fn})
	m.health.mu.Unlock()
}

// Live reports whether the process is healthy: the scheduler loop, once
// it has turned, turned again within Options.StaleAfter. The error says
// why not.
func (m *Metrics) Live() error {
	h := &m.health
	h.mu.Lock()
	last := h.lastBeat
	h.mu.Unlock()
	if last.IsZero() {
		return nil
	}
	if age := m.opt.now().Sub(last); age > m.opt.StaleAfter {
		return fmt.Errorf("scheduler loop stuck: last turn %s ago (limit %s)", age.Round(time.Second), m.opt.StaleAfter)
	}
	return nil
}

// Ready runs the readiness checks: the config is loaded, the store
// answers (a NextDue read within CheckTimeout), every chat platform is
// connected, and each AddCheck passes. It returns one line per check
// and an error naming those that failed.
func (m *Metrics) Ready(ctx context.Context) ([]string, error) {
	h := &m.health
	h.mu.Lock()
	config, st := h.config, h.store
	chats := make(map[string]bool, len(h.chats))
	for k, v := range h.chats {
		chats[k] = v
	}
	checks := slices.Clone(h.checks)
	h.mu.Unlock()

	var lines []string
	var bad []string
	add := func(name string, err error) {
		if err != nil {
			lines = append(lines, name+": "+err.Error())
			bad = append(bad, name)
			return
		}
		lines = append(lines, name+": ok")
	}
	if config {
		add("config", nil)
	} else {
		add("config", errors.New("not loaded"))
	}
	if st != nil {
		cctx, cancel := context.WithTimeout(ctx, m.opt.CheckTimeout)
		_, _, err := st.NextDue(cctx)
		cancel()
		if err != nil {
			err = fmt.Errorf("not answering: %v", err)
		}
		add("store", err)
	}
	for _, p := range slices.Sorted(func(yield func(string) bool) {
		for k := range chats {
			if !yield(k) {
				return
			}
		}
	}) {
		var err error
		if !chats[p] {
			err = errors.New("not connected")
		}
		add("chat "+p, err)
	}
	for _, c := range checks {
		cctx, cancel := context.WithTimeout(ctx, m.opt.CheckTimeout)
		add(c.name, c.fn(cctx))
		cancel()
	}
	if len(bad) > 0 {
		return lines, fmt.Errorf("not ready: %s", strings.Join(bad, ", "))
	}
	return lines, nil
}
