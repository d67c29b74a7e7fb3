package config

import (
	"errors"
	"fmt"
	"maps"
	"net/mail"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/accessbot/accessbot/access"
	"github.com/accessbot/accessbot/providers/static"
)

var roleName = regexp.MustCompile(`^[a-z0-9][a-z0-9._-]{0,62}$`)

// identityProblem explains why an identity in the config cannot be used
// because of its characters, or returns "". Only plain ASCII is accepted:
// "ſam@example.com" or a Kelvin sign K would otherwise fold to another
// person's address in one place and not in another.
func identityProblem(e string) string {
	for _, r := range strings.TrimSpace(e) {
		if r > 0x7e || r < 0x20 {
			return fmt.Sprintf("%q contains %q (U+%04X); identities must be plain ASCII email addresses", e, r, r)
		}
	}
	return ""
}

func checkEmails(list []string, path string, ps *Problems) []string {
	var out []string
	for i, e := range list {
		if msg := identityProblem(e); msg != "" {
			ps.add(fmt.Sprintf("%s[%d]", path, i), "%s", msg)
			continue
		}
		e = access.NormalizeIdentity(e)
		if a, err := mail.ParseAddress(e); err != nil || a.Address != e {
			ps.add(fmt.Sprintf("%s[%d]", path, i), "%q is not an email address", list[i])
			continue
		}
		out = append(out, e)
	}
	return out
}

// knownProviders returns the provisioners the config enables.
func knownProviders(cfg Config) map[string]bool {
	m := map[string]bool{}
	if cfg.Providers.DryRun != nil {
		m["dryrun"] = true
	}
	if cfg.Providers.AWS != nil {
		m["aws"] = true
	}
	if cfg.Providers.Okta != nil {
		m["okta"] = true
	}
	return m
}

// buildPolicy builds the policy and the static rotations from cfg, adding
// every problem it finds to ps.
func buildPolicy(cfg Config, ps *Problems) (*access.Policy, map[string]*static.Rotation) {
	p := &access.Policy{Roles: map[string]access.Role{}, Rotations: map[string]access.Rotation{}}
	statics := map[string]*static.Rotation{}
	for name, rc := range cfg.Rotations {
		rot, st := buildRotation(cfg, name, rc, ps)
		if st != nil {
			statics[name] = st
		}
		p.Rotations[name] = rot
	}
	provs := knownProviders(cfg)
	for name, rc := range cfg.Roles {
		p.Roles[name] = buildRole(cfg, provs, name, rc, ps)
	}
	p.BreakGlass = checkEmails(cfg.BreakGlass.Allowed, "break_glass.allowed", ps)
	p.Acknowledgers = checkEmails(cfg.BreakGlass.Acknowledgers, "break_glass.acknowledgers", ps)
	p.Admins = checkEmails(cfg.Admins, "admins", ps)
	if len(cfg.Roles) == 0 {
		ps.add("roles", "no roles are configured")
	}
	return p, statics
}

