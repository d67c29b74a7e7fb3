package metrics

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// AuditSinks are the collectors of audit delivery to the configured sinks
// (it is an auditsink.Observer).
type AuditSinks struct {
	lag       *prometheus.GaugeVec
	delivered *prometheus.CounterVec
	failed    *prometheus.CounterVec
}

// AuditSinks returns the audit sink collectors, registering them on the
// first call (a bot without sinks exports none of them). names are the
// configured sinks: each gets its series at zero at once.
func (m *Metrics) AuditSinks(names ...string) *AuditSinks {
	m.sinksOnce.Do(func() {
		a := &AuditSinks{
			lag: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "accessbot_audit_sink_lag_seconds",
				Help: "Age of the oldest audit event not yet delivered to the sink (0 when caught up), as seen by the replica delivering."}, []string{"sink"}),
			delivered: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "accessbot_audit_sink_delivered_total",
				Help: "Audit events the sink accepted (a redelivered event counts again)."}, []string{"sink"}),
			failed: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "accessbot_audit_sink_failures_total",
				Help: "Failed deliveries to the sink (each is retried with backoff)."}, []string{"sink"}),
		}
		m.reg.MustRegister(a.lag, a.delivered, a.failed)
		m.sinks = a
	})
	for _, n := range names {
		m.sinks.lag.WithLabelValues(n)
		m.sinks.delivered.WithLabelValues(n)
		m.sinks.failed.WithLabelValues(n)
	}
	return m.sinks
}

// Delivered counts n events the sink accepted.
func (a *AuditSinks) Delivered(sink string, n int) { a.delivered.WithLabelValues(sink).Add(float64(n)) }

// Failed counts a failed delivery.
func (a *AuditSinks) Failed(sink string) { a.failed.WithLabelValues(sink).Inc() }

// Lag sets the age of the oldest undelivered event.
func (a *AuditSinks) Lag(sink string, d time.Duration) { a.lag.WithLabelValues(sink).Set(d.Seconds()) }
