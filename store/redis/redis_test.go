package redis_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/accessbot/accessbot/access"
	"github.com/accessbot/accessbot/internal/redistest"
	"github.com/accessbot/accessbot/store/redis"
	"github.com/accessbot/accessbot/store/storetest"
	goredis "github.com/redis/go-redis/v9"
)

func TestMain(m *testing.M) {
	redistest.Main(func() int {
		code := m.Run()
		cleanupBench()
		return code
	})
}

// prefixed is a store with the prefix its keys live under.
type prefixed struct {
	*redis.Store
	prefix string
}

// fresh returns a store under a prefix unique to t whose keys are deleted
// when t ends. (The keys start with "{prefix}", so redistest's own cleanup
// of "prefix*" does not see them.)
func fresh(t *testing.T) prefixed {
	t.Helper()
	prefix := redistest.Prefix(t)
	c := redistest.Client(t)
	t.Cleanup(func() {
		if err := deleteKeys(c, "{"+prefix+"}*"); err != nil {
			t.Errorf("delete test keys: %v", err)
		}
	})
	s := redis.New(c, prefix)
	t.Cleanup(func() { _ = s.Close() })
	return prefixed{s, prefix}
}

// deleteKeys deletes the keys matching pattern.
func deleteKeys(c *goredis.Client, pattern string) error {
	ctx := context.Background()
	iter := c.Scan(ctx, 0, pattern, 1000).Iterator()
	var keys []string
	for iter.Next(ctx) {
		keys = append(keys, iter.Val())
	}
	for len(keys) > 0 {
		n := min(len(keys), 1000)
		if err := c.Del(ctx, keys[:n]...).Err(); err != nil {
			return err
		}
		keys = keys[n:]
	}
	return iter.Err()
}

func TestStore(t *testing.T) {
	storetest.Run(t,
		func(t *testing.T) access.Store { return fresh(t) },
		func(t *testing.T, s access.Store) access.Store {
			p := s.(prefixed)
			if err := p.Close(); err != nil {
				t.Fatalf("Close: %v", err)
			}
			// A new connection, as a restarted replica would have.
			s2, err := redis.Open(context.Background(), redistest.URL(t), p.prefix)
			if err != nil {
				t.Fatalf("Open: %v", err)
			}
			t.Cleanup(func() { _ = s2.Close() })
			return prefixed{s2, p.prefix}
		})
}

func TestKeysShareOneHashTag(t *testing.T) {
	s := fresh(t)
	ctx := context.Background()
	r := &access.Request{ID: "r-tag23456", Requester: "alice@example.com", Role: "prod-admin", State: access.StateActive, EndsAt: time.Now().Add(time.Hour)}
	if err := s.Create(ctx, r, access.AuditEvent{RequestID: r.ID, Action: access.ActGranted}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Claim(ctx, r.ID, "replica-a", time.Minute); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Seen(ctx, "Ev1", time.Minute); err != nil {
		t.Fatal(err)
	}
	c := redistest.Client(t)
	keys, err := c.Keys(ctx, "*"+s.prefix+"*").Result()
	if err != nil {
		t.Fatal(err)
	}
	if len(keys) < 9 {
		t.Fatalf("keys = %v, want request, due, audit, 4 indexes, claim and seen", keys)
	}
	for _, k := range keys {
		if !strings.HasPrefix(k, "{"+s.prefix+"}:") {
			t.Errorf("key %q is outside the hash tag {%s}", k, s.prefix)
		}
	}
}

func TestPrefixesAreSeparate(t *testing.T) {
	a, b := fresh(t), fresh(t)
	ctx := context.Background()
	r := &access.Request{ID: "r-sep23456", Requester: "alice@example.com", State: access.StatePending}
	if err := a.Create(ctx, r); err != nil {
		t.Fatal(err)
	}
	if err := b.Create(ctx, r); err != nil {
		t.Fatalf("Create of the same id under another prefix: %v", err)
	}
}

func TestDefaultPrefix(t *testing.T) {
	c := redistest.Client(t)
	s := redis.New(c, "")
	ctx := context.Background()
	// Only read: a test must not write the production prefix.
	if _, err := s.Get(ctx, "r-nonexistent-for-test"); err == nil {
		t.Fatal("Get of a missing id succeeded")
	}
	if n, err := c.Exists(ctx, "{accessbot}:req:r-nonexistent-for-test").Result(); err != nil || n != 0 {
		t.Fatalf("Exists = %d, %v", n, err)
	}
}

func TestOpenErrors(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct{ url, want string }{
		{"http://user:s3cret@127.0.0.1:6379/0", "bad store URL"},
		{"redis://:s3cret@127.0.0.1:notaport/0", "bad store URL"},
		{"redis://:s3cret@127.0.0.1:6379/notadb", "bad store URL"},
		{"redis://:s3cret@127.0.0.1:1/0", "connect to redis://:xxxxx@127.0.0.1:1/0"},
	} {
		// Open waits for a server that does not answer until its context
		// ends; a short one makes the last case fail.
		ctx, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
		s, err := redis.Open(ctx, tc.url, "")
		cancel()
		if err == nil {
			s.Close()
			t.Errorf("Open(%s) succeeded", tc.url)
			continue
		}
		if strings.Contains(err.Error(), "s3cret") {
			t.Errorf("Open error %q shows the password", err)
		}
		if !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Open(%s) error %q, want it to contain %q", tc.url, err, tc.want)
		}
	}
}

func TestOpenOwnsClient(t *testing.T) {
	s, err := redis.Open(context.Background(), redistest.URL(t), redistest.Prefix(t))
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if _, err := s.Get(context.Background(), "r-x"); err == nil {
		t.Fatal("Get after Close succeeded")
	}
}
