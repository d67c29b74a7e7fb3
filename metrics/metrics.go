// Package metrics exposes accessbot's Prometheus metrics and its health
// endpoints. It observes the domain from the outside: a Store decorator
// reads the audit events every state change writes, a Provisioner
// decorator times the provider calls, scrape-time collectors read the
// store (cached), and small hooks (scheduler loop and job locks, chat
// connection and acknowledgements, reconcile results) are plain methods
// the wiring passes as callbacks. Nothing in access imports it.
package metrics

import (
	"log/slog"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/accessbot/accessbot/access"
)

// Options tunes a Metrics. Zero values take the defaults.
type Options struct {
	// Clock is the service's clock: revocation lateness, outbox lag and
	// the age of failing revocations are measured on it (default: the
	// system clock).
	Clock access.Clock
	// Registry receives the collectors (default: a new registry with the
	// Go runtime and process collectors).
	Registry *prometheus.Registry
	// GaugeTTL is how long the gauges read from the store are reused
	// before the store is read again (default 5 s), so that scrapes, however
	// frequent, never hammer the store.
	GaugeTTL time.Duration
	// Roles pre-creates the per-role gauges and the break-glass counter
	// at zero, so a role with nothing pending has a series and the first
	// break-glass use is an increase.
	Roles []string
	// StaleAfter is how old the scheduler loop's last heartbeat may be
	// before /healthz fails (default 2 m; keep it well above the
	// scheduler's sweep interval, which the loop ticks at the least).
	StaleAfter time.Duration
	// CheckTimeout bounds each readiness check (default 2 s).
	CheckTimeout time.Duration
	// Logger gets a warning when reading the gauges fails (nil discards).
	Logger *slog.Logger
	// now is real time for the heartbeat (tests replace it).
	now func() time.Time
}

// Metrics holds accessbot's collectors, hooks and health state. Create it
// with New; it is safe for concurrent use.
type Metrics struct {
	reg   *prometheus.Registry
	clock access.Clock
	opt   Options
	log   *slog.Logger

	// From audit events.
	submitted   *prometheus.CounterVec
	requests    *prometheus.CounterVec
	decisions   *prometheus.CounterVec
	grants      *prometheus.CounterVec
	revocations *prometheus.CounterVec
	breakGlass  *prometheus.CounterVec
	drift       *prometheus.CounterVec
	lateness    *prometheus.HistogramVec
	outboxLag   *prometheus.HistogramVec
	outboxRetry *prometheus.CounterVec

	// Provider calls.
	callSeconds *prometheus.HistogramVec
	callErrors  *prometheus.CounterVec
	codesMu     sync.Mutex
	codes       map[string]map[string]bool // provider -> codes seen (bounded)

	// Hooks.
	leader        *prometheus.GaugeVec
	heartbeat     prometheus.Gauge
	chatConnected *prometheus.GaugeVec
	chatAck       *prometheus.HistogramVec
	chatReconnect *prometheus.CounterVec
	driftMembers  *prometheus.GaugeVec
	driftMu       sync.Mutex
	driftSeen     map[[2]string]bool
	reconcileLast prometheus.Gauge
	reconcileErrs prometheus.Counter

	// Scrape-time gauges from the store.
	state *storeGauges

	health health

	// Audit sinks (auditsink.go): registered on first use.
	sinksOnce sync.Once
	sinks     *AuditSinks
}

