package redis_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/accessbot/accessbot/access"
	"github.com/accessbot/accessbot/internal/redistest"
	"github.com/accessbot/accessbot/store/redis"
	"github.com/accessbot/accessbot/store/storetest"
	goredis "github.com/redis/go-redis/v9"
)

// hashTag is the part of key Redis Cluster hashes: the text between the
// first "{" and the next "}" when that is not empty, else the whole key.
func hashTag(key string) string {
	if i := strings.IndexByte(key, '{'); i >= 0 {
		if j := strings.IndexByte(key[i+1:], '}'); j > 0 {
			return key[i+1 : i+1+j]
		}
	}
	return key
}

// tagChecker is a go-redis hook that asks the server (COMMAND GETKEYS) for
// the keys of every command a store sends, scripts included, and records
// each key whose hash tag is not the store's prefix.
type tagChecker struct {
	c       *goredis.Client // unhooked, for COMMAND GETKEYS
	tag     string
	scripts atomic.Int64 // EVAL/EVALSHA commands checked
	keyed   atomic.Int64 // commands with keys checked

	mu  sync.Mutex
	bad []string
}

func (h *tagChecker) DialHook(next goredis.DialHook) goredis.DialHook { return next }

func (h *tagChecker) ProcessHook(next goredis.ProcessHook) goredis.ProcessHook {
	return func(ctx context.Context, cmd goredis.Cmder) error {
		h.check(ctx, cmd.Args())
		return next(ctx, cmd)
	}
}

func (h *tagChecker) ProcessPipelineHook(next goredis.ProcessPipelineHook) goredis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []goredis.Cmder) error {
		for _, c := range cmds {
			h.check(ctx, c.Args())
		}
		return next(ctx, cmds)
	}
}

func (h *tagChecker) check(ctx context.Context, args []any) {
	name := strings.ToLower(fmt.Sprint(args[0]))
	switch name {
	case "multi", "exec", "ping", "hello", "client", "select", "script", "command":
		return
	}
	keys, err := h.c.Do(context.WithoutCancel(ctx), append([]any{"command", "getkeys"}, args...)...).StringSlice()
	if err != nil {
		if strings.Contains(err.Error(), "no key arguments") {
			return
		}
		h.mu.Lock()
		h.bad = append(h.bad, fmt.Sprintf("%v: COMMAND GETKEYS failed: %v", args[:min(len(args), 4)], err))
		h.mu.Unlock()
		return
	}
	if len(keys) == 0 {
		return
	}
	h.keyed.Add(1)
	if name == "evalsha" || name == "eval" {
		h.scripts.Add(1)
	}
	for _, k := range keys {
		if hashTag(k) != h.tag {
			h.mu.Lock()
			h.bad = append(h.bad, fmt.Sprintf("%s key %q hashes on %q, not {%s}", name, k, hashTag(k), h.tag))
			h.mu.Unlock()
		}
	}
}

// Every key of every command the store sends, the Lua scripts' KEYS
// included, carries the hash tag {prefix}: all of one store's keys live in
// one Redis Cluster slot, so its multi-key scripts and MULTI/EXEC never
// fail with CROSSSLOT. The whole conformance suite runs through the
// checker.
func TestEveryCommandKeyHasTheHashTag(t *testing.T) {
	plain := redistest.Client(t)
	var (
		mu       sync.Mutex
		checkers []*tagChecker
	)
	open := func(t *testing.T, prefix string) access.Store {
		opt, err := goredis.ParseURL(redistest.URL(t))
		if err != nil {
			t.Fatal(err)
		}
		c := goredis.NewClient(opt)
		h := &tagChecker{c: plain, tag: prefix}
		c.AddHook(h)
		mu.Lock()
		checkers = append(checkers, h)
		mu.Unlock()
		s := redis.New(c, prefix)
		t.Cleanup(func() { s.Close(); c.Close() })
		return prefixed{s, prefix}
	}
	openFresh := func(t *testing.T) access.Store {
		return open(t, fresh(t).prefix) // fresh deletes the keys at the end
	}
	reopen := func(t *testing.T, s access.Store) access.Store { return open(t, s.(prefixed).prefix) }
	storetest.Run(t, openFresh, reopen)
	storetest.RunFence(t, openFresh, reopen)
	storetest.RunInbox(t, openFresh, reopen)
	storetest.RunAudit(t, openFresh, reopen)

	mu.Lock()
	defer mu.Unlock()
	var scripts, keyed int64
	for _, h := range checkers {
		scripts += h.scripts.Load()
		keyed += h.keyed.Load()
		for _, b := range h.bad {
			t.Error(b)
		}
	}
	if scripts < 100 || keyed < 500 {
		t.Errorf("checked %d scripts and %d keyed commands; the suite should send far more", scripts, keyed)
	}
	t.Logf("checked %d keyed commands (%d scripts) across the conformance suite", keyed, scripts)

	// The checker itself tells a key outside the tag.
	h := &tagChecker{c: plain, tag: "p"}
	h.check(context.Background(), []any{"evalsha", "0123", 2, "{p}:a", "{q}:b"})
	h.check(context.Background(), []any{"get", "p:a"})
	if len(h.bad) != 2 {
		t.Errorf("checker found %v, want the {q} key and the untagged one", h.bad)
	}
}

