package metrics_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/accessbot/accessbot/access"
	"github.com/accessbot/accessbot/internal/testclock"
	"github.com/accessbot/accessbot/metrics"
	"github.com/accessbot/accessbot/providers/dryrun"
	"github.com/accessbot/accessbot/scheduler"
	"github.com/accessbot/accessbot/store/bolt"
)

var t0 = time.Date(2026, 11, 18, 10, 0, 0, 0, time.UTC)

func testPolicy() *access.Policy {
	return &access.Policy{Roles: map[string]access.Role{
		"prod-admin": {Name: "prod-admin", Description: "admin", Provider: "dryrun", Group: "g-admin",
			MaxDuration: 4 * time.Hour, DefaultDuration: time.Hour, ApproverUsers: []string{"dave@example.com"},
			Approvals: 1, BreakGlass: true, PendingTTL: 30 * time.Minute, Reconcile: "remove"},
	},
		BreakGlass:    []string{"erin@example.com"},
		Acknowledgers: []string{"dave@example.com"}}
}

// notes is a Notifier that posts every event as one message.
type notes struct {
	mu      sync.Mutex
	n       int
	failFor string // fail the next EvEnded delivery of this request once (transiently)
}

func (n *notes) Notify(_ context.Context, ev access.Event) ([]access.MessageRef, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.failFor != "" && ev.Type == access.EvEnded && ev.Request.ID == n.failFor {
		n.failFor = ""
		return nil, errors.New("chat unreachable")
	}
	n.n++
	return []access.MessageRef{{Platform: "test", Purpose: "notice", Channel: "C1", ID: fmt.Sprint(n.n)}}, nil
}

// flowEnv is a service and a scheduler around the metrics decorators.
type flowEnv struct {
	m     *metrics.Metrics
	svc   *access.Service
	sched *scheduler.Scheduler
	store access.Store
	clock *testclock.Clock
	prov  *dryrun.Provider
	notes *notes
	url   string
}

func newFlowEnv(t *testing.T) *flowEnv {
	t.Helper()
	st, err := bolt.Open(filepath.Join(t.TempDir(), "flow.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	c := testclock.New(t0)
	m := metrics.New(metrics.Options{Clock: c, GaugeTTL: time.Nanosecond, Roles: []string{"prod-admin"}})
	m.ConfigLoaded()
	prov := dryrun.New(nil)
	n := &notes{}
	wst := m.WrapStore(st)
	svc, err := access.NewService(access.Deps{Store: wst, Policy: testPolicy(),
		Providers: m.WrapProviders(map[string]access.Provisioner{"dryrun": prov}),
		OnCall:    access.OnCallRouter{}, Notifier: n, Clock: c,
		Options: access.Options{RevokeAlertAfter: time.Hour}})
	if err != nil {
		t.Fatal(err)
	}
	sched := scheduler.New(wst, svc, c, nil, scheduler.Options{Sweep: time.Second,
		Hooks: scheduler.Hooks{Loop: m.Heartbeat, Lock: m.LeaderChanged}})
	svc.SetWaker(sched)
	if err := sched.AddJob("reconcile", "@hourly", func(ctx context.Context) error {
		ds, err := svc.Reconcile(ctx)
		m.ObserveReconcile(ds, err)
		return err
	}); err != nil {
		t.Fatal(err)
	}

	ctx, cancel := context.WithCancel(context.Background())
	srv := m.Server("127.0.0.1:0")
	addr, err := srv.Listen()
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); _ = sched.Run(ctx) }()
	go func() {
		defer wg.Done()
		if err := srv.Run(ctx); err != nil {
			t.Errorf("server: %v", err)
		}
	}()
	t.Cleanup(func() { cancel(); wg.Wait() })
	return &flowEnv{m: m, svc: svc, sched: sched, store: wst, clock: c, prov: prov, notes: n, url: "http://" + addr.String()}
}

