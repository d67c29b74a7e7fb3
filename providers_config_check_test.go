package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestCheckProviderSections: check reports the problems of the okta,
// pagerduty and opsgenie sections, found by the adapters' own Validate,
// each once at its key path, though two rotations share a section.
func TestCheckProviderSections(t *testing.T) {
	t.Setenv("ACCESSBOT_TEST_PD_TOKEN", "")
	cfg := `
chat:
  console:
    users: {alice: alice@example.com}
providers:
  okta: {org_url: "http://acme.okta.com", api_token: "SSWS 00abc"}
  pagerduty: {api_url: "ftp://pd", token: "${ACCESSBOT_TEST_PD_TOKEN}"}
  opsgenie: {api_key: "og key"}
rotations:
  primary:
    source: pagerduty
    schedule_ids: [P1, ""]
    escalation_levels: [0]
  secondary:
    source: pagerduty
  ops:
    source: opsgenie
roles:
  app:
    description: d
    provider: okta
    group: g
    max_duration: 1h
    approvers: {rotation: primary, rotations: [secondary, ops]}
`
	var out, errb bytes.Buffer
	p := filepath.Join(t.TempDir(), "accessbot.yaml")
	if err := os.WriteFile(p, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	if code := run(context.Background(), []string{"check", "--config", p}, nil, &out, &errb); code != 1 {
		t.Fatalf("exit %d, want 1:\n%s%s", code, out.String(), errb.String())
	}
	got := errb.String()
	for _, want := range []string{
		`providers.okta.org_url: "http://acme.okta.com": https is required (http only for loopback test servers)`,
		`providers.okta.api_token: must be the bare token, without "SSWS" or spaces`,
		`providers.pagerduty.api_url: "ftp://pd" is not an http(s) URL`,
		"providers.pagerduty.token: is empty; set it from the environment, e.g. ${PAGERDUTY_TOKEN}",
		"providers.opsgenie.api_key: contains white space (check how it is quoted)",
		"rotations.primary.schedule_ids[1]: is empty",
		"rotations.primary.escalation_levels[0]: is 0; levels start at 1",
		"rotations.secondary: set schedule_ids or escalation_policy_ids (or both)",
		"rotations.ops.schedule_id: is empty (an opsgenie rotation needs a schedule id or name)",
	} {
		if n := strings.Count(got, want); n != 1 {
			t.Errorf("%q reported %d times, want once, in:\n%s", want, n, got)
		}
	}
	for _, key := range []string{"providers.okta.org_url", "providers.okta.api_token", "providers.pagerduty.api_url",
		"providers.pagerduty.token", "providers.opsgenie.api_key", "rotations.ops.schedule_id"} {
		if n := strings.Count(got, key+":"); n != 1 {
			t.Errorf("%s has %d problems, want 1:\n%s", key, n, got)
		}
	}
	if strings.Contains(got, "00abc") || strings.Contains(got, "og key") {
		t.Errorf("check shows a credential:\n%s", got)
	}
}
