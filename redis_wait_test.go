package main

import (
	"bytes"
	"context"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/accessbot/accessbot/internal/redistest"
)

type lockedBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuf) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuf) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// `accessbot run` with Redis down keeps waiting (a Warn per attempt, the
// URL without its password) instead of exiting 1, and stops cleanly (exit
// 0, promptly) when its context ends.
func TestRunWaitsForRedis(t *testing.T) {
	demo, err := os.ReadFile("manifests/examples/demo.yaml")
	if err != nil {
		t.Fatal(err)
	}
	port := redistest.FreePort(t)
	cfg := strings.Replace(string(demo), "bolt: {temporary: true}",
		"redis: {url: \"redis://:s3cret@127.0.0.1:"+strconv.Itoa(port)+"/0\"}", 1)
	if cfg == string(demo) {
		t.Fatal("demo config has no temporary bolt store to replace")
	}
	cfg += "\nlog: {level: warn, format: json}\n"
	path := writeFile(t, cfg)

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var out, errb lockedBuf
	done := make(chan int, 1)
	go func() { done <- run(ctx, []string{"run", "--config", path}, strings.NewReader(""), &out, &errb) }()

	// The first attempts back off 250ms, 500ms, 1s: two failures come
	// within about a second; the run must still be going then.
	deadline := time.Now().Add(10 * time.Second)
	for strings.Count(errb.String(), `"attempt"`) < 2 {
		select {
		case code := <-done:
			t.Fatalf("run exited %d while Redis is down\nstderr: %s", code, errb.String())
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("no retry logged within 10s\nstderr: %s", errb.String())
		}
	}
	cancel()
	stopped := time.Now()
	select {
	case code := <-done:
		if code != 0 {
			t.Errorf("run exited %d after its context ended, want 0\nstderr: %s", code, errb.String())
		}
	case <-time.After(5 * time.Second):
		t.Fatal("run still waiting 5s after its context ended")
	}
	t.Logf("stopped %v after cancel", time.Since(stopped).Round(time.Millisecond))
	logs := errb.String()
	if strings.Contains(logs, "s3cret") {
		t.Errorf("logs show the password:\n%s", logs)
	}
	if !strings.Contains(logs, `"level":"WARN"`) || !strings.Contains(logs, "redis://:xxxxx@127.0.0.1:") {
		t.Errorf("logs lack a Warn naming the redacted URL:\n%s", logs)
	}
}
