package config

import (
	"strings"
	"testing"
	"time"
)

const gateBase = `
chat:
  console: {users: {alice: alice@example.com}}
providers:
  dryrun: {}
  okta: {org_url: "https://acme.okta.com", api_token: t0k}
rotations:
  platform: {timezone: Europe/Berlin, handoff: "monday 09:00", members: [bob@example.com]}
roles:
`

// TestGateKeys: the request-gate keys are built into the role, and every
// problem with them is reported at its key path.
func TestGateKeys(t *testing.T) {
	good := gateBase + `
  prod-admin:
    description: d
    provider: dryrun
    group: g
    max_duration: 1h
    approvers: {users: [dave@example.com]}
    requesters:
      users: [Alice@example.com]
      groups: [{provider: okta, group: 00gsre, name: sre}]
      rotations: [Platform]
    reason_pattern: '^(INC|CHG)-[0-9]+ '
    reason_hint: "start with the incident id, e.g. INC-1234 checkout down"
    auto_approve:
      rotations: [platform]
      hours: "mon-fri 09:00-18:00 Europe/Berlin"
    approvals_channel: C0DBAPPROVALS
    notify: [sec@example.com]
  open:
    description: d
    provider: dryrun
    group: g2
    max_duration: 1h
    approvers: {users: [dave@example.com]}
`
	l, err := Parse([]byte(good), noEnv)
	if err != nil {
		t.Fatal(err)
	}
	r := l.Policy.Roles["prod-admin"]
	if r.Requesters == nil || r.Requesters.Users[0] != "alice@example.com" || r.Requesters.Rotations[0] != "platform" ||
		r.Requesters.Groups[0].Label() != "sre" || r.Requesters.Groups[0].Group != "00gsre" {
		t.Fatalf("requesters %+v", r.Requesters)
	}
	if r.ReasonPattern == nil || !r.ReasonPattern.MatchString("INC-1 x") || r.ReasonHint == "" {
		t.Fatalf("reason %v %q", r.ReasonPattern, r.ReasonHint)
	}
	mon := time.Date(2026, 11, 16, 10, 0, 0, 0, time.UTC)
	if r.AutoApprove == nil || r.AutoApprove.Rotations[0] != "platform" || !r.AutoApprove.Hours.Contains(mon) || r.AutoApprove.Hours.Contains(mon.AddDate(0, 0, 5)) {
		t.Fatalf("auto_approve %+v", r.AutoApprove)
	}
	if r.ApprovalsChannel != "C0DBAPPROVALS" || len(r.Notify) != 1 || r.Notify[0] != "sec@example.com" {
		t.Fatalf("routing %q %v", r.ApprovalsChannel, r.Notify)
	}
	if len(l.Warnings) != 1 || l.Warnings[0].String() != "roles.open.requesters: absent, so everyone in chat may request this role" {
		t.Fatalf("warnings %v", l.Warnings)
	}

	bad := gateBase + `
  prod-admin:
    description: d
    provider: dryrun
    group: g
    max_duration: 1h
    approvers: {users: [dave@example.com]}
    requesters:
      users: [not-an-email]
      groups: [{provider: dryrun, group: x}, {group: y}, {provider: aws, group: z}, {provider: okta}]
      rotations: [nightshift]
      teams: [x]
    reason_pattern: '^(INC'
    auto_approve:
      users: [bad@]
      rotations: [nope]
      hours: "mon-fri 18:00-09:00 Europe/Berlin"
    approvals_channel: "C0 DB"
    notify: [sec]
  hint-only:
    description: d
    provider: dryrun
    group: g2
    max_duration: 1h
    approvers: {users: [dave@example.com]}
    reason_hint: say why
    requesters: {}
    auto_approve: {hours: "mon 09:00-10:00 Nowhere/City"}
`
	_, err = Parse([]byte(bad), noEnv)
	if err == nil {
		t.Fatal("accepted")
	}
	for _, w := range []string{
		`roles.prod-admin.requesters.users[0]: "not-an-email" is not an email address`,
		`roles.prod-admin.requesters.groups[0].provider: "dryrun" cannot tell group membership (use aws or okta)`,
		`roles.prod-admin.requesters.groups[1].provider: missing: the provider of the group (aws or okta)`,
		`roles.prod-admin.requesters.groups[2].provider: "aws" is not configured under providers`,
		`roles.prod-admin.requesters.groups[3].group: missing: the provider's group id`,
		`roles.prod-admin.requesters.rotations[0]: unknown rotation "nightshift" (rotations: platform)`,
		`roles.prod-admin.requesters.teams: unknown key (known keys here: groups, rotations, users)`,
		`roles.prod-admin.reason_pattern: not a valid regular expression (Go RE2 syntax): missing closing ): ` + "`^(INC`",
		`roles.prod-admin.auto_approve.users[0]: "bad@" is not an email address`,
		`roles.prod-admin.auto_approve.rotations[0]: unknown rotation "nope"`,
		`roles.prod-admin.auto_approve.hours: "18:00-09:00" ends before it starts`,
		`roles.prod-admin.approvals_channel: "C0 DB" is not a channel id`,
		`roles.prod-admin.notify[0]: "sec" is not an email address`,
		`roles.hint-only.reason_hint: there is no reason_pattern for it to explain`,
		`roles.hint-only.requesters: names nobody`,
		`roles.hint-only.auto_approve: names nobody`,
		`roles.hint-only.auto_approve.hours: "Nowhere/City" is not an IANA time zone`,
	} {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("missing %q in:\n%v", w, err)
		}
	}
}
