package ttlcache

import (
	"testing"
	"time"
)

func TestCache(t *testing.T) {
	c := New[int](time.Hour, 2)
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
	c.Forget("c")
	if _, ok := c.Get("c"); ok {
		t.Fatal("forgotten entry found")
	}
	expired := New[int](time.Nanosecond, 2)
	expired.Put("x", 1)
	time.Sleep(time.Millisecond)
	if _, ok := expired.Get("x"); ok {
		t.Fatal("expired entry found")
	}
	off := New[int](0, 2)
	off.Put("x", 1)
	if _, ok := off.Get("x"); ok {
		t.Fatal("ttl 0 kept an entry")
	}
}
