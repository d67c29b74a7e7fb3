package config

import (
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strings"

	"github.com/accessbot/accessbot/access"
)

// RequestersConfig is roles.<name>.requesters: who may request the role.
type RequestersConfig struct {
	Users     []string         `yaml:"users"`
	Groups    []GroupRefConfig `yaml:"groups"`
	Rotations []string         `yaml:"rotations"`
}

// GroupRefConfig is a provider group whose members may request a role.
type GroupRefConfig struct {
	Provider string `yaml:"provider"` // okta or aws
	Group    string `yaml:"group"`    // the provider's group id
	Name     string `yaml:"name"`     // shown to people (optional)
}

// AutoApproveConfig is roles.<name>.auto_approve.
type AutoApproveConfig struct {
	Rotations []string `yaml:"rotations"`
	Users     []string `yaml:"users"`
	Hours     string   `yaml:"hours"` // "mon-fri 09:00-18:00 Europe/Berlin"
}

// groupProviders are the providers that can tell group membership.
var groupProviders = []string{"aws", "okta"}

// buildGate checks the request-gate keys of the role at path and sets
// them on role.
func buildGate(cfg Config, provs map[string]bool, path string, rc RoleConfig, role *access.Role, ps *Problems) {
	rotations := func(list []string, key string) []string {
		var out []string
		for i, r := range list {
			if _, ok := cfg.Rotations[strings.ToLower(r)]; !ok {
				ps.add(fmt.Sprintf("%s[%d]", key, i), "unknown rotation %q (rotations: %s)", r, orNone(slices.Sorted(maps.Keys(cfg.Rotations))))
				continue
			}
			out = append(out, strings.ToLower(r))
		}
		return out
	}
	if rq := rc.Requesters; rq != nil {
		key := path + ".requesters"
		out := &access.Requesters{
			Users:     checkEmails(rq.Users, key+".users", ps),
			Rotations: rotations(rq.Rotations, key+".rotations"),
		}
		for i, g := range rq.Groups {
			gk := fmt.Sprintf("%s.groups[%d]", key, i)
			switch {
			case g.Provider == "":
				ps.add(gk+".provider", "missing: the provider of the group (%s)", strings.Join(groupProviders, " or "))
			case !slices.Contains(groupProviders, g.Provider):
				ps.add(gk+".provider", "%q cannot tell group membership (use %s)", g.Provider, strings.Join(groupProviders, " or "))
			case !provs[g.Provider]:
				ps.add(gk+".provider", "%q is not configured under providers", g.Provider)
			}
			if strings.TrimSpace(g.Group) == "" {
				ps.add(gk+".group", "missing: the provider's group id")
			}
			out.Groups = append(out.Groups, access.GroupRef{Provider: g.Provider, Group: strings.TrimSpace(g.Group), Name: strings.TrimSpace(g.Name)})
		}
		if len(rq.Users)+len(rq.Groups)+len(rq.Rotations) == 0 {
			ps.add(key, "names nobody: list users, groups or rotations (leave requesters out to let everyone request)")
		}
		role.Requesters = out
	}
	if rc.ReasonPattern != "" {
		re, err := regexp.Compile(rc.ReasonPattern)
		if err != nil {
			ps.add(path+".reason_pattern", "not a valid regular expression (Go RE2 syntax): %s", strings.TrimPrefix(err.Error(), "error parsing regexp: "))
		} else {
			role.ReasonPattern = re
		}
	}
	role.ReasonHint = strings.TrimSpace(rc.ReasonHint)
	if role.ReasonHint != "" && rc.ReasonPattern == "" {
		ps.add(path+".reason_hint", "there is no reason_pattern for it to explain")
	}
	if n := len([]rune(role.ReasonHint)); n > 300 {
		ps.add(path+".reason_hint", "%d characters long; at most 300 (it is shown in chat)", n)
	}
	if a := rc.AutoApprove; a != nil {
		key := path + ".auto_approve"
		out := &access.AutoApprove{Users: checkEmails(a.Users, key+".users", ps), Rotations: rotations(a.Rotations, key+".rotations")}
		if len(a.Users)+len(a.Rotations) == 0 {
			ps.add(key, "names nobody: list rotations (whoever is on call) and/or users whose requests are approved without a click")
		}
		if a.Hours != "" {
			h, err := access.ParseHours(a.Hours)
			if err != nil {
				ps.add(key+".hours", "%s", strings.TrimPrefix(err.Error(), access.ErrBadHours.Error()+": "))
			} else {
				out.Hours = h
			}
		}
		role.AutoApprove = out
	}
	if ch := rc.ApprovalsChannel; ch != "" {
		if strings.TrimSpace(ch) != ch || strings.ContainsAny(ch, " \t\r\n") {
			ps.add(path+".approvals_channel", "%q is not a channel id (no spaces, e.g. C0DBAPPROVALS)", ch)
		}
		role.ApprovalsChannel = ch
	}
	role.Notify = checkEmails(rc.Notify, path+".notify", ps)
}

// gateWarnings are the warnings of check about the request gate: roles
// that everyone may request.
func gateWarnings(cfg Config) Problems {
	var ws Problems
	for _, name := range slices.Sorted(maps.Keys(cfg.Roles)) {
		if cfg.Roles[name].Requesters == nil {
			ws.add("roles."+name+".requesters", "absent, so everyone in chat may request this role")
		}
	}
	return ws
}
