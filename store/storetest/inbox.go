package storetest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/accessbot/accessbot/access"
)

// RunInbox runs the conformance subtests of the access.Inbox capability,
// each against a fresh store from open; reopen checks that entries survive
// a restart. A store without the capability fails: call it only for stores
// that have it.
//
// Leases here are real time (a Redis lease is measured on the server's
// clock), short and bounded: the suite waits a few hundred milliseconds.
func RunInbox(t *testing.T, open Open, reopen Reopen) {
	tests := []struct {
		name string
		fn   func(t *testing.T, s access.Store)
	}{
		{"PutDuplicate", testInboxPut},
		{"PutConcurrent", testInboxPutConcurrent},
		{"TakeOnlyLapsed", testInboxTake},
		{"TakeConcurrent", testInboxTakeConcurrent},
		{"RenewKeepsLease", testInboxRenew},
		{"DoneOnlyHolder", testInboxDone},
		{"Invalid", testInboxInvalid},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) { tc.fn(t, open(t)) })
	}
	t.Run("Restart", func(t *testing.T) { testInboxRestart(t, open, reopen) })
}

func inboxOf(t *testing.T, s access.Store) access.Inbox {
	t.Helper()
	in, ok := s.(access.Inbox)
	if !ok {
		t.Fatalf("%T has no access.Inbox capability", s)
	}
	return in
}

func inboxEntry(id string) access.InboxEntry {
	return access.InboxEntry{
		ID: id, Platform: "slack", Received: base.Add(1500 * time.Millisecond),
		Payload: []byte(`{"envelope_id":"` + id + `","payload":{"text":"ünïcødé \"quoted\" \u0000"}}` + "\xff"),
	}
}

func put(t *testing.T, in access.Inbox, e access.InboxEntry, owner string, lease time.Duration) bool {
	t.Helper()
	ok, err := in.InboxPut(ctx(t), e, owner, lease)
	if err != nil {
		t.Fatalf("InboxPut(%s): %v", e.ID, err)
	}
	return ok
}

func take(t *testing.T, in access.Inbox, owner string, n int, lease time.Duration) []access.InboxEntry {
	t.Helper()
	es, err := in.InboxTake(ctx(t), owner, n, lease)
	if err != nil {
		t.Fatalf("InboxTake(%s): %v", owner, err)
	}
	return es
}

func sameEntry(t *testing.T, got, want access.InboxEntry, attempts int) {
	t.Helper()
	if got.ID != want.ID || got.Platform != want.Platform || !bytes.Equal(got.Payload, want.Payload) ||
		!got.Received.Equal(want.Received) || got.Attempts != attempts {
		t.Fatalf("entry = %+v (payload %q), want %+v (payload %q) with %d attempts", got, got.Payload, want, want.Payload, attempts)
	}
}

// testInboxPut: a second Put of an id is refused while the entry is there
// and, after Done, for the remember time; then it is accepted again.
func testInboxPut(t *testing.T, s access.Store) {
	in := inboxOf(t, s)
	e := inboxEntry("slack:cmd:1")
	if !put(t, in, e, "replica-a", time.Minute) {
		t.Fatal("first InboxPut = false")
	}
	if put(t, in, e, "replica-b", time.Minute) {
		t.Fatal("second InboxPut of a held entry = true")
	}
	if !put(t, in, inboxEntry("slack:cmd:2"), "replica-b", time.Minute) {
		t.Fatal("InboxPut of another id = false")
	}
	if err := in.InboxDone(ctx(t), e.ID, "replica-a", 300*time.Millisecond); err != nil {
		t.Fatalf("InboxDone: %v", err)
	}
	if put(t, in, e, "replica-b", time.Minute) {
		t.Fatal("InboxPut of an id done just now = true")
	}
	sleepPast(300 * time.Millisecond)
	if !put(t, in, e, "replica-b", time.Minute) {
		t.Fatal("InboxPut after the remember time passed = false")
	}
}

// testInboxPutConcurrent: of many replicas receiving the same event at
// once, exactly one stores it.
func testInboxPutConcurrent(t *testing.T, s access.Store) {
	in := inboxOf(t, s)
	var (
		wg     sync.WaitGroup
		mu     sync.Mutex
		stored int
		errs   []error
	)
	start := make(chan struct{})
	for i := range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			ok, err := in.InboxPut(context.Background(), inboxEntry("slack:act:race"), fmt.Sprintf("replica-%d", i), time.Minute)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				errs = append(errs, err)
			} else if ok {
				stored++
			}
		}()
	}
	close(start)
	wg.Wait()
	if stored != 1 || len(errs) > 0 {
		t.Fatalf("%d concurrent InboxPut calls stored the entry (want 1), errors %v", stored, errs)
	}
}

