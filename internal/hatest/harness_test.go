package hatest

import (
	"bufio"
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/accessbot/accessbot/access"
	"github.com/accessbot/accessbot/bot/slack/slackfake"
	"github.com/accessbot/accessbot/handlers"
	"github.com/accessbot/accessbot/internal/redistest"
	"github.com/accessbot/accessbot/providers/aws/awsfake"
	redisstore "github.com/accessbot/accessbot/store/redis"
)

// Limits the acceptance asks for.
const (
	maxGrantLateness   = 15 * time.Second // from the Approve click to the membership
	maxRemovalLateness = 15 * time.Second // from the grant's end to the membership's removal

	awsDelay = 300 * time.Millisecond // each Identity Store call

	// leaseTTL is access.DefaultLeaseTTL: what one more kill of the
	// worker holding a request's lease can add to its lateness.
	leaseTTL = access.DefaultLeaseTTL
)

// lateLimit is limit for work that ran from `from` to `to` (times since
// the run started): the acceptance limits hold for one take-over, and
// every further kill inside the window may have hit the worker that took
// the work over (a replica restarted at once is often the one that does),
// which costs at most one more lease TTL each.
func lateLimit(limit time.Duration, kills []killRecord, from, to time.Duration) time.Duration {
	n := 0
	for _, k := range kills {
		if k.at >= from && k.at <= to {
			n++
		}
	}
	if n > 1 {
		limit += time.Duration(n-1) * leaseTTL
	}
	return limit
}

// Fixed names of the world.
const (
	chGeneral   = "C0GENERAL"
	chApprovals = "C0APPROVALS"
	chSecurity  = "C0SECURITY"
	approverID  = "UBOB"
	approver    = "bob@example.com"
	role        = "prod-admin"
	storePrefix = "ha"
	awsKeyID    = "AKIDACCESSBOTHATEST"
)

var (
	buildOnce sync.Once
	buildDir  string
	binPath   string
	buildErr  error
)

func TestMain(m *testing.M) {
	code := m.Run()
	if buildDir != "" {
		_ = os.RemoveAll(buildDir)
	}
	redistest.Stop()
	os.Exit(code)
}

// binary builds accessbot once per test binary (no -race: the replicas are
// the system under test, not the race detector's subject).
func binary(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		buildDir, buildErr = os.MkdirTemp("", "accessbot-hatest-")
		if buildErr != nil {
			return
		}
		binPath = filepath.Join(buildDir, "accessbot")
		gobin := filepath.Join(runtime.GOROOT(), "bin", "go")
		if _, err := os.Stat(gobin); err != nil {
			gobin = "go"
		}
		start := time.Now()
		out, err := exec.Command(gobin, "build", "-o", binPath, "github.com/accessbot/accessbot").CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, out)
			return
		}
		t.Logf("built accessbot in %v", time.Since(start).Round(time.Millisecond))
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binPath
}

// user is one requester: a Slack member with an Identity Store account.
// Every request of a run comes from a user of its own, so each membership
// change in the Identity Store belongs to exactly one request.
type user struct {
	slackID, email, awsID string
}

// replica is one `accessbot run` process, restarted after each kill.
type replica struct {
	name    string
	logPath string

	mu     sync.Mutex
	cmd    *exec.Cmd
	done   chan struct{}
	starts int
}

type cmdRecord struct {
	u      user
	sent   time.Time // when the first try was sent (lateness counts from the person's first attempt)
	acked  bool
	tries  int
	ackOn  int // fake's connection id
	failed []string
}

type clickRecord struct {
	id     string
	sent   time.Time // when the first click was sent (lateness counts from it)
	acked  bool
	tries  int
	failed []string
}

type killRecord struct {
	at      time.Duration // since the run started
	replica string
	pid     int
}

// world is one acceptance run.
type world struct {
	t     *testing.T
	bin   string
	dir   string
	redis *redistest.Server
	slack *slackfake.Server
	aws   *awsfake.Server
	group string
	cfg   string
	env   []string
	store *redisstore.Store
	reps  []*replica
	start time.Time

	mu       sync.Mutex
	users    []user
	byEmail  map[string]user
	byAWS    map[string]user
	cmds     []*cmdRecord
	clicks   map[string]*clickRecord // by request id
	kills    []killRecord
	restarts []string // redis restarts, described
}