// New builds the collectors and registers them.
func New(o Options) *Metrics {
	if o.Clock == nil {
		o.Clock = access.SystemClock{}
	}
	if o.Registry == nil {
		o.Registry = prometheus.NewRegistry()
		o.Registry.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	}
	if o.GaugeTTL <= 0 {
		o.GaugeTTL = 5 * time.Second
	}
	if o.StaleAfter <= 0 {
		o.StaleAfter = 2 * time.Minute
	}
	if o.CheckTimeout <= 0 {
		o.CheckTimeout = 2 * time.Second
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.now == nil {
		o.now = time.Now
	}
	m := &Metrics{reg: o.Registry, clock: o.Clock, opt: o, log: o.Logger, codes: map[string]map[string]bool{}, driftSeen: map[[2]string]bool{}}
	latencyBuckets := []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 20, 30}
	lateBuckets := []float64{.1, .5, 1, 2, 5, 10, 30, 60, 120, 300, 600, 1800, 3600}

	m.submitted = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "accessbot_requests_submitted_total",
		Help: "Requests stored, by role and kind (request, break_glass, rotation, extension)."}, []string{"role", "kind"})
	m.requests = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "accessbot_requests_total",
		Help: "Requests settled, by role and outcome (granted, denied, cancelled, timed_out, failed)."}, []string{"role", "outcome"})
	m.decisions = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "accessbot_decisions_total",
		Help: "Approver decisions recorded, by role and decision (approve, deny)."}, []string{"role", "decision"})
	m.grants = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "accessbot_grants_total",
		Help: "Grant outcomes, by provider and outcome (granted, retry, failed, undone)."}, []string{"provider", "outcome"})
	m.revocations = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "accessbot_revocations_total",
		Help: "Revocation outcomes, by provider and outcome (started, revoked, retry, alert, cleaned_up)."}, []string{"provider", "outcome"})
	m.breakGlass = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "accessbot_break_glass_total",
		Help: "Break-glass grants started, by role."}, []string{"role"})
	m.drift = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "accessbot_drift_total",
		Help: "Drift repairs by reconcile, by action (reapplied, removed)."}, []string{"action"})
	m.lateness = prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "accessbot_revocation_lateness_seconds",
		Help:    "Time from a grant's end time to the provider confirming the removal, for grants that expired.",
		Buckets: lateBuckets}, []string{"provider"})
	m.outboxLag = prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "accessbot_outbox_delivery_lag_seconds",
		Help:    "Time from a notification being recorded to it leaving the outbox, by lane (people, security).",
		Buckets: lateBuckets}, []string{"lane"})
	m.outboxRetry = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "accessbot_outbox_retries_total",
		Help: "Notification deliveries that failed and will be retried, by lane."}, []string{"lane"})

	m.callSeconds = prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "accessbot_provider_call_duration_seconds",
		Help:    "Provider call latency, by provider and op (grant, revoke, members, check_user).",
		Buckets: latencyBuckets}, []string{"provider", "op"})
	m.callErrors = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "accessbot_provider_errors_total",
		Help: "Failed provider calls, by provider, op and code (the provider's API error code, else a fixed class)."},
		[]string{"provider", "op", "code"})

	m.leader = prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "accessbot_leader",
		Help: "1 while this replica holds the lock of a singleton job (won at its last tick), else 0."}, []string{"job"})
	m.heartbeat = prometheus.NewGauge(prometheus.GaugeOpts{Name: "accessbot_scheduler_heartbeat_timestamp_seconds",
		Help: "Unix time of the scheduler loop's last turn."})
	m.chatConnected = prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "accessbot_chat_connected",
		Help: "1 while the chat connection is up, by platform."}, []string{"platform"})
	m.chatAck = prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "accessbot_chat_ack_duration_seconds",
		Help:    "Time from receiving a chat event to acknowledging it, by platform.",
		Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 3}}, []string{"platform"})
	m.chatReconnect = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "accessbot_chat_reconnects_total",
		Help: "Chat connections made again after the first, by platform."}, []string{"platform"})
	m.driftMembers = prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "accessbot_drift_members",
		Help: "Drift found by the last reconcile run, by provider and kind (unexpected, removed, missing, reapplied, removal_failing, error)."},
		[]string{"provider", "kind"})
	m.reconcileLast = prometheus.NewGauge(prometheus.GaugeOpts{Name: "accessbot_reconcile_last_run_timestamp_seconds",
		Help: "Unix time (service clock) of the last reconcile run on this replica."})
	m.reconcileErrs = prometheus.NewCounter(prometheus.CounterOpts{Name: "accessbot_reconcile_errors_total",
		Help: "Reconcile runs that ended with an error."})

	for _, role := range o.Roles {
		m.breakGlass.WithLabelValues(role).Add(0) // so the alert sees the first use as an increase
	}
	m.state = newStoreGauges(m)
	m.reg.MustRegister(m.submitted, m.requests, m.decisions, m.grants, m.revocations, m.breakGlass, m.drift,
		m.lateness, m.outboxLag, m.outboxRetry, m.callSeconds, m.callErrors, m.leader, m.heartbeat,
		m.chatConnected, m.chatAck, m.chatReconnect, m.driftMembers, m.reconcileLast, m.reconcileErrs, m.state)
	m.health.init(m)
	return m
}

