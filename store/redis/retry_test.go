package redis_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/url"
	"sync"
	"testing"
	"time"

	"github.com/accessbot/accessbot/access"
	"github.com/accessbot/accessbot/internal/redistest"
	"github.com/accessbot/accessbot/store/redis"
)

// dropProxy is a TCP proxy on loopback in front of Redis that can lose a
// reply: once armed with a marker, the first command sent through it that
// contains the marker reaches the server (and takes effect), and then the
// connection is cut before the server's reply gets back, as when a network
// path or the server's side of a connection fails at that moment. The
// client sees the connection drop and go-redis sends the command again.
type dropProxy struct {
	l      net.Listener
	target string

	mu      sync.Mutex
	marker  []byte
	dropped int
	wg      sync.WaitGroup
}

func newDropProxy(t *testing.T, target string) *dropProxy {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &dropProxy{l: l, target: target}
	p.wg.Go(p.serve)
	t.Cleanup(func() { l.Close(); p.wg.Wait() })
	return p
}

func (p *dropProxy) addr() string { return p.l.Addr().String() }

// arm makes the next command containing marker lose its reply.
func (p *dropProxy) arm(marker string) {
	p.mu.Lock()
	p.marker = []byte(marker)
	p.mu.Unlock()
}

func (p *dropProxy) drops() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.dropped
}

func (p *dropProxy) serve() {
	for {
		c, err := p.l.Accept()
		if err != nil {
			return
		}
		p.wg.Go(func() { p.relay(c) })
	}
}

