package access_test

import (
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/accessbot/accessbot/access"
)

var chainBase = time.Date(2030, 3, 14, 9, 0, 0, 0, time.UTC)

func chainEvent(i int) access.AuditEvent {
	return access.AuditEvent{At: chainBase.Add(time.Duration(i) * time.Minute), RequestID: "r-abc", Action: access.ActExtended,
		Actor: "alice@example.com", Subject: "alice@example.com", Role: "prod-admin"}
}

// The encoding is pinned: a change to it would make every stored chain
// fail to verify.
func TestAuditCanonicalPinned(t *testing.T) {
	ev := chainEvent(0)
	ev.ID, ev.Hash = "ignored", "ignored"
	ev.At = ev.At.In(time.FixedZone("X", 3600))
	want := "accessbot-audit-v1\n" +
		"action=8:extended\n" +
		"actor=17:alice@example.com\n" +
		"at=20:2030-03-14T09:00:00Z\n" +
		"request_id=5:r-abc\n" +
		"role=10:prod-admin\n" +
		"subject=17:alice@example.com\n"
	if got := string(access.AuditCanonical(ev)); got != want {
		t.Fatalf("AuditCanonical =\n%s\nwant\n%s", got, want)
	}
	if got := access.AuditHash(ev); got != "73243fdbd1554474c9ca0d5155e5dcf686f603c4c1946144e73ae1d10973e8a9" {
		t.Fatalf("AuditHash = %q, want the SHA-256 of the encoding above", got)
	}
}

// Every field but ID and Hash is covered by the hash, also fields added
// to AuditEvent later.
func TestAuditHashCoversEveryField(t *testing.T) {
	ev := chainEvent(0)
	h := access.AuditHash(ev)
	v := reflect.ValueOf(&ev).Elem()
	for i := 0; i < v.NumField(); i++ {
		name := v.Type().Field(i).Name
		c := ev
		f := reflect.ValueOf(&c).Elem().Field(i)
		switch f.Kind() {
		case reflect.String:
			f.SetString(f.String() + "x")
		case reflect.Struct: // time
			f.Set(reflect.ValueOf(ev.At.Add(time.Nanosecond)))
		default:
			t.Fatalf("field %s of kind %s: extend this test", name, f.Kind())
		}
		changed := access.AuditHash(c) != h
		if want := name != "ID" && name != "Hash"; changed != want {
			t.Errorf("changing %s changes the hash: %v, want %v", name, changed, want)
		}
	}
}

func chain(n int) []access.AuditEvent {
	evs := make([]access.AuditEvent, n)
	for i := range evs {
		evs[i] = chainEvent(i)
		evs[i].ID = string(rune('a' + i))
	}
	access.ChainAudit("", evs)
	return evs
}

func TestVerifyChain(t *testing.T) {
	good := chain(5)
	head := good[4].Hash
	legacy := []access.AuditEvent{chainEvent(-2), chainEvent(-1)}
	tests := []struct {
		name    string
		evs     []access.AuditEvent
		head    string
		pos     int
		kind    access.BreakKind
		start   int
		unchain int
	}{
		{name: "intact", evs: good, head: head, start: 1},
		{name: "empty", evs: nil, head: ""},
		{name: "legacy then chain", evs: append(append([]access.AuditEvent{}, legacy...), good...), head: head, start: 3, unchain: 2},
		{name: "only legacy", evs: legacy, head: "", unchain: 2},
		{name: "edited", evs: with(good, func(e []access.AuditEvent) []access.AuditEvent { e[2].Reason = "x"; return e }), head: head, pos: 3, kind: access.BreakEdited, start: 1},
		{name: "deleted", evs: with(good, func(e []access.AuditEvent) []access.AuditEvent { return append(e[:1], e[2:]...) }), head: head, pos: 2, kind: access.BreakLink, start: 1},
		{name: "reordered", evs: with(good, func(e []access.AuditEvent) []access.AuditEvent { e[3], e[4] = e[4], e[3]; return e }), head: head, pos: 4, kind: access.BreakLink, start: 1},
		{name: "first deleted", evs: good[1:], head: head, pos: 1, kind: access.BreakLink, start: 1},
		{name: "newest deleted", evs: good[:4], head: head, pos: 4, kind: access.BreakTruncated, start: 1},
		{name: "head deleted", evs: good, head: "", pos: 5, kind: access.BreakTruncated, start: 1},
		{name: "all deleted", evs: nil, head: head, pos: 0, kind: access.BreakTruncated},
		{name: "written after the head was read", evs: good, head: good[2].Hash, start: 1},
		{name: "hash stripped inside", evs: with(good, func(e []access.AuditEvent) []access.AuditEvent { e[1].Hash = ""; return e }), head: head, pos: 2, kind: access.BreakUnchained, start: 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := access.VerifyChain(tc.evs, tc.head)
			if c.Start != tc.start || c.Unchained != tc.unchain || c.Events != len(tc.evs) {
				t.Errorf("VerifyChain = %+v, want start %d, %d unchained, %d events", c, tc.start, tc.unchain, len(tc.evs))
			}
			if tc.kind == "" {
				if c.Break != nil {
					t.Fatalf("break %+v, want intact", *c.Break)
				}
				return
			}
			if c.Break == nil || c.Break.Position != tc.pos || c.Break.Kind != tc.kind {
				t.Fatalf("break %+v, want %s at %d", c.Break, tc.kind, tc.pos)
			}
			if c.Break.Detail == "" || strings.Contains(c.Break.Detail, "%!") {
				t.Fatalf("break detail %q", c.Break.Detail)
			}
		})
	}
}

func with(evs []access.AuditEvent, fn func([]access.AuditEvent) []access.AuditEvent) []access.AuditEvent {
	return fn(append([]access.AuditEvent(nil), evs...))
}
