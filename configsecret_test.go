package main

import (
	"bytes"
	"context"
	"strconv"
	"strings"
	"testing"
)

// TestCheckNeverPrintsExpandedValues: whatever the mistake, `check` names
// the key path (and the ${VAR}), never the value the environment gave, not
// even its first characters.
func TestCheckNeverPrintsExpandedValues(t *testing.T) {
	const secret = "pd-tok-4f9a2c7e1b8d6035"
	const quoted = `ok"ta-s3cr3t-Ωmega-77`
	t.Setenv("ACCESSBOT_TEST_SECRET", secret)
	t.Setenv("ACCESSBOT_TEST_QUOTED", quoted)
	base := `
chat:
  console:
    users: {alice: alice@example.com}
providers:
  dryrun: {}
%s
roles:
  prod-admin:
    description: admin
    provider: dryrun
    group: g
    max_duration: %s
    approvers: {users: [bob@example.com]}
`
	cases := []struct {
		name, providers, maxDuration string
		want                         []string
	}{
		{"scalar for a mapping", "  pagerduty: ${ACCESSBOT_TEST_SECRET}", "4h",
			[]string{`providers.pagerduty: expected a mapping of keys, got "${ACCESSBOT_TEST_SECRET}"`,
				"providers.pagerduty: expected a mapping of keys, got a string"}},
		{"list for a string", "  pagerduty: {token: ['${ACCESSBOT_TEST_SECRET}']}", "4h",
			[]string{"providers.pagerduty.token: expected a string, got a list"}},
		{"string for a number", "", "4h\n    approvals: ${ACCESSBOT_TEST_SECRET}",
			[]string{"roles.prod-admin.approvals: expected a whole number, got a string"}},
		{"unknown value", "log: {level: '${ACCESSBOT_TEST_SECRET}'}", "4h",
			[]string{`log.level: unknown level "${ACCESSBOT_TEST_SECRET}"`}},
		{"bad duration", "", "${ACCESSBOT_TEST_SECRET}",
			[]string{`roles.prod-admin.max_duration: "${ACCESSBOT_TEST_SECRET}" is not a duration`}},
		{"part of a value", "  aws: {identity_store_id: 'd-${ACCESSBOT_TEST_SECRET}', region: us-east-1}", "4h",
			[]string{`providers.aws.identity_store_id: "d-${ACCESSBOT_TEST_SECRET}" is not an identity store id`}},
		{"value %q escapes", "  aws: {identity_store_id: '${ACCESSBOT_TEST_QUOTED}', region: us-east-1}", "4h",
			[]string{`providers.aws.identity_store_id: "${ACCESSBOT_TEST_QUOTED}" is not an identity store id`}},
	}
	q := strconv.Quote(quoted)
	leaks := []string{secret, secret[:7], quoted, q[1 : len(q)-1], quoted[:7]}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cfg := strings.Replace(strings.Replace(base, "%s", c.providers, 1), "%s", c.maxDuration, 1)
			var out, errb bytes.Buffer
			code := run(context.Background(), []string{"check", "--config", writeFile(t, cfg)}, nil, &out, &errb)
			all := out.String() + errb.String()
			if code != 1 {
				t.Fatalf("exit %d, want 1:\n%s", code, all)
			}
			for _, l := range leaks {
				if strings.Contains(all, l) {
					t.Errorf("output shows %q:\n%s", l, all)
				}
			}
			for _, w := range c.want {
				if !strings.Contains(all, w) {
					t.Errorf("missing %q in:\n%s", w, all)
				}
			}
		})
	}
}

// TestCheckSummaryNeverPrintsExpandedValues: a valid config's summary
// names the ${VAR} of a value from the environment, not the value.
func TestCheckSummaryNeverPrintsExpandedValues(t *testing.T) {
	const secret = "grp-7c1e55d0a9b34f28"
	t.Setenv("ACCESSBOT_TEST_GROUP", secret)
	cfg := `
chat:
  console:
    users: {alice: alice@example.com}
providers:
  dryrun: {}
roles:
  prod-admin:
    description: admin
    provider: dryrun
    group: ${ACCESSBOT_TEST_GROUP}
    max_duration: 4h
    approvers: {users: [bob@example.com]}
`
	var out, errb bytes.Buffer
	code := run(context.Background(), []string{"check", "--config", writeFile(t, cfg)}, nil, &out, &errb)
	all := out.String() + errb.String()
	if code != 0 {
		t.Fatalf("exit %d:\n%s", code, all)
	}
	if strings.Contains(all, secret) || !strings.Contains(all, "group ${ACCESSBOT_TEST_GROUP}") {
		t.Errorf("summary:\n%s", all)
	}
}
