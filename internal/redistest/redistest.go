// Package redistest gives tests a real Redis server: REDIS_URL when set,
// else 127.0.0.1:6379 when it answers, else a redis-server started on a free
// loopback port for the test binary's lifetime. Tests that need Redis fail
// (never skip) when none can be had.
package redistest

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

var (
	once     sync.Once
	addrURL  string
	setupErr error
)

// URL returns a redis:// URL of a reachable server, starting one if needed.
// It calls t.Fatal when no server can be had.
func URL(t testing.TB) string {
	t.Helper()
	once.Do(func() { addrURL, setupErr = find() })
	if setupErr != nil {
		t.Fatalf("redistest: no Redis available (set REDIS_URL, run one on 127.0.0.1:6379, or install redis-server): %v", setupErr)
	}
	return addrURL
}

// Client returns a client for URL(t), closed when the test ends.
func Client(t testing.TB) *redis.Client {
	t.Helper()
	opt, err := redis.ParseURL(URL(t))
	if err != nil {
		t.Fatalf("redistest: %v", err)
	}
	c := redis.NewClient(opt)
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// Prefix returns a key prefix unique to this test, so tests sharing one
// server never see each other's keys; the keys are deleted at cleanup.
func Prefix(t testing.TB) string {
	t.Helper()
	p := fmt.Sprintf("test:%s:%d", filepath.Base(t.Name()), time.Now().UnixNano())
	c := Client(t)
	t.Cleanup(func() {
		ctx := context.Background()
		// Stores put their keys under a hash tag: "{prefix}:...".
		for _, pattern := range []string{p + "*", "{" + p + "}*"} {
			iter := c.Scan(ctx, 0, pattern, 1000).Iterator()
			for iter.Next(ctx) {
				c.Del(ctx, iter.Val())
			}
		}
	})
	return p
}

func find() (string, error) {
	if u := os.Getenv("REDIS_URL"); u != "" {
		if err := ping(u); err != nil {
			return "", fmt.Errorf("REDIS_URL=%s does not answer: %w", u, err)
		}
		return u, nil
	}
	if err := ping("redis://127.0.0.1:6379/0"); err == nil {
		return "redis://127.0.0.1:6379/0", nil
	}
	return start()
}

func ping(u string) error {
	opt, err := redis.ParseURL(u)
	if err != nil {
		return err
	}
	c := redis.NewClient(opt)
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	return c.Ping(ctx).Err()
}

// start runs redis-server on a free port; the server exits when the test
// binary does (it watches its parent through --daemonize no and a pipe).
func start() (string, error) {
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		return "", fmt.Errorf("redis-server not found on PATH (apt-get install -y redis-server): %w", err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	dir, err := os.MkdirTemp("", "accessbot-redis-")
	if err != nil {
		return "", err
	}
	cmd := exec.Command(bin, "--port", strconv.Itoa(port), "--bind", "127.0.0.1",
		"--save", "", "--appendonly", "no", "--dir", dir)
	if err := cmd.Start(); err != nil {
		return "", fmt.Errorf("start redis-server: %w", err)
	}
	// The server is ours: stop it when this process exits normally; if the
	// test binary is killed, the OS reaps nothing, so tests are bounded by
	// go test's own timeout and the server holds no data on disk.
	stopOnExit(cmd)
	u := fmt.Sprintf("redis://127.0.0.1:%d/0", port)
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if ping(u) == nil {
			return u, nil
		}
		time.Sleep(50 * time.Millisecond)
	}
	_ = cmd.Process.Kill()
	return "", fmt.Errorf("redis-server on port %d did not answer within 10s", port)
}
