package opsgenie

import (
	"fmt"
	"strings"

	"github.com/accessbot/accessbot/internal/fielderr"
	"github.com/accessbot/accessbot/internal/httpapi"
	"github.com/accessbot/accessbot/internal/oncallcache"
)

// FieldError is one problem of a Config, at its key path in the accessbot
// config file: providers.opsgenie.… for the API settings,
// rotations.<Name>.… for those of the rotation.
type FieldError = fielderr.Error

const prefix = "providers.opsgenie."

// rotationPath is the key path of the rotation c configures.
func (c Config) rotationPath() string { return "rotations." + c.Name }

// Validate returns every problem of c (ValidateAPI's and
// ValidateRotation's), each a *FieldError with its key path; nil when c is
// usable. It never shows the API key. New applies the same checks (this
// is their one source).
func (c Config) Validate() []error { return append(c.ValidateAPI(), c.ValidateRotation()...) }

// ValidateAPI checks the settings of the providers.opsgenie section
// (api_url, api_key), which every Opsgenie rotation shares.
func (c Config) ValidateAPI() []error {
	var errs []error
	add := func(key, format string, args ...any) {
		errs = append(errs, &FieldError{Path: prefix + key, Msg: fmt.Sprintf(format, args...)})
	}
	httpapi.BaseURL(c.APIURL, DefaultAPIURL, add)
	httpapi.CheckSecret("api_key", "OPSGENIE_API_KEY", c.APIKey, add)
	return errs
}

// ValidateRotation checks the settings of the rotation (schedule_id,
// cache_for, stale_for), at rotations.<Name>.
func (c Config) ValidateRotation() []error {
	var errs []error
	add := func(key, format string, args ...any) {
		errs = append(errs, &FieldError{Path: c.rotationPath() + "." + key, Msg: fmt.Sprintf(format, args...)})
	}
	if strings.TrimSpace(c.ScheduleID) == "" {
		add("schedule_id", "is empty (an opsgenie rotation needs a schedule id or name)")
	}
	oncallcache.CheckAges(c.CacheFor, c.StaleFor, add)
	return errs
}

// problemsError is the error of New for the problems of c: each one with
// its key relative to its section ("opsgenie: api_key is empty; …").
func (c Config) problemsError(errs []error) error {
	lines := make([]string, len(errs))
	for i, err := range errs {
		fe := err.(*FieldError)
		key := strings.TrimPrefix(strings.TrimPrefix(fe.Path, prefix), c.rotationPath()+".")
		lines[i] = "opsgenie: " + key + " " + fe.Msg
	}
	return fmt.Errorf("%s", strings.Join(lines, "\n"))
}