func (p *dropProxy) relay(client net.Conn) {
	server, err := net.Dial("tcp", p.target)
	if err != nil {
		client.Close()
		return
	}
	var once sync.Once
	cut := func() { once.Do(func() { client.Close(); server.Close() }) }
	var dmu sync.Mutex
	dropReply := false
	p.wg.Go(func() { // client -> server
		defer cut()
		buf := make([]byte, 64<<10)
		for {
			n, err := client.Read(buf)
			if n > 0 {
				p.mu.Lock()
				if p.marker != nil && bytes.Contains(buf[:n], p.marker) {
					p.marker = nil
					dmu.Lock()
					dropReply = true
					dmu.Unlock()
				}
				p.mu.Unlock()
				if _, werr := server.Write(buf[:n]); werr != nil {
					return
				}
			}
			if err != nil {
				return
			}
		}
	})
	defer cut()
	buf := make([]byte, 64<<10)
	for { // server -> client
		n, err := server.Read(buf)
		if n > 0 {
			dmu.Lock()
			drop := dropReply
			dmu.Unlock()
			if drop {
				p.mu.Lock()
				p.dropped++
				p.mu.Unlock()
				return // the command ran; its reply is lost with the connection
			}
			if _, werr := client.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

// retryWorld is a store whose client reaches Redis through a dropProxy.
func retryWorld(t *testing.T) (*redis.Store, *dropProxy) {
	t.Helper()
	u, err := url.Parse(redistest.URL(t))
	if err != nil {
		t.Fatal(err)
	}
	p := newDropProxy(t, u.Host)
	u.Host = p.addr()
	s, err := redis.OpenWith(context.Background(), u.String(), redistest.Prefix(t),
		redis.OpenOptions{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	// Load the scripts, so that the command that loses its reply is the
	// one that runs them (not a NOSCRIPT answer).
	warm := &access.Request{ID: "r-warmup22", Requester: "x@example.com", Role: "r", State: access.StatePending}
	if err := s.Create(context.Background(), warm); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Update(context.Background(), warm.ID, func(r *access.Request) ([]access.AuditEvent, error) { return nil, nil }); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Seen(context.Background(), "warmup", time.Minute); err != nil {
		t.Fatal(err)
	}
	if err := s.AppendAudit(context.Background(), access.AuditEvent{At: time.Now(), Action: access.Action("drift"), Reason: "warmup"}); err != nil {
		t.Fatal(err)
	}
	return s, p
}

func auditFor(t *testing.T, s *redis.Store, pred func(access.AuditEvent) bool) int {
	t.Helper()
	evs, err := s.Audit(context.Background(), time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, e := range evs {
		if pred(e) {
			n++
		}
	}
	return n
}

// A Create whose reply is lost after it took effect is sent again by the
// client; the store must report success (not ErrExists: the request would
// be stored but its submitter told it failed, and nobody told about it),
// with its audit event written once.
func TestCreateReplyLostIsNotErrExists(t *testing.T) {
	s, p := retryWorld(t)
	ctx := context.Background()
	r := &access.Request{ID: "r-lostrep1", Requester: "alice@example.com", Role: "prod-admin", State: access.StatePending, CreatedAt: time.Now()}
	p.arm(r.ID)
	err := s.Create(ctx, r, access.AuditEvent{At: time.Now(), RequestID: r.ID, Action: access.ActSubmitted})
	if p.drops() != 1 {
		t.Fatalf("the proxy dropped %d replies, want 1", p.drops())
	}
	if err != nil {
		t.Fatalf("Create whose first reply was lost: %v", err)
	}
	got, err := s.Get(ctx, r.ID)
	if err != nil || got.Version != 1 || r.Version != 1 {
		t.Fatalf("after Create: %+v, %v (r.Version %d)", got, err, r.Version)
	}
	if n := auditFor(t, s, func(e access.AuditEvent) bool { return e.RequestID == r.ID }); n != 1 {
		t.Fatalf("%d audit events for the create, want 1", n)
	}
	// A genuine clash is still ErrExists.
	other := &access.Request{ID: r.ID, Requester: "mallory@example.com", Role: "prod-admin", State: access.StatePending}
	if err := s.Create(ctx, other); !errors.Is(err, access.ErrExists) {
		t.Fatalf("Create of a taken id: %v, want ErrExists", err)
	}
}

// An Update whose EXEC (the write script) took effect but whose reply was
// lost is sent again by the client: the store must see its own write and
// report success, not lose the compare-and-set to itself and run fn again
// (a transition would then fail on its own result, or apply twice with its
// audit event twice).
func TestUpdateReplyLostAppliesOnce(t *testing.T) {
	s, p := retryWorld(t)
	ctx := context.Background()
	r := &access.Request{ID: "r-lostrep2", Requester: "alice@example.com", Role: "prod-admin", State: access.StatePending}
	if err := s.Create(ctx, r); err != nil {
		t.Fatal(err)
	}
	calls := 0
	p.arm(`"state":"approved"`)
	got, err := s.Update(ctx, r.ID, func(q *access.Request) ([]access.AuditEvent, error) {
		calls++
		if q.State != access.StatePending {
			return nil, &access.StateError{ID: q.ID, State: q.State, Want: "pending", Err: access.ErrAlreadyDecided}
		}
		q.State = access.StateApproved
		q.Decisions = append(q.Decisions, access.Decision{By: "bob@example.com", Approve: true, At: time.Now()})
		return []access.AuditEvent{{At: time.Now(), RequestID: q.ID, Action: access.ActApproved, From: access.StatePending, To: access.StateApproved}}, nil
	})
	if p.drops() != 1 {
		t.Fatalf("the proxy dropped %d replies, want 1", p.drops())
	}
	if err != nil {
		t.Fatalf("Update whose reply was lost: %v (fn ran %d times)", err, calls)
	}
	stored, err := s.Get(ctx, r.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.Version != 2 || stored.Version != 2 || len(stored.Decisions) != 1 || stored.State != access.StateApproved {
		t.Fatalf("after Update: returned v%d, stored v%d %s with %d decisions; want v2 approved with 1", got.Version, stored.Version, stored.State, len(stored.Decisions))
	}
	if n := auditFor(t, s, func(e access.AuditEvent) bool { return e.RequestID == r.ID && e.Action == access.ActApproved }); n != 1 {
		t.Fatalf("%d approval audit events, want 1", n)
	}
}

// Seen whose reply is lost after it recorded the id is sent again: the
// first delivery of an event must still be reported as not seen, or the
// event is dropped as a duplicate of itself and never handled.
func TestSeenReplyLostIsNotSeen(t *testing.T) {
	s, p := retryWorld(t)
	ctx := context.Background()
	p.arm("slack:env:lost-reply")
	seen, err := s.Seen(ctx, "slack:env:lost-reply", time.Minute)
	if p.drops() != 1 {
		t.Fatalf("the proxy dropped %d replies, want 1", p.drops())
	}
	if err != nil || seen {
		t.Fatalf("first Seen whose reply was lost = %v, %v; want false (not seen before)", seen, err)
	}
	if seen, err := s.Seen(ctx, "slack:env:lost-reply", time.Minute); err != nil || !seen {
		t.Fatalf("second Seen = %v, %v; want true", seen, err)
	}
}

// AppendAudit whose MULTI/EXEC took effect but whose reply was lost is
// sent again: the events must be in the log once.
func TestAppendAuditReplyLostAppendsOnce(t *testing.T) {
	s, p := retryWorld(t)
	p.arm("drift-lost-reply")
	err := s.AppendAudit(context.Background(), access.AuditEvent{At: time.Now(), Action: access.Action("drift"), Reason: "drift-lost-reply"})
	if p.drops() != 1 {
		t.Fatalf("the proxy dropped %d replies, want 1", p.drops())
	}
	if err != nil {
		t.Fatalf("AppendAudit whose reply was lost: %v", err)
	}
	if n := auditFor(t, s, func(e access.AuditEvent) bool { return e.Reason == "drift-lost-reply" }); n != 1 {
		t.Fatalf("%d copies of the event in the audit log, want 1", n)
	}
}

// Claim whose reply is lost after it took the claim is sent again: the
// claim script renews a claim its owner already holds, so the retry
// reports the claim as taken (no fix needed; this guards it).
func TestClaimReplyLostStillClaimed(t *testing.T) {
	s, p := retryWorld(t)
	ctx := context.Background()
	p.arm("owner-lost-reply")
	ok, err := s.Claim(ctx, "request:r-lostrep3", "owner-lost-reply", time.Minute)
	if p.drops() != 1 {
		t.Fatalf("the proxy dropped %d replies, want 1", p.drops())
	}
	if err != nil || !ok {
		t.Fatalf("Claim whose reply was lost = %v, %v; want true", ok, err)
	}
	if ok, err := s.Claim(ctx, "request:r-lostrep3", "someone-else", time.Minute); err != nil || ok {
		t.Fatalf("Claim by another = %v, %v; want false", ok, err)
	}
}

// InboxPut whose script ran but whose reply was lost is sent again: the
// retry finds the entry it wrote itself, which is a success, not a
// duplicate (the bot would otherwise drop an event it stored and never
// handle it).
func TestInboxPutReplyLostIsNotDuplicate(t *testing.T) {
	s, p := retryWorld(t)
	ctx := context.Background()
	p.arm("slack:cmd:lost-reply")
	added, err := s.InboxPut(ctx, access.InboxEntry{ID: "slack:cmd:lost-reply", Platform: "slack", Payload: []byte("{}"), Received: time.Now()},
		"replica-a", time.Minute)
	if p.drops() != 1 {
		t.Fatalf("the proxy dropped %d replies, want 1", p.drops())
	}
	if err != nil || !added {
		t.Fatalf("InboxPut whose reply was lost = %v, %v; want true (stored by this call)", added, err)
	}
	again, err := s.InboxPut(ctx, access.InboxEntry{ID: "slack:cmd:lost-reply", Platform: "slack", Payload: []byte("{}"), Received: time.Now()},
		"replica-a", time.Minute)
	if err != nil || again {
		t.Fatalf("a second delivery of the same event = %v, %v; want false (duplicate)", again, err)
	}
}

// Two writers that race on one version and happen to produce the same
// data (two concurrent decisions of the same approver at the same clock
// reading) are not both successful: the loser of the compare-and-set must
// run fn again on the winner's result (there, a second decision is
// refused), not take the winner's write for its own lost reply.
func TestIdenticalConcurrentUpdatesAreNotBothApplied(t *testing.T) {
	s, _ := retryWorld(t)
	ctx := context.Background()
	r := &access.Request{ID: "r-samedata1", Requester: "alice@example.com", Role: "r", State: access.StatePending,
		CreatedAt: time.Date(2026, 11, 30, 9, 0, 0, 0, time.UTC)}
	if err := s.Create(ctx, r); err != nil {
		t.Fatal(err)
	}
	at := time.Date(2026, 11, 30, 9, 5, 0, 0, time.UTC) // one test-clock reading for both
	var loaded sync.WaitGroup
	loaded.Add(2)
	var mu sync.Mutex
	applied := 0
	decide := func() error {
		first := true
		_, err := s.Update(ctx, r.ID, func(q *access.Request) ([]access.AuditEvent, error) {
			if first {
				first = false
				loaded.Done()
				loaded.Wait() // both have read version 1
			}
			if q.State != access.StatePending {
				return nil, errors.New("already decided")
			}
			q.State = access.StateApproved
			q.UpdatedAt = at
			return nil, nil
		})
		if err == nil {
			mu.Lock()
			applied++
			mu.Unlock()
		}
		return err
	}
	var wg sync.WaitGroup
	for range 2 {
		wg.Go(func() { _ = decide() })
	}
	wg.Wait()
	if applied != 1 {
		t.Fatalf("%d of two identical concurrent decisions succeeded, want 1", applied)
	}
	got, err := s.Get(ctx, r.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.Version != 2 {
		t.Fatalf("version %d, want 2 (one write)", got.Version)
	}
}
