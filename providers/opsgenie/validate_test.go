package opsgenie_test

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/accessbot/accessbot/providers/opsgenie"
)

// TestValidateKeyPaths: the API settings are reported under
// providers.opsgenie, the rotation's under rotations.<Name>, and
// ValidateAPI and ValidateRotation split Validate between them.
func TestValidateKeyPaths(t *testing.T) {
	paths := func(errs []error) []string {
		var out []string
		for _, err := range errs {
			fe, ok := err.(*opsgenie.FieldError)
			if !ok {
				t.Fatalf("%T is not a *FieldError", err)
			}
			out = append(out, fe.Path+": "+fe.Msg)
		}
		return out
	}
	cfg := opsgenie.Config{Name: "ops", APIURL: "api.opsgenie.com", APIKey: "a secret-abc", CacheFor: -time.Second, StaleFor: -time.Second}
	api := []string{
		`providers.opsgenie.api_url: "api.opsgenie.com" is not an http(s) URL`,
		"providers.opsgenie.api_key: contains white space (check how it is quoted)",
	}
	rot := []string{
		"rotations.ops.schedule_id: is empty (an opsgenie rotation needs a schedule id or name)",
		"rotations.ops.cache_for: -1s is negative",
		"rotations.ops.stale_for: -1s is negative",
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
		t.Error("a problem shows the key")
	}
	if got, want := paths(opsgenie.Config{ScheduleID: "s"}.ValidateAPI()), []string{
		"providers.opsgenie.api_key: is empty; set it from the environment, e.g. ${OPSGENIE_API_KEY}",
	}; !slices.Equal(got, want) {
		t.Errorf("no key:\n got %q\nwant %q", got, want)
	}
	if errs := (opsgenie.Config{Name: "ops", APIKey: "k", ScheduleID: "Primary"}).Validate(); errs != nil {
		t.Errorf("good config: %v", errs)
	}
}
