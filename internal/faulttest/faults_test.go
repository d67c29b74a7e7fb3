package faulttest_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net/http"
	"net/http/httputil"
	"net/url"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	awssdk "github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"

	"github.com/accessbot/accessbot/access"
	"github.com/accessbot/accessbot/handlers"
	"github.com/accessbot/accessbot/internal/fakeswitch"
	"github.com/accessbot/accessbot/internal/redistest"
	"github.com/accessbot/accessbot/internal/testclock"
	"github.com/accessbot/accessbot/providers/aws"
	"github.com/accessbot/accessbot/providers/aws/awsfake"
	"github.com/accessbot/accessbot/providers/okta"
	"github.com/accessbot/accessbot/providers/okta/oktafake"
	"github.com/accessbot/accessbot/scheduler"
	"github.com/accessbot/accessbot/store/bolt"
	"github.com/accessbot/accessbot/store/redis"
)

func TestMain(m *testing.M) { redistest.Main(m.Run) }

// The suite's figures. Provider calls get real, short deadlines (a real
// deadline cannot be test-clocked); everything else runs on the test
// clock, which moves in steps of one sweep.
const (
	step          = 10 * time.Second      // test clock per scheduler drain
	faultFor      = 10 * time.Minute      // the fault ends here
	runFor        = 12*time.Minute + step // the last grants end at 11 min
	attemptTO     = 250 * time.Millisecond
	checkUserTO   = 300 * time.Millisecond
	alertAfter    = 2 * time.Minute
	grantRetryFor = 3 * time.Minute
	maxBackoff    = 30 * time.Second
	answerBound   = 3 * time.Second // real time a person may wait for an answer during the fault

	approver = "approver@example.com"
	awsKey   = "AKIDFAULTSUITE"
	oktaTok  = "00-fault-suite-token"
)

var t0 = time.Date(2026, 11, 18, 10, 0, 0, 0, time.UTC)

const offEnd = 3 * time.Second

// ends are the grant durations per provider: one user each, ending
// throughout the fault and one after it. Each is offEnd longer, so that
// grants end between two steps, not on one.
var ends = map[string][]time.Duration{
	"aws":  {1 * time.Minute, 3 * time.Minute, 5 * time.Minute, 7 * time.Minute, 11 * time.Minute},
	"okta": {2 * time.Minute, 4 * time.Minute, 6 * time.Minute, 8 * time.Minute, 11 * time.Minute},
}

// post is a message the notifier sent: to a channel, or a DM ("dm:<who>").
type post struct {
	At      time.Time // test clock
	Channel string
	Ref     string
	Msg     handlers.Message
}

// recChat is a handlers.Chat (and Directory: chat user ids are the
// identities) that records every message.
// logBuf keeps the replicas' log lines.
type logBuf struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *logBuf) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

// lines returns the lines that mention id.
func (l *logBuf) lines(id string) string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []string
	for _, line := range strings.Split(l.b.String(), "\n") {
		if strings.Contains(line, id) {
			out = append(out, line)
		}
	}
	return strings.Join(out, "\n")
}

type recChat struct {
	clock *testclock.Clock

	mu      sync.Mutex
	posts   []post
	updates []post
	n       int
}

func (c *recChat) Platform() string         { return "test" }
func (c *recChat) ApprovalsChannel() string { return "#approvals" }
func (c *recChat) SecurityChannel() string  { return "#security" }

func (c *recChat) Post(_ context.Context, ch string, m handlers.Message) (access.MessageRef, error) {
	return c.add(ch, m), nil
}

func (c *recChat) DM(_ context.Context, who string, m handlers.Message) (access.MessageRef, error) {
	return c.add("dm:"+who, m), nil
}

func (c *recChat) Reply(_ context.Context, ref access.MessageRef, m handlers.Message) (access.MessageRef, error) {
	return c.add(ref.Channel, m), nil
}

func (c *recChat) Update(_ context.Context, ref access.MessageRef, m handlers.Message) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.updates = append(c.updates, post{At: c.clock.Now(), Channel: ref.Channel, Ref: ref.ID, Msg: m})
	return nil
}

func (c *recChat) add(ch string, m handlers.Message) access.MessageRef {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.n++
	ref := fmt.Sprintf("m%d", c.n)
	c.posts = append(c.posts, post{At: c.clock.Now(), Channel: ch, Ref: ref, Msg: m})
	return access.MessageRef{Channel: ch, ID: ref}
}

func (c *recChat) Identity(_ context.Context, u string) (string, error)  { return u, nil }
func (c *recChat) ChatUser(_ context.Context, id string) (string, error) { return id, nil }

func (c *recChat) find(ch string, match func(handlers.Message) bool) []post {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []post
	for _, p := range c.posts {
		if p.Channel == ch && match(p.Msg) {
			out = append(out, p)
		}
	}
	return out
}

func (c *recChat) updatesOf(ref string) []post {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []post
	for _, p := range c.updates {
		if p.Ref == ref {
			out = append(out, p)
		}
	}
	return out
}

// realProvider is what both real clients offer.
type realProvider interface {
	access.Provisioner
	access.UserChecker
	access.MemberLister
}

// call is one provider call as the service made it.
type call struct {
	Op        string // Grant, Revoke, CheckUser
	RequestID string
	At        time.Time // test clock when it began
	Done      time.Time // test clock when it returned (a held call can span steps)
	Replica   int
	Began     time.Time // real time when it began
	Took      time.Duration
	Err       error
}

