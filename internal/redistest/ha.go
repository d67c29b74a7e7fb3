package redistest

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// Kill ends the server with SIGKILL (by its pid) and waits for it: a crash,
// nothing flushed. It does nothing when the server is not running.
func (s *Server) Kill() {
	if s.cmd == nil {
		return
	}
	_ = s.cmd.Process.Signal(syscall.SIGKILL)
	_, _ = s.cmd.Process.Wait()
	s.cmd = nil
}

// Addr is the server's host:port.
func (s *Server) Addr() string { return fmt.Sprintf("127.0.0.1:%d", s.Port) }

// Sentinel is a redis-server --sentinel process of one test, stopped by its
// pid when the test ends.
type Sentinel struct {
	Port int
	cmd  *exec.Cmd
}

// Addr is the sentinel's host:port.
func (s *Sentinel) Addr() string { return fmt.Sprintf("127.0.0.1:%d", s.Port) }

func (s *Sentinel) stop() {
	if s.cmd != nil {
		_ = s.cmd.Process.Signal(syscall.SIGTERM)
		_, _ = s.cmd.Process.Wait()
		s.cmd = nil
	}
}

// SentinelGroup is a primary, a replica of it and sentinels watching them,
// all on loopback ports of one test.
type SentinelGroup struct {
	Master    string // the name the sentinels monitor
	Primary   *Server
	Replica   *Server
	Sentinels []*Sentinel
}

// SentinelAddrs lists the sentinels' host:port.
func (g *SentinelGroup) SentinelAddrs() []string {
	out := make([]string, len(g.Sentinels))
	for i, s := range g.Sentinels {
		out[i] = s.Addr()
	}
	return out
}

// StartSentinelGroup starts a primary, a replica and n sentinels (quorum
// n/2+1) that declare the primary down after downAfter and may start a new
// failover after failoverTimeout. It returns once the replica is in sync
// and every sentinel knows the replica and the other sentinels (30 s at
// most), so a failover can happen right away.
func StartSentinelGroup(t testing.TB, master string, n int, downAfter, failoverTimeout time.Duration) *SentinelGroup {
	t.Helper()
	g := &SentinelGroup{Master: master}
	g.Primary = NewServer(t, FreePort(t), "--appendonly", "no")
	g.Primary.Start()
	g.Replica = NewServer(t, FreePort(t), "--appendonly", "no", "--replicaof", "127.0.0.1", strconv.Itoa(g.Primary.Port))
	g.Replica.Start()
	for i := 0; i < n; i++ {
		port := FreePort(t)
		dir := t.TempDir()
		conf := filepath.Join(dir, "sentinel.conf")
		body := fmt.Sprintf("port %d\nbind 127.0.0.1\ndir %s\n"+
			"sentinel monitor %s 127.0.0.1 %d %d\n"+
			"sentinel down-after-milliseconds %s %d\n"+
			"sentinel failover-timeout %s %d\n"+
			"sentinel parallel-syncs %s 1\n",
			port, dir, master, g.Primary.Port, n/2+1,
			master, downAfter.Milliseconds(), master, failoverTimeout.Milliseconds(), master)
		if err := os.WriteFile(conf, []byte(body), 0o600); err != nil {
			t.Fatalf("redistest: write sentinel.conf: %v", err)
		}
		cmd := exec.Command("redis-server", conf, "--sentinel")
		if err := cmd.Start(); err != nil {
			t.Fatalf("redistest: start redis-server --sentinel: %v", err)
		}
		s := &Sentinel{Port: port, cmd: cmd}
		t.Cleanup(s.stop)
		g.Sentinels = append(g.Sentinels, s)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := waitUntil(ctx, func() error { return replicaInSync(ctx, g.Replica.Addr()) }); err != nil {
		t.Fatalf("redistest: replica not in sync within 30s: %v", err)
	}
	for _, s := range g.Sentinels {
		sc := redis.NewSentinelClient(&redis.Options{Addr: s.Addr()})
		err := waitUntil(ctx, func() error {
			m, err := sc.Master(ctx, master).Result()
			if err != nil {
				return err
			}
			if m["num-slaves"] != "1" || m["num-other-sentinels"] != strconv.Itoa(n-1) {
				return fmt.Errorf("sentinel %s sees %s replica(s), %s other sentinel(s)", s.Addr(), m["num-slaves"], m["num-other-sentinels"])
			}
			return nil
		})
		sc.Close()
		if err != nil {
			t.Fatalf("redistest: sentinels not ready within 30s: %v", err)
		}
	}
	return g
}

// PrimaryAddr asks the sentinels which server is the primary now.
func (g *SentinelGroup) PrimaryAddr(ctx context.Context) (string, error) {
	var last error
	for _, s := range g.Sentinels {
		if s.cmd == nil {
			continue
		}
		sc := redis.NewSentinelClient(&redis.Options{Addr: s.Addr()})
		a, err := sc.GetMasterAddrByName(ctx, g.Master).Result()
		sc.Close()
		if err == nil && len(a) == 2 {
			return net.JoinHostPort(a[0], a[1]), nil
		}
		last = err
	}
	return "", fmt.Errorf("no sentinel named the primary: %v", last)
}

func replicaInSync(ctx context.Context, addr string) error {
	c := redis.NewClient(&redis.Options{Addr: addr})
	defer c.Close()
	info, err := c.Info(ctx, "replication").Result()
	if err != nil {
		return err
	}
	if !strings.Contains(info, "master_link_status:up") {
		return fmt.Errorf("replica %s: link to the primary not up", addr)
	}
	return nil
}

// waitUntil calls f every 50ms until it returns nil or ctx ends.
func waitUntil(ctx context.Context, f func() error) error {
	for {
		err := f()
		if err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// StartCluster starts n redis-server --cluster-enabled nodes (n >= 3, all
// primaries) and joins them with redis-cli --cluster create. It returns the
// nodes' host:port once every node reports cluster_state:ok (30 s at most).
// It fails the test when redis-cli is not on PATH.
func StartCluster(t testing.TB, n int) []string {
	t.Helper()
	cli, err := exec.LookPath("redis-cli")
	if err != nil {
		t.Fatalf("redistest: redis-cli not found on PATH (it comes with redis-server / redis-tools): %v", err)
	}
	var addrs []string
	for i := 0; i < n; i++ {
		s := NewServer(t, FreePort(t), "--appendonly", "no", "--cluster-enabled", "yes",
			"--cluster-config-file", "nodes.conf", "--cluster-node-timeout", "2000")
		s.Start()
		addrs = append(addrs, s.Addr())
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	args := append(append([]string{"--cluster", "create"}, addrs...), "--cluster-replicas", "0", "--cluster-yes")
	if out, err := exec.CommandContext(ctx, cli, args...).CombinedOutput(); err != nil {
		t.Fatalf("redistest: redis-cli --cluster create: %v\n%s", err, out)
	}
	for _, a := range addrs {
		c := redis.NewClient(&redis.Options{Addr: a})
		err := waitUntil(ctx, func() error {
			info, err := c.ClusterInfo(ctx).Result()
			if err != nil {
				return err
			}
			if !strings.Contains(info, "cluster_state:ok") {
				return fmt.Errorf("node %s: cluster_state not ok", a)
			}
			return nil
		})
		c.Close()
		if err != nil {
			t.Fatalf("redistest: cluster not ok within 30s: %v", err)
		}
	}
	return addrs
}
