package config

import (
	"errors"
	"time"

	"github.com/accessbot/accessbot/access"
)

// Scheduled access: max_schedule_ahead bounds how far ahead a request's
// start may lie. limits.max_schedule_ahead is the default of every role
// (access.DefaultMaxScheduleAhead when unset); roles.<name>.max_schedule_ahead
// overrides it for one role.

// scheduleAhead parses a max_schedule_ahead value at path: "" is def;
// a bad value is a problem (and def is used).
func scheduleAhead(path, v string, def time.Duration, ps *Problems) time.Duration {
	if v == "" {
		return def
	}
	d, err := access.ParseDuration(v)
	switch {
	case errors.Is(err, access.ErrTooLong):
		ps.add(path, "%q is longer than %s, the longest duration accepted", v, access.FormatDuration(access.MaxParsedDuration))
	case err != nil:
		ps.add(path, "%q is not a duration (use 12h, 14d or 30d)", v)
	case d < time.Hour:
		ps.add(path, "%q is shorter than 1h, the least a start may be allowed ahead (e.g. 14d)", v)
	default:
		return d
	}
	return def
}

// defaultScheduleAhead is limits.max_schedule_ahead, or the built-in
// default; its problems are reported by checkScheduleLimits.
func defaultScheduleAhead(cfg Config) time.Duration {
	var quiet Problems
	return scheduleAhead("limits.max_schedule_ahead", cfg.Limits.MaxScheduleAhead, access.DefaultMaxScheduleAhead, &quiet)
}

// checkScheduleLimits reports a bad limits.max_schedule_ahead.
func checkScheduleLimits(cfg Config, ps *Problems) {
	scheduleAhead("limits.max_schedule_ahead", cfg.Limits.MaxScheduleAhead, 0, ps)
}

// roleScheduleAhead is a role's max_schedule_ahead, or the default.
func roleScheduleAhead(cfg Config, path string, rc RoleConfig, ps *Problems) time.Duration {
	return scheduleAhead(path+".max_schedule_ahead", rc.MaxScheduleAhead, defaultScheduleAhead(cfg), ps)
}
