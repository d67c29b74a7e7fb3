package access

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"time"
)

// The audit log is a hash chain: each event a store writes carries the
// hash of the event written before it (PrevHash) and its own hash (Hash),
// SHA-256 over AuditCanonical, which includes PrevHash. A store keeps the
// hash of the last event (the chain head) and moves it in the same atomic
// step as it writes the events. Editing an event breaks its hash;
// deleting or reordering events breaks the link of the next one; deleting
// the newest events leaves the head naming an event that is gone.
// VerifyChain finds the first of these.

// auditCanonicalVersion heads the canonical encoding, so a future change of
// the encoding can be told apart from tampering.
const auditCanonicalVersion = "accessbot-audit-v1\n"

// AuditCanonical is the byte string an event's Hash is computed over: a
// version line, then every field of AuditEvent except ID (the store's
// position of the event) and Hash, by JSON name in ascending order, each
// as "name=<length>:<value>\n". Strings are themselves, times are UTC in
// RFC 3339 with nanoseconds, anything else is its JSON. Fields with their
// zero value are left out, so a field added to AuditEvent later does not
// change the hash of events written before it existed.
func AuditCanonical(ev AuditEvent) []byte {
	v := reflect.ValueOf(ev)
	t := v.Type()
	type kv struct{ k, v string }
	var fields []kv
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if name == "" || name == "-" {
			name = f.Name
		}
		if name == "id" || name == "hash" || !f.IsExported() {
			continue
		}
		fv := v.Field(i)
		if fv.IsZero() || ((fv.Kind() == reflect.Slice || fv.Kind() == reflect.Map) && fv.Len() == 0) {
			continue
		}
		var s string
		switch x := fv.Interface().(type) {
		case time.Time:
			s = x.UTC().Format(time.RFC3339Nano)
		default:
			if fv.Kind() == reflect.String {
				s = fv.String()
			} else {
				b, err := json.Marshal(x)
				if err != nil {
					b = []byte(fmt.Sprintf("%#v", x))
				}
				s = string(b)
			}
		}
		fields = append(fields, kv{name, s})
	}
	sort.Slice(fields, func(i, j int) bool { return fields[i].k < fields[j].k })
	var b strings.Builder
	b.WriteString(auditCanonicalVersion)
	for _, f := range fields {
		b.WriteString(f.k)
		b.WriteByte('=')
		b.WriteString(strconv.Itoa(len(f.v)))
		b.WriteByte(':')
		b.WriteString(f.v)
		b.WriteByte('\n')
	}
	return []byte(b.String())
}

// AuditHash is the hex SHA-256 of AuditCanonical(ev). It covers PrevHash
// and ignores ID and Hash.
func AuditHash(ev AuditEvent) string {
	sum := sha256.Sum256(AuditCanonical(ev))
	return hex.EncodeToString(sum[:])
}

// ChainAudit links evs, in the order given, to the chain whose head is
// head ("" when the store has none yet): it sets each event's PrevHash and
// Hash and returns the new head (head itself when evs is empty). Stores
// call it inside the atomic step that writes the events.
func ChainAudit(head string, evs []AuditEvent) string {
	for i := range evs {
		evs[i].PrevHash = head
		evs[i].Hash = AuditHash(evs[i])
		head = evs[i].Hash
	}
	return head
}

// AuditStream is the optional capability of a Store to read its audit log
// in the order it was written (the chain's order), a page at a time, and
// to tell the chain head. store/bolt and store/redis have it.
type AuditStream interface {
	// AuditAfter returns up to limit events (all when limit <= 0) written
	// after the event whose ID is after ("" : from the first), in write
	// order, each with its ID. An ID that is not a position of this store
	// is an error.
	AuditAfter(ctx context.Context, after string, limit int) ([]AuditEvent, error)

	// AuditHead returns the Hash of the last chained event written, ""
	// when no chained event was written yet.
	AuditHead(ctx context.Context) (string, error)
}

// AuditCursors is the optional capability of a Store to keep named
// positions in its audit log: how far each audit sink has delivered.
type AuditCursors interface {
	// AuditCursor returns the position (an event ID) stored under name,
	// "" when none was stored.
	AuditCursor(ctx context.Context, name string) (string, error)

	// SetAuditCursor stores pos under name. Under a Fence (WithFence) it
	// is made only while the fence holds, like every fenced write
	// (ErrFenced otherwise). Setting the same value again is harmless.
	SetAuditCursor(ctx context.Context, name, pos string) error
}

