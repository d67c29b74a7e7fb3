package hatest

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/accessbot/accessbot/access"
	"github.com/accessbot/accessbot/bot/slack/slackfake"
	"github.com/accessbot/accessbot/handlers"
)

// TestSigtermDuringClicks: two replicas; the approver clicks Approve on
// many cards in a burst, and replica a gets SIGTERM in the middle of it.
// Replica a stops taking events at once (its Socket Mode connection
// closes, the clicks after go to b), finishes what it acknowledged or hands
// it back within shutdown_timeout, and exits 0 within that deadline (plus
// a margin for the process to end). Right after it exits no inbox entry
// is held by it under a live lease (what it had not finished was handed
// back, not left to lapse, and b takes it over), and every acknowledged click is acted on
// exactly once across the two replicas: one decision, one membership.
func TestSigtermDuringClicks(t *testing.T) {
	t.Parallel()
	const (
		n        = 40
		shutdown = 2 * time.Second
		margin   = 3 * time.Second
		slowAWS  = 3 * time.Second
	)
	w := newWorldWith(t, n, fmt.Sprintf("shutdown_timeout: %s\n", shutdown))
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()

	// n requests, one card each.
	cmds := w.issueCommands(ctx, w.since()+time.Hour, 50*time.Millisecond, []string{"4h"}, rand.New(rand.NewPCG(1, 3)))
	cmds.Wait()
	var ids []string
	deadline := time.Now().Add(60 * time.Second)
	for {
		ids = ids[:0]
		for _, m := range w.slack.Messages(chApprovals) {
			if id := approveValue(m.Blocks); id != "" {
				ids = append(ids, id)
			}
		}
		if len(ids) == n {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d approval cards after 60s, want %d\n%s", len(ids), n, w.logTails(20))
		}
		time.Sleep(100 * time.Millisecond)
	}
	// The Identity Store slows down as the burst starts, so that some
	// clicks are still being handled when shutdown_timeout ends.
	w.aws.SetDelay(slowAWS)
	t.Logf("%7.3fs %d cards posted; Identity Store calls now take %v; clicking Approve on each, 15 ms apart",
		w.since().Seconds(), n, slowAWS)

	// The burst; SIGTERM to replica a after a quarter of the clicks.
	a, b := w.reps[0], w.reps[1]
	a.mu.Lock()
	proc, aDone := a.cmd, a.done
	a.mu.Unlock()
	pidA := proc.Process.Pid
	var (
		mu     sync.Mutex
		recs   []*clickRecord
		wg     sync.WaitGroup
		termAt time.Time
	)
	for i, id := range ids {
		rec := &clickRecord{id: id}
		recs = append(recs, rec)
		wg.Go(func() {
			for try := 1; try <= 5 && ctx.Err() == nil; try++ {
				_, err := w.slack.Click(ctx, slackfake.Click{User: approverID, Channel: chApprovals,
					ActionID: handlers.ActionApprove, Value: id})
				mu.Lock()
				rec.tries = try
				if err == nil {
					rec.acked = true
				} else {
					rec.failed = append(rec.failed, err.Error())
				}
				mu.Unlock()
				if err == nil || strings.Contains(err.Error(), "no message shows a button") {
					return
				}
				time.Sleep(300 * time.Millisecond)
			}
		})
		if i == n/4 {
			termAt = time.Now()
			if err := proc.Process.Signal(syscall.SIGTERM); err != nil {
				t.Fatal(err)
			}
			t.Logf("%7.3fs SIGTERM to replica a (pid %d) after %d clicks", w.since().Seconds(), pidA, i+1)
		}
		time.Sleep(15 * time.Millisecond)
	}

	// Replica a exits within shutdown_timeout (and a margin), with 0.
	select {
	case <-aDone:
	case <-time.After(shutdown + margin):
		t.Fatalf("replica a still running %v after SIGTERM (shutdown_timeout %v)\n%s", shutdown+margin, shutdown, w.logTails(30))
	}
	took := time.Since(termAt)
	if code := proc.ProcessState.ExitCode(); code != 0 {
		t.Errorf("replica a exited with %d after SIGTERM, want 0", code)
	}

	// Nothing held by a under a live lease: handed back, not left to lapse.
	live, handed := w.leasesOf(ctx, pidA)
	if handed == 0 && !strings.Contains(w.lastLine(a, "slack stopped"), `"handed_back":`) {
		t.Errorf("replica a logged no hand-back; its log ends:\n%s", w.logTail(a))
	}
	if live > 0 {
		t.Errorf("after replica a exited, %d inbox entries are still held by it under a live lease (not handed back)", live)
	}
	t.Logf("%7.3fs replica a exited %v after SIGTERM; inbox entries of a: %d handed back and not yet taken, %d live",
		w.since().Seconds(), took.Round(time.Millisecond), handed, live)
	wg.Wait()

	// Every acknowledged click acted on, once.
	acked := 0
	byID := map[string]*clickRecord{}
	for _, r := range recs {
		if r.acked {
			acked++
		} else {
			t.Errorf("click on %s never acknowledged after %d tries: %v", r.id, r.tries, r.failed)
		}
		byID[r.id] = r
	}
	exited := time.Now()
	var all []*access.Request
	for {
		var err error
		all, err = w.store.List(ctx, access.Filter{})
		if err != nil {
			t.Fatal(err)
		}
		done := 0
		for _, r := range all {
			if byID[r.ID] != nil && byID[r.ID].acked && r.State == access.StateActive && len(w.membershipsOf(r.Requester)) > 0 {
				done++
			}
		}
		if done == acked {
			break
		}
		if time.Since(exited) > 30*time.Second {
			t.Errorf("%d of %d acknowledged clicks acted on 30s after replica a exited", done, acked)
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	actedIn := time.Since(exited)
	for _, r := range all {
		if len(r.Decisions) > 1 {
			t.Errorf("DUPLICATE decision: request %s has %d decisions", r.ID, len(r.Decisions))
		}
		if ms := w.membershipsOf(r.Requester); len(ms) > 1 {
			t.Errorf("DUPLICATE grant: %d CreateGroupMembership for %s", len(ms), r.Requester)
		}
		if c := byID[r.ID]; c != nil && c.acked && (r.Approvals() != 1 || r.State != access.StateActive) {
			t.Errorf("acknowledged click on %s: request %s with %d approvals", r.ID, r.State, r.Approvals())
		}
	}
	t.Logf("clicks %d, acknowledged %d, acted on once each (all within %v of a's exit); replica a log: %q; replica b took over %d events",
		len(recs), acked, actedIn.Round(time.Millisecond), w.lastLine(a, "slack stopped"),
		w.logCountOf(b, "slack event taken over from a replica"))
	if took := w.logCountOf(b, "slack event taken over from a replica"); strings.Contains(w.lastLine(a, "slack stopped"), `"handed_back":0}`) || took == 0 {
		t.Errorf("the slow Identity Store left nothing handed back by a and taken over by b (b took %d): the hand-back was not exercised", took)
	}
	if !strings.Contains(w.logTail(a), "accessbot stopped") {
		t.Errorf("replica a did not log its stop; its log ends:\n%s", w.logTail(a))
	}
	if t.Failed() {
		t.Logf("replica logs, their ends:\n%s", w.logTails(40))
	}
}

// leasesOf counts the inbox entries held by the replica of pid: those
// whose lease is live, and those handed back (lapsed, not yet taken).
func (w *world) leasesOf(ctx context.Context, pid int) (live, lapsed int) {
	w.t.Helper()
	c := w.store.Client()
	now, err := c.Time(ctx).Result()
	if err != nil {
		w.t.Fatal(err)
	}
	leaseKey := "{" + storePrefix + "}:inbox:lease"
	zs, err := c.ZRangeWithScores(ctx, leaseKey, 0, -1).Result()
	if err != nil {
		w.t.Fatal(err)
	}
	mark := fmt.Sprintf("-%d-", pid)
	for _, z := range zs {
		id, _ := z.Member.(string)
		owner, err := c.HGet(ctx, "{"+storePrefix+"}:inbox:e:"+id, "o").Result()
		if err != nil || !strings.Contains(owner, mark) {
			continue
		}
		if int64(z.Score) > now.UnixMilli() {
			live++
		} else {
			lapsed++
		}
	}
	return live, lapsed
}

// membershipsOf returns the CreateGroupMembership calls for email.
func (w *world) membershipsOf(email string) []string {
	var out []string
	u := w.byEmail[email]
	for _, c := range w.aws.Changes() {
		if c.Op == "CreateGroupMembership" && c.User == u.awsID {
			out = append(out, c.Op)
		}
	}
	return out
}

// logTail is the whole log of r.
func (w *world) logTail(r *replica) string {
	data, _ := os.ReadFile(r.logPath)
	return string(data)
}

// lastLine is the last line of r's log that contains s ("" when none).
func (w *world) lastLine(r *replica, s string) string {
	last := ""
	for _, l := range strings.Split(w.logTail(r), "\n") {
		if strings.Contains(l, s) {
			last = l
		}
	}
	return last
}

// logCountOf counts the lines of r's log that contain s.
func (w *world) logCountOf(r *replica, s string) int {
	return strings.Count(w.logTail(r), s)
}

// TestSecondSigtermExitsAtOnce: a replica finishing a slow click after
// SIGTERM (its shutdown_timeout is a minute) exits at once, with 130, on a
// second SIGTERM.
func TestSecondSigtermExitsAtOnce(t *testing.T) {
	t.Parallel()
	w := newWorldWith(t, 1, "shutdown_timeout: 60s\n")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	a, b := w.reps[0], w.reps[1]
	b.stop() // every event goes to a
	u := w.users[0]
	if _, err := w.slack.SlashCommand(ctx, slackfake.Command{User: u.slackID, Channel: chGeneral, Text: role + " 1h second signal"}); err != nil {
		t.Fatal(err)
	}
	var id string
	for id == "" && ctx.Err() == nil {
		for _, m := range w.slack.Messages(chApprovals) {
			if v := approveValue(m.Blocks); v != "" {
				id = v
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	w.aws.SetDelay(8 * time.Second) // the grant of the click hangs
	if _, err := w.slack.Click(ctx, slackfake.Click{User: approverID, Channel: chApprovals, ActionID: handlers.ActionApprove, Value: id}); err != nil {
		t.Fatal(err)
	}
	time.Sleep(500 * time.Millisecond) // the click reaches the Identity Store call
	a.mu.Lock()
	proc, done := a.cmd, a.done
	a.mu.Unlock()
	if err := proc.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case <-done:
		t.Fatalf("replica a exited on the first SIGTERM though a click was in flight and shutdown_timeout is 60s\n%s", w.logTail(a))
	case <-time.After(1500 * time.Millisecond):
	}
	second := time.Now()
	if err := proc.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case <-done:
	case <-time.After(2 * time.Second):
		t.Fatalf("replica a still running 2s after a second SIGTERM\n%s", w.logTail(a))
	}
	if code := proc.ProcessState.ExitCode(); code != 130 {
		t.Errorf("exit code %d after a second SIGTERM, want 130", code)
	}
	if !strings.Contains(w.logTail(a), "second terminated: exiting now") {
		t.Errorf("replica a did not say why it exited; its log ends:\n%s", w.logTail(a))
	}
	t.Logf("replica a exited %v after the second SIGTERM", time.Since(second).Round(time.Millisecond))
}