// recProv passes every call to the real client and records it, so that
// failed attempts can be counted independently of the audit log.
type recProv struct {
	p     realProvider
	clock *testclock.Clock
	log   *recProv // where calls are recorded: itself, or the first replica's
	n     int      // the replica

	mu    sync.Mutex
	calls []call
}

func (r *recProv) do(op, id string, f func() error) error {
	at, start := r.clock.Now(), time.Now()
	err := f()
	log := r
	if r.log != nil {
		log = r.log
	}
	log.mu.Lock()
	log.calls = append(log.calls, call{Op: op, RequestID: id, At: at, Done: r.clock.Now(), Replica: r.n, Began: start, Took: time.Since(start), Err: err})
	log.mu.Unlock()
	return err
}

func (r *recProv) Grant(ctx context.Context, g access.Grant) error {
	return r.do("Grant", g.RequestID, func() error { return r.p.Grant(ctx, g) })
}

func (r *recProv) Revoke(ctx context.Context, g access.Grant) error {
	return r.do("Revoke", g.RequestID, func() error { return r.p.Revoke(ctx, g) })
}

func (r *recProv) CheckUser(ctx context.Context, identity string) error {
	return r.do("CheckUser", "", func() error { return r.p.CheckUser(ctx, identity) })
}

func (r *recProv) Members(ctx context.Context, group string) ([]string, error) {
	return r.p.Members(ctx, group)
}

func (r *recProv) callsOf(id string) []call {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []call
	for _, c := range r.calls {
		if c.RequestID == id {
			out = append(out, c)
		}
	}
	return out
}

// stack is the whole product, wired as `accessbot run` wires it, with the
// provider fakes behind the real clients.
type stack struct {
	t      *testing.T
	clock  *testclock.Clock
	aws    *awsfake.Server
	okta   *oktafake.Server
	awsSw  *fakeswitch.Switch // in front of the fakes when the scenario takes them off the network
	oktaSw *fakeswitch.Switch
	groups map[string]string // provider -> group id
	prov   map[string]*recProv
	st     access.Store
	svc    *access.Service
	sched  *scheduler.Scheduler
	chat   *recChat
	logs   logBuf // the replicas' logs, shown for a request whose check failed
	h      *handlers.Handler
	scheds []*scheduler.Scheduler // one per replica; sched is the first

	neighbour func() // stops the noisy neighbour of the Okta 429 storm
}

// noisyNeighbour spends the Okta fake's rate-limit budget of the users and
// groups families as another client of the org would, until stopped.
func (s *stack) noisyNeighbour() (stop func()) {
	done := make(chan struct{})
	var wg sync.WaitGroup
	paths := []string{"/api/v1/users/neighbour@example.com", "/api/v1/groups/" + s.groups["okta"]}
	wg.Go(func() {
		tick := time.NewTicker(5 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-done:
				return
			case <-tick.C:
			}
			for _, p := range paths {
				req, _ := http.NewRequest(http.MethodGet, s.okta.URL+p, nil)
				req.Header.Set("Authorization", "SSWS "+oktaTok)
				if resp, err := http.DefaultClient.Do(req); err == nil {
					_, _ = io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
				}
			}
		}
	})
	return func() { close(done); wg.Wait() }
}

// waitBack waits, bounded, until the client of p gets answers again from
// the group and the user endpoints: a client that was told to hold back (a
// rate-limit reset) may need a moment of real time after the fault ends,
// which the test clock, running ahead of real time, does not give.
func (s *stack) waitBack(p string) {
	s.t.Helper()
	give := time.Now().Add(10 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		_, err := s.prov[p].Members(ctx, s.groups[p])
		if err == nil {
			// A user nobody asked about: answered when found missing.
			if err = s.prov[p].p.CheckUser(ctx, "probe-"+p+"@example.com"); errors.Is(err, access.ErrUnknownUser) {
				err = nil
			}
		}
		cancel()
		if err == nil {
			return
		}
		if time.Now().After(give) {
			s.t.Fatalf("%s still failing 10 s after the fault ended: %v", p, err)
		}
		time.Sleep(20 * time.Millisecond) // polling a condition, bounded above
	}
}

func proxy(t *testing.T, target string) http.Handler {
	u, err := url.Parse(target)
	if err != nil {
		t.Fatal(err)
	}
	rp := httputil.NewSingleHostReverseProxy(u)
	rp.ErrorLog = log.New(io.Discard, "", 0)
	return rp
}