// await polls (on real time, bounded) until cond holds for request id.
func (e *flowEnv) await(t *testing.T, id, what string, cond func(*access.Request) bool) *access.Request {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		r, err := e.store.Get(context.Background(), id)
		if err == nil && cond(r) {
			return r
		}
		if time.Now().After(deadline) {
			t.Fatalf("request %s never %s (last: %+v, %v)", id, what, r, err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// scrape fetches /metrics over HTTP and parses it.
func (e *flowEnv) scrape(t *testing.T) map[string]*dto.MetricFamily {
	t.Helper()
	resp, err := http.Get(e.url + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("/metrics: %s", resp.Status)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatalf("parse /metrics: %v", err)
	}
	return fams
}

// value returns the value of the series name{labels} (a counter's or
// gauge's value, a histogram's sample count), and whether it exists.
func value(fams map[string]*dto.MetricFamily, name string, labels ...string) (float64, bool) {
	f := fams[name]
	if f == nil {
		return 0, false
	}
	for _, m := range f.GetMetric() {
		match := true
		for i := 0; i+1 < len(labels); i += 2 {
			found := false
			for _, lp := range m.GetLabel() {
				if lp.GetName() == labels[i] && lp.GetValue() == labels[i+1] {
					found = true
				}
			}
			match = match && found
		}
		if !match {
			continue
		}
		switch {
		case m.Counter != nil:
			return m.Counter.GetValue(), true
		case m.Gauge != nil:
			return m.Gauge.GetValue(), true
		case m.Histogram != nil:
			return float64(m.Histogram.GetSampleCount()), true
		case m.Untyped != nil:
			return m.Untyped.GetValue(), true
		}
	}
	return 0, false
}

func histSum(fams map[string]*dto.MetricFamily, name string, labels ...string) float64 {
	for _, m := range fams[name].GetMetric() {
		ok := true
		for i := 0; i+1 < len(labels); i += 2 {
			has := false
			for _, lp := range m.GetLabel() {
				has = has || (lp.GetName() == labels[i] && lp.GetValue() == labels[i+1])
			}
			ok = ok && has
		}
		if ok && m.Histogram != nil {
			return m.Histogram.GetSampleSum()
		}
	}
	return math.NaN()
}

type want struct {
	name    string
	labels  []string
	v       float64
	atLeast bool // v is a lower bound (retries on real time)
}

// check scrapes until every want holds (the decorator counts right
// after the store write the test waits for, so a scrape may come a moment
// early), for 5 s at most, and returns the last scrape.
func (e *flowEnv) check(t *testing.T, stage string, wants ...want) map[string]*dto.MetricFamily {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		fams := e.scrape(t)
		var bad []string
		for _, w := range wants {
			got, ok := value(fams, w.name, w.labels...)
			switch {
			case !ok:
				bad = append(bad, fmt.Sprintf("no series %s%v", w.name, w.labels))
			case w.atLeast && got < w.v:
				bad = append(bad, fmt.Sprintf("%s%v = %v, want at least %v", w.name, w.labels, got, w.v))
			case !w.atLeast && got != w.v:
				bad = append(bad, fmt.Sprintf("%s%v = %v, want %v", w.name, w.labels, got, w.v))
			}
		}
		if len(bad) == 0 {
			return fams
		}
		if time.Now().After(deadline) {
			t.Errorf("%s:\n%s", stage, strings.Join(bad, "\n"))
			return fams
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// flowFamilies runs request -> approve -> expire, a break-glass grant
// whose revocation fails once, a drift repair by the reconcile job and
// chat hooks, checking the metrics at each stage, and returns the last
// scrape.
func runFlow(t *testing.T) map[string]*dto.MetricFamily {
	e := newFlowEnv(t)
	ctx := context.Background()
	e.m.AuditSinks("siem") // the audit sinks' series, as with a sink configured

	r, err := e.svc.Submit(ctx, access.SubmitInput{Requester: "alice@example.com", Role: "prod-admin", Duration: time.Hour, Reason: "fix the outage"})
	if err != nil {
		t.Fatal(err)
	}
	e.check(t, "submitted",
		want{name: "accessbot_requests_submitted_total", labels: []string{"role", "prod-admin", "kind", "request"}, v: 1},
		want{name: "accessbot_requests_pending", labels: []string{"role", "prod-admin"}, v: 1},
		want{name: "accessbot_grants_active", labels: []string{"role", "prod-admin"}, v: 0},
		want{name: "accessbot_scheduler_next_due_timestamp_seconds", v: float64(r.PendingUntil.Unix())},
	)

	if _, err := e.svc.Decide(ctx, r.ID, "dave@example.com", true, ""); err != nil {
		t.Fatal(err)
	}
	alice := e.await(t, r.ID, "active", func(r *access.Request) bool { return r.State == access.StateActive })
	e.check(t, "approved",
		want{name: "accessbot_decisions_total", labels: []string{"role", "prod-admin", "decision", "approve"}, v: 1},
		want{name: "accessbot_requests_total", labels: []string{"role", "prod-admin", "outcome", "granted"}, v: 1},
		want{name: "accessbot_grants_total", labels: []string{"provider", "dryrun", "outcome", "granted"}, v: 1},
		want{name: "accessbot_requests_pending", labels: []string{"role", "prod-admin"}, v: 0},
		want{name: "accessbot_grants_active", labels: []string{"role", "prod-admin"}, v: 1},
		want{name: "accessbot_provider_call_duration_seconds", labels: []string{"provider", "dryrun", "op", "grant"}, v: 1},
		want{name: "accessbot_scheduler_next_due_timestamp_seconds", v: float64(alice.EndsAt.Unix())},
	)

	// Break-glass for 30 minutes; its revocation fails (every retry too)
	// until the provider is fixed.
	bg, err := e.svc.BreakGlass(ctx, access.SubmitInput{Requester: "erin@example.com", Role: "prod-admin", Duration: 30 * time.Minute, Reason: "incident"})
	if err != nil {
		t.Fatal(err)
	}
	e.await(t, bg.ID, "active", func(r *access.Request) bool { return r.State == access.StateActive })
	e.prov.FailNext("revoke", 1000, errors.New("throttled"))
	e.clock.Advance(30*time.Minute + 10*time.Second)
	e.sched.Wake(time.Time{})
	e.await(t, bg.ID, "failing", func(r *access.Request) bool { return r.State == access.StateRevoking && r.Attempts > 0 })
	e.clock.Advance(20 * time.Second)
	e.check(t, "revocation failing",
		want{name: "accessbot_break_glass_total", labels: []string{"role", "prod-admin"}, v: 1},
		want{name: "accessbot_grants_active", labels: []string{"role", "prod-admin"}, v: 1},
		want{name: "accessbot_revocations_failing", labels: nil, v: 1},
		want{name: "accessbot_revocation_failing_oldest_seconds", labels: nil, v: 20},
		want{name: "accessbot_revocations_total", labels: []string{"provider", "dryrun", "outcome", "retry"}, v: 1, atLeast: true},
		want{name: "accessbot_provider_errors_total", labels: []string{"provider", "dryrun", "op", "revoke", "code", "other"}, v: 1, atLeast: true},
	)
	e.prov.FailNext("revoke", 0, nil)
	bgr, err := e.store.Get(ctx, bg.ID)
	if err != nil {
		t.Fatal(err)
	}
	if bgr.RetryAt.After(e.clock.Now()) {
		e.clock.Set(bgr.RetryAt.Add(time.Second))
	}
	e.sched.Wake(time.Time{})
	bgEnded := e.await(t, bg.ID, "ended", func(r *access.Request) bool { return r.State == access.StateEnded })

	// Alice's grant expires; the scheduler revokes it 30 s after its end.
	// Telling her fails once and is retried.
	e.notes.mu.Lock()
	e.notes.failFor = r.ID
	e.notes.mu.Unlock()
	e.clock.Set(alice.EndsAt.Add(30 * time.Second))
	e.sched.Wake(time.Time{})
	alice = e.await(t, r.ID, "ended", func(r *access.Request) bool { return r.State == access.StateEnded })
	e.await(t, r.ID, "told it failed", func(r *access.Request) bool { return len(r.Outbox) == 1 && r.Outbox[0].Tries == 1 })
	e.clock.Advance(5 * time.Minute) // past the delivery retry's backoff
	e.sched.Wake(time.Time{})
	e.await(t, r.ID, "told", func(r *access.Request) bool { return len(r.Outbox) == 0 })

	// Drift: a member nobody granted, removed by the reconcile job.
	e.prov.AddMember("g-admin", "mallory@example.com")
	if err := e.sched.RunJob(ctx, "reconcile"); err != nil {
		t.Fatal(err)
	}

	// The chat transport's hooks.
	e.m.ChatConnected("slack", true)
	e.m.ChatAcked("slack", 20*time.Millisecond)
	e.m.ChatConnected("slack", false)
	e.m.ChatConnected("slack", true)

	fams := e.check(t, "expired",
		want{name: "accessbot_revocations_total", labels: []string{"provider", "dryrun", "outcome", "revoked"}, v: 2},
		want{name: "accessbot_revocations_total", labels: []string{"provider", "dryrun", "outcome", "started"}, v: 2},
		want{name: "accessbot_revocation_lateness_seconds", labels: []string{"provider", "dryrun"}, v: 2},
		want{name: "accessbot_revocations_failing", labels: nil, v: 0},
		want{name: "accessbot_revocation_failing_oldest_seconds", labels: nil, v: 0},
		want{name: "accessbot_grants_active", labels: []string{"role", "prod-admin"}, v: 0},
		want{name: "accessbot_scheduler_due_items", labels: nil, v: 0},
		want{name: "accessbot_scheduler_next_due_timestamp_seconds", labels: nil, v: 0},
		want{name: "accessbot_provider_call_duration_seconds", labels: []string{"provider", "dryrun", "op", "revoke"}, v: 4, atLeast: true}, // break-glass (failed, retried), expiry, drift removal
		want{name: "accessbot_provider_call_duration_seconds", labels: []string{"provider", "dryrun", "op", "members"}, v: 1},
		want{name: "accessbot_drift_total", labels: []string{"action", "removed"}, v: 1},
		want{name: "accessbot_drift_members", labels: []string{"provider", "dryrun", "kind", "removed"}, v: 1},
		want{name: "accessbot_leader", labels: []string{"job", "reconcile"}, v: 0}, // RunJob gives the lock back
		want{name: "accessbot_chat_connected", labels: []string{"platform", "slack"}, v: 1},
		want{name: "accessbot_chat_reconnects_total", labels: []string{"platform", "slack"}, v: 1},
		want{name: "accessbot_chat_ack_duration_seconds", labels: []string{"platform", "slack"}, v: 1},
		want{name: "accessbot_outbox_retries_total", labels: []string{"lane", "people"}, v: 1},
	)
	late := alice.EndedAt.Sub(alice.EndsAt) + bgEnded.EndedAt.Sub(bgEnded.EndsAt)
	if got := histSum(fams, "accessbot_revocation_lateness_seconds", "provider", "dryrun"); math.Abs(got-late.Seconds()) > 1e-6 {
		t.Errorf("lateness sum = %v s, want %v s (30 s for the expiry, %s for the break-glass retried)", got, late.Seconds(),
			bgEnded.EndedAt.Sub(bgEnded.EndsAt))
	}
	if n, _ := value(fams, "accessbot_outbox_delivery_lag_seconds", "lane", "security"); n < 1 {
		t.Errorf("no security announcement delivery observed (break-glass)")
	}
	if n, _ := value(fams, "accessbot_outbox_delivery_lag_seconds", "lane", "people"); n < 4 {
		t.Errorf("outbox deliveries to people = %v, want at least 4 (submitted, active, ended x2)", n)
	}
	if _, ok := value(fams, "accessbot_scheduler_heartbeat_timestamp_seconds"); !ok {
		t.Error("no scheduler heartbeat")
	}
	return fams
}

func TestMetricsAfterRequestApproveExpire(t *testing.T) {
	runFlow(t)
}

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, strings.TrimSpace(string(b))
}