func newWorld(t *testing.T, nUsers int) *world { t.Helper(); return newWorldWith(t, nUsers, "") }

// newWorldWith is newWorld with extra top-level config lines.
func newWorldWith(t *testing.T, nUsers int, extra string) *world {
	t.Helper()
	w := &world{t: t, bin: binary(t), dir: t.TempDir(), byEmail: map[string]user{}, byAWS: map[string]user{},
		clicks: map[string]*clickRecord{}}

	w.redis = redistest.NewServer(t, redistest.FreePort(t), "--appendonly", "yes")
	w.redis.Start()

	w.aws = awsfake.New()
	t.Cleanup(w.aws.Close)
	w.aws.AllowAccessKeys(awsKeyID)
	w.aws.SetThrottle(0, 0, 0, 0) // the test measures lateness, not throttling
	w.group = w.aws.AddGroup("prod-admins")
	// An AWS round trip, so that a kill can land in the middle of a
	// provider call (and its effect land after the caller died).
	w.aws.SetDelay(awsDelay)

	w.slack = slackfake.New(slackfake.Options{})
	t.Cleanup(w.slack.Close)
	for _, ch := range []string{chGeneral, chApprovals, chSecurity} {
		w.slack.AddChannel(ch)
	}
	w.slack.AddUser(slackfake.User{ID: approverID, Name: "bob", Email: approver})
	w.aws.AddUser(approver)
	for i := range nUsers {
		u := user{slackID: fmt.Sprintf("U%05d", i), email: fmt.Sprintf("user%05d@example.com", i)}
		u.awsID = w.aws.AddUser(u.email)
		w.slack.AddUser(slackfake.User{ID: u.slackID, Name: fmt.Sprintf("user%05d", i), Email: u.email})
		w.users = append(w.users, u)
		w.byEmail[u.email] = u
		w.byAWS[u.awsID] = u
	}

	cfg := fmt.Sprintf(`store:
  redis: {url: %q, prefix: %s}
chat:
  slack:
    app_token: ${SLACK_APP_TOKEN}
    bot_token: ${SLACK_BOT_TOKEN}
    api_url: %q
    approvals_channel: %s
    security_channel: %s
providers:
  aws: {identity_store_id: %s, region: us-east-1}
roles:
  %s:
    description: Administrator on the production account
    provider: aws
    group: %s
    max_duration: 4h
    approvers: {users: [%s]}
log: {level: info, format: json}
metrics: {listen: "127.0.0.1:0"}
%s`, w.redis.URL(), storePrefix, w.slack.APIURL(), chApprovals, chSecurity, w.aws.IdentityStoreID(), role, w.group, approver, extra)
	w.cfg = filepath.Join(w.dir, "accessbot.yaml")
	if err := os.WriteFile(w.cfg, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, kv := range os.Environ() {
		if strings.HasPrefix(kv, "AWS_") || strings.HasPrefix(kv, "SLACK_") {
			continue
		}
		w.env = append(w.env, kv)
	}
	w.env = append(w.env,
		"SLACK_APP_TOKEN="+w.slack.AppToken(),
		"SLACK_BOT_TOKEN="+w.slack.BotToken(),
		"AWS_ENDPOINT_URL_IDENTITYSTORE="+w.aws.URL,
		"AWS_ACCESS_KEY_ID="+awsKeyID,
		"AWS_SECRET_ACCESS_KEY=test-secret",
		"AWS_REGION=us-east-1",
		"AWS_CONFIG_FILE="+filepath.Join(w.dir, "no-aws-config"),
		"AWS_SHARED_CREDENTIALS_FILE="+filepath.Join(w.dir, "no-aws-credentials"),
	)

	// The test reads the store (requests, their end times) with a client
	// of its own that also rides out the Redis restart.
	c, err := redisstore.Dial(context.Background(), w.redis.URL(), redisstore.OpenOptions{Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	w.store = redisstore.New(c, storePrefix)

	for _, name := range []string{"a", "b"} {
		w.reps = append(w.reps, &replica{name: name, logPath: filepath.Join(w.dir, "replica-"+name+".log")})
	}
	t.Cleanup(w.stopReplicas) // before the fakes and Redis (cleanups run last-in first-out)
	w.start = time.Now()
	for _, r := range w.reps {
		w.startReplica(r)
	}
	w.waitConnections(2, 60*time.Second)
	t.Logf("two replicas connected after %v", w.since().Round(time.Millisecond))
	return w
}

func (w *world) since() time.Duration { return time.Since(w.start) }

func (w *world) startReplica(r *replica) {
	w.t.Helper()
	f, err := os.OpenFile(r.logPath, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
	if err != nil {
		w.t.Fatal(err)
	}
	cmd := exec.Command(w.bin, "run", "--config", w.cfg)
	cmd.Env = w.env
	cmd.Stdout, cmd.Stderr = f, f
	if err := cmd.Start(); err != nil {
		f.Close()
		w.t.Fatalf("start replica %s: %v", r.name, err)
	}
	done := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		f.Close()
		close(done)
	}()
	r.mu.Lock()
	r.cmd, r.done = cmd, done
	r.starts++
	r.mu.Unlock()
}

// kill sends SIGKILL to the replica's process (by the pid this test
// started) and waits for it to be gone; it returns the pid.
func (r *replica) kill() int {
	r.mu.Lock()
	cmd, done := r.cmd, r.done
	r.mu.Unlock()
	if cmd == nil {
		return 0
	}
	_ = cmd.Process.Signal(syscall.SIGKILL)
	<-done
	return cmd.Process.Pid
}

// alive reports whether the replica's process is running.
func (r *replica) alive() bool {
	r.mu.Lock()
	done := r.done
	r.mu.Unlock()
	select {
	case <-done:
		return false
	default:
		return done != nil
	}
}

// stop ends the replica with SIGTERM, then SIGKILL after 10 s.
func (r *replica) stop() {
	r.mu.Lock()
	cmd, done := r.cmd, r.done
	r.mu.Unlock()
	if cmd == nil {
		return
	}
	_ = cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		_ = cmd.Process.Signal(syscall.SIGKILL)
		<-done
	}
}

func (w *world) stopReplicas() {
	var wg sync.WaitGroup
	for _, r := range w.reps {
		wg.Go(r.stop)
	}
	wg.Wait()
}

func (w *world) waitConnections(n int, within time.Duration) {
	w.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), within)
	defer cancel()
	if err := w.slack.Wait(ctx, func() bool { return w.slack.LiveConnections() >= n }); err != nil {
		w.t.Fatalf("%d Socket Mode connections not up within %v (have %d); replica logs:\n%s", n, within, w.slack.LiveConnections(), w.logTails(30))
	}
}