func TestHashTagRule(t *testing.T) {
	for key, want := range map[string]string{
		"{accessbot}:req:r-1": "accessbot", "{a}{b}": "a", "{}x": "{}x", "x{y}z": "y", "plain": "plain", "{open": "{open",
	} {
		if got := hashTag(key); got != want {
			t.Errorf("hashTag(%q) = %q, want %q", key, got, want)
		}
	}
}

func TestConfigValidate(t *testing.T) {
	good := []redis.Config{
		{URL: "redis://127.0.0.1:6379/0"},
		{URL: "rediss://:pw@redis.internal:6380/2", Prefix: "team-a"},
		{Sentinel: &redis.SentinelConfig{Master: "mymaster", Addrs: []string{"10.0.0.1:26379", "sentinel-1:26379", "[::1]:26379"}}},
		{Cluster: &redis.ClusterConfig{Addrs: []string{"redis-0:6379"}}},
	}
	for _, c := range good {
		if errs := c.Validate(); len(errs) != 0 {
			t.Errorf("Validate(%+v) = %v", c, errs)
		}
	}
	for _, tc := range []struct {
		cfg  redis.Config
		want []string
	}{
		{redis.Config{}, []string{"store.redis.url: missing"}},
		{redis.Config{URL: "redis://x:1/0", Cluster: &redis.ClusterConfig{Addrs: []string{"a:1"}}},
			[]string{"store.redis: choose one of url, sentinel and cluster"}},
		{redis.Config{URL: "http://:s3cret@host:6379/0"}, []string{"store.redis.url: http://:xxxxx@host:6379/0 is not a redis://"}},
		{redis.Config{URL: "redis://x:1/0", Prefix: "a{b}"}, []string{"store.redis.prefix: \"a{b}\": braces are not allowed"}},
		{redis.Config{Sentinel: &redis.SentinelConfig{Password: "s3cret"}},
			[]string{"store.redis.sentinel.master: missing", "store.redis.sentinel.addrs: missing"}},
		{redis.Config{Sentinel: &redis.SentinelConfig{Master: "m", DB: -1, Addrs: []string{"nohost", ":26379", "h:0", "h:x", "h:1", "h:1"}}},
			[]string{"store.redis.sentinel.addrs[0]: \"nohost\" is not host:port", "store.redis.sentinel.addrs[1]: \":26379\" is not host:port",
				"store.redis.sentinel.addrs[2]: \"h:0\": port", "store.redis.sentinel.addrs[3]: \"h:x\": port",
				"store.redis.sentinel.addrs[5]: h:1 is listed twice", "store.redis.sentinel.db: -1 is negative"}},
		{redis.Config{Cluster: &redis.ClusterConfig{}}, []string{"store.redis.cluster.addrs: missing"}},
		{redis.Config{Cluster: &redis.ClusterConfig{Addrs: []string{"a:1", "b"}}}, []string{"store.redis.cluster.addrs[1]: \"b\" is not host:port"}},
	} {
		errs := tc.cfg.Validate()
		var got []string
		for _, err := range errs {
			var fe *redis.FieldError
			if !errors.As(err, &fe) {
				t.Errorf("%v is not a *FieldError", err)
			}
			got = append(got, err.Error())
			if strings.Contains(err.Error(), "s3cret") {
				t.Errorf("%q shows the password", err)
			}
		}
		if len(got) != len(tc.want) {
			t.Errorf("Validate(%+v) = %q, want %d problems: %q", tc.cfg, got, len(tc.want), tc.want)
			continue
		}
		for i, w := range tc.want {
			if !strings.HasPrefix(got[i], w) {
				t.Errorf("problem %d = %q, want it to start with %q", i, got[i], w)
			}
		}
	}
}