// ReadAuditChain reads the whole audit log of st in write order, a page at
// a time, and its chain head. The head is read first: events written
// meanwhile come after the event it names (VerifyChain allows for that).
func ReadAuditChain(ctx context.Context, st AuditStream) ([]AuditEvent, string, error) {
	head, err := st.AuditHead(ctx)
	if err != nil {
		return nil, "", err
	}
	var all []AuditEvent
	after := ""
	const page = 1000
	for {
		evs, err := st.AuditAfter(ctx, after, page)
		if err != nil {
			return nil, "", err
		}
		all = append(all, evs...)
		if len(evs) < page {
			break
		}
		after = evs[len(evs)-1].ID
	}
	return all, head, nil
}

// BreakKind says what is wrong at a broken link of the audit chain.
type BreakKind string

// The ways a chain breaks.
const (
	// BreakEdited: the event's hash does not match its content: it was
	// changed after it was written.
	BreakEdited BreakKind = "edited"
	// BreakLink: the event's PrevHash is not the hash of the event before
	// it: events before it were deleted, or events were reordered.
	BreakLink BreakKind = "deleted_or_reordered"
	// BreakUnchained: an event without a hash after the chain started:
	// inserted, or its hash removed.
	BreakUnchained BreakKind = "unchained"
	// BreakTruncated: the chain head names an event that is not the last
	// one: the newest events were deleted.
	BreakTruncated BreakKind = "truncated"
)

// ChainBreak is the first broken link of an audit chain.
type ChainBreak struct {
	Position int // 1-based position in write order of the event where the chain breaks (the last event for BreakTruncated)
	ID       string
	At       time.Time
	Kind     BreakKind
	Detail   string // what is wrong, in a sentence
}

// ChainCheck is what VerifyChain found.
type ChainCheck struct {
	Events    int // events checked
	Unchained int // events before the chain starts (written before the chain existed)
	Start     int // 1-based position of the first chained event; 0 when there is none
	Break     *ChainBreak
}

// Intact reports whether no link is broken.
func (c ChainCheck) Intact() bool { return c.Break == nil }

// VerifyChain recomputes the chain over evs (in write order) and checks it
// against head (the store's chain head) and returns where it starts and
// the first broken link, if any. Events before the first one with a hash
// were written before the chain existed: they are counted, not checked.
func VerifyChain(evs []AuditEvent, head string) ChainCheck {
	c := ChainCheck{Events: len(evs)}
	brk := func(i int, kind BreakKind, format string, args ...any) ChainCheck {
		c.Break = &ChainBreak{Position: i + 1, ID: evs[i].ID, At: evs[i].At, Kind: kind, Detail: fmt.Sprintf(format, args...)}
		return c
	}
	prev := ""
	for i, ev := range evs {
		if ev.Hash == "" {
			if c.Start == 0 {
				c.Unchained++
				continue
			}
			return brk(i, BreakUnchained, "the event has no hash although the chain started at position %d: it was inserted, or its hash removed", c.Start)
		}
		if got := AuditHash(ev); got != ev.Hash {
			return brk(i, BreakEdited, "hash mismatch: the event was changed after it was written (stored hash %s, content hashes to %s)", short(ev.Hash), short(got))
		}
		if c.Start == 0 {
			c.Start = i + 1
			if ev.PrevHash != "" {
				return brk(i, BreakLink, "prev mismatch: the first chained event links to %s, which is missing: events before it were deleted", short(ev.PrevHash))
			}
		} else if ev.PrevHash != prev {
			return brk(i, BreakLink, "prev mismatch: the event links to %s, but the event before it is %s: events were deleted here or reordered", short(ev.PrevHash), short(prev))
		}
		prev = ev.Hash
	}
	if head == prev {
		return c
	}
	if len(evs) == 0 {
		c.Break = &ChainBreak{Kind: BreakTruncated, Detail: fmt.Sprintf("the chain head is %s but the audit log is empty: every event was deleted", short(head))}
		return c
	}
	if head == "" {
		return brk(len(evs)-1, BreakTruncated, "the chain head is missing although the log has chained events: it was deleted")
	}
	// The head may have been read before the newest events were written:
	// they link to it, so it names one of the events checked above.
	for i := len(evs) - 1; i >= 0; i-- {
		if evs[i].Hash == head {
			return c
		}
	}
	return brk(len(evs)-1, BreakTruncated, "the chain head is %s, which is no event in the log (the last one is %s): events after this one were deleted", short(head), short(prev))
}

// short is the first 12 hex digits of a hash, enough to tell two apart in
// a message.
func short(h string) string {
	if h == "" {
		return "(none)"
	}
	if len(h) > 12 {
		return h[:12]
	}
	return h
}
