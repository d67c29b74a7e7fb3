package storetest

import (
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/accessbot/accessbot/access"
)

// RunAudit is the conformance suite of the audit chain and the audit
// cursors (access.AuditStream, access.AuditCursors): every event a store
// writes is linked to the one written before it, in the same atomic step,
// and the sinks' cursors are kept, fenced like every other write.
func RunAudit(t *testing.T, open Open, reopen Reopen) {
	tests := []struct {
		name string
		fn   func(t *testing.T, s access.Store)
	}{
		{"ChainLinksEveryWrite", testChainLinks},
		{"AuditAfterPages", testAuditAfter},
		{"ChainUnderConcurrentWriters", testChainConcurrent},
		{"Cursors", testCursors},
		{"CursorsFenced", testCursorsFenced},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) { tc.fn(t, open(t)) })
	}
	t.Run("ChainAndCursorsSurviveRestart", func(t *testing.T) { testChainRestart(t, open, reopen) })
}

// unchain checks that ev carries a hash that matches its content and
// returns it without the chain fields, to be compared with what was
// written.
func unchain(t *testing.T, ev access.AuditEvent) access.AuditEvent {
	t.Helper()
	if ev.Hash == "" || ev.Hash != access.AuditHash(ev) {
		t.Errorf("event %s %s: hash %q does not match its content (%q)", ev.ID, ev.Action, ev.Hash, access.AuditHash(ev))
	}
	ev.PrevHash, ev.Hash = "", ""
	return ev
}

func streamOf(t *testing.T, s access.Store) (access.AuditStream, access.AuditCursors) {
	t.Helper()
	as, ok := s.(access.AuditStream)
	if !ok {
		t.Fatalf("%T is no access.AuditStream", s)
	}
	ac, ok := s.(access.AuditCursors)
	if !ok {
		t.Fatalf("%T is no access.AuditCursors", s)
	}
	return as, ac
}

func auditAfter(t *testing.T, as access.AuditStream, after string, limit int) []access.AuditEvent {
	t.Helper()
	evs, err := as.AuditAfter(ctx(t), after, limit)
	if err != nil {
		t.Fatalf("AuditAfter(%q, %d): %v", after, limit, err)
	}
	return evs
}

// wantIntact reads the whole chain and fails unless it verifies, with n
// events all chained.
func wantIntact(t *testing.T, as access.AuditStream, n int) []access.AuditEvent {
	t.Helper()
	evs, head, err := access.ReadAuditChain(ctx(t), as)
	if err != nil {
		t.Fatalf("ReadAuditChain: %v", err)
	}
	c := access.VerifyChain(evs, head)
	if !c.Intact() || c.Events != n || c.Unchained != 0 || (n > 0 && c.Start != 1) {
		t.Fatalf("VerifyChain = %+v (break %+v), want %d events, all chained and intact", c, c.Break, n)
	}
	return evs
}

