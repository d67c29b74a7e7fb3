package slack

import (
	"fmt"
	"testing"
)

// The refresh queue holds each person once, in the order first queued,
// and is bounded.
func TestHomeQueue(t *testing.T) {
	q := newHomeQueue()
	for range 100 {
		q.mark(homeKey{identity: "a@example.com"})
		q.mark(homeKey{user: "UB"})
	}
	got := q.take()
	if len(got) != 2 || got[0].identity != "a@example.com" || got[1].user != "UB" {
		t.Fatalf("took %v", got)
	}
	if got := q.take(); len(got) != 0 {
		t.Fatalf("second take %v", got)
	}
	for i := range maxHomeQueue {
		if !q.mark(homeKey{user: fmt.Sprint("U", i)}) {
			t.Fatalf("refused mark %d", i)
		}
	}
	if q.mark(homeKey{user: "UMORE"}) {
		t.Fatal("queue took more than its bound")
	}
	if !q.mark(homeKey{user: "U0"}) {
		t.Fatal("a person already queued was refused")
	}
	if n := len(q.take()); n != maxHomeQueue {
		t.Fatalf("took %d", n)
	}
}
