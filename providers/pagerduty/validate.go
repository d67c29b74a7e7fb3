package pagerduty

import (
	"fmt"
	"strings"

	"github.com/accessbot/accessbot/internal/fielderr"
	"github.com/accessbot/accessbot/internal/httpapi"
	"github.com/accessbot/accessbot/internal/oncallcache"
)

// FieldError is one problem of a Config, at its key path in the accessbot
// config file: providers.pagerduty.… for the API settings,
// rotations.<Name>.… for those of the rotation.
type FieldError = fielderr.Error

const prefix = "providers.pagerduty."

// rotationPath is the key path of the rotation c configures.
func (c Config) rotationPath() string { return "rotations." + c.Name }

// Validate returns every problem of c (ValidateAPI's and
// ValidateRotation's), each a *FieldError with its key path; nil when c is
// usable. It never shows the token. New applies the same checks (this is
// their one source).
func (c Config) Validate() []error { return append(c.ValidateAPI(), c.ValidateRotation()...) }

// ValidateAPI checks the settings of the providers.pagerduty section
// (api_url, token), which every PagerDuty rotation shares.
func (c Config) ValidateAPI() []error {
	var errs []error
	add := func(key, format string, args ...any) {
		errs = append(errs, &FieldError{Path: prefix + key, Msg: fmt.Sprintf(format, args...)})
	}
	httpapi.BaseURL(c.APIURL, DefaultAPIURL, add)
	httpapi.CheckSecret("token", "PAGERDUTY_TOKEN", c.Token, add)
	return errs
}

// ValidateRotation checks the settings of the rotation (schedule_ids,
// escalation_policy_ids, escalation_levels, cache_for, stale_for), at
// rotations.<Name>.
func (c Config) ValidateRotation() []error {
	var errs []error
	path := c.rotationPath()
	add := func(key, format string, args ...any) {
		p := path
		if key != "" {
			p += "." + key
		}
		errs = append(errs, &FieldError{Path: p, Msg: fmt.Sprintf(format, args...)})
	}
	if len(c.ScheduleIDs) == 0 && len(c.EscalationPolicyIDs) == 0 {
		add("", "set schedule_ids or escalation_policy_ids (or both)")
	}
	for i, id := range c.ScheduleIDs {
		if strings.TrimSpace(id) == "" {
			add(fmt.Sprintf("schedule_ids[%d]", i), "is empty")
		}
	}
	for i, id := range c.EscalationPolicyIDs {
		if strings.TrimSpace(id) == "" {
			add(fmt.Sprintf("escalation_policy_ids[%d]", i), "is empty")
		}
	}
	for i, l := range c.EscalationLevels {
		if l < 1 {
			add(fmt.Sprintf("escalation_levels[%d]", i), "is %d; levels start at 1", l)
		}
	}
	oncallcache.CheckAges(c.CacheFor, c.StaleFor, add)
	return errs
}

// problemsError is the error of New for the problems of c: each one with
// its key relative to its section ("pagerduty: token is empty; …").
func (c Config) problemsError(errs []error) error {
	lines := make([]string, len(errs))
	for i, err := range errs {
		fe := err.(*FieldError)
		key := strings.TrimPrefix(strings.TrimPrefix(strings.TrimPrefix(fe.Path, prefix), c.rotationPath()), ".")
		if key != "" {
			key += " "
		}
		lines[i] = "pagerduty: " + key + fe.Msg
	}
	return fmt.Errorf("%s", strings.Join(lines, "\n"))
}