func testChainLinks(t *testing.T, s access.Store) {
	as, _ := streamOf(t, s)
	if h, err := as.AuditHead(ctx(t)); err != nil || h != "" {
		t.Fatalf("AuditHead of an empty store = %q, %v; want empty", h, err)
	}
	wantIntact(t, as, 0)
	r := simple("r-chain123", "alice@example.com", "prod-admin", access.StatePending, base)
	// Times deliberately out of order: the chain follows the write order.
	mustCreate(t, s, r, event(r.ID, access.ActSubmitted, "alice@example.com", base.Add(time.Minute)),
		event(r.ID, access.ActApproved, "bob@example.com", base))
	mustUpdate(t, s, r.ID, func(r *access.Request) {}) // no events: the chain does not move
	if _, err := s.Update(ctx(t), r.ID, func(r *access.Request) ([]access.AuditEvent, error) {
		return []access.AuditEvent{event(r.ID, access.ActGranted, access.SystemActor, base.Add(time.Second))}, nil
	}); err != nil {
		t.Fatal(err)
	}
	d := access.AuditEvent{At: base.Add(-time.Hour), Action: access.ActDriftRemoved, Actor: access.SystemActor, Subject: "mallory@example.com"}
	if err := s.AppendAudit(ctx(t), d, d); err != nil {
		t.Fatal(err)
	}
	// Several roles in one request: CreateMany links its events too.
	b := bundleOf("r-chainb", 2, base)
	if err := s.CreateMany(ctx(t), b, event(b[0].ID, access.ActSubmitted, "alice@example.com", base),
		event(b[1].ID, access.ActSubmitted, "alice@example.com", base)); err != nil {
		t.Fatal(err)
	}
	evs := wantIntact(t, as, 7)
	wantActions := []access.Action{access.ActSubmitted, access.ActApproved, access.ActGranted, access.ActDriftRemoved, access.ActDriftRemoved,
		access.ActSubmitted, access.ActSubmitted}
	prev := ""
	for i, ev := range evs {
		if ev.Action != wantActions[i] {
			t.Errorf("event %d is %s, want %s (write order)", i+1, ev.Action, wantActions[i])
		}
		if ev.ID == "" {
			t.Errorf("event %d has no id", i+1)
		}
		if ev.PrevHash != prev {
			t.Errorf("event %d prev_hash %q, want %q", i+1, ev.PrevHash, prev)
		}
		if ev.Hash != access.AuditHash(ev) {
			t.Errorf("event %d hash %q, want %q", i+1, ev.Hash, access.AuditHash(ev))
		}
		prev = ev.Hash
	}
	if h, err := as.AuditHead(ctx(t)); err != nil || h != prev {
		t.Fatalf("AuditHead = %q, %v; want the last event's hash %q", h, err, prev)
	}
	// Audit (by time) returns the same events with the same chain fields.
	byID := map[string]access.AuditEvent{}
	for _, ev := range evs {
		byID[ev.ID] = ev
	}
	for _, ev := range mustAudit(t, s, time.Time{}) {
		if w, ok := byID[ev.ID]; !ok || w.Hash != ev.Hash || w.PrevHash != ev.PrevHash {
			t.Errorf("Audit event %s: hash %q prev %q, AuditAfter has %q %q", ev.ID, ev.Hash, ev.PrevHash, w.Hash, w.PrevHash)
		}
	}
}

func testAuditAfter(t *testing.T, s access.Store) {
	as, _ := streamOf(t, s)
	for i := range 7 {
		e := event("", access.ActDriftRemoved, access.SystemActor, base.Add(time.Duration(i)*time.Second))
		e.Detail = fmt.Sprint(i)
		if err := s.AppendAudit(ctx(t), e); err != nil {
			t.Fatal(err)
		}
	}
	all := auditAfter(t, as, "", 0)
	if len(all) != 7 {
		t.Fatalf("AuditAfter(\"\", 0) = %d events, want 7", len(all))
	}
	page := auditAfter(t, as, all[1].ID, 3)
	if len(page) != 3 || page[0].Detail != "2" || page[2].Detail != "4" {
		t.Fatalf("AuditAfter(2nd, 3) = %+v, want events 3..5", page)
	}
	if rest := auditAfter(t, as, page[2].ID, 100); len(rest) != 2 || rest[1].ID != all[6].ID {
		t.Fatalf("AuditAfter(5th, 100) = %+v, want events 6 and 7", rest)
	}
	if none := auditAfter(t, as, all[6].ID, 10); len(none) != 0 {
		t.Fatalf("AuditAfter(last) = %+v, want none", none)
	}
	if _, err := as.AuditAfter(ctx(t), "not-a-position", 1); err == nil {
		t.Fatal("AuditAfter of a made-up id: no error")
	}
}

