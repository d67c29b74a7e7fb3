package app

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/accessbot/accessbot/access"
	"github.com/accessbot/accessbot/config"
	"github.com/accessbot/accessbot/internal/redistest"
	"github.com/accessbot/accessbot/providers/dryrun"
)

// get fetches url and returns its status and body ("" and 0 when nothing
// answers).
func get(t *testing.T, url string) (int, string) {
	t.Helper()
	c := &http.Client{Timeout: 3 * time.Second}
	resp, err := c.Get(url)
	if err != nil {
		return 0, ""
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("read %s: %v", url, err)
	}
	return resp.StatusCode, string(b)
}

// waitFor polls f every 20 ms for up to 10 s.
func waitFor(t *testing.T, what string, f func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !f() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestMetricsAndProbesWhileRedisIsAwaited: with metrics.listen set, New
// serves /healthz (ok) and /readyz (not ready: the store is not
// connected) while it still waits for Redis; once Redis answers, /readyz
// turns ready by itself, and /metrics shows a request made through the
// wired app (store and provider wrapped, scheduler and config observed).
func TestMetricsAndProbesWhileRedisIsAwaited(t *testing.T) {
	demo, err := os.ReadFile("../manifests/examples/demo.yaml")
	if err != nil {
		t.Fatal(err)
	}
	srv := redistest.NewServer(t, redistest.FreePort(t))
	listen := fmt.Sprintf("127.0.0.1:%d", redistest.FreePort(t))
	body := strings.Replace(string(demo), "  bolt: {temporary: true}", "  redis: {url: \""+srv.URL()+"\"}", 1)
	if body == string(demo) {
		t.Fatal("demo.yaml no longer has the bolt line this test replaces")
	}
	body += "\nmetrics:\n  listen: \"" + listen + "\"\n"
	l, err := config.Load(writeFile(t, body))
	if err != nil {
		t.Fatal(err)
	}
	if l.MetricsListen != listen {
		t.Fatalf("MetricsListen %q, want %q", l.MetricsListen, listen)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	prov := dryrun.New(nil)
	out := &syncBuffer{}
	type result struct {
		a   *App
		err error
	}
	made := make(chan result, 1)
	go func() {
		a, err := New(ctx, l, Deps{Stdout: out, Providers: map[string]access.Provisioner{"dryrun": prov}})
		made <- result{a, err}
	}()

	base := "http://" + listen
	waitFor(t, "/readyz to answer while Redis is down", func() bool {
		code, _ := get(t, base+"/readyz")
		return code != 0
	})
	if code, b := get(t, base+"/readyz"); code != http.StatusServiceUnavailable || !strings.Contains(b, "store connected: not connected") {
		t.Fatalf("/readyz while Redis is awaited: %d %q; want 503 naming the store", code, b)
	}
	if code, b := get(t, base+"/healthz"); code != http.StatusOK {
		t.Fatalf("/healthz while Redis is awaited: %d %q; want 200", code, b)
	}
	select {
	case r := <-made:
		t.Fatalf("New returned before Redis answered: %v", r.err)
	default:
	}

	srv.Start()
	var r result
	select {
	case r = <-made:
	case <-time.After(30 * time.Second):
		t.Fatal("New did not return within 30s of Redis starting")
	}
	if r.err != nil {
		t.Fatal(r.err)
	}
	a := r.a
	defer a.Close()
	if got := a.MetricsAddr().String(); got != listen {
		t.Fatalf("MetricsAddr %s, want %s", got, listen)
	}
	waitFor(t, "/readyz to turn ready", func() bool {
		code, _ := get(t, base+"/readyz")
		return code == http.StatusOK
	})

	runCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- a.Run(runCtx) }()
	con := a.Console()
	for _, line := range []string{"alice: /access prod-admin 1h fixing checkout", "dave: approve"} {
		if err := con.Line(ctx, line); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, "the grant", func() bool { ms, _ := prov.Members(ctx, "prod-admins"); return len(ms) == 1 })

	_, m := get(t, base+"/metrics")
	for _, want := range []string{
		`accessbot_requests_total{outcome="granted",role="prod-admin"} 1`,
		// prod-admin, and prod-read of the on-call shift (bob's)
		`accessbot_grants_total{outcome="granted",provider="dryrun"} 2`,
		`accessbot_provider_call_duration_seconds_count{op="grant",provider="dryrun"} 2`,
		`accessbot_grants_active{role="prod-admin"} 1`,
		`accessbot_grants_active{role="prod-read"} 1`,
		`accessbot_break_glass_total{role="prod-admin"} 0`,
	} {
		if !strings.Contains(m, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
	if t.Failed() {
		t.Logf("/metrics:\n%s", grepLines(m, "accessbot_"))
	}
	if code, b := get(t, base+"/healthz"); code != http.StatusOK {
		t.Errorf("/healthz while running: %d %q", code, b)
	}
	stop()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	a.Close()
	if code, _ := get(t, base+"/healthz"); code != 0 {
		t.Errorf("/healthz still answers after Close: %d", code)
	}
}

func grepLines(s, sub string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) && !strings.HasPrefix(l, "#") {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}