// killLoop kills one replica (chosen at random) every 5-15 s (random, from
// kill to kill) and starts it again, at once or after 3 s up to a second
// before the next kill, until ctx ends (the replica is always started
// again; the other one is never down at the same time). The schedule
// follows rng.
func (w *world) killLoop(ctx context.Context, rng *rand.Rand) {
	wait := 5*time.Second + time.Duration(rng.Int64N(int64(10*time.Second)))
	for {
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
		r := w.reps[rng.IntN(len(w.reps))]
		wait = 5*time.Second + time.Duration(rng.Int64N(int64(10*time.Second))) // to the next kill
		// Half the kills are restarted at once (the restarted replica
		// finds the work its predecessor left); the others stay down, so
		// that the survivor must take the work over.
		down := time.Duration(0)
		if rng.IntN(2) == 1 {
			down = 3*time.Second + time.Duration(rng.Int64N(int64(wait-4*time.Second)))
		}
		at := w.since()
		pid := r.kill()
		w.mu.Lock()
		w.kills = append(w.kills, killRecord{at: at, replica: r.name, pid: pid})
		w.mu.Unlock()
		w.t.Logf("%7.3fs kill -9 replica %s (pid %d); restarting it after %v", at.Seconds(), r.name, pid, down.Round(time.Millisecond))
		select {
		case <-ctx.Done():
		case <-time.After(down):
		}
		w.startReplica(r)
		wait -= down
	}
}

