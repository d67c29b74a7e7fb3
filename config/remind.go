package config

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/accessbot/accessbot/access"
)

// EscalateToConfig names who is asked too when a request of a role stays
// undecided for escalate_after: named users and the on-call people of
// rotations (a pagerduty rotation may select an escalation level beyond
// the first with escalation_levels).
type EscalateToConfig struct {
	Users     []string `yaml:"users"`
	Rotations []string `yaml:"rotations"`
}

// buildNudges checks a role's remind_after, escalate_after and
// escalate_to (at path) and sets them on role; dur parses a duration key
// of the role, reporting its problems.
func buildNudges(cfg Config, path string, rc RoleConfig, role *access.Role, dur func(key, v string, def time.Duration) time.Duration, ps *Problems) {
	role.RemindAfter = dur("remind_after", rc.RemindAfter, 0)
	role.EscalateAfter = dur("escalate_after", rc.EscalateAfter, 0)
	for _, k := range []struct {
		name string
		v    string
		d    time.Duration
	}{{"remind_after", rc.RemindAfter, role.RemindAfter}, {"escalate_after", rc.EscalateAfter, role.EscalateAfter}} {
		if k.d > 0 && role.PendingTTL > 0 && k.d >= role.PendingTTL {
			ps.add(path+"."+k.name, "%s is not shorter than pending_ttl %s: requests time out before it", k.v, access.FormatDuration(role.PendingTTL))
		}
	}
	for i, r := range rc.EscalateTo.Rotations {
		if _, ok := cfg.Rotations[strings.ToLower(r)]; !ok {
			ps.add(fmt.Sprintf("%s.escalate_to.rotations[%d]", path, i), "unknown rotation %q (rotations: %s)", r, orNone(slices.Sorted(maps.Keys(cfg.Rotations))))
			continue
		}
		role.EscalateRotations = append(role.EscalateRotations, strings.ToLower(r))
	}
	role.EscalateUsers = checkEmails(rc.EscalateTo.Users, path+".escalate_to.users", ps)
	named := len(rc.EscalateTo.Users)+len(rc.EscalateTo.Rotations) > 0
	switch {
	case rc.EscalateAfter != "" && !named:
		ps.add(path+".escalate_to", "missing: name the users and/or rotations asked after escalate_after")
	case rc.EscalateAfter == "" && named:
		ps.add(path+".escalate_after", "missing: say after how long escalate_to is asked (e.g. 30m)")
	}
}