// NewClient builds the client of each mode: a failover client (which
// follows the primary the sentinels name) for sentinel, a cluster client
// for cluster.
func TestConfigNewClient(t *testing.T) {
	for _, tc := range []struct {
		cfg  redis.Config
		mode string
		kind string
	}{
		{redis.Config{URL: "redis://127.0.0.1:1/0"}, "url", "*redis.Client"},
		{redis.Config{Sentinel: &redis.SentinelConfig{Master: "mymaster", Addrs: []string{"127.0.0.1:1"}, TLS: true}}, "sentinel", "*redis.Client"},
		{redis.Config{Cluster: &redis.ClusterConfig{Addrs: []string{"127.0.0.1:1"}, TLS: true}}, "cluster", "*redis.ClusterClient"},
	} {
		if m := tc.cfg.Mode(); m != tc.mode {
			t.Errorf("Mode() = %q, want %q", m, tc.mode)
		}
		c, err := tc.cfg.NewClient()
		if err != nil {
			t.Fatalf("NewClient(%s): %v", tc.mode, err)
		}
		if k := fmt.Sprintf("%T", c); k != tc.kind {
			t.Errorf("NewClient(%s) is a %s, want %s", tc.mode, k, tc.kind)
		}
		if tc.mode == "sentinel" {
			if a := c.(*goredis.Client).Options().Addr; a != "FailoverClient" {
				t.Errorf("sentinel client's Addr = %q, want go-redis's failover client", a)
			}
		}
		c.Close()
	}
	if _, err := (redis.Config{}).NewClient(); err == nil {
		t.Error("NewClient of an empty config succeeded")
	}
	// OpenConfig refuses a bad config at once, naming every problem.
	start := time.Now()
	_, err := redis.OpenConfig(context.Background(), redis.Config{Sentinel: &redis.SentinelConfig{Password: "s3cret"}}, redis.OpenOptions{})
	if err == nil || !strings.Contains(err.Error(), "store.redis.sentinel.master: missing") ||
		!strings.Contains(err.Error(), "store.redis.sentinel.addrs: missing") || strings.Contains(err.Error(), "s3cret") {
		t.Errorf("OpenConfig of a bad config = %v", err)
	}
	if d := time.Since(start); d > time.Second {
		t.Errorf("OpenConfig of a bad config took %v", d)
	}
}

