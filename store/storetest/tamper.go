package storetest

import (
	"fmt"
	"testing"
	"time"

	"github.com/accessbot/accessbot/access"
)

// Tamper changes a store's audit log behind its back, the way someone with
// write access to its file or server could. Positions are 1-based in write
// order. Each function returns the store to use afterwards (a file store
// is closed, changed and opened again).
type Tamper struct {
	// Edit applies change to the event at pos and stores it in its place.
	Edit func(t *testing.T, s access.Store, pos int, change func(ev *access.AuditEvent)) access.Store
	// Delete removes the event at pos.
	Delete func(t *testing.T, s access.Store, pos int) access.Store
	// Swap exchanges the events at positions i and j (i < j).
	Swap func(t *testing.T, s access.Store, i, j int) access.Store
	// Legacy writes evs as a version without the chain did (no hashes,
	// no chain head); the store has no audit events yet.
	Legacy func(t *testing.T, s access.Store, evs []access.AuditEvent) access.Store
}

// RunTamper shows that the audit chain catches each kind of tampering and
// names the right position: an edited event (hash mismatch), a deleted or
// a reordered one (prev mismatch), the newest ones deleted (the head no
// longer matches); and that events written before the chain existed are
// counted as before its start.
func RunTamper(t *testing.T, open Open, tm Tamper) {
	seed := func(t *testing.T) (access.Store, []access.AuditEvent) {
		s := open(t)
		r := simple("r-tamper12", "alice@example.com", "prod-admin", access.StatePending, base)
		mustCreate(t, s, r, event(r.ID, access.ActSubmitted, "alice@example.com", base))
		for i := 2; i <= 6; i++ {
			if _, err := s.Update(ctx(t), r.ID, func(r *access.Request) ([]access.AuditEvent, error) {
				e := event(r.ID, access.ActExtended, "alice@example.com", base.Add(time.Duration(i)*time.Minute))
				e.Reason = fmt.Sprint("step ", i)
				return []access.AuditEvent{e}, nil
			}); err != nil {
				t.Fatal(err)
			}
		}
		as, _ := streamOf(t, s)
		return s, wantIntact(t, as, 6)
	}
	check := func(t *testing.T, s access.Store, pos int, kind access.BreakKind, wantID string) {
		t.Helper()
		as, _ := streamOf(t, s)
		evs, head, err := access.ReadAuditChain(ctx(t), as)
		if err != nil {
			t.Fatalf("ReadAuditChain: %v", err)
		}
		c := access.VerifyChain(evs, head)
		if c.Break == nil {
			t.Fatalf("VerifyChain = intact (%+v), want a %s break at position %d", c, kind, pos)
		}
		if b := c.Break; b.Position != pos || b.Kind != kind || b.ID != wantID {
			t.Fatalf("break = %+v, want position %d, kind %s, event id %s", *b, pos, kind, wantID)
		}
		t.Logf("caught: position %d, id %s: %s", c.Break.Position, c.Break.ID, c.Break.Detail)
	}

	t.Run("Edited", func(t *testing.T) {
		s, evs := seed(t)
		s = tm.Edit(t, s, 3, func(ev *access.AuditEvent) { ev.Reason = "nothing to see here" })
		check(t, s, 3, access.BreakEdited, evs[2].ID)
	})
	t.Run("EditedWithItsHashRecomputed", func(t *testing.T) {
		s, evs := seed(t)
		s = tm.Edit(t, s, 3, func(ev *access.AuditEvent) {
			ev.Actor = "mallory@example.com"
			ev.Hash = access.AuditHash(*ev)
		})
		check(t, s, 4, access.BreakLink, evs[3].ID)
	})
	t.Run("Deleted", func(t *testing.T) {
		s, evs := seed(t)
		s = tm.Delete(t, s, 4)
		check(t, s, 4, access.BreakLink, evs[4].ID)
	})
	t.Run("DeletedFirst", func(t *testing.T) {
		s, evs := seed(t)
		s = tm.Delete(t, s, 1)
		check(t, s, 1, access.BreakLink, evs[1].ID)
	})
	t.Run("Reordered", func(t *testing.T) {
		s, evs := seed(t)
		s = tm.Swap(t, s, 2, 3)
		// The id is the store's position: the second one still.
		check(t, s, 2, access.BreakLink, evs[1].ID)
	})
	t.Run("NewestDeleted", func(t *testing.T) {
		s, evs := seed(t)
		s = tm.Delete(t, s, 6)
		check(t, s, 5, access.BreakTruncated, evs[4].ID)
	})
	t.Run("ChainStartsAfterLegacyEvents", func(t *testing.T) {
		s := open(t)
		old := []access.AuditEvent{
			event("r-old00001", access.ActSubmitted, "alice@example.com", base.Add(-2*time.Hour)),
			event("r-old00001", access.ActApproved, "bob@example.com", base.Add(-time.Hour)),
		}
		s = tm.Legacy(t, s, old)
		if err := s.AppendAudit(ctx(t), event("", access.ActDriftRemoved, access.SystemActor, base)); err != nil {
			t.Fatal(err)
		}
		as, _ := streamOf(t, s)
		evs, head, err := access.ReadAuditChain(ctx(t), as)
		if err != nil {
			t.Fatal(err)
		}
		c := access.VerifyChain(evs, head)
		if !c.Intact() || c.Events != 3 || c.Unchained != 2 || c.Start != 3 {
			t.Fatalf("VerifyChain = %+v (break %+v), want 3 events, the chain starting at 3, intact", c, c.Break)
		}
		// An event inserted without a hash after the chain started is caught.
		s = tm.Legacy(t, s, []access.AuditEvent{event("r-old00001", access.ActRevoked, "x", base)})
		as, _ = streamOf(t, s)
		evs, head, _ = access.ReadAuditChain(ctx(t), as)
		if c := access.VerifyChain(evs, head); c.Break == nil || c.Break.Position != 4 || c.Break.Kind != access.BreakUnchained {
			t.Fatalf("VerifyChain after an unchained insert = %+v (break %+v), want unchained at 4", c, c.Break)
		}
	})
}
