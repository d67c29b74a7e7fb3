package metrics

import (
	"context"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/accessbot/accessbot/access"
)

// dueCap bounds how many due ids one refresh reads to count the backlog.
const dueCap = 10000

// storeGauges is the collector of the gauges read from the store at scrape
// time. A refresh reads the live requests and the due index once; scrapes
// within GaugeTTL of it reuse the numbers, so scrapes never hammer the
// store, and a failed refresh keeps the last numbers.
type storeGauges struct {
	m *Metrics

	pending, active, failing, failingOldest, dueItems, nextDue, refreshErrs *prometheus.Desc

	mu      sync.Mutex
	st      access.Store
	at      time.Time // real time of the last refresh attempt
	snap    snapshot
	errs    float64
	refresh func(ctx context.Context) (snapshot, error) // tests count calls
}

type snapshot struct {
	ok            bool
	pending       map[string]int
	active        map[string]int
	failing       int
	failingOldest time.Duration
	dueItems      int
	nextDue       time.Time
}

func newStoreGauges(m *Metrics) *storeGauges {
	g := &storeGauges{m: m,
		pending: prometheus.NewDesc("accessbot_requests_pending",
			"Requests waiting for a decision, by role.", []string{"role"}, nil),
		active: prometheus.NewDesc("accessbot_grants_active",
			"Grants active now, by role.", []string{"role"}, nil),
		failing: prometheus.NewDesc("accessbot_revocations_failing",
			"Revocations that failed at least once and are being retried.", nil, nil),
		failingOldest: prometheus.NewDesc("accessbot_revocation_failing_oldest_seconds",
			"How long the oldest failing revocation has been failing (0 when none is).", nil, nil),
		dueItems: prometheus.NewDesc("accessbot_scheduler_due_items",
			"Entries of the due index whose time has come (the expiry backlog; counted up to 10000).", nil, nil),
		nextDue: prometheus.NewDesc("accessbot_scheduler_next_due_timestamp_seconds",
			"Unix time of the earliest entry of the due index (0 when it is empty).", nil, nil),
		refreshErrs: prometheus.NewDesc("accessbot_store_gauge_errors_total",
			"Failed reads of the store for the gauges above (the last numbers are kept).", nil, nil),
	}
	g.refresh = g.read
	return g
}

func (g *storeGauges) setStore(st access.Store) {
	g.mu.Lock()
	g.st = st
	g.at = time.Time{}
	g.mu.Unlock()
}

// Describe sends the descriptors.
func (g *storeGauges) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{g.pending, g.active, g.failing, g.failingOldest, g.dueItems, g.nextDue, g.refreshErrs} {
		ch <- d
	}
}

// Collect refreshes the numbers when they are older than GaugeTTL and
// sends them.
func (g *storeGauges) Collect(ch chan<- prometheus.Metric) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.st == nil {
		return
	}
	if now := g.m.opt.now(); g.at.IsZero() || now.Sub(g.at) >= g.m.opt.GaugeTTL {
		g.at = now
		ctx, cancel := context.WithTimeout(context.Background(), g.m.opt.CheckTimeout)
		s, err := g.refresh(ctx)
		cancel()
		if err != nil {
			g.errs++
			g.m.log.WarnContext(ctx, "metrics: read gauges from the store", "err", err)
		} else {
			g.snap = s
		}
	}
	ch <- prometheus.MustNewConstMetric(g.refreshErrs, prometheus.CounterValue, g.errs)
	s := g.snap
	if !s.ok {
		return
	}
	for role, n := range s.pending {
		ch <- prometheus.MustNewConstMetric(g.pending, prometheus.GaugeValue, float64(n), role)
	}
	for role, n := range s.active {
		ch <- prometheus.MustNewConstMetric(g.active, prometheus.GaugeValue, float64(n), role)
	}
	ch <- prometheus.MustNewConstMetric(g.failing, prometheus.GaugeValue, float64(s.failing))
	ch <- prometheus.MustNewConstMetric(g.failingOldest, prometheus.GaugeValue, s.failingOldest.Seconds())
	ch <- prometheus.MustNewConstMetric(g.dueItems, prometheus.GaugeValue, float64(s.dueItems))
	next := 0.0
	if !s.nextDue.IsZero() {
		next = float64(s.nextDue.UnixNano()) / 1e9
	}
	ch <- prometheus.MustNewConstMetric(g.nextDue, prometheus.GaugeValue, next)
}

// read takes the numbers from the store: one List of the open requests,
// one Due and one NextDue.
func (g *storeGauges) read(ctx context.Context) (snapshot, error) {
	s := snapshot{ok: true, pending: map[string]int{}, active: map[string]int{}}
	for _, role := range g.m.opt.Roles {
		s.pending[role], s.active[role] = 0, 0
	}
	open, err := g.st.List(ctx, access.Filter{States: []access.State{access.StatePending, access.StateActive, access.StateRevoking}})
	if err != nil {
		return snapshot{}, err
	}
	now := g.m.clock.Now()
	for _, r := range open {
		switch r.State {
		case access.StatePending:
			s.pending[r.Role]++
		case access.StateActive:
			s.active[r.Role]++
		case access.StateRevoking:
			if r.Attempts > 0 && !r.FailingSince.IsZero() {
				s.failing++
				s.failingOldest = max(s.failingOldest, now.Sub(r.FailingSince))
			}
		}
	}
	ids, err := g.st.Due(ctx, now, dueCap)
	if err != nil {
		return snapshot{}, err
	}
	s.dueItems = len(ids)
	next, ok, err := g.st.NextDue(ctx)
	if err != nil {
		return snapshot{}, err
	}
	if ok {
		s.nextDue = next
	}
	return s, nil
}