// issueCommands has a new user type `/access prod-admin <dur> ...` every
// interval until the workload time is over. A delivery that gets no ack
// (Slack would show the person an error) is tried again, as a person would.
func (w *world) issueCommands(ctx context.Context, until time.Duration, interval time.Duration, durations []string, rng *rand.Rand) *sync.WaitGroup {
	var wg sync.WaitGroup
	for i := 0; w.since() < until && i < len(w.users); i++ {
		u := w.users[i]
		dur := durations[rng.IntN(len(durations))]
		rec := &cmdRecord{u: u}
		w.mu.Lock()
		w.cmds = append(w.cmds, rec)
		w.mu.Unlock()
		wg.Go(func() {
			for try := 1; try <= 3 && ctx.Err() == nil; try++ {
				if try == 1 {
					w.mu.Lock()
					rec.sent = time.Now()
					w.mu.Unlock()
				}
				res, err := w.slack.SlashCommand(ctx, slackfake.Command{User: u.slackID, Channel: chGeneral,
					Text: fmt.Sprintf("%s %s ha acceptance %d", role, dur, i)})
				w.mu.Lock()
				rec.tries = try
				if err == nil {
					rec.acked, rec.ackOn = true, res.Ack.Conn
				} else {
					rec.failed = append(rec.failed, err.Error())
				}
				w.mu.Unlock()
				if err == nil {
					return
				}
				time.Sleep(time.Second)
			}
		})
		select {
		case <-ctx.Done():
			return &wg
		case <-time.After(interval):
		}
	}
	return &wg
}

// approveLoop is the approver: every card with an Approve button gets one
// click, 0.5-2 s after it shows up; an unacknowledged click is tried again
// while the button is still shown.
func (w *world) approveLoop(ctx context.Context, rng *rand.Rand) *sync.WaitGroup {
	var wg sync.WaitGroup
	var rmu sync.Mutex
	wg.Go(func() {
		for ctx.Err() == nil {
			for _, m := range w.slack.Messages(chApprovals) {
				id := approveValue(m.Blocks)
				if id == "" {
					continue
				}
				w.mu.Lock()
				_, seen := w.clicks[id]
				rec := &clickRecord{id: id}
				if !seen {
					w.clicks[id] = rec
				}
				w.mu.Unlock()
				if seen {
					continue
				}
				rmu.Lock()
				delay := 500*time.Millisecond + time.Duration(rng.Int64N(int64(1500*time.Millisecond)))
				rmu.Unlock()
				wg.Go(func() {
					time.Sleep(delay)
					for try := 1; try <= 3 && ctx.Err() == nil; try++ {
						if try == 1 {
							w.mu.Lock()
							rec.sent = time.Now()
							w.mu.Unlock()
						}
						_, err := w.slack.Click(ctx, slackfake.Click{User: approverID, Channel: chApprovals,
							ActionID: handlers.ActionApprove, Value: id})
						w.mu.Lock()
						rec.tries = try
						if err == nil {
							rec.acked = true
						} else {
							rec.failed = append(rec.failed, err.Error())
						}
						w.mu.Unlock()
						if err == nil || strings.Contains(err.Error(), "no message shows a button") {
							return
						}
						time.Sleep(time.Second)
					}
				})
			}
			select {
			case <-ctx.Done():
			case <-time.After(200 * time.Millisecond):
			}
		}
	})
	return &wg
}

// approveValue returns the request id on a card's Approve button, "" when
// the card shows none.
func approveValue(blocks []map[string]any) string {
	for _, b := range blocks {
		if b["type"] != "actions" {
			continue
		}
		els, _ := b["elements"].([]any)
		for _, e := range els {
			em, _ := e.(map[string]any)
			if em["action_id"] == handlers.ActionApprove {
				v, _ := em["value"].(string)
				return v
			}
		}
	}
	return ""
}