// The whole store conformance suite passes on a real three-primary Redis
// Cluster, opened through OpenConfig's cluster client: the scripts and
// MULTI/EXEC work because every key of a store hashes to one slot. Each
// subtest has its own prefix, so the stores spread over the primaries.
func TestClusterStore(t *testing.T) {
	addrs := redistest.StartCluster(t, 3)
	cfg := redis.Config{Cluster: &redis.ClusterConfig{Addrs: addrs[:1]}}
	var n atomic.Int64
	open := func(t *testing.T, prefix string) access.Store {
		cfg := cfg
		cfg.Prefix = prefix
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		s, err := redis.OpenConfig(ctx, cfg, redis.OpenOptions{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
		if err != nil {
			t.Fatalf("OpenConfig(cluster): %v", err)
		}
		t.Cleanup(func() { s.Close() })
		return prefixed{s, prefix}
	}
	fresh := func(t *testing.T) access.Store { return open(t, fmt.Sprintf("cl%d", n.Add(1))) }
	reopen := func(t *testing.T, s access.Store) access.Store {
		s.(prefixed).Close()
		return open(t, s.(prefixed).prefix)
	}
	storetest.Run(t, fresh, reopen)
	storetest.RunFence(t, fresh, reopen)
	storetest.RunInbox(t, fresh, reopen)
	storetest.RunAudit(t, fresh, reopen)

	// The stores did spread over more than one primary.
	c := goredis.NewClusterClient(&goredis.ClusterOptions{Addrs: addrs})
	defer c.Close()
	ctx := context.Background()
	owners := map[string]bool{}
	for i := int64(1); i <= n.Load(); i++ {
		slot, err := c.ClusterKeySlot(ctx, fmt.Sprintf("{cl%d}:x", i)).Result()
		if err != nil {
			t.Fatal(err)
		}
		shards, err := c.ClusterSlots(ctx).Result()
		if err != nil {
			t.Fatal(err)
		}
		for _, sh := range shards {
			if int64(sh.Start) <= slot && slot <= int64(sh.End) {
				owners[sh.Nodes[0].Addr] = true
			}
		}
	}
	t.Logf("%d stores on %d of 3 cluster primaries", n.Load(), len(owners))
	if len(owners) < 2 {
		t.Errorf("all %d stores landed on one primary; the test did not exercise the cluster", n.Load())
	}
}

// OpenConfig with Sentinel waits like OpenWith: while no sentinel answers
// it retries (a Warn per attempt naming the master and the sentinels, no
// password) and is not ready; once the group is up it returns a working
// store and turns ready. A context that ends makes it give up.
func TestOpenConfigSentinelWaits(t *testing.T) {
	port := redistest.FreePort(t)
	cfg := redis.Config{Prefix: "wait", Sentinel: &redis.SentinelConfig{Master: "mymaster",
		Addrs: []string{fmt.Sprintf("127.0.0.1:%d", port)}, Password: "s3cret", SentinelPassword: "s3cret"}}
	var logs syncBuf
	ready := new(redis.Readiness)
	ctx, cancel := context.WithTimeout(context.Background(), 400*time.Millisecond)
	defer cancel()
	_, err := redis.OpenConfig(ctx, cfg, redis.OpenOptions{Logger: slog.New(slog.NewJSONHandler(&logs, nil)),
		MinBackoff: 20 * time.Millisecond, MaxBackoff: 50 * time.Millisecond, Readiness: ready})
	if err == nil || !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "sentinel_master=mymaster") {
		t.Fatalf("OpenConfig with no sentinel = %v; want it to give up naming the master", err)
	}
	if ready.Ready() {
		t.Error("ready with no sentinel")
	}
	out := logs.String() + err.Error()
	if strings.Contains(out, "s3cret") {
		t.Errorf("logs or error show the password: %s", out)
	}
	if n := strings.Count(logs.String(), `"attempt"`); n < 2 || !strings.Contains(logs.String(), `"sentinels":"127.0.0.1:`) {
		t.Errorf("%d attempts logged, want several naming the sentinels:\n%s", n, logs.String())
	}

	g := redistest.StartSentinelGroup(t, "mymaster", 1, 5*time.Second, 10*time.Second)
	cfg.Sentinel = &redis.SentinelConfig{Master: g.Master, Addrs: g.SentinelAddrs()}
	ctx2, cancel2 := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel2()
	s, err := redis.OpenConfig(ctx2, cfg, redis.OpenOptions{Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), Readiness: ready})
	if err != nil {
		t.Fatalf("OpenConfig(sentinel): %v", err)
	}
	defer s.Close()
	if !ready.Ready() {
		t.Error("not ready after OpenConfig returned")
	}
	r := &access.Request{ID: "r-sent23456", Requester: "alice@example.com", Role: "prod-admin", State: access.StatePending}
	if err := s.Create(ctx2, r); err != nil {
		t.Fatalf("Create through the sentinel-found primary: %v", err)
	}
	// The write went to the primary the sentinel names.
	c := goredis.NewClient(&goredis.Options{Addr: g.Primary.Addr()})
	defer c.Close()
	if n, err := c.Exists(ctx2, "{wait}:req:r-sent23456").Result(); err != nil || n != 1 {
		t.Errorf("request on the primary: %d, %v", n, err)
	}
}
