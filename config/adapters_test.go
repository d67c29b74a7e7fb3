package config

import (
	"strings"
	"testing"
)

func noEnv(string) (string, bool) { return "", false }

// TestAdaptersValidateTheirSections: the Slack and AWS sections are checked
// by the adapters' own Validate (the checks New applies), each problem at
// its key path, so check and run cannot disagree.
func TestAdaptersValidateTheirSections(t *testing.T) {
	const roles = `
roles:
  r: {description: d, provider: aws, group: g, max_duration: 1h, approvers: {users: [a@example.com]}}
`
	for name, tc := range map[string]struct {
		section string
		want    []string
	}{
		"slack tokens and url": {`
chat:
  slack: {app_token: xoxb-1, bot_token: "", api_url: "ftp://slack", security_channel: C1, workers: -1}
providers:
  aws: {identity_store_id: d-1234567890}
`, []string{
			"chat.slack.app_token: is not an app-level token (it must start with xapp-)",
			"chat.slack.bot_token: is empty",
			`chat.slack.api_url: "ftp://slack" is not an http(s) URL`,
			"chat.slack.workers: -1 must be positive",
		}},
		"slack negative event timeout": {`
chat:
  slack: {app_token: xapp-1, bot_token: xoxb-1, security_channel: C1, event_timeout: -5s}
providers:
  aws: {identity_store_id: d-1234567890}
`, []string{"chat.slack.event_timeout: -5s must be positive"}},
		// 36 characters of hex and dashes that are not a UUID: New refuses
		// it, so check does too.
		"aws store id": {`
chat:
  console: {users: {a: a@example.com}}
providers:
  aws: {identity_store_id: "0123456789abcdef0123456789abcdef----", instance_arn: ssoins-1}
`, []string{
			`providers.aws.identity_store_id: "0123456789abcdef0123456789abcdef----" is not an identity store id`,
			`providers.aws.instance_arn: "ssoins-1" is not an instance ARN`,
		}},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := Parse([]byte(tc.section+roles), noEnv)
			if err == nil {
				t.Fatal("accepted")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("missing %q in:\n%v", w, err)
				}
			}
		})
	}
	ok := `
chat:
  slack: {app_token: xapp-1, bot_token: xoxb-1, api_url: "https://slack.example/api/", security_channel: C1}
providers:
  aws: {identity_store_id: 01234567-89ab-cdef-0123-456789abcdef}
`
	if _, err := Parse([]byte(ok+roles), noEnv); err != nil {
		t.Fatalf("a good config: %v", err)
	}
}