// settle waits until no request is approved, active or revoking any more
// (every grant has ended and been removed) or until deadline.
//
// Every further kill after the last grant's end, beyond the first, may
// have hit the worker that had just taken a removal over, and moves the
// deadline by one more lease TTL (as lateLimit allows the removal), three
// at most.
func (w *world) settle(deadline time.Time) {
	ctx := context.Background()
	last := w.lastEnd()
	for {
		w.mu.Lock()
		kills := slices.Clone(w.kills)
		w.mu.Unlock()
		now := time.Now()
		limit := min(lateLimit(deadline.Sub(last), kills, last.Sub(w.start), now.Sub(w.start)), deadline.Sub(last)+3*leaseTTL)
		if !now.Before(last.Add(limit)) {
			return
		}
		live, err := w.store.List(ctx, access.Filter{States: []access.State{access.StateApproved, access.StateActive, access.StateRevoking}})
		if err == nil && len(live) == 0 {
			return
		}
		time.Sleep(time.Second)
	}
}

// lastEnd returns the latest EndsAt of the stored requests (zero when none).
func (w *world) lastEnd() time.Time {
	all, err := w.store.List(context.Background(), access.Filter{})
	if err != nil {
		w.t.Fatal(err)
	}
	var last time.Time
	for _, r := range all {
		if r.EndsAt.After(last) {
			last = r.EndsAt
		}
	}
	return last
}

// logTails returns the last n lines of each replica's log. With
// ACCESSBOT_HA_LOGS set to a folder, the whole logs are copied there too.
func (w *world) logTails(n int) string {
	if dir := os.Getenv("ACCESSBOT_HA_LOGS"); dir != "" {
		for _, r := range w.reps {
			if data, err := os.ReadFile(r.logPath); err == nil {
				_ = os.WriteFile(filepath.Join(dir, w.t.Name()+"-replica-"+r.name+".log"), data, 0o644)
			}
		}
	}
	var b strings.Builder
	for _, r := range w.reps {
		data, _ := os.ReadFile(r.logPath)
		lines := strings.Split(strings.TrimSpace(string(data)), "\n")
		fmt.Fprintf(&b, "--- replica %s (last %d lines)\n%s\n", r.name, n, strings.Join(lines[max(0, len(lines)-n):], "\n"))
	}
	return b.String()
}

// logCount counts log lines of all replicas that contain s.
func (w *world) logCount(s string) int {
	n := 0
	for _, r := range w.reps {
		f, err := os.Open(r.logPath)
		if err != nil {
			continue
		}
		sc := bufio.NewScanner(f)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			if strings.Contains(sc.Text(), s) {
				n++
			}
		}
		f.Close()
	}
	return n
}

// report is the outcome of a run: figures and failed checks.
type report struct {
	t        *testing.T
	strict   []string // failed checks
	grantLat []time.Duration
	remLat   []time.Duration
}

func (r *report) fail(format string, a ...any) {
	r.strict = append(r.strict, fmt.Sprintf(format, a...))
}