// testChainConcurrent: writers racing for the chain head all land, each
// once, and the chain stays one unbroken line.
func testChainConcurrent(t *testing.T, s access.Store) {
	as, _ := streamOf(t, s)
	const writers, each = 8, 10
	ids := make([]string, writers)
	for w := range writers {
		ids[w] = fmt.Sprintf("r-conc%04d", w)
		mustCreate(t, s, simple(ids[w], "alice@example.com", "prod-admin", access.StatePending, base))
	}
	var wg sync.WaitGroup
	errs := make(chan error, writers*each*2)
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				_, err := s.Update(ctx(t), ids[w], func(r *access.Request) ([]access.AuditEvent, error) {
					return []access.AuditEvent{event(r.ID, access.ActExtended, "alice@example.com", base.Add(time.Duration(i)))}, nil
				})
				errs <- err
				errs <- s.AppendAudit(ctx(t), event("", access.ActDriftRemoved, access.SystemActor, base))
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	wantIntact(t, as, writers*each*2)
}

func testCursors(t *testing.T, s access.Store) {
	_, ac := streamOf(t, s)
	if v, err := ac.AuditCursor(ctx(t), "file"); err != nil || v != "" {
		t.Fatalf("AuditCursor of a new name = %q, %v; want empty", v, err)
	}
	for _, pos := range []string{"17", "42", "42"} {
		if err := ac.SetAuditCursor(ctx(t), "file", pos); err != nil {
			t.Fatalf("SetAuditCursor(file, %s): %v", pos, err)
		}
	}
	if err := ac.SetAuditCursor(ctx(t), "webhook", "9"); err != nil {
		t.Fatal(err)
	}
	if v, _ := ac.AuditCursor(ctx(t), "file"); v != "42" {
		t.Fatalf("AuditCursor(file) = %q, want 42", v)
	}
	if v, _ := ac.AuditCursor(ctx(t), "webhook"); v != "9" {
		t.Fatalf("AuditCursor(webhook) = %q, want 9", v)
	}
	if err := ac.SetAuditCursor(ctx(t), "", "1"); err == nil {
		t.Fatal("SetAuditCursor with an empty name: no error")
	}
}

// testCursorsFenced: a delivery worker that lost its lease cannot move the
// cursor back behind the new holder's.
func testCursorsFenced(t *testing.T, s access.Store) {
	_, ac := streamOf(t, s)
	f, ok := s.(access.Fencer)
	if !ok {
		t.Skipf("%T has no fencing", s)
	}
	const key = "audit-sink:file"
	a := mustClaimFenced(t, f, key, "replica-a", time.Minute)
	if err := ac.SetAuditCursor(fenced(t, key, a), "file", "5"); err != nil {
		t.Fatalf("fenced SetAuditCursor by the holder: %v", err)
	}
	releaseFenced(t, f, key, "replica-a")
	b := mustClaimFenced(t, f, key, "replica-b", time.Minute)
	if err := ac.SetAuditCursor(fenced(t, key, b), "file", "8"); err != nil {
		t.Fatal(err)
	}
	err := ac.SetAuditCursor(fenced(t, key, a), "file", "6")
	if !errors.Is(err, access.ErrFenced) {
		t.Fatalf("SetAuditCursor by the old holder = %v, want ErrFenced", err)
	}
	if v, _ := ac.AuditCursor(ctx(t), "file"); v != "8" {
		t.Fatalf("AuditCursor = %q, want the new holder's 8", v)
	}
}

func testChainRestart(t *testing.T, open Open, reopen Reopen) {
	s := open(t)
	if err := s.AppendAudit(ctx(t), event("", access.ActDriftRemoved, access.SystemActor, base)); err != nil {
		t.Fatal(err)
	}
	_, ac := streamOf(t, s)
	if err := ac.SetAuditCursor(ctx(t), "file", "1"); err != nil {
		t.Fatal(err)
	}
	s = reopen(t, s)
	if err := s.AppendAudit(ctx(t), event("", access.ActDriftRemoved, access.SystemActor, base.Add(time.Second))); err != nil {
		t.Fatal(err)
	}
	as, ac := streamOf(t, s)
	wantIntact(t, as, 2)
	if v, _ := ac.AuditCursor(ctx(t), "file"); v != "1" {
		t.Fatalf("AuditCursor after restart = %q, want 1", v)
	}
}