// newStack builds the product with its fakes. With replicas > 1 (Redis
// only) further replicas share the store, the fakes and the chat, each
// with its own clients, service and scheduler; their provider calls are
// recorded with the first replica's.
func newStack(t *testing.T, storeKind string, switched bool, replicas int) *stack {
	t.Helper()
	ctx := context.Background()
	s := &stack{t: t, clock: testclock.New(t0), groups: map[string]string{}, prov: map[string]*recProv{}}
	replicas = max(replicas, 1)

	s.aws = awsfake.New()
	t.Cleanup(s.aws.Close)
	s.aws.AllowAccessKeys(awsKey)
	// The test clock runs many times faster than real time, so the fake's
	// usual per-second rate limit would throttle what is a trickle in
	// test-clock terms. Throttling is a scenario of its own.
	s.aws.SetThrottle(0, 0, 0, 0)
	s.groups["aws"] = s.aws.AddGroup("prod-admins")
	s.okta = oktafake.New()
	t.Cleanup(s.okta.Close)
	s.okta.AddAPIToken(oktaTok)
	s.groups["okta"] = s.okta.AddGroup("support-admins")
	awsURL, oktaURL := s.aws.URL, s.okta.URL
	if switched {
		s.awsSw = fakeswitch.Start("awsfake", proxy(t, s.aws.URL), "<html><body>503 Service Temporarily Unavailable</body></html>")
		t.Cleanup(s.awsSw.Close)
		s.oktaSw = fakeswitch.Start("oktafake", proxy(t, s.okta.URL), "<html><body>503 Service Temporarily Unavailable</body></html>")
		t.Cleanup(s.oktaSw.Close)
		awsURL, oktaURL = s.awsSw.URL(), s.oktaSw.URL()
	}

	// The real clients, with their own retries made small: they must fit
	// inside the service's short attempt deadline, as the defaults fit
	// inside the default one.
	clients := func(n int) map[string]*recProv {
		ap, err := aws.New(ctx, aws.Config{IdentityStoreID: awsfake.DefaultIdentityStoreID}, nil,
			aws.WithAWSConfig(awssdk.Config{Region: "us-east-1", Credentials: credentials.NewStaticCredentialsProvider(awsKey, "fault-suite-secret", "")}),
			aws.WithEndpoint(awsURL), aws.WithRetry(3, 20*time.Millisecond))
		if err != nil {
			t.Fatal(err)
		}
		op, err := okta.New(okta.Config{OrgURL: oktaURL, APIToken: oktaTok}, nil,
			okta.WithRetry(3, 20*time.Millisecond), okta.WithThrottleWaits(2))
		if err != nil {
			t.Fatal(err)
		}
		return map[string]*recProv{"aws": {p: ap, clock: s.clock, log: s.prov["aws"], n: n}, "okta": {p: op, clock: s.clock, log: s.prov["okta"], n: n}}
	}
	s.prov = clients(1)

	var prefix string
	switch storeKind {
	case "bolt":
		if replicas > 1 {
			t.Fatal("replicas share a Redis store")
		}
		st, err := bolt.Open(filepath.Join(t.TempDir(), "faults.db"))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { st.Close() })
		s.st = st
	case "redis":
		prefix = redistest.Prefix(t)
		s.st = redis.New(redistest.Client(t), prefix)
	default:
		t.Fatalf("store %q", storeKind)
	}

	role := func(p string) access.Role {
		return access.Role{Name: p + "-admin", Description: p + " administrator", Provider: p, Group: s.groups[p],
			MaxDuration: 4 * time.Hour, DefaultDuration: time.Hour, ApproverUsers: []string{approver}, Approvals: 1,
			PendingTTL: time.Hour}
	}
	pol := &access.Policy{Roles: map[string]access.Role{"aws-admin": role("aws"), "okta-admin": role("okta")}}
	s.chat = &recChat{clock: s.clock}
	replica := func(n int, st access.Store, prov map[string]*recProv) (*access.Service, *scheduler.Scheduler) {
		svc, err := access.NewService(access.Deps{Store: st, Policy: pol, Clock: s.clock, Owner: fmt.Sprintf("replica-%d", n),
			Logger:    slog.New(slog.NewTextHandler(&s.logs, &slog.HandlerOptions{Level: slog.LevelInfo})).With("replica", n),
			Providers: map[string]access.Provisioner{"aws": prov["aws"], "okta": prov["okta"]},
			Options: access.Options{AttemptTimeout: attemptTO, RevokeAlertAfter: alertAfter, GrantRetryFor: grantRetryFor,
				MaxBackoff: maxBackoff, CheckUserTimeout: checkUserTO, OnCallTimeout: checkUserTO,
				MemberWait: 200 * time.Millisecond, NotifyTimeout: 2 * time.Second, StoreTimeout: 5 * time.Second}})
		if err != nil {
			t.Fatal(err)
		}
		svc.SetNotifier(handlers.NewNotifier(s.chat, nil))
		sched := scheduler.New(st, svc, s.clock, nil, scheduler.Options{ItemTimeout: 10 * time.Second})
		svc.SetWaker(sched)
		return svc, sched
	}
	s.svc, s.sched = replica(1, s.st, s.prov)
	s.scheds = []*scheduler.Scheduler{s.sched}
	for n := 2; n <= replicas; n++ {
		_, sched := replica(n, redis.New(redistest.Client(t), prefix), clients(n))
		s.scheds = append(s.scheds, sched)
	}
	s.h = handlers.New(s.svc, s.chat, nil)
	return s
}

func (s *stack) addUser(p, email string) {
	if p == "aws" {
		s.aws.AddUser(email)
	} else {
		s.okta.AddUser(email)
	}
}

func (s *stack) members(p string) []string {
	if p == "aws" {
		return s.aws.MemberEmails(s.groups[p])
	}
	return s.okta.MemberEmails(s.groups[p])
}

// answer is what a person got back during the fault, and how long it took.
type answer struct {
	what  string
	reply handlers.Reply
	took  time.Duration
}

func (s *stack) command(who, text string) answer {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	start := time.Now()
	r := s.h.Command(ctx, handlers.Command{User: who, Text: text})
	return answer{what: who + ": /access " + text, reply: r, took: time.Since(start)}
}

