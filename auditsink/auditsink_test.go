package auditsink_test

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/accessbot/accessbot/access"
	"github.com/accessbot/accessbot/auditsink"
	"github.com/accessbot/accessbot/internal/testclock"
	"github.com/accessbot/accessbot/store/bolt"
)

var t0 = time.Date(2030, 3, 14, 9, 0, 0, 0, time.UTC)

func openStore(t *testing.T) *bolt.Store {
	t.Helper()
	s, err := bolt.Open(filepath.Join(t.TempDir(), "accessbot.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// appendEvents writes n events at clock time, numbered from first.
func appendEvents(t *testing.T, s access.Store, clock *testclock.Clock, first, n int) {
	t.Helper()
	for i := range n {
		ev := access.AuditEvent{At: clock.Now(), Action: access.ActDriftRemoved, Actor: access.SystemActor,
			Subject: "mallory@example.com", Role: "prod-admin", Detail: fmt.Sprint("event ", first+i)}
		if err := s.AppendAudit(context.Background(), ev); err != nil {
			t.Fatal(err)
		}
	}
}

type observer struct {
	mu        sync.Mutex
	delivered int
	failed    int
	lags      []time.Duration
}

func (o *observer) Delivered(_ string, n int) { o.mu.Lock(); o.delivered += n; o.mu.Unlock() }
func (o *observer) Failed(string)             { o.mu.Lock(); o.failed++; o.mu.Unlock() }
func (o *observer) Lag(_ string, d time.Duration) {
	o.mu.Lock()
	o.lags = append(o.lags, d)
	o.mu.Unlock()
}

// receiver is the webhook's far end: it checks each signature and keeps
// every event it accepted, in the order they arrived.
type receiver struct {
	t      *testing.T
	secret []byte
	clock  *testclock.Clock
	mu     sync.Mutex
	calls  int
	got    []access.AuditEvent
	// plan says, per call (1-based), what to do: "503", "lose" (take the
	// events, then drop the connection before answering) or "" (200).
	plan map[int]string
}

func (rc *receiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	rc.calls++
	body, _ := io.ReadAll(r.Body)
	if err := auditsink.Verify(rc.secret, r.Header.Get(auditsink.HeaderSignature), r.Header.Get(auditsink.HeaderTimestamp),
		body, rc.clock.Now(), 5*time.Minute); err != nil {
		rc.t.Errorf("call %d: %v", rc.calls, err)
		http.Error(w, "bad signature", http.StatusUnauthorized)
		return
	}
	switch rc.plan[rc.calls] {
	case "503":
		http.Error(w, "down for maintenance", http.StatusServiceUnavailable)
		return
	}
	var b auditsink.Body
	if err := json.Unmarshal(body, &b); err != nil {
		rc.t.Errorf("call %d: body: %v", rc.calls, err)
		return
	}
	rc.got = append(rc.got, b.Events...)
	if rc.plan[rc.calls] == "lose" {
		conn, _, err := w.(http.Hijacker).Hijack()
		if err == nil {
			conn.Close()
		}
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// The webhook is unreachable (connection refused), then answers 503, then
// takes a batch but its answer is lost, while events keep being written.
// Once it is up, every event has arrived, first copies in write order,
// the only duplicates being the batch whose answer was lost (same ids,
// same content), and every request carried a valid signature.
func TestWebhookOutageLosesAndReordersNothing(t *testing.T) {
	st := openStore(t)
	clock := testclock.New(t0)
	secret := []byte("test-secret-not-a-real-one")

	// Reserve a loopback port and free it: nothing listens there yet.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()

	rc := &receiver{t: t, secret: secret, clock: clock, plan: map[int]string{1: "503", 2: "503", 3: "lose"}}
	wh := auditsink.NewWebhook(auditsink.SinkConfig{Type: "webhook", URL: "https://" + addr + "/audit", Timeout: "5s"}, secret, &http.Client{})
	wh.Now = clock.Now
	obs := &observer{}
	w := &auditsink.Worker{Name: "webhook", Sink: wh, Store: st, Clock: clock, Observer: obs, Batch: 10}
	ctx := context.Background()

	appendEvents(t, st, clock, 1, 25)
	// Down: connection refused, nothing moves.
	for range 3 {
		clock.Advance(time.Minute)
		if n, err := w.Step(ctx); err == nil || n != 0 {
			t.Fatalf("Step with the webhook down = %d, %v; want an error", n, err)
		}
	}
	if cur, _ := st.AuditCursor(ctx, "webhook"); cur != "" {
		t.Fatalf("cursor moved to %q while the webhook was down", cur)
	}
	if lag := obs.lags[len(obs.lags)-1]; lag != 3*time.Minute {
		t.Fatalf("lag while down = %v, want 3m (the oldest event's age)", lag)
	}
	appendEvents(t, st, clock, 26, 7)

	// Up, on the same address.
	l, err = net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(rc)
	srv.Listener.Close()
	srv.Listener = l
	srv.StartTLS()
	defer srv.Close()
	wh.Client = srv.Client()

	steps := 0
	for {
		steps++
		if steps > 20 {
			t.Fatal("not caught up after 20 steps")
		}
		n, err := w.Step(ctx)
		if err != nil {
			continue // 503 twice, then the lost answer
		}
		if n == 0 {
			break
		}
		if steps == 5 {
			appendEvents(t, st, clock, 33, 4) // written while delivering
		}
	}

	all, _, err := access.ReadAuditChain(ctx, st)
	if err != nil {
		t.Fatal(err)
	}
	if len(all) != 36 {
		t.Fatalf("store has %d events, want 36", len(all))
	}
	first := map[string]access.AuditEvent{}
	var order []string
	dups := 0
	for _, ev := range rc.got {
		if prev, seen := first[ev.ID]; seen {
			dups++
			if prev != ev {
				t.Errorf("duplicate of %s differs: %+v vs %+v", ev.ID, prev, ev)
			}
			continue
		}
		first[ev.ID] = ev
		order = append(order, ev.ID)
	}
	if len(order) != len(all) {
		t.Fatalf("received %d distinct events, want %d (lost some)", len(order), len(all))
	}
	for i, ev := range all {
		if order[i] != ev.ID || first[ev.ID].Hash != ev.Hash {
			t.Fatalf("event %d received as %s, want %s (reordered or changed)", i+1, order[i], ev.ID)
		}
	}
	if dups != 10 {
		t.Errorf("%d duplicates, want 10 (the one batch whose answer was lost)", dups)
	}
	if obs.delivered != 36 || obs.failed != 6 {
		t.Errorf("observed %d delivered, %d failed; want 36 and 6 (3 refused, 2x 503, 1 lost answer)", obs.delivered, obs.failed)
	}
	if lag := obs.lags[len(obs.lags)-1]; lag != 0 {
		t.Errorf("lag when caught up = %v, want 0", lag)
	}
	t.Logf("%d calls, %d events received for 36 written, %d duplicates", rc.calls, len(rc.got), dups)
}

// A signature made with another secret, a changed body or an old
// timestamp fails Verify.
func TestVerifySignature(t *testing.T) {
	secret, body, now := []byte("s3cret"), []byte(`{"events":[]}`), time.Unix(1_900_000_000, 0)
	ts := "1900000000"
	sig := auditsink.Sign(secret, ts, body)
	if !strings.HasPrefix(sig, "sha256=") || len(sig) != 7+64 {
		t.Fatalf("Sign = %q", sig)
	}
	if err := auditsink.Verify(secret, sig, ts, body, now, time.Minute); err != nil {
		t.Fatalf("Verify of a good signature: %v", err)
	}
	for name, err := range map[string]error{
		"other secret": auditsink.Verify([]byte("other"), sig, ts, body, now, time.Minute),
		"changed body": auditsink.Verify(secret, sig, ts, []byte(`{"events":[{}]}`), now, time.Minute),
		"old":          auditsink.Verify(secret, sig, ts, body, now.Add(time.Hour), time.Minute),
		"other ts":     auditsink.Verify(secret, sig, "1900000001", body, now, time.Minute),
	} {
		if !errors.Is(err, auditsink.ErrBadSignature) {
			t.Errorf("%s: Verify = %v, want ErrBadSignature", name, err)
		}
	}
}

func readLines(t *testing.T, path string) []access.AuditEvent {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []access.AuditEvent
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var ev access.AuditEvent
		if err := json.Unmarshal(sc.Bytes(), &ev); err != nil {
			t.Fatalf("%s: line %q: %v", path, sc.Text(), err)
		}
		out = append(out, ev)
	}
	return out
}

// The file rotates by size and keeps Keep rotated files; what is kept is
// the newest events, in order, each line whole.
func TestFileSinkRotation(t *testing.T) {
	st := openStore(t)
	clock := testclock.New(t0)
	path := filepath.Join(t.TempDir(), "audit", "audit.jsonl")
	f := auditsink.NewFile(auditsink.SinkConfig{Type: "file", Path: path, Keep: 2})
	f.MaxBytes = 2000 // a few batches of 5 per file
	w := &auditsink.Worker{Name: "file", Sink: f, Store: st, Clock: clock, Batch: 5}
	appendEvents(t, st, clock, 1, 60)
	for {
		n, err := w.Step(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if n == 0 {
			break
		}
	}
	if _, err := os.Stat(path + ".3"); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("%s.3 exists (keep is 2): %v", path, err)
	}
	var kept []access.AuditEvent
	for _, p := range []string{path + ".2", path + ".1", path} {
		st, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		if st.Size() > f.MaxBytes {
			t.Errorf("%s is %d bytes, over the %d limit", p, st.Size(), f.MaxBytes)
		}
		kept = append(kept, readLines(t, p)...)
	}
	all, _, _ := access.ReadAuditChain(context.Background(), st)
	if len(kept) == 0 || len(kept) >= len(all) {
		t.Fatalf("kept %d of %d events; want the newest, some rotated away", len(kept), len(all))
	}
	tail := all[len(all)-len(kept):]
	for i := range kept {
		if kept[i].ID != tail[i].ID || kept[i].Hash != tail[i].Hash {
			t.Fatalf("kept[%d] = %s, want %s: the newest events in order", i, kept[i].ID, tail[i].ID)
		}
	}
	t.Logf("kept %d newest of %d events in 3 files", len(kept), len(all))
}

func TestBackoffCapped(t *testing.T) {
	want := []time.Duration{time.Second, 2 * time.Second, 4 * time.Second, 8 * time.Second, 10 * time.Second, 10 * time.Second}
	for i, w := range want {
		if got := auditsink.Backoff(i+1, 10*time.Second); got != w {
			t.Errorf("Backoff(%d) = %v, want %v", i+1, got, w)
		}
	}
}

func TestConfigValidate(t *testing.T) {
	c := auditsink.Config{Sinks: []auditsink.SinkConfig{
		{Type: "file"},
		{Type: "webhook", URL: "http://example.com/x", SecretEnv: "NOPE", Timeout: "soon"},
		{Type: "ftp"},
		{Type: "file", Path: "/tmp/a", Keep: -1, URL: "https://x"},
		{Type: "webhook", URL: "https://example.com/x", SecretEnv: "A", SecretFile: "/f", Path: "/p"},
	}}
	got := map[string]string{}
	for _, err := range c.Validate(func(string) (string, bool) { return "", false }) {
		var fe *auditsink.FieldError
		if !errors.As(err, &fe) {
			t.Fatalf("%v is no FieldError", err)
		}
		got[fe.Path] = fe.Msg
	}
	for _, p := range []string{"audit.sinks[0].path", "audit.sinks[1].url", "audit.sinks[1].secret_env", "audit.sinks[1].timeout",
		"audit.sinks[2].type", "audit.sinks[3].keep", "audit.sinks[3].url", "audit.sinks[3].name", "audit.sinks[4].secret_env",
		"audit.sinks[4].path", "audit.sinks[4].name"} {
		if got[p] == "" {
			t.Errorf("no problem at %s; got %v", p, got)
		}
	}
	ok := auditsink.Config{Sinks: []auditsink.SinkConfig{{Type: "file", Path: "/var/log/accessbot/audit.jsonl"},
		{Type: "webhook", URL: "https://siem.example.com/in", SecretEnv: "HMAC", Timeout: "10s"}}}
	if errs := ok.Validate(func(string) (string, bool) { return "x", true }); len(errs) > 0 {
		t.Fatalf("valid config: %v", errs)
	}
}
