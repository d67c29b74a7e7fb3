package config

import (
	"strings"
	"testing"
)

// TestOktaAndOnCallAdaptersValidate: the okta, pagerduty and opsgenie
// sections and the rotations' pagerduty/opsgenie keys are checked by the
// adapters' Validate (the checks their New applies), each problem once at
// its key path.
func TestOktaAndOnCallAdaptersValidate(t *testing.T) {
	const head = `
chat:
  console: {users: {a: a@example.com}}
roles:
  r: {description: d, provider: okta, group: g, max_duration: 1h, approvers: {users: [a@example.com]}}
`
	for name, tc := range map[string]struct {
		section string
		want    []string
	}{
		"okta oauth without key": {`
providers:
  okta: {org_url: "https://acme.okta.com/x", client_id: c}
`, []string{
			`providers.okta.org_url: "https://acme.okta.com/x": give the org only, without path, query or user info`,
			"providers.okta.private_key: is missing: an OAuth service app needs both client_id and private_key",
		}},
		"okta no credentials": {`
providers:
  okta: {}
`, []string{
			"providers.okta.org_url: is required (e.g. https://acme.okta.com)",
			"providers.okta: no credentials: set api_token",
		}},
		"on-call sections and rotations": {`
providers:
  okta: {org_url: "https://acme.okta.com", api_token: t}
  pagerduty: {token: "a b"}
  opsgenie: {api_url: "api.opsgenie.com", api_key: k}
rotations:
  one: {source: pagerduty, escalation_policy_ids: [" "]}
  two: {source: pagerduty, schedule_ids: [P1]}
  three: {source: opsgenie, schedule_id: " "}
  four: {source: opsgenie, schedule_id: Primary}
`, []string{
			"providers.pagerduty.token: contains white space (check how it is quoted)",
			`providers.opsgenie.api_url: "api.opsgenie.com" is not an http(s) URL`,
			"rotations.one.escalation_policy_ids[0]: is empty",
			"rotations.three.schedule_id: is empty",
		}},
		"rotations without their provider section": {`
providers:
  okta: {org_url: "https://acme.okta.com", api_token: t}
rotations:
  one: {source: pagerduty}
  two: {source: opsgenie}
`, []string{
			"rotations.one.source: pagerduty rotations need providers.pagerduty (token)",
			"rotations.one: set schedule_ids or escalation_policy_ids (or both)",
			"rotations.two.source: opsgenie rotations need providers.opsgenie (api_key)",
			"rotations.two.schedule_id: is empty",
		}},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := Parse([]byte(head+tc.section), noEnv)
			if err == nil {
				t.Fatal("accepted")
			}
			for _, w := range tc.want {
				if n := strings.Count(err.Error(), w); n != 1 {
					t.Errorf("%q found %d times, want once, in:\n%v", w, n, err)
				}
			}
			if n, want := strings.Count(err.Error(), "\n")+1, len(tc.want); n != want {
				t.Errorf("%d problems, want %d:\n%v", n, want, err)
			}
		})
	}
	ok := `
providers:
  okta: {org_url: "https://acme.okta.com", api_token: t}
  pagerduty: {token: t}
  opsgenie: {api_key: k}
rotations:
  one: {source: pagerduty, schedule_ids: [P1], escalation_levels: [1], cache_for: 1m}
  two: {source: opsgenie, schedule_id: Primary, stale_for: 1h}
`
	if _, err := Parse([]byte(head+ok), noEnv); err != nil {
		t.Fatalf("a good config: %v", err)
	}
}