// check compares what the fakes saw with what the store holds and returns
// the report; it logs the figures.
func (w *world) check() *report {
	t := w.t
	rep := &report{t: t}
	ctx := context.Background()
	all, err := w.store.List(ctx, access.Filter{})
	if err != nil {
		t.Fatal(err)
	}
	w.mu.Lock()
	var cmds []cmdRecord
	for _, c := range w.cmds {
		cmds = append(cmds, *c)
	}
	clicks := map[string]clickRecord{}
	for id, c := range w.clicks {
		clicks[id] = *c
	}
	kills := slices.Clone(w.kills)
	w.mu.Unlock()

	// Requests by requester: one user, one command, at most one request.
	byUser := map[string][]*access.Request{}
	for _, r := range all {
		byUser[r.Requester] = append(byUser[r.Requester], r)
	}
	for who, rs := range byUser {
		if len(rs) > 1 {
			rep.fail("DUPLICATE request: %s has %d requests for one command", who, len(rs))
		}
	}

	// Commands: every acknowledged one answered (an ephemeral reply) and
	// turned into a request.
	acked, unacked := 0, 0
	for _, c := range cmds {
		if !c.acked {
			unacked++
			rep.fail("command of %s never acknowledged (%d tries: %v)", c.u.email, c.tries, c.failed)
			continue
		}
		acked++
		if len(w.slack.EphemeralsFor(c.u.slackID)) == 0 {
			rep.fail("acknowledged command of %s (sent at %.3fs) never answered", c.u.email, c.sent.Sub(w.start).Seconds())
		}
		if len(byUser[c.u.email]) == 0 {
			rep.fail("acknowledged command of %s (sent at %.3fs) stored no request", c.u.email, c.sent.Sub(w.start).Seconds())
		}
	}

	// Cards: exactly one per request.
	cards := map[string]int{}
	for _, m := range w.slack.Messages(chApprovals) {
		txt := m.Text + "\n" + slackfake.BlockText(m.Blocks)
		for _, v := range m.History {
			txt += "\n" + v.Text + "\n" + slackfake.BlockText(v.Blocks)
		}
		for _, r := range all {
			if strings.Contains(txt, r.ID) {
				cards[r.ID]++
			}
		}
	}
	for _, r := range all {
		switch n := cards[r.ID]; {
		case n == 0:
			rep.fail("request %s of %s (%s) has no approval card", r.ID, r.Requester, r.State)
		case n > 1:
			rep.fail("DUPLICATE card: request %s has %d approval cards", r.ID, n)
		}
	}

	// Identity Store changes, per user.
	creates, deletes := map[string][]awsfake.Change{}, map[string][]awsfake.Change{}
	for _, c := range w.aws.Changes() {
		u, ok := w.byAWS[c.User]
		if !ok || c.Group != w.group {
			rep.fail("membership change of an unexpected user or group: %+v", c)
			continue
		}
		switch c.Op {
		case "CreateGroupMembership":
			creates[u.email] = append(creates[u.email], c)
		case "DeleteGroupMembership":
			deletes[u.email] = append(deletes[u.email], c)
		}
	}
	for who, cs := range creates {
		if len(cs) > 1 {
			rep.fail("DUPLICATE grant: %d CreateGroupMembership for %s", len(cs), who)
		}
	}
	for who, ds := range deletes {
		if len(ds) > 1 {
			rep.fail("DUPLICATE removal: %d DeleteGroupMembership for %s", len(ds), who)
		}
	}

	// Clicks: every acknowledged one decided; every approval granted
	// within maxGrantLateness of its click.
	approved, granted, removed := 0, 0, 0
	for _, r := range all {
		c, clicked := clicks[r.ID]
		if clicked && c.acked && len(r.Decisions) == 0 {
			rep.fail("acknowledged Approve click on %s (sent at %.3fs) never handled: request still %s", r.ID, c.sent.Sub(w.start).Seconds(), r.State)
		}
		if r.Approvals() == 0 {
			if cs := creates[r.Requester]; len(cs) > 0 {
				rep.fail("membership of %s created though request %s was never approved (%s)", r.Requester, r.ID, r.State)
			}
			continue
		}
		approved++
		clickAt := r.Decisions[0].At
		if clicked && !c.sent.IsZero() {
			clickAt = c.sent
		}
		cs := creates[r.Requester]
		if len(cs) == 0 {
			rep.fail("request %s approved at %.3fs never granted (state %s)", r.ID, clickAt.Sub(w.start).Seconds(), r.State)
			continue
		}
		granted++
		late := cs[0].At.Sub(clickAt)
		rep.grantLat = append(rep.grantLat, late)
		if lim := lateLimit(maxGrantLateness, kills, clickAt.Sub(w.start), cs[0].At.Sub(w.start)); late > lim {
			rep.fail("grant of %s %v after the Approve click (limit %v)", r.ID, late.Round(time.Millisecond), lim)
		}
		// "You have access" DM: exactly one.
		dms := 0
		if ch := w.slack.DMChannel(w.byEmail[r.Requester].slackID); ch != "" {
			for _, m := range w.slack.Messages(ch) {
				// The grant DM is updated when the grant ends: look at
				// the version first posted.
				first := m.Text
				if len(m.History) > 0 {
					first = m.History[0].Text
				}
				if strings.HasPrefix(first, "You have "+role+" until") {
					dms++
				}
			}
		}
		switch {
		case dms == 0:
			rep.fail("request %s granted but %s got no \"you have access\" DM", r.ID, r.Requester)
		case dms > 1:
			rep.fail("DUPLICATE DM: %s got %d \"you have access\" DMs for %s", r.Requester, dms, r.ID)
		}
		// Removal: within maxRemovalLateness of the end, never before it.
		ds := deletes[r.Requester]
		if r.EndsAt.IsZero() {
			rep.fail("request %s granted but has no end time (state %s)", r.ID, r.State)
			continue
		}
		if len(ds) == 0 {
			rep.fail("grant %s of %s ending at %.3fs never removed (state %s)", r.ID, r.Requester, r.EndsAt.Sub(w.start).Seconds(), r.State)
			continue
		}
		removed++
		late = ds[0].At.Sub(r.EndsAt)
		rep.remLat = append(rep.remLat, late)
		if late < 0 {
			rep.fail("grant %s removed %v BEFORE its end", r.ID, (-late).Round(time.Millisecond))
		}
		if lim := lateLimit(maxRemovalLateness, kills, r.EndsAt.Sub(w.start), ds[0].At.Sub(w.start)); late > lim {
			rep.fail("grant %s removed %v after its end (limit %v)", r.ID, late.Round(time.Millisecond), lim)
		}
		if r.State != access.StateEnded {
			rep.fail("grant %s removed but recorded %s", r.ID, r.State)
		}
	}
	if left := w.aws.MemberEmails(w.group); len(left) > 0 {
		rep.fail("members left in the group at the end: %v", left)
	}

	states := map[access.State]int{}
	for _, r := range all {
		states[r.State]++
	}
	dmCount := 0
	for _, u := range w.users {
		if ch := w.slack.DMChannel(u.slackID); ch != "" {
			dmCount += len(w.slack.Messages(ch))
		}
	}
	t.Logf("ran %v; commands sent %d (acknowledged %d, never acknowledged %d); requests stored %d %v",
		w.since().Round(time.Second), len(cmds), acked, unacked, len(all), states)
	t.Logf("approval cards %d; clicks %d; approved %d; granted %d; removed %d; DMs to requesters %d; Identity Store creates %d, deletes %d",
		len(w.slack.Messages(chApprovals)), len(clicks), approved, granted, removed, dmCount, countAll(creates), countAll(deletes))
	t.Logf("grant lateness (click -> CreateGroupMembership): %s", stats(rep.grantLat))
	t.Logf("removal lateness (EndsAt -> DeleteGroupMembership): %s", stats(rep.remLat))
	t.Logf("kills %d; Socket Mode connections opened %d; acks %d; stray acks %d; replica log: %d lease take-overs, %d lost leases, %d \"slack reply lost\"",
		len(kills), w.slack.ConnectionsOpened(), len(w.slack.Acks()), w.slack.StrayAcks(),
		w.logCount("lease taken over from a holder whose lease lapsed"), w.logCount("lease lost"), w.logCount("slack reply lost"))
	return rep
}

func countAll(m map[string][]awsfake.Change) int {
	n := 0
	for _, v := range m {
		n += len(v)
	}
	return n
}

// finish fails the test on every failed check.
func (rep *report) finish() {
	t := rep.t
	t.Helper()
	for _, f := range rep.strict {
		t.Errorf("%s", f)
	}
}

// stats formats p50/p99/max of ds.
func stats(ds []time.Duration) string {
	if len(ds) == 0 {
		return "none"
	}
	s := slices.Clone(ds)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	pct := func(p float64) time.Duration {
		i := int(float64(len(s))*p+0.999999) - 1
		return s[min(max(i, 0), len(s)-1)]
	}
	return fmt.Sprintf("n=%d p50=%v p99=%v max=%v", len(s), pct(0.5).Round(time.Millisecond), pct(0.99).Round(time.Millisecond), s[len(s)-1].Round(time.Millisecond))
}
