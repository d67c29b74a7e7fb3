package app

import (
	"bufio"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/accessbot/accessbot/access"
	"github.com/accessbot/accessbot/config"
	"github.com/accessbot/accessbot/internal/testclock"
	"github.com/accessbot/accessbot/providers/dryrun"
	"github.com/accessbot/accessbot/store/bolt"
)

// With audit sinks and a report configured, New builds a delivery worker
// per sink (on the store's own audit capabilities, under the metrics and
// console wrappers) and the weekly report job, which posts to the security
// channel.
func TestEvidenceWiring(t *testing.T) {
	demo, err := os.ReadFile("../manifests/examples/demo.yaml")
	if err != nil {
		t.Fatal(err)
	}
	sinkPath := filepath.Join(t.TempDir(), "audit.jsonl")
	cfg := string(demo) + `
audit:
  sinks:
    - {type: file, name: archive, path: ` + sinkPath + `}
report: {schedule: "monday 09:00 Europe/Berlin"}
metrics: {listen: "127.0.0.1:0"}
`
	l, err := config.Load(writeFile(t, cfg))
	if err != nil {
		t.Fatal(err)
	}
	st, err := bolt.Open(filepath.Join(t.TempDir(), "a.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	s := &stack{clock: testclock.New(time.Date(2026, 11, 18, 10, 0, 0, 0, time.UTC)), out: &syncBuffer{}, prov: dryrun.New(nil)}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	s.app, err = New(ctx, l, Deps{Clock: s.clock, Store: st, Stdout: s.out, Providers: map[string]access.Provisioner{"dryrun": s.prov}})
	if err != nil {
		t.Fatal(err)
	}
	defer s.app.Close()
	s.con, s.sched = s.app.Console(), s.app.Scheduler()
	s.lines(t, "alice: /access prod-admin 1m fixing checkout", "carol: approve", "bob: approve")
	if !s.prov.IsMember("prod-admins", "alice@example.com") {
		t.Fatalf("alice not added:\n%s", s.out)
	}

	sinks := s.app.AuditSinks()
	if len(sinks) != 1 || sinks[0].Name != "archive" {
		t.Fatalf("sinks = %+v, want the archive file", sinks)
	}
	for {
		n, err := sinks[0].Step(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if n == 0 {
			break
		}
	}
	f, err := os.Open(sinkPath)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var actions []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var ev access.AuditEvent
		if err := json.Unmarshal(sc.Bytes(), &ev); err != nil {
			t.Fatal(err)
		}
		if ev.Hash == "" {
			t.Errorf("event %s delivered without its hash", ev.ID)
		}
		actions = append(actions, string(ev.Action))
	}
	if got := strings.Join(actions, ","); !strings.Contains(got, "submitted,approved,granted") {
		t.Errorf("file sink has %s, want the request's events in order", got)
	}
	_, body := get(t, "http://"+s.app.MetricsAddr().String()+"/metrics")
	if !strings.Contains(body, `accessbot_audit_sink_delivered_total{sink="archive"} `+strconv.Itoa(len(actions))) ||
		!strings.Contains(body, `accessbot_audit_sink_lag_seconds{sink="archive"} 0`) {
		t.Errorf("metrics lack the sink's series:\n%s", grepLines(body, "audit_sink"))
	}

	s.clock.Advance(time.Hour)
	if err := s.sched.RunJob(ctx, "weekly-report"); err != nil {
		t.Fatal(err)
	}
	out := s.out.String()
	for _, want := range []string{"Weekly access report, 2026-11-11 11:00 to 2026-11-18 11:00 UTC", "- Grants: 1, ", "- Standing on-call grants: 1.00 hours"} {
		if !strings.Contains(out, want) {
			t.Errorf("console lacks %q:\n%s", want, out)
		}
	}
}
