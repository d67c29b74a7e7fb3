package config

import (
	"strings"
	"testing"
)

const evidenceBase = `
chat:
  console: {users: {a: a@example.com}}
providers:
  dryrun: {}
roles:
  r: {description: d, provider: dryrun, group: g, max_duration: 1h, approvers: {users: [a@example.com]}}
`

// The audit and report sections are checked with key paths; secret_env
// must name a variable that is set.
func TestEvidenceSectionsChecked(t *testing.T) {
	_, err := Parse([]byte(evidenceBase+`
audit:
  sinks:
    - {type: file}
    - {type: webhook, url: "http://siem.example.com/in", secret_env: ACCESSBOT_AUDIT_HMAC, timeout: forever}
    - {type: syslog}
report: {schedule: "funday 25:00 Mars/Olympus"}
`), noEnv)
	if err == nil {
		t.Fatal("no problems")
	}
	for _, want := range []string{
		"audit.sinks[0].path: missing",
		`audit.sinks[1].url: "http://siem.example.com/in" must be https://`,
		"audit.sinks[1].secret_env: the environment variable ACCESSBOT_AUDIT_HMAC is unset or empty",
		`audit.sinks[1].timeout: "forever" is not a duration`,
		`audit.sinks[2].type: "syslog" is not a sink type`,
		`report.schedule: "funday" is not a weekday`,
		"report.channel: missing",
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("problems lack %q:\n%v", want, err)
		}
	}
	env := func(k string) (string, bool) {
		if k == "ACCESSBOT_AUDIT_HMAC" {
			return "s3cret", true
		}
		return "", false
	}
	l, err := Parse([]byte(evidenceBase+`
audit:
  sinks:
    - {type: file, path: /var/log/accessbot/audit.jsonl, max_size_mb: 50, keep: 5}
    - {type: webhook, url: "https://siem.example.com/in", secret_env: ACCESSBOT_AUDIT_HMAC, timeout: 10s}
report: {schedule: "monday 09:00 Europe/Berlin", channel: C0SECURITY}
`), env)
	if err != nil {
		t.Fatalf("valid sections: %v", err)
	}
	if n := len(l.Config.Audit.Sinks); n != 2 || l.Config.Report.Channel != "C0SECURITY" {
		t.Fatalf("parsed %d sinks, report %+v", n, l.Config.Report)
	}
}

func TestReportSpec(t *testing.T) {
	for in, want := range map[string]string{
		"monday 09:00 Europe/Berlin":    "CRON_TZ=Europe/Berlin 0 9 * * 1",
		"Fri 17:30 UTC":                 "CRON_TZ=UTC 30 17 * * 5",
		"sunday 00:05 America/New_York": "CRON_TZ=America/New_York 5 0 * * 0",
	} {
		if got, err := ReportSpec(in); err != nil || got != want {
			t.Errorf("ReportSpec(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "monday", "monday 9 UTC", "monday 09:60 UTC", "monday 09:00 Nowhere/City", "monday 09:00 UTC extra"} {
		if _, err := ReportSpec(bad); err == nil {
			t.Errorf("ReportSpec(%q): no error", bad)
		}
	}
}
