package metrics_test

import (
	"context"
	"testing"

	"github.com/accessbot/accessbot/access"
	"github.com/accessbot/accessbot/metrics"
)

type grouper struct{}

func (grouper) IsMember(_ context.Context, identity, _ string) (bool, error) {
	return identity == "a@example.com", nil
}

// The wrapper keeps GroupMembership (with the other capabilities) and
// times it.
func TestWrapProvisionerKeepsGroupMembership(t *testing.T) {
	ctx := context.Background()
	m := metrics.New(metrics.Options{})
	provs := map[string]access.Provisioner{
		"groups": struct {
			plainProv
			grouper
		}{},
		"all": struct {
			plainProv
			lister
			checker
			grouper
		}{},
		"lists": struct {
			plainProv
			lister
			grouper
		}{},
		"checks": struct {
			plainProv
			checker
			grouper
		}{},
		"plain": plainProv{},
	}
	for name, p := range m.WrapProviders(provs) {
		gm, okG := p.(access.GroupMembership)
		_, okM := p.(access.MemberLister)
		_, okU := p.(access.UserChecker)
		if okG != (name != "plain") || okM != (name == "all" || name == "lists") || okU != (name == "all" || name == "checks") {
			t.Errorf("%s: GroupMembership %v MemberLister %v UserChecker %v", name, okG, okM, okU)
			continue
		}
		if okG {
			if in, err := gm.IsMember(ctx, "a@example.com", "g"); !in || err != nil {
				t.Errorf("%s: IsMember = %v %v", name, in, err)
			}
		}
	}
}
