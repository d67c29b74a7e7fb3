package hatest

import (
	"context"
	"math/rand/v2"
	"os"
	"strconv"
	"testing"
	"time"
)

// The shortest grant a role allows (access.MinDuration) is one minute, so
// every run lasts at least the workload plus a minute plus the removal.
var durations = []string{"1m"}

// TestReplicaKills: two replicas on one Redis (AOF), one of them killed
// with SIGKILL every 5-15 s (random, seeded, logged) and started again,
// at once or after 3-12 s, while users ask for access, the approver approves and grants end:
// every approved grant lands within 15 s of the click, every removal
// within 15 s of the grant's end, nothing is done twice, every
// acknowledged command and click is handled, every request has its card
// and every grant its DM.
//
// Default: about 50 s of requests, then until the last grant is removed
// (about 2 minutes). ACCESSBOT_HA_SOAK=5m runs requests for that long
// minus the minute and a bit the last grants need to end.
func TestReplicaKills(t *testing.T) {
	t.Parallel()
	workload := 50 * time.Second
	if v := os.Getenv("ACCESSBOT_HA_SOAK"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d < 2*time.Minute {
			t.Fatalf("ACCESSBOT_HA_SOAK=%q: want a duration of at least 2m", v)
		}
		workload = d - 80*time.Second
	}
	seed := uint64(time.Now().UnixNano())
	if v := os.Getenv("ACCESSBOT_HA_SEED"); v != "" {
		n, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			t.Fatalf("ACCESSBOT_HA_SEED=%q: %v", v, err)
		}
		seed = n
	}
	t.Logf("seed %d (ACCESSBOT_HA_SEED=%d replays the kill schedule and workload choices)", seed, seed)
	interval := 1500 * time.Millisecond
	w := newWorld(t, int(workload/interval)+2)

	killCtx, stopKills := context.WithCancel(context.Background())
	killDone := make(chan struct{})
	go func() {
		defer close(killDone)
		w.killLoop(killCtx, rand.New(rand.NewPCG(seed, 1)))
	}()
	defer func() { stopKills(); <-killDone }()

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	approvals := w.approveLoop(ctx, rand.New(rand.NewPCG(seed, 2)))
	cmds := w.issueCommands(ctx, w.since()+workload, interval, durations, rand.New(rand.NewPCG(seed, 3)))
	cmds.Wait()
	t.Logf("%7.3fs requests done; waiting for the last grants to end and be removed", w.since().Seconds())
	// Clicks on the last cards come within seconds; grants end a minute
	// after they land, and their removal may take up to 15 s.
	time.Sleep(5 * time.Second)
	w.settle(w.lastEnd().Add(maxRemovalLateness + 5*time.Second))
	stopKills()
	<-killDone
	cancel()
	approvals.Wait()
	w.stopReplicas()
	w.check().finish()
	if t.Failed() {
		t.Logf("replica logs, their ends:\n%s", w.logTails(40))
	}
}

// TestRedisRestart: the same workload on two replicas that are never
// restarted, while Redis (AOF) is stopped with SIGTERM and started again
// on the same port 3 s later, at a moment when requests are being made,
// approved, granted and ended: nothing is lost, nothing is doubled, and
// the replicas recover by themselves.
func TestRedisRestart(t *testing.T) {
	t.Parallel()
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	interval := 1500 * time.Millisecond
	workload := 70 * time.Second
	restartAt := 64 * time.Second // the first grants (about 2-6 s in) end about now
	w := newWorld(t, int(workload/interval)+2)

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	approvals := w.approveLoop(ctx, rand.New(rand.NewPCG(seed, 2)))
	restarted := make(chan struct{})
	go func() {
		defer close(restarted)
		select {
		case <-ctx.Done():
			return
		case <-time.After(restartAt - w.since()):
		}
		t.Logf("%7.3fs SIGTERM redis-server (AOF on)", w.since().Seconds())
		w.redis.Stop()
		t.Logf("%7.3fs redis-server exited; starting it again in 3s", w.since().Seconds())
		time.Sleep(3 * time.Second)
		w.redis.Start()
		t.Logf("%7.3fs redis-server answering again on port %d", w.since().Seconds(), w.redis.Port)
	}()
	cmds := w.issueCommands(ctx, w.since()+workload, interval, durations, rand.New(rand.NewPCG(seed, 3)))
	cmds.Wait()
	<-restarted
	t.Logf("%7.3fs requests done; waiting for the last grants to end and be removed", w.since().Seconds())
	time.Sleep(5 * time.Second)
	w.settle(w.lastEnd().Add(maxRemovalLateness + 5*time.Second))
	cancel()
	approvals.Wait()
	for _, r := range w.reps {
		if r.starts != 1 || !r.alive() {
			t.Errorf("replica %s: started %d times, running at the end: %v; the replicas must ride out the restart on their own\n%s",
				r.name, r.starts, r.alive(), w.logTails(20))
		}
	}
	w.stopReplicas()
	w.check().finish()
	if t.Failed() {
		t.Logf("replica logs, their ends:\n%s", w.logTails(40))
	}
}
