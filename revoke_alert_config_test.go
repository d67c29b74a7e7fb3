package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"github.com/accessbot/accessbot/config"
)

const revokeAlertBase = `
chat:
  console:
    users: {alice: alice@example.com}
providers:
  dryrun: {}
roles:
  prod-admin:
    description: admin
    provider: dryrun
    group: g
    max_duration: 4h
    approvers: {users: [bob@example.com]}
`

func TestRevokeAlertAfterConfig(t *testing.T) {
	none := func(string) (string, bool) { return "", false }
	l, err := config.Parse([]byte(revokeAlertBase), none)
	if err != nil || l.RevokeAlertAfter != 2*time.Minute {
		t.Fatalf("default: %v %v", err, l)
	}
	l, err = config.Parse([]byte(revokeAlertBase+"scheduler: {revoke_alert_after: 5m}\n"), none)
	if err != nil || l.RevokeAlertAfter != 5*time.Minute {
		t.Fatalf("5m: %v %v", err, l)
	}
	for _, bad := range []string{"banana", "1s", "-2m", "48h"} {
		var out, errb bytes.Buffer
		code := run(context.Background(), []string{"check", "--config", writeFile(t, revokeAlertBase+"scheduler: {revoke_alert_after: "+bad+"}\n")}, nil, &out, &errb)
		if code != 1 || !strings.Contains(errb.String(), "scheduler.revoke_alert_after: \""+bad+"\" is not a duration between 10s and 24h") {
			t.Errorf("%s: exit %d, stderr:\n%s", bad, code, errb.String())
		}
	}
}