// buildRotation checks the rotation name (at rotations.<name>) and returns
// it, with its static schedule when its source is static and it is valid.
func buildRotation(cfg Config, name string, rc RotationConfig, ps *Problems) (access.Rotation, *static.Rotation) {
	var statics *static.Rotation
	path := "rotations." + name
	if !roleName.MatchString(name) {
		ps.add(path, "rotation names are lower-case letters, digits, '.', '_' and '-'")
	}
	src := rc.Source
	if src == "" {
		src = "static"
	}
	rot := access.Rotation{Name: name, Source: src, Grant: rc.Grant}
	switch src {
	case "static":
		ovs := make([]static.Override, len(rc.Overrides))
		for i, o := range rc.Overrides {
			ovs[i] = static.Override{From: o.From, Until: o.Until, Member: o.Member}
		}
		r, errs := static.New(static.Config{Name: name, Timezone: rc.Timezone, Handoff: rc.Handoff,
			Shift: rc.Shift, Start: rc.Start, Members: rc.Members, Overrides: ovs})
		for _, e := range errs {
			ps.add(path+"."+e.Field, "%s", e.Msg)
		}
		if len(errs) == 0 {
			statics = r
		}
		for _, k := range []struct {
			set  bool
			name string
		}{{len(rc.ScheduleIDs) > 0, "schedule_ids"}, {len(rc.EscalationPolicyIDs) > 0, "escalation_policy_ids"},
			{rc.ScheduleID != "", "schedule_id"}} {
			if k.set {
				ps.add(path+"."+k.name, "only for pagerduty or opsgenie rotations; this one is static")
			}
		}
	// The adapters check the rotation's own keys; the providers sections
	// are checked once, in validateRest.
	case "pagerduty":
		var api PagerDutyConfig
		if p := cfg.Providers.PagerDuty; p != nil {
			api = *p
		} else {
			ps.add(path+".source", "pagerduty rotations need providers.pagerduty (token)")
		}
		addFieldErrors(ps, rc.PagerDuty(name, api).ValidateRotation())
	case "opsgenie":
		var api OpsgenieConfig
		if o := cfg.Providers.Opsgenie; o != nil {
			api = *o
		} else {
			ps.add(path+".source", "opsgenie rotations need providers.opsgenie (api_key)")
		}
		addFieldErrors(ps, rc.Opsgenie(name, api).ValidateRotation())
	default:
		ps.add(path+".source", "unknown source %q (use static, pagerduty or opsgenie)", rc.Source)
	}
	for _, k := range []struct{ v, name string }{{rc.CacheFor, "cache_for"}, {rc.StaleFor, "stale_for"}, {rc.Grace, "grace"}} {
		if k.v != "" {
			if _, err := access.ParseDuration(k.v); errors.Is(err, access.ErrTooLong) {
				ps.add(path+"."+k.name, "%q is longer than %s, the longest duration accepted", k.v, access.FormatDuration(access.MaxParsedDuration))
			} else if err != nil {
				ps.add(path+"."+k.name, "%q is not a duration (like 5m, 1h)", k.v)
			}
		}
	}
	for i, g := range rc.Grant {
		if _, ok := cfg.Roles[strings.ToLower(g)]; !ok {
			ps.add(fmt.Sprintf("%s.grant[%d]", path, i), "unknown role %q", g)
		}
	}
	return rot, statics
}