// testInboxTake: only entries whose lease lapsed are taken, earliest
// lapsed first, at most n, with their content and Attempts counted; a
// taken entry belongs to its new owner.
func testInboxTake(t *testing.T, s access.Store) {
	in := inboxOf(t, s)
	const short = 200 * time.Millisecond
	first, second, held := inboxEntry("slack:cmd:first"), inboxEntry("slack:cmd:second"), inboxEntry("slack:cmd:held")
	put(t, in, first, "dead", short)
	time.Sleep(20 * time.Millisecond)
	put(t, in, second, "dead", short)
	put(t, in, held, "alive", time.Minute)
	if es := take(t, in, "replica-b", 10, time.Minute); len(es) != 0 {
		t.Fatalf("InboxTake before any lease lapsed = %d entries", len(es))
	}
	sleepPast(short + 20*time.Millisecond)
	es := take(t, in, "replica-b", 1, time.Minute)
	if len(es) != 1 {
		t.Fatalf("InboxTake(n=1) = %d entries, want 1", len(es))
	}
	sameEntry(t, es[0], first, 1)
	es = take(t, in, "replica-c", 10, short)
	if len(es) != 1 {
		t.Fatalf("second InboxTake = %d entries, want 1 (the held ones stay)", len(es))
	}
	sameEntry(t, es[0], second, 1)
	// The old owner lost both.
	if err := in.InboxRenew(ctx(t), first.ID, "dead", time.Minute); !errors.Is(err, access.ErrInboxNotHeld) {
		t.Fatalf("InboxRenew by the lapsed owner = %v, want ErrInboxNotHeld", err)
	}
	if err := in.InboxDone(ctx(t), second.ID, "dead", time.Minute); !errors.Is(err, access.ErrInboxNotHeld) {
		t.Fatalf("InboxDone by the lapsed owner = %v, want ErrInboxNotHeld", err)
	}
	// replica-c dies too: the entry is taken again, its attempts counted.
	sleepPast(short)
	es = take(t, in, "replica-d", 10, time.Minute)
	if len(es) != 1 {
		t.Fatalf("InboxTake after the second owner lapsed = %d entries, want 1", len(es))
	}
	sameEntry(t, es[0], second, 2)
	if err := in.InboxDone(ctx(t), second.ID, "replica-d", time.Minute); err != nil {
		t.Fatalf("InboxDone by the holder: %v", err)
	}
	if put(t, in, second, "late", time.Minute) {
		t.Fatal("InboxPut of an entry done after a takeover = true")
	}
}