func (s *stack) click(who, action, id string) answer {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	start := time.Now()
	r := s.h.Action(ctx, handlers.Action{User: who, Action: action, RequestID: id})
	return answer{what: who + " clicks " + action + " on " + id, reply: r, took: time.Since(start)}
}

func (s *stack) requestOf(who string) *access.Request {
	s.t.Helper()
	rs, err := s.st.List(context.Background(), access.Filter{Requester: who})
	if err != nil || len(rs) != 1 {
		s.t.Fatalf("requests of %s: %d, %v", who, len(rs), err)
	}
	return rs[0]
}

type scenario struct {
	name     string
	store    string
	faulty   []string // the providers the fault hits
	switched bool     // the fakes sit behind a switch that can take them off the network
	hang     bool     // calls are never answered: only there may a call end on its deadline
	run      bool     // the scheduler's Run loop, woken at each step, instead of Drain
	replicas int      // replicas sharing the (Redis) store; 0: one
	start    func(s *stack)
	stop     func(s *stack)
}

// TestFaults drives the whole product through provider faults that last
// ten minutes while grants end throughout, and checks what accessbot
// promises: every membership ends, nothing is granted after its retry
// window, every failed provider attempt is in the audit log, the security
// channel hears once per stuck removal within revoke_alert_after of its
// first failure (and once more when it goes through), grants on a healthy
// provider end on time, and people get an answer while the provider is
// down.
func TestFaults(t *testing.T) {
	scenarios := []scenario{
		{name: "aws_hang/bolt", hang: true, store: "bolt", faulty: []string{"aws"},
			start: func(s *stack) { s.aws.Hang(true) }, stop: func(s *stack) { s.aws.Hang(false) }},
		{name: "aws_hang/redis/run/2_replicas", hang: true, run: true, replicas: 2, store: "redis", faulty: []string{"aws"},
			start: func(s *stack) { s.aws.Hang(true) }, stop: func(s *stack) { s.aws.Hang(false) }},
		{name: "aws_5xx_storm", store: "redis", faulty: []string{"aws"},
			start: func(s *stack) { s.aws.FailNext(1<<30, http.StatusInternalServerError) },
			stop:  func(s *stack) { s.aws.FailNext(0, 0) }},
		{name: "aws_throttling_storm", store: "bolt", faulty: []string{"aws"},
			start: func(s *stack) { s.aws.SetThrottle(0.0001, 1, http.StatusBadRequest, 0) },
			stop:  func(s *stack) { s.aws.SetThrottle(0, 0, 0, 0) }},
		{name: "okta_hang/redis", hang: true, store: "redis", faulty: []string{"okta"},
			start: func(s *stack) { s.okta.Hang(true) }, stop: func(s *stack) { s.okta.Hang(false) }},
		{name: "okta_hang/bolt/run", hang: true, run: true, store: "bolt", faulty: []string{"okta"},
			start: func(s *stack) { s.okta.Hang(true) }, stop: func(s *stack) { s.okta.Hang(false) }},
		{name: "okta_5xx_storm", store: "bolt", faulty: []string{"okta"},
			start: func(s *stack) { s.okta.FailNext(1<<30, http.StatusServiceUnavailable) },
			stop:  func(s *stack) { s.okta.FailNext(0, 0) }},
		// Another client of the org spends the rate-limit budget of every
		// window (Okta's limits are per org): accessbot gets 429s with
		// X-Rate-Limit-Reset, and its client holds calls until the reset.
		// The windows are a second of real time, so that the client's own
		// hold ends soon after the storm, as it does within Okta's minute.
		{name: "okta_429_storm", store: "redis", faulty: []string{"okta"},
			start: func(s *stack) { s.okta.SetRateLimit(1, time.Second); s.neighbour = s.noisyNeighbour() },
			stop:  func(s *stack) { s.neighbour(); s.okta.SetRateLimit(0, 0) }},
		// Both providers off the network for ten minutes: AWS refuses
		// connections, Okta's load balancer answers 503 with an HTML page.
		{name: "both_down_back_after_10m/2_replicas", store: "redis", replicas: 2, faulty: []string{"aws", "okta"}, switched: true,
			start: func(s *stack) { s.awsSw.Down(fakeswitch.Refused); s.oktaSw.Down(fakeswitch.Unavailable) },
			stop: func(s *stack) {
				if err := s.awsSw.Up(); err != nil {
					s.t.Fatal(err)
				}
				if err := s.oktaSw.Up(); err != nil {
					s.t.Fatal(err)
				}
			}},
	}
	for _, sc := range scenarios {
		t.Run(sc.name, func(t *testing.T) {
			t.Parallel()
			runScenario(t, sc)
		})
	}
}