// buildRole checks the role name (at roles.<name>) and returns it; provs
// are the provisioners the config enables.
func buildRole(cfg Config, provs map[string]bool, name string, rc RoleConfig, ps *Problems) access.Role {
	path := "roles." + name
	if !roleName.MatchString(name) {
		ps.add(path, "role names are lower-case letters, digits, '.', '_' and '-', at most 63 characters")
	}
	role := access.Role{Name: name, Description: rc.Description, Provider: rc.Provider, Group: rc.Group,
		SelfApprove: rc.SelfApprove, BreakGlass: rc.BreakGlass, Approvals: rc.Approvals, Reconcile: rc.Reconcile}
	if rc.Description == "" {
		ps.add(path+".description", "missing: say what the role gives (it is shown to approvers)")
	}
	switch {
	case rc.Provider == "":
		ps.add(path+".provider", "missing (one of: %s)", strings.Join(slices.Sorted(maps.Keys(provs)), ", "))
	case !provs[rc.Provider]:
		ps.add(path+".provider", "%q is not configured under providers (configured: %s)", rc.Provider, orNone(slices.Sorted(maps.Keys(provs))))
	}
	if rc.Group == "" {
		ps.add(path+".group", "missing: the provider group that grants this role")
	}
	dur := func(key, v string, def time.Duration) time.Duration {
		if v == "" {
			return def
		}
		d, err := access.ParseDuration(v)
		if errors.Is(err, access.ErrTooLong) {
			ps.add(path+"."+key, "%q is longer than %s, the longest duration accepted", v, access.FormatDuration(access.MaxParsedDuration))
			return def
		}
		if err != nil {
			ps.add(path+"."+key, "%q is not a duration (use 30m, 2h, 1d or 1h30m)", v)
			return def
		}
		if d < access.MinDuration {
			ps.add(path+"."+key, "%q is shorter than the minimum of 1m", v)
		}
		return d
	}
	role.MaxDuration = dur("max_duration", rc.MaxDuration, 0)
	if rc.MaxDuration == "" {
		ps.add(path+".max_duration", "missing: the longest time this role may be held (e.g. 4h)")
	}
	role.DefaultDuration = dur("default_duration", rc.DefaultDuration, access.DefaultDuration)
	if role.MaxDuration > 0 && role.DefaultDuration > role.MaxDuration {
		if rc.DefaultDuration != "" {
			ps.add(path+".default_duration", "%s is longer than max_duration %s", rc.DefaultDuration, rc.MaxDuration)
		}
		role.DefaultDuration = role.MaxDuration
	}
	role.PendingTTL = dur("pending_ttl", rc.PendingTTL, access.DefaultPendingTTL)
	role.MaxScheduleAhead = roleScheduleAhead(cfg, path, rc, ps)
	if role.Approvals == 0 {
		role.Approvals = 1
	}
	if role.Approvals < 0 {
		ps.add(path+".approvals", "must be at least 1")
	}
	switch rc.Reconcile {
	case "", "report", "remove":
	default:
		ps.add(path+".reconcile", "unknown value %q (use report or remove)", rc.Reconcile)
	}
	rots := rc.Approvers.Rotations
	if rc.Approvers.Rotation != "" {
		rots = append([]string{rc.Approvers.Rotation}, rots...)
	}
	for i, r := range rots {
		key := path + ".approvers.rotation"
		if rc.Approvers.Rotation == "" || i > 0 {
			key = fmt.Sprintf("%s.approvers.rotations[%d]", path, i-boolInt(rc.Approvers.Rotation != ""))
		}
		if _, ok := cfg.Rotations[strings.ToLower(r)]; !ok {
			ps.add(key, "unknown rotation %q (rotations: %s)", r, orNone(slices.Sorted(maps.Keys(cfg.Rotations))))
			continue
		}
		role.ApproverRotations = append(role.ApproverRotations, strings.ToLower(r))
	}
	role.ApproverUsers = checkEmails(rc.Approvers.Users, path+".approvers.users", ps)
	if len(rots) == 0 && len(rc.Approvers.Users) == 0 {
		ps.add(path+".approvers", "missing: name a rotation and/or users who may approve")
	}
	if len(rots) == 0 && role.Approvals > len(role.ApproverUsers) && len(role.ApproverUsers) > 0 {
		ps.add(path+".approvals", "needs %d approvals but only %d approvers are named", role.Approvals, len(role.ApproverUsers))
	}
	buildNudges(cfg, path, rc, &role, dur, ps)
	buildGate(cfg, provs, path, rc, &role, ps)
	return role
}

// buildLimits turns the limits section into access.Options: a missing
// key keeps the service default, 0 turns the limit off.
func buildLimits(lc LimitsConfig, ps *Problems) access.Options {
	var o access.Options
	for _, k := range []struct {
		v    *int
		name string
		dst  *int
	}{{lc.PendingPerUser, "pending_per_user", &o.MaxPendingPerUser}, {lc.CommandsPerMinute, "commands_per_minute", &o.CommandsPerMinute}} {
		switch {
		case k.v == nil:
		case *k.v < 0:
			ps.add("limits."+k.name, "%d is negative; use a positive number, or 0 for no limit", *k.v)
		case *k.v == 0:
			*k.dst = -1
		default:
			*k.dst = *k.v
		}
	}
	if v := lc.RolesPerRequest; v != nil { // several roles in one request
		if *v < 1 {
			ps.add("limits.roles_per_request", "%d: a request names at least one role; use 1 to allow one role per request", *v)
		} else {
			o.RolesPerRequest = *v
		}
	}
	return o
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}