// testInboxTakeConcurrent: replicas taking at once never share an entry.
func testInboxTakeConcurrent(t *testing.T, s access.Store) {
	in := inboxOf(t, s)
	const n, short = 30, 100 * time.Millisecond
	for i := range n {
		put(t, in, inboxEntry(fmt.Sprintf("slack:cmd:c%02d", i)), "dead", short)
	}
	sleepPast(short)
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		got  = map[string]int{}
		errs []error
	)
	for i := range 6 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 10 {
				es, err := in.InboxTake(context.Background(), fmt.Sprintf("replica-%d", i), 4, time.Minute)
				mu.Lock()
				if err != nil {
					errs = append(errs, err)
				}
				for _, e := range es {
					got[e.ID]++
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if len(errs) > 0 {
		t.Fatalf("concurrent InboxTake: %v", errs)
	}
	if len(got) != n {
		t.Fatalf("%d of %d entries taken", len(got), n)
	}
	for id, k := range got {
		if k != 1 {
			t.Fatalf("entry %s taken %d times", id, k)
		}
	}
}

// testInboxRenew: a renewed lease is not taken; renewing after the lease
// lapsed but before anyone took it keeps the entry.
func testInboxRenew(t *testing.T, s access.Store) {
	in := inboxOf(t, s)
	const short = 300 * time.Millisecond
	e := inboxEntry("slack:act:renew")
	put(t, in, e, "replica-a", short)
	for range 3 {
		time.Sleep(short / 3)
		if err := in.InboxRenew(ctx(t), e.ID, "replica-a", short); err != nil {
			t.Fatalf("InboxRenew: %v", err)
		}
	}
	if es := take(t, in, "replica-b", 10, time.Minute); len(es) != 0 {
		t.Fatalf("InboxTake of a renewed entry = %d entries", len(es))
	}
	sleepPast(short)
	if err := in.InboxRenew(ctx(t), e.ID, "replica-a", time.Minute); err != nil {
		t.Fatalf("InboxRenew after the lease lapsed, nobody took it: %v", err)
	}
	if es := take(t, in, "replica-b", 10, time.Minute); len(es) != 0 {
		t.Fatalf("InboxTake after the late renewal = %d entries", len(es))
	}
	if err := in.InboxRenew(ctx(t), "slack:act:none", "replica-a", time.Minute); !errors.Is(err, access.ErrInboxNotHeld) {
		t.Fatalf("InboxRenew of an unknown entry = %v, want ErrInboxNotHeld", err)
	}
}

// testInboxDone: only the holder removes an entry; Done is idempotent.
func testInboxDone(t *testing.T, s access.Store) {
	in := inboxOf(t, s)
	const short = 100 * time.Millisecond
	e := inboxEntry("slack:cmd:done")
	put(t, in, e, "replica-a", short)
	if err := in.InboxDone(ctx(t), e.ID, "replica-b", time.Minute); !errors.Is(err, access.ErrInboxNotHeld) {
		t.Fatalf("InboxDone by another owner = %v, want ErrInboxNotHeld", err)
	}
	if err := in.InboxDone(ctx(t), e.ID, "replica-a", time.Minute); err != nil {
		t.Fatalf("InboxDone: %v", err)
	}
	if err := in.InboxDone(ctx(t), e.ID, "replica-a", time.Minute); err != nil {
		t.Fatalf("second InboxDone: %v", err)
	}
	sleepPast(short)
	if es := take(t, in, "replica-b", 10, time.Minute); len(es) != 0 {
		t.Fatalf("InboxTake after Done = %d entries", len(es))
	}
	if err := in.InboxRenew(ctx(t), e.ID, "replica-a", time.Minute); !errors.Is(err, access.ErrInboxNotHeld) {
		t.Fatalf("InboxRenew after Done = %v, want ErrInboxNotHeld", err)
	}
}

func testInboxInvalid(t *testing.T, s access.Store) {
	in := inboxOf(t, s)
	if _, err := in.InboxPut(ctx(t), inboxEntry(""), "a", time.Minute); err == nil {
		t.Error("InboxPut without an id succeeded")
	}
	if _, err := in.InboxPut(ctx(t), inboxEntry("x"), "", time.Minute); err == nil {
		t.Error("InboxPut without an owner succeeded")
	}
	if _, err := in.InboxPut(ctx(t), inboxEntry("x"), "a", 0); err == nil {
		t.Error("InboxPut with lease 0 succeeded")
	}
	if _, err := in.InboxTake(ctx(t), "", 1, time.Minute); err == nil {
		t.Error("InboxTake without an owner succeeded")
	}
	if es, err := in.InboxTake(ctx(t), "a", 0, time.Minute); err != nil || len(es) != 0 {
		t.Errorf("InboxTake(n=0) = %d entries, %v", len(es), err)
	}
	if err := in.InboxDone(ctx(t), "x", "a", 0); err == nil {
		t.Error("InboxDone with remember 0 succeeded")
	}
}

// testInboxRestart: entries survive a restart and are taken after their
// lease lapses (the replica that held them is gone).
func testInboxRestart(t *testing.T, open Open, reopen Reopen) {
	s := open(t)
	const short = 150 * time.Millisecond
	e := inboxEntry("slack:cmd:restart")
	put(t, inboxOf(t, s), e, "replica-a", short)
	s = reopen(t, s)
	in := inboxOf(t, s)
	if put(t, in, e, "replica-b", time.Minute) {
		t.Fatal("InboxPut after restart of a stored entry = true")
	}
	sleepPast(short)
	es := take(t, in, "replica-b", 10, time.Minute)
	if len(es) != 1 {
		t.Fatalf("InboxTake after restart = %d entries, want 1", len(es))
	}
	sameEntry(t, es[0], e, 1)
}

// BenchInboxPut times InboxPut of distinct entries (about the size of a
// slash command envelope) from one caller: the time a Socket Mode ack
// waits for the event to be durable.
func BenchInboxPut(b *testing.B, in access.Inbox) {
	ctx := context.Background()
	payload := bytes.Repeat([]byte("x"), 1500)
	prefix := fmt.Sprintf("bench:%d:", time.Now().UnixNano())
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		e := access.InboxEntry{ID: prefix + fmt.Sprint(i), Platform: "slack", Payload: payload, Received: time.Now()}
		if _, err := in.InboxPut(ctx, e, "bench", time.Minute); err != nil {
			b.Fatal(err)
		}
	}
}
