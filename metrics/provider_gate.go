package metrics

import (
	"context"
	"time"

	"github.com/accessbot/accessbot/access"
)

// groupMember times the access.GroupMembership capability (the request
// gate's requesters check).
type groupMember struct {
	w *Provisioner
	g access.GroupMembership
}

// IsMember forwards to the wrapped provisioner, timed.
func (g *groupMember) IsMember(ctx context.Context, identity, group string) (bool, error) {
	defer g.w.observe("is_member", time.Now())
	in, err := g.g.IsMember(ctx, identity, group)
	g.w.fail("is_member", err)
	return in, err
}

// provisionerOf finds the *Provisioner inside what wrapProvisioner made.
func (m *Metrics) provisionerOf(p access.Provisioner) *Provisioner {
	switch w := p.(type) {
	case *Provisioner:
		return w
	case interface{ base() *Provisioner }:
		return w.base()
	}
	return nil
}

func (p *Provisioner) base() *Provisioner { return p }

// withGroupMembership adds g to w, keeping the capabilities w has.
func withGroupMembership(w access.Provisioner, g *groupMember) access.Provisioner {
	ml, isM := w.(access.MemberLister)
	uc, isU := w.(access.UserChecker)
	switch {
	case isM && isU:
		return struct {
			access.Provisioner
			access.MemberLister
			access.UserChecker
			*groupMember
		}{w, ml, uc, g}
	case isM:
		return struct {
			access.Provisioner
			access.MemberLister
			*groupMember
		}{w, ml, g}
	case isU:
		return struct {
			access.Provisioner
			access.UserChecker
			*groupMember
		}{w, uc, g}
	}
	return struct {
		access.Provisioner
		*groupMember
	}{w, g}
}
