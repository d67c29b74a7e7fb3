// Package dryrun is a provisioner that changes nothing outside the process:
// it keeps group memberships in memory, logs every grant and revoke, and
// tells observers. The demo and end-to-end tests use it.
package dryrun

import (
	"context"
	"fmt"
	"log/slog"
	"sort"
	"sync"
	"time"

	"github.com/accessbot/accessbot/access"
)

var (
	_ access.Provisioner  = (*Provider)(nil)
	_ access.MemberLister = (*Provider)(nil)
)

// Change is one call the provider received.
type Change struct {
	Op    string // "grant" or "revoke"
	Grant access.Grant
	At    time.Time
	Err   error // the injected failure, if any
}

// Provider records memberships in memory. It is safe for concurrent use.
type Provider struct {
	log *slog.Logger

	mu        sync.Mutex
	members   map[string]map[string]bool // group -> users
	changes   []Change
	observers []func(Change)
	failNext  map[string]int // op -> failures to inject
	failErr   map[string]error
	now       func() time.Time
}

// New returns an empty dry-run provider that logs to log.
func New(log *slog.Logger) *Provider {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Provider{log: log, members: map[string]map[string]bool{}, failNext: map[string]int{},
		failErr: map[string]error{}, now: time.Now}
}

// Observe registers fn to be called after every grant and revoke.
func (p *Provider) Observe(fn func(Change)) {
	p.mu.Lock()
	p.observers = append(p.observers, fn)
	p.mu.Unlock()
}

// FailNext makes the next n calls of op ("grant" or "revoke") fail with err
// (a transient error when err is nil), to exercise retries.
func (p *Provider) FailNext(op string, n int, err error) {
	if err == nil {
		err = fmt.Errorf("dryrun: injected %s failure", op)
	}
	p.mu.Lock()
	p.failNext[op] = n
	p.failErr[op] = err
	p.mu.Unlock()
}

func (p *Provider) apply(ctx context.Context, op string, g access.Grant) error {
	p.mu.Lock()
	c := Change{Op: op, Grant: g, At: p.now()}
	if p.failNext[op] > 0 {
		p.failNext[op]--
		c.Err = p.failErr[op]
	} else {
		user := access.NormalizeIdentity(g.User)
		if op == "grant" {
			if p.members[g.Group] == nil {
				p.members[g.Group] = map[string]bool{}
			}
			p.members[g.Group][user] = true
		} else {
			delete(p.members[g.Group], user)
		}
	}
	p.changes = append(p.changes, c)
	obs := append([]func(Change){}, p.observers...)
	p.mu.Unlock()
	if c.Err != nil {
		p.log.WarnContext(ctx, "dryrun "+op+" failed (injected)", "request_id", g.RequestID, "user", g.User, "group", g.Group, "err", c.Err)
	} else {
		p.log.InfoContext(ctx, "dryrun "+op, "request_id", g.RequestID, "user", g.User, "group", g.Group, "role", g.Role)
	}
	for _, fn := range obs {
		fn(c)
	}
	return c.Err
}

// Grant adds g.User to g.Group; granting an existing membership succeeds.
func (p *Provider) Grant(ctx context.Context, g access.Grant) error { return p.apply(ctx, "grant", g) }

// Revoke removes g.User from g.Group; removing a non-member succeeds.
func (p *Provider) Revoke(ctx context.Context, g access.Grant) error {
	return p.apply(ctx, "revoke", g)
}

// Members returns the group's members, sorted.
func (p *Provider) Members(_ context.Context, group string) ([]string, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	var out []string
	for u := range p.members[group] {
		out = append(out, u)
	}
	sort.Strings(out)
	return out, nil
}

// IsMember reports whether user is in group now.
func (p *Provider) IsMember(group, user string) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.members[group][access.NormalizeIdentity(user)]
}

// AddMember puts a user in a group behind the engine's back (an
// out-of-band change, for drift tests).
func (p *Provider) AddMember(group, user string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.members[group] == nil {
		p.members[group] = map[string]bool{}
	}
	p.members[group][access.NormalizeIdentity(user)] = true
}

// Changes returns every call received so far, in order.
func (p *Provider) Changes() []Change {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]Change(nil), p.changes...)
}

// Count returns how many successful calls of op were made for user.
func (p *Provider) Count(op, user string) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := 0
	for _, c := range p.changes {
		if c.Op == op && c.Err == nil && access.NormalizeIdentity(c.Grant.User) == access.NormalizeIdentity(user) {
			n++
		}
	}
	return n
}