// Registry returns the registry the collectors are registered with.
func (m *Metrics) Registry() *prometheus.Registry { return m.reg }

// LeaderChanged records whether this replica holds job's lock: the
// scheduler calls it (Options.Hooks.Lock) when it wins the lock, fails to,
// or loses or releases it.
func (m *Metrics) LeaderChanged(job string, held bool) {
	v := 0.0
	if held {
		v = 1
	}
	m.leader.WithLabelValues(job).Set(v)
}

// Heartbeat records a turn of the scheduler loop (Options.Hooks.Loop);
// from the first one on, /healthz fails when the last is older than
// Options.StaleAfter.
func (m *Metrics) Heartbeat() {
	now := m.opt.now()
	m.health.beat(now)
	m.heartbeat.Set(float64(now.UnixNano()) / 1e9)
}

// ChatConnected records that the platform's connection went up or down.
// Every connection after the first counts as a reconnect. A platform
// named here is part of /readyz from then on: not ready while down.
func (m *Metrics) ChatConnected(platform string, up bool) {
	if up {
		if m.health.chatUp(platform) {
			m.chatReconnect.WithLabelValues(platform).Inc()
		}
		m.chatConnected.WithLabelValues(platform).Set(1)
		return
	}
	m.health.chatDown(platform)
	m.chatConnected.WithLabelValues(platform).Set(0)
}

// ChatAcked records how long an event of platform waited, from its receipt
// to its acknowledgement.
func (m *Metrics) ChatAcked(platform string, d time.Duration) {
	m.chatAck.WithLabelValues(platform).Observe(max(d, 0).Seconds())
}

// ObserveReconcile records a reconcile run's result (what
// access.Service's Reconcile returned): the drift it found per provider
// replaces the last run's (kinds seen before and absent now go to 0).
func (m *Metrics) ObserveReconcile(ds []access.Drift, err error) {
	counts := map[[2]string]int{}
	for _, d := range ds {
		for kind, n := range map[string]int{"unexpected": len(d.Unexpected), "removed": len(d.Removed),
			"missing": len(d.Missing), "reapplied": len(d.Reapplied), "removal_failing": len(d.RemovalFailing),
			"error": len(d.Errors)} {
			counts[[2]string{d.Provider, kind}] += n
		}
	}
	m.driftMu.Lock()
	for k := range m.driftSeen {
		if _, ok := counts[k]; !ok {
			m.driftMembers.WithLabelValues(k[0], k[1]).Set(0)
		}
	}
	for k, n := range counts {
		m.driftSeen[k] = true
		m.driftMembers.WithLabelValues(k[0], k[1]).Set(float64(n))
	}
	m.driftMu.Unlock()
	if err != nil {
		m.reconcileErrs.Inc()
	}
	m.reconcileLast.Set(float64(m.clock.Now().UnixNano()) / 1e9)
}

// ChatHooks are the callbacks of one chat platform's transport. The
// transports' Hooks types (bot/slack, bot/discord) have the same fields,
// so a conversion wires them: b.SetHooks(slack.Hooks(m.Chat("slack"))).
type ChatHooks struct {
	Connected func(up bool)
	Acked     func(waited time.Duration)
}

// Chat returns the hooks that record platform's connection state,
// reconnects and acknowledgement waits, and makes the platform part of
// /readyz (not ready until connected).
func (m *Metrics) Chat(platform string) ChatHooks {
	m.ExpectChat(platform)
	return ChatHooks{
		Connected: func(up bool) { m.ChatConnected(platform, up) },
		Acked:     func(d time.Duration) { m.ChatAcked(platform, d) },
	}
}
