package bolt_test

import (
	"bytes"
	"encoding/json"
	"path/filepath"
	"testing"

	"github.com/accessbot/accessbot/access"
	"github.com/accessbot/accessbot/store/bolt"
	"github.com/accessbot/accessbot/store/storetest"
	bbolt "go.etcd.io/bbolt"
)

func openFresh(t *testing.T) access.Store {
	return openAt(t, filepath.Join(t.TempDir(), "accessbot.db"))
}

func reopenSame(t *testing.T, s access.Store) access.Store {
	ps := s.(pathStore)
	if err := ps.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	return openAt(t, ps.path)
}

func TestAuditChain(t *testing.T) {
	storetest.RunAudit(t, openFresh, reopenSame)
}

// rawAudit closes s, runs fn on its file with bbolt itself (what someone
// with write access to the file can do) and opens the store again.
func rawAudit(t *testing.T, s access.Store, fn func(audit, order *bbolt.Bucket, keys [][]byte)) access.Store {
	t.Helper()
	ps := s.(pathStore)
	if err := ps.Close(); err != nil {
		t.Fatal(err)
	}
	db, err := bbolt.Open(ps.path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	err = db.Update(func(tx *bbolt.Tx) error {
		audit, order := tx.Bucket([]byte("audit")), tx.Bucket([]byte("audit_order"))
		var keys [][]byte // audit keys in write order
		_ = order.ForEach(func(_, v []byte) error {
			keys = append(keys, bytes.Clone(v))
			return nil
		})
		fn(audit, order, keys)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	return openAt(t, ps.path)
}

func mustPut(t *testing.T, b *bbolt.Bucket, k, v []byte) {
	t.Helper()
	if err := b.Put(k, v); err != nil {
		t.Fatal(err)
	}
}

func TestAuditTamperCaught(t *testing.T) {
	storetest.RunTamper(t, openFresh, storetest.Tamper{
		Edit: func(t *testing.T, s access.Store, pos int, change func(*access.AuditEvent)) access.Store {
			return rawAudit(t, s, func(audit, _ *bbolt.Bucket, keys [][]byte) {
				var ev access.AuditEvent
				if err := json.Unmarshal(audit.Get(keys[pos-1]), &ev); err != nil {
					t.Fatal(err)
				}
				change(&ev)
				b, _ := json.Marshal(ev)
				mustPut(t, audit, keys[pos-1], b)
			})
		},
		Delete: func(t *testing.T, s access.Store, pos int) access.Store {
			return rawAudit(t, s, func(audit, _ *bbolt.Bucket, keys [][]byte) {
				if err := audit.Delete(keys[pos-1]); err != nil {
					t.Fatal(err)
				}
			})
		},
		Swap: func(t *testing.T, s access.Store, i, j int) access.Store {
			return rawAudit(t, s, func(audit, _ *bbolt.Bucket, keys [][]byte) {
				a, b := bytes.Clone(audit.Get(keys[i-1])), bytes.Clone(audit.Get(keys[j-1]))
				mustPut(t, audit, keys[i-1], b)
				mustPut(t, audit, keys[j-1], a)
			})
		},
		// As the store wrote before the chain existed: into the audit
		// bucket only (the write-order index is built when a file without
		// one is opened).
		Legacy: func(t *testing.T, s access.Store, evs []access.AuditEvent) access.Store {
			return rawAudit(t, s, func(audit, order *bbolt.Bucket, keys [][]byte) {
				for _, ev := range evs {
					seq, _ := audit.NextSequence()
					k := append(bolt.TimeKey(ev.At), bolt.SeqKey(seq)...)
					b, _ := json.Marshal(ev)
					mustPut(t, audit, k, b)
					if len(keys) > 0 {
						mustPut(t, order, bolt.SeqKey(seq), k)
					}
				}
			})
		},
	})
}
