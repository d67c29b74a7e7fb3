package metrics

import (
	"context"
	"errors"
	"net"
	"time"

	"github.com/accessbot/accessbot/access"
)

// Provisioner is the access.Provisioner decorator: it times every call
// and counts failures by code. Use WrapProvisioner, which keeps the
// wrapped provisioner's optional capabilities.
type Provisioner struct {
	p    access.Provisioner
	name string
	m    *Metrics
}

// WrapProvisioner returns p, named name (the key of the providers map and
// the requests' Provider), observed by m, with exactly the optional
// capabilities (access.MemberLister, access.UserChecker,
// access.GroupMembership) p has.
func (m *Metrics) WrapProvisioner(name string, p access.Provisioner) access.Provisioner {
	w := m.wrapProvisioner(name, p)
	if gm, ok := p.(access.GroupMembership); ok {
		return withGroupMembership(w, &groupMember{m.provisionerOf(w), gm}) // provider_gate.go
	}
	return w
}

func (m *Metrics) wrapProvisioner(name string, p access.Provisioner) access.Provisioner {
	w := &Provisioner{p: p, name: name, m: m}
	ml, isM := p.(access.MemberLister)
	uc, isU := p.(access.UserChecker)
	switch {
	case isM && isU:
		return struct {
			*Provisioner
			*memberLister
			*userChecker
		}{w, &memberLister{w, ml}, &userChecker{w, uc}}
	case isM:
		return struct {
			*Provisioner
			*memberLister
		}{w, &memberLister{w, ml}}
	case isU:
		return struct {
			*Provisioner
			*userChecker
		}{w, &userChecker{w, uc}}
	}
	return w
}

// WrapProviders wraps each provisioner of provs under its name.
func (m *Metrics) WrapProviders(provs map[string]access.Provisioner) map[string]access.Provisioner {
	out := make(map[string]access.Provisioner, len(provs))
	for name, p := range provs {
		out[name] = m.WrapProvisioner(name, p)
	}
	return out
}

// Grant forwards to the wrapped provisioner, timed.
func (p *Provisioner) Grant(ctx context.Context, g access.Grant) error {
	defer p.observe("grant", time.Now())
	err := p.p.Grant(ctx, g)
	p.fail("grant", err)
	return err
}

// Revoke forwards to the wrapped provisioner, timed.
func (p *Provisioner) Revoke(ctx context.Context, g access.Grant) error {
	defer p.observe("revoke", time.Now())
	err := p.p.Revoke(ctx, g)
	p.fail("revoke", err)
	return err
}

func (p *Provisioner) observe(op string, start time.Time) {
	p.m.callSeconds.WithLabelValues(p.name, op).Observe(time.Since(start).Seconds())
}

func (p *Provisioner) fail(op string, err error) {
	if err != nil {
		p.m.callErrors.WithLabelValues(p.name, op, p.m.errorCode(p.name, err)).Inc()
	}
}

type memberLister struct {
	w *Provisioner
	l access.MemberLister
}

// Members forwards to the wrapped provisioner, timed.
func (m *memberLister) Members(ctx context.Context, group string) ([]string, error) {
	defer m.w.observe("members", time.Now())
	out, err := m.l.Members(ctx, group)
	m.w.fail("members", err)
	return out, err
}

type userChecker struct {
	w *Provisioner
	c access.UserChecker
}

// CheckUser forwards to the wrapped provisioner, timed. ErrUnknownUser and
// ErrUserDisabled are answers, not failures, and are counted by their code
// all the same (unknown_user, user_disabled).
func (u *userChecker) CheckUser(ctx context.Context, identity string) error {
	defer u.w.observe("check_user", time.Now())
	err := u.c.CheckUser(ctx, identity)
	u.w.fail("check_user", err)
	return err
}

// maxCodes bounds the distinct API error codes kept per provider; later
// ones are counted as "other_api_error".
const maxCodes = 32

// errorCode names err for the code label: the provider's API error code
// when the error carries one (an ErrorCode() string method, as AWS's
// smithy errors and Okta's APIError have), else a fixed class.
func (m *Metrics) errorCode(provider string, err error) string {
	var coded interface{ ErrorCode() string }
	if errors.As(err, &coded) {
		if c := coded.ErrorCode(); validCode(c) {
			m.codesMu.Lock()
			defer m.codesMu.Unlock()
			seen := m.codes[provider]
			if seen == nil {
				seen = map[string]bool{}
				m.codes[provider] = seen
			}
			if seen[c] || len(seen) < maxCodes {
				seen[c] = true
				return c
			}
			return "other_api_error"
		}
	}
	var ne net.Error
	switch {
	case errors.Is(err, context.DeadlineExceeded):
		return "timeout"
	case errors.Is(err, context.Canceled):
		return "canceled"
	case errors.Is(err, access.ErrUnknownUser):
		return "unknown_user"
	case errors.Is(err, access.ErrUserDisabled):
		return "user_disabled"
	case errors.As(err, &ne):
		return "network"
	case access.IsPermanent(err):
		return "permanent"
	}
	return "other"
}

// validCode keeps label values short and plain.
func validCode(c string) bool {
	if c == "" || len(c) > 64 {
		return false
	}
	for _, r := range c {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '_' || r == '.' || r == '-') {
			return false
		}
	}
	return true
}
