package metrics_test

import (
	"testing"
	"time"

	"github.com/accessbot/accessbot/metrics"
)

func TestAuditSinkSeries(t *testing.T) {
	m := metrics.New(metrics.Options{})
	a := m.AuditSinks("file", "siem")
	if m.AuditSinks() != a {
		t.Fatal("AuditSinks registered twice")
	}
	a.Delivered("siem", 10)
	a.Delivered("siem", 5)
	a.Failed("siem")
	a.Lag("siem", 90*time.Second)
	fams := scrapeHandler(t, m)
	for _, w := range []want{
		{name: "accessbot_audit_sink_delivered_total", labels: []string{"sink", "siem"}, v: 15},
		{name: "accessbot_audit_sink_delivered_total", labels: []string{"sink", "file"}, v: 0},
		{name: "accessbot_audit_sink_failures_total", labels: []string{"sink", "siem"}, v: 1},
		{name: "accessbot_audit_sink_lag_seconds", labels: []string{"sink", "siem"}, v: 90},
	} {
		if got, ok := value(fams, w.name, w.labels...); !ok || got != w.v {
			t.Errorf("%s%v = %v (present %v), want %v", w.name, w.labels, got, ok, w.v)
		}
	}
}
