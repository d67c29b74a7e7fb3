package main

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/accessbot/accessbot/config"
)

const checkBase = `
chat:
  console:
    users: {alice: alice@example.com}
providers:
  dryrun: {}
roles:
  r: {description: d, provider: dryrun, group: g, max_duration: 1h, approvers: {users: [bob@example.com]}}
`

// TestCheckMetricsShutdownAndSentinel: accessbot check reports a bad
// metrics.listen, a bad shutdown_timeout and a bad store.redis.sentinel
// section, each at its key path (the sentinel through redis.Config's own
// Validate, the one run uses), and nothing else.
func TestCheckMetricsShutdownAndSentinel(t *testing.T) {
	cfg := checkBase + `
metrics:
  listen: "localhost"
shutdown_timeout: forever
store:
  redis:
    sentinel:
      master: ""
      addrs: ["10.0.0.1:26379", "sentinel-1", "10.0.0.1:26379"]
`
	var out, errb bytes.Buffer
	code := run(context.Background(), []string{"check", "--config", writeFile(t, cfg)}, nil, &out, &errb)
	if code != 1 {
		t.Fatalf("exit %d, want 1; stderr:\n%s", code, errb.String())
	}
	for _, want := range []string{
		`metrics.listen: "localhost" is not host:port`,
		`shutdown_timeout: "forever" is not a duration between 1s and 10m`,
		"store.redis.sentinel.master: missing",
		`store.redis.sentinel.addrs[1]: "sentinel-1" is not host:port`,
		"store.redis.sentinel.addrs[2]: 10.0.0.1:26379 is listed twice",
		"5 problem(s)",
	} {
		if !strings.Contains(errb.String(), want) {
			t.Errorf("missing %q in:\n%s", want, errb.String())
		}
	}

	for _, bad := range []string{":http", "127.0.0.1:70000", "a b:9090"} {
		errb.Reset()
		code := run(context.Background(), []string{"check", "--config", writeFile(t, checkBase+"metrics: {listen: \""+bad+"\"}\n")}, nil, &out, &errb)
		if code != 1 || !strings.Contains(errb.String(), "metrics.listen: ") {
			t.Errorf("metrics.listen %q: exit %d, stderr %q; want a metrics.listen problem", bad, code, errb.String())
		}
	}
}

// TestMetricsAndShutdownDefaults: metrics are served on :9090 unless the
// console is the transport (then off unless set); shutdown_timeout is 20s
// unless set.
func TestMetricsAndShutdownDefaults(t *testing.T) {
	l, err := config.Load(writeFile(t, checkBase))
	if err != nil {
		t.Fatal(err)
	}
	if l.MetricsListen != "" || l.ShutdownTimeout.String() != "20s" {
		t.Errorf("console: MetricsListen %q, ShutdownTimeout %s; want off and 20s", l.MetricsListen, l.ShutdownTimeout)
	}
	l, err = config.Load(writeFile(t, checkBase+"metrics: {listen: \"127.0.0.1:0\"}\nshutdown_timeout: 45s\n"))
	if err != nil {
		t.Fatal(err)
	}
	if l.MetricsListen != "127.0.0.1:0" || l.ShutdownTimeout.String() != "45s" {
		t.Errorf("console with metrics.listen: MetricsListen %q, ShutdownTimeout %s", l.MetricsListen, l.ShutdownTimeout)
	}
	slackCfg := strings.Replace(checkBase, `  console:
    users: {alice: alice@example.com}`, `  slack: {app_token: xapp-1, bot_token: xoxb-1, security_channel: C1}`, 1)
	l, err = config.Load(writeFile(t, slackCfg))
	if err != nil {
		t.Fatal(err)
	}
	if l.MetricsListen != ":9090" {
		t.Errorf("slack: MetricsListen %q, want :9090", l.MetricsListen)
	}
}