func runScenario(t *testing.T, sc scenario) {
	wallStart := time.Now()
	s := newStack(t, sc.store, sc.switched, sc.replicas)
	ctx := context.Background()
	faulty := func(p string) bool { return slices.Contains(sc.faulty, p) }

	// Healthy start: every user holds a grant, ending throughout the fault.
	for _, p := range []string{"aws", "okta"} {
		for i, d := range ends[p] {
			user := fmt.Sprintf("%s-%d@example.com", p, i+1)
			s.addUser(p, user)
			r, err := s.svc.Submit(ctx, access.SubmitInput{Requester: user, Role: p + "-admin", Duration: d + offEnd, Reason: "fault suite"})
			if err != nil {
				t.Fatal(err)
			}
			if r, err = s.svc.Decide(ctx, r.ID, approver, true, ""); err != nil || r.State != access.StateActive {
				t.Fatalf("setup grant of %s: %v %v", user, r, err)
			}
		}
		s.addUser(p, "late-"+p+"@example.com") // approved during the fault
		s.addUser(p, "new-"+p+"@example.com")  // asks during the fault
		if got := s.members(p); len(got) != len(ends[p]) {
			t.Fatalf("%s members at start: %v", p, got)
		}
	}

	var answers []answer
	faultOn := true
	stepBegan := map[time.Duration]time.Time{} // real time each step's scheduling began
	runCtx, stopRun := context.WithCancel(ctx)
	runDone := make(chan error, 1)
	if sc.run {
		go func() {
			var mu sync.Mutex
			var errs []error
			var wg sync.WaitGroup
			for _, sched := range s.scheds {
				wg.Go(func() {
					err := sched.Run(runCtx)
					mu.Lock()
					errs = append(errs, err)
					mu.Unlock()
				})
			}
			wg.Wait()
			runDone <- errors.Join(errs...)
		}()
	} else {
		runDone <- nil
	}
	defer func() { stopRun(); <-runDone }()
	sc.start(s)
	var maxDrain time.Duration
	violations := 0
	for now := t0; !now.After(t0.Add(runFor)); now = now.Add(step) {
		s.clock.Set(now)
		el := now.Sub(t0)
		if faultOn && el >= faultFor {
			sc.stop(s)
			for _, p := range sc.faulty {
				s.waitBack(p)
			}
			faultOn = false
		}
		switch el {
		case 90 * time.Second:
			// A request submitted and approved while the provider is down:
			// its grant must end failed after the retry window, never be
			// applied later.
			for _, p := range sc.faulty {
				who := "late-" + p + "@example.com"
				a := s.command(who, p+"-admin 1h fixing the outage")
				answers = append(answers, a)
				if !strings.Contains(a.reply.Text, "sent for approval") {
					t.Fatalf("%s: %q", a.what, a.reply.Text)
				}
				answers = append(answers, s.click(approver, handlers.ActionApprove, s.requestOf(who).ID))
			}
		case 2 * time.Minute:
			// New requests while the provider is down: a card for someone
			// who may ask, a clear refusal for someone who may not.
			for _, p := range sc.faulty {
				who := "new-" + p + "@example.com"
				a := s.command(who, p+"-admin 30m checking the outage")
				answers = append(answers, a)
				r := s.requestOf(who)
				if r.State != access.StatePending || !strings.Contains(a.reply.Text, "Request "+r.ID+" for *"+p+"-admin* (30m) sent for approval") {
					t.Errorf("%s: state %s, reply %q", a.what, r.State, a.reply.Text)
				}
				cards := s.chat.find("#approvals", func(m handlers.Message) bool {
					return slices.ContainsFunc(m.Buttons, func(b handlers.Button) bool { return b.Value == r.ID && b.Action == handlers.ActionApprove })
				})
				if len(cards) != 1 {
					t.Errorf("%s: %d approval cards, want 1", a.what, len(cards))
				}
				holder := p + "-5@example.com"
				a = s.command(holder, p+"-admin 1h again")
				answers = append(answers, a)
				if a.reply.Color != "danger" || !strings.Contains(a.reply.Text, "you already hold "+p+"-admin") {
					t.Errorf("%s: %+v, want a clear refusal", a.what, a.reply.Message)
				}
			}
		}
		start := time.Now()
		stepBegan[el] = start
		if sc.run {
			for _, sched := range s.scheds {
				sched.Wake(time.Time{})
			}
			if err := s.settle(now); err != nil {
				t.Fatalf("at +%s: %v", el, err)
			}
		} else {
			dctx, cancel := context.WithTimeout(ctx, 30*time.Second)
			errs := make([]error, len(s.scheds))
			var wg sync.WaitGroup
			for i, sched := range s.scheds {
				wg.Go(func() { _, errs[i] = sched.Drain(dctx) })
			}
			wg.Wait()
			cancel()
			if err := errors.Join(errs...); err != nil {
				t.Fatalf("drain at +%s: %v", el, err)
			}
		}
		maxDrain = max(maxDrain, time.Since(start))
		violations += s.checkMembers(el)
		if violations > 5 {
			t.FailNow()
		}
	}

	// Run waits for the work it started when it stops: nothing is still
	// being recorded while the results are read.
	stopRun()
	if err := <-runDone; err != nil {
		t.Fatal(err)
	}
	runDone <- nil

	// Removals on the healthy provider began as soon as the step began,
	// never behind a call of the faulty one that was hanging meanwhile.
	var maxLag time.Duration
	overlapped := 0
	for _, p := range []string{"aws", "okta"} {
		if faulty(p) {
			continue
		}
		for _, c := range s.prov[p].calls {
			if c.Op != "Revoke" || !c.At.Before(t0.Add(faultFor)) {
				continue
			}
			lag := c.Began.Sub(stepBegan[c.At.Sub(t0)])
			maxLag = max(maxLag, lag)
			if lag >= attemptTO {
				t.Errorf("%s Revoke of %s at +%s began %v after its step: it waited for something", p, c.RequestID, c.At.Sub(t0), lag)
			}
			for _, q := range sc.faulty {
				if slices.ContainsFunc(s.prov[q].calls, func(f call) bool {
					return f.Err != nil && f.Began.Before(c.Began.Add(c.Took)) && c.Began.Before(f.Began.Add(f.Took))
				}) {
					overlapped++
					break
				}
			}
		}
	}
	t.Logf("%s: healthy removals during the fault began at most %v after their step; %d of them ran while a faulty call was failing",
		sc.name, maxLag.Round(time.Millisecond), overlapped)

	for _, a := range answers {
		if a.took > answerBound {
			t.Errorf("%s answered after %v, want within %v", a.what, a.took, answerBound)
		}
		for _, raw := range []string{"context deadline", "context canceled", "Exception", "E0000", "dial tcp"} {
			if strings.Contains(a.reply.Text, raw) {
				t.Errorf("%s: the reply shows a raw error: %q", a.what, a.reply.Text)
			}
		}
		if strings.Contains(a.reply.Text, "Something went wrong") {
			t.Errorf("%s: %q, want an answer", a.what, a.reply.Text)
		}
	}

	// 0 memberships after the ends.
	for _, p := range []string{"aws", "okta"} {
		if got := s.members(p); len(got) != 0 {
			t.Errorf("%s group still has members after every grant ended: %v", p, got)
		}
	}
	all, err := s.st.List(ctx, access.Filter{})
	if err != nil {
		t.Fatal(err)
	}
	audit, err := s.st.Audit(ctx, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	byReq := map[string][]access.AuditEvent{}
	for _, ev := range audit {
		byReq[ev.RequestID] = append(byReq[ev.RequestID], ev)
	}
	count := func(id string, acts ...access.Action) int {
		n := 0
		for _, ev := range byReq[id] {
			if slices.Contains(acts, ev.Action) {
				n++
			}
		}
		return n
	}
	first := func(id string, act access.Action) (access.AuditEvent, bool) {
		for _, ev := range byReq[id] {
			if ev.Action == act {
				return ev, true
			}
		}
		return access.AuditEvent{}, false
	}

	var (
		failedCalls, auditedFailures, stuck, alerts, recovered int
		maxAlertDelay, maxHealthyLate, maxFaultyStartLate      time.Duration
	)
	for _, r := range all {
		calls := s.prov[r.Provider].callsOf(r.ID)
		// Every failed attempt audited: each failed Grant is a grant_retry
		// (or the final grant_failed), each failed Revoke a revoke_retry.
		var failedGrants, failedRevokes []call
		var removedAt, removedDone time.Time
		for _, c := range calls {
			switch {
			case c.Op == "Grant" && c.Err != nil:
				failedGrants = append(failedGrants, c)
			case c.Op == "Revoke" && c.Err != nil:
				failedRevokes = append(failedRevokes, c)
			case c.Op == "Revoke":
				removedAt, removedDone = c.At, c.Done
			}
		}
		failedCalls += len(failedGrants) + len(failedRevokes)
		if got := count(r.ID, access.ActGrantRetry, access.ActGrantFailed); got != len(failedGrants) {
			t.Errorf("%s (%s): %d failed Grant calls, %d grant_retry/grant_failed audit events", r.ID, r.Requester, len(failedGrants), got)
		}
		if got := count(r.ID, access.ActRevokeRetry); got != len(failedRevokes) {
			t.Errorf("%s (%s): %d failed Revoke calls, %d revoke_retry audit events", r.ID, r.Requester, len(failedRevokes), got)
		}
		auditedFailures += count(r.ID, access.ActGrantRetry, access.ActGrantFailed, access.ActRevokeRetry)

		// No grant applied after its retry window.
		if granted, ok := first(r.ID, access.ActGranted); ok {
			approved, _ := first(r.ID, access.ActApproved)
			if d := granted.At.Sub(approved.At); d > grantRetryFor {
				t.Errorf("%s (%s): granted %v after approval, past the retry window (%v)", r.ID, r.Requester, d, grantRetryFor)
			}
		}

		// Nothing left to do, nothing owed.
		if r.Requester != "new-"+r.Provider+"@example.com" && !r.State.Terminal() {
			t.Errorf("%s (%s) is %s at the end", r.ID, r.Requester, r.State)
		}
		if r.Cleanup || len(r.Outbox) > 0 {
			t.Errorf("%s (%s): clean-up %v, outbox %v at the end", r.ID, r.Requester, r.Cleanup, r.Outbox)
		}

		// The security channel: once per stuck removal, within
		// revoke_alert_after of its first failure; once more when it went
		// through. A removal that went through sooner is not announced.
		isAlert := func(prefix string) func(handlers.Message) bool {
			return func(m handlers.Message) bool {
				return strings.HasPrefix(m.Title, prefix) && m.Footer == "Request "+r.ID
			}
		}
		al := s.chat.find("#security", isAlert("Revocation keeps failing"))
		rec := s.chat.find("#security", isAlert("Revocation succeeded"))
		if count(r.ID, access.ActRevokeAlert) != len(al) {
			t.Errorf("%s: %d revoke_alert audit events, %d alerts posted", r.ID, count(r.ID, access.ActRevokeAlert), len(al))
		}
		if len(failedRevokes) > 0 {
			firstFail := failedRevokes[0].At
			if removedAt.IsZero() {
				t.Errorf("%s (%s): removal never went through", r.ID, r.Requester)
			} else if removedAt.Sub(firstFail) >= alertAfter {
				stuck++
				if len(al) != 1 || len(rec) != 1 {
					t.Errorf("%s (%s): failing from +%s to +%s: %d alerts, %d all-clears, want 1 and 1",
						r.ID, r.Requester, firstFail.Sub(t0), removedAt.Sub(t0), len(al), len(rec))
				} else {
					delay := al[0].At.Sub(firstFail)
					maxAlertDelay = max(maxAlertDelay, delay)
					if delay < alertAfter || delay > alertAfter+step {
						t.Errorf("%s: alert %v after the first failure, want within [%v, %v]", r.ID, delay, alertAfter, alertAfter+step)
					}
					if !strings.Contains(al[0].Msg.Title, r.Requester) || !strings.Contains(al[0].Msg.Text, r.Group) {
						t.Errorf("%s: the alert does not say who and which group: %+v", r.ID, al[0].Msg)
					}
					// The all-clear follows the removal's answer: a call
					// that began during the fault may return only when it
					// ends, steps later.
					if rec[0].At.Before(removedDone) || rec[0].At.Sub(removedDone) > step {
						t.Errorf("%s: all-clear at +%s, removal began at +%s and returned at +%s; its log:\n%s",
							r.ID, rec[0].At.Sub(t0), removedAt.Sub(t0), removedDone.Sub(t0), s.logs.lines(r.ID))
					}
				}
			} else if len(al) != 0 || len(rec) != 0 {
				t.Errorf("%s: removed %v after its first failure, yet %d alerts and %d all-clears", r.ID, removedAt.Sub(firstFail), len(al), len(rec))
			}
		} else if len(al) != 0 || len(rec) != 0 {
			t.Errorf("%s: never failed a removal, yet %d alerts and %d all-clears", r.ID, len(al), len(rec))
		}
		alerts += len(al)
		recovered += len(rec)

		// Grants ending: the removal starts on time everywhere, and ends on
		// time where the provider answers (the healthy one during the
		// fault, every one after it).
		if !r.EndsAt.IsZero() && r.State == access.StateEnded {
			st, ok1 := first(r.ID, access.ActRevokeStart)
			done, ok2 := first(r.ID, access.ActRevoked)
			if !ok1 || !ok2 {
				t.Errorf("%s: revoke_started %v, revoked %v", r.ID, ok1, ok2)
				continue
			}
			startLate := st.At.Sub(r.EndsAt)
			if startLate < 0 || startLate >= step {
				t.Errorf("%s: removal started %v after its end, want within one step (%v)", r.ID, startLate, step)
			}
			healthy := !faulty(r.Provider) || !r.EndsAt.Before(t0.Add(faultFor))
			if healthy {
				late := done.At.Sub(r.EndsAt)
				maxHealthyLate = max(maxHealthyLate, late)
				if late < 0 || late >= step {
					t.Errorf("%s (%s, ends +%s): removed %v after its end on a working provider, want within one step; calls %s; audit %s",
						r.ID, r.Provider, r.EndsAt.Sub(t0), late, showCalls(calls), showAudit(byReq[r.ID]))
				}
			} else {
				maxFaultyStartLate = max(maxFaultyStartLate, startLate)
			}
		}
	}

	// A grant approved during the fault ends failed after the retry
	// window, the requester told, and is never applied.
	for _, p := range sc.faulty {
		r := s.requestOf("late-" + p + "@example.com")
		approved, _ := first(r.ID, access.ActApproved)
		if r.State != access.StateFailed {
			t.Errorf("%s approved during the fault is %s, want failed", r.ID, r.State)
			continue
		}
		if d := r.EndedAt.Sub(approved.At); d < grantRetryFor || d > grantRetryFor+step {
			t.Errorf("%s failed %v after approval, want after the retry window (%v) within one step", r.ID, d, grantRetryFor)
		}
		if count(r.ID, access.ActGranted) != 0 {
			t.Errorf("%s: granted after all", r.ID)
		}
		for _, c := range s.prov[p].callsOf(r.ID) {
			if c.Op == "Grant" && c.Err == nil {
				t.Errorf("%s: a Grant went through at +%s", r.ID, c.At.Sub(t0))
			}
		}
		if dms := s.chat.find("dm:"+r.Requester, func(m handlers.Message) bool { return m.Title == "Request "+r.ID+" failed" }); len(dms) != 1 {
			t.Errorf("%s: requester told %d times of the failure", r.ID, len(dms))
		}
		card := s.chat.find("#approvals", func(m handlers.Message) bool {
			return slices.ContainsFunc(m.Buttons, func(b handlers.Button) bool { return b.Value == r.ID })
		})
		if len(card) != 1 || !slices.ContainsFunc(s.chat.updatesOf(card[0].Ref), func(u post) bool { return !u.At.Before(r.EndedAt) }) {
			t.Errorf("%s: the approvers' card was not updated with the failure", r.ID)
		}
	}
	if stuck < 2 {
		t.Errorf("only %d removals were stuck for revoke_alert_after: the fault did not bite", stuck)
	}

	errKinds := map[string]int{}
	onDeadline, failed := 0, 0
	for _, p := range sc.faulty {
		for _, c := range s.prov[p].calls {
			if c.Err != nil {
				failed++
				errKinds[errKind(c.Err)]++
				if !sc.hang && errors.Is(c.Err, context.DeadlineExceeded) {
					onDeadline++
					t.Logf("%s %s at +%s ended on its deadline: %v", p, c.Op, c.At.Sub(t0), c.Err)
				}
			}
		}
	}
	t.Logf("%s: provider errors seen: %v", sc.name, errKinds)
	// A provider that answers (5xx, 429, refused) is reported as it
	// answered, within the call's deadline, so that the audit and the alert
	// say what is wrong. Only a slow answer on a loaded machine may run out
	// the short deadline of this suite now and then.
	if allowed := max(3, failed/20); onDeadline > allowed {
		t.Errorf("%d of %d failed calls ended on their deadline though the provider answered (allowed %d): the client waited instead of giving the provider's answer",
			onDeadline, failed, allowed)
	}
	perReplica := map[int]int{}
	for _, p := range []string{"aws", "okta"} {
		for _, c := range s.prov[p].calls {
			perReplica[c.Replica]++
		}
	}
	if len(s.scheds) > 1 {
		t.Logf("%s: provider calls per replica: %v", sc.name, perReplica)
		if len(perReplica) < len(s.scheds) {
			t.Errorf("only %d of %d replicas called a provider", len(perReplica), len(s.scheds))
		}
	}
	var failedCheck, hungOrFailed int
	var maxAnswer time.Duration
	for _, a := range answers {
		maxAnswer = max(maxAnswer, a.took)
	}
	for _, p := range sc.faulty {
		for _, c := range s.prov[p].calls {
			if c.Op == "CheckUser" && c.Err != nil {
				failedCheck++
			}
		}
	}
	switch {
	case sc.switched:
		hungOrFailed = s.awsSw.Requests() + s.oktaSw.Requests()
	case faulty("aws"):
		hungOrFailed = int(s.aws.Hung() + s.aws.Throttled())
	default:
		hungOrFailed = int(s.okta.Hung() + s.okta.Throttled())
	}
	t.Logf("%s: %d requests; failed provider attempts %d, audited %d; stuck removals %d, alerts %d (max %v after the first failure; bound %v), all-clears %d; "+
		"healthy removals at most %v late; faulty removals started at most %v late; answers during the fault: %d, slowest %v (failed user checks %d); "+
		"fake held/throttled/switched requests %d; slowest drain %v; wall %v",
		sc.name, len(all), failedCalls, auditedFailures, stuck, alerts, maxAlertDelay, alertAfter+step, recovered,
		maxHealthyLate, maxFaultyStartLate, len(answers), maxAnswer.Round(time.Millisecond), failedCheck,
		hungOrFailed, maxDrain.Round(time.Millisecond), time.Since(wallStart).Round(time.Millisecond))
}

// settle waits, bounded, until nothing is due at now any more: the Run
// loop has done (or failed and rescheduled) everything the step made due.
func (s *stack) settle(now time.Time) error {
	give := time.Now().Add(10 * time.Second)
	for {
		ids, err := s.st.Due(context.Background(), now, 10)
		if err != nil {
			return err
		}
		if len(ids) == 0 {
			return nil
		}
		if time.Now().After(give) {
			return fmt.Errorf("%v still due 10 s after the step began", ids)
		}
		time.Sleep(5 * time.Millisecond) // polling a condition, bounded above
	}
}

// checkMembers reports every member of a group who holds no live grant
// there: access that outlived its end, or a grant applied after its
// request failed. It returns how many it found.
func (s *stack) checkMembers(el time.Duration) int {
	s.t.Helper()
	all, err := s.st.List(context.Background(), access.Filter{})
	if err != nil {
		s.t.Fatal(err)
	}
	n := 0
	for _, p := range []string{"aws", "okta"} {
		for _, m := range s.members(p) {
			ok := slices.ContainsFunc(all, func(r *access.Request) bool {
				return r.Provider == p && access.SameIdentity(r.Requester, m) && (r.State.Live() || r.Cleanup)
			})
			if !ok {
				var states []string
				for _, r := range all {
					if r.Provider == p && access.SameIdentity(r.Requester, m) {
						states = append(states, r.ID+"="+string(r.State))
					}
				}
				s.t.Errorf("+%s: %s is a member of the %s group with no live grant (%v)", el, m, p, states)
				n++
			}
		}
	}
	return n
}

// errKind names the kind of a provider error for the figures.
func errKind(err error) string {
	e := err.Error()
	for _, k := range []string{"context deadline exceeded", "connection refused", "ThrottlingException", "E0000047",
		"InternalServerException", "E0000009", "HTTP 503", "retry quota", "okta rate limit"} {
		if strings.Contains(e, k) {
			return k
		}
	}
	return e
}

func showCalls(cs []call) string {
	var b strings.Builder
	for _, c := range cs {
		fmt.Fprintf(&b, "[+%s replica %d %s %v: %v] ", c.At.Sub(t0), c.Replica, c.Op, c.Took.Round(time.Millisecond), c.Err)
	}
	return b.String()
}

func showAudit(evs []access.AuditEvent) string {
	var b strings.Builder
	for _, ev := range evs {
		fmt.Fprintf(&b, "[+%s %s by %s: %s] ", ev.At.Sub(t0), ev.Action, ev.Actor, ev.Detail)
	}
	return b.String()
}
