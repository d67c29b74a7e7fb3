package ttlcache

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/accessbot/accessbot/internal/testclock"
)

func TestCache(t *testing.T) {
	clock := testclock.New(time.Date(2026, 1, 7, 12, 0, 0, 0, time.UTC))
	c := New[int](time.Hour, 2)
	c.SetClock(clock.Now)
	c.Put("a", 1)
	c.Put("b", 2)
	if v, ok := c.Get("a"); !ok || v != 1 {
		t.Fatalf("get a: %v %v", v, ok)
	}
	c.Put("c", 3) // full: one entry makes room
	if len(c.entries) != 2 {
		t.Fatalf("%d entries, bound is 2", len(c.entries))
	}
	if v, ok := c.Get("c"); !ok || v != 3 {
		t.Fatal("newest entry lost")
	}
	c.Put("c", 4) // replacing an entry makes no room
	if len(c.entries) != 2 {
		t.Fatalf("%d entries after replacing one, want 2", len(c.entries))
	}
	c.Forget("c")
	if _, ok := c.Get("c"); ok {
		t.Fatal("forgotten entry found")
	}

	expired := New[int](time.Minute, 2)
	expired.SetClock(clock.Now)
	expired.Put("x", 1)
	clock.Advance(time.Minute - time.Nanosecond)
	if _, ok := expired.Get("x"); !ok {
		t.Fatal("entry gone before its ttl")
	}
	clock.Advance(time.Nanosecond)
	if _, ok := expired.Get("x"); ok {
		t.Fatal("expired entry found")
	}
	off := New[int](0, 2)
	off.Put("x", 1)
	if _, ok := off.Get("x"); ok {
		t.Fatal("ttl 0 kept an entry")
	}
}

func TestPutForAndExpiredMakeRoomFirst(t *testing.T) {
	clock := testclock.New(time.Date(2026, 1, 7, 12, 0, 0, 0, time.UTC))
	c := New[string](time.Hour, 2)
	c.SetClock(clock.Now)
	c.PutFor("miss", "", time.Minute)
	c.Put("hit", "v")
	clock.Advance(time.Minute)
	if _, ok := c.Get("miss"); ok {
		t.Fatal("entry outlived its own ttl")
	}
	c.Put("new", "w") // full: the expired entry goes, not the live one
	if _, ok := c.Get("hit"); !ok {
		t.Fatal("a live entry was dropped while an expired one could go")
	}
	if v, ok := c.Get("new"); !ok || v != "w" {
		t.Fatal("newest entry lost")
	}
	c.PutFor("none", "x", 0)
	if _, ok := c.Get("none"); ok {
		t.Fatal("PutFor with ttl 0 kept an entry")
	}
}

func TestAdd(t *testing.T) {
	clock := testclock.New(time.Date(2026, 1, 7, 12, 0, 0, 0, time.UTC))
	c := New[int](0, 10)
	c.SetClock(clock.Now)
	if !c.Add("k", 1, time.Minute) {
		t.Fatal("first Add refused")
	}
	if c.Add("k", 2, time.Minute) {
		t.Fatal("second Add within the ttl stored")
	}
	if v, _ := c.Get("k"); v != 1 {
		t.Fatalf("value %d, want the first one", v)
	}
	clock.Advance(time.Minute)
	if !c.Add("k", 3, time.Minute) {
		t.Fatal("Add after the ttl refused")
	}
}

func TestDedupOneWinner(t *testing.T) {
	d := NewDedup(100)
	var first atomic.Int32
	var wg sync.WaitGroup
	for range 16 {
		wg.Go(func() {
			seen, err := d.Seen(context.Background(), "env-1", time.Minute)
			if err != nil {
				t.Error(err)
			}
			if !seen {
				first.Add(1)
			}
		})
	}
	wg.Wait()
	if first.Load() != 1 {
		t.Fatalf("%d callers saw the id first, want 1", first.Load())
	}
	if seen, _ := d.Seen(context.Background(), "env-2", time.Minute); seen {
		t.Fatal("another id reported seen")
	}
}
