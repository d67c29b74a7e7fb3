package pagerduty_test

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/accessbot/accessbot/providers/pagerduty"
)

// TestValidateKeyPaths: the API settings are reported under
// providers.pagerduty, the rotation's under rotations.<Name>, and
// ValidateAPI and ValidateRotation split Validate between them.
func TestValidateKeyPaths(t *testing.T) {
	cfg := pagerduty.Config{Name: "oncall", APIURL: "ftp://x", Token: "has secret-abc", ScheduleIDs: []string{"P1", " "},
		EscalationPolicyIDs: []string{""}, EscalationLevels: []int{1, 0}, CacheFor: -time.Second, StaleFor: -time.Minute}
	paths := func(errs []error) []string {
		var out []string
		for _, err := range errs {
			fe, ok := err.(*pagerduty.FieldError)
			if !ok {
				t.Fatalf("%T is not a *FieldError", err)
			}
			out = append(out, fe.Path+": "+fe.Msg)
		}
		return out
	}
	api := []string{
		`providers.pagerduty.api_url: "ftp://x" is not an http(s) URL`,
		"providers.pagerduty.token: contains white space (check how it is quoted)",
	}
	rot := []string{
		"rotations.oncall.schedule_ids[1]: is empty",
		"rotations.oncall.escalation_policy_ids[0]: is empty",
		"rotations.oncall.escalation_levels[1]: is 0; levels start at 1",
		"rotations.oncall.cache_for: -1s is negative",
		"rotations.oncall.stale_for: -1m0s is negative",
	}
	if got := paths(cfg.ValidateAPI()); !slices.Equal(got, api) {
		t.Errorf("ValidateAPI:\n got %q\nwant %q", got, api)
	}
	if got := paths(cfg.ValidateRotation()); !slices.Equal(got, rot) {
		t.Errorf("ValidateRotation:\n got %q\nwant %q", got, rot)
	}
	all := paths(cfg.Validate())
	if want := append(slices.Clone(api), rot...); !slices.Equal(all, want) {
		t.Errorf("Validate:\n got %q\nwant %q", all, want)
	}
	if strings.Contains(strings.Join(all, "\n"), "secret-abc") {
		t.Error("a problem shows the token")
	}
	empty := paths(pagerduty.Config{Name: "oncall"}.Validate())
	if want := []string{
		"providers.pagerduty.token: is empty; set it from the environment, e.g. ${PAGERDUTY_TOKEN}",
		"rotations.oncall: set schedule_ids or escalation_policy_ids (or both)",
	}; !slices.Equal(empty, want) {
		t.Errorf("empty config:\n got %q\nwant %q", empty, want)
	}
	if errs := (pagerduty.Config{Name: "oncall", Token: "t", EscalationPolicyIDs: []string{"E1"}}).Validate(); errs != nil {
		t.Errorf("good config: %v", errs)
	}
}
