package main

import (
	"bytes"
	"context"
	"encoding/binary"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/accessbot/accessbot/access"
	"github.com/accessbot/accessbot/store/bolt"
	bbolt "go.etcd.io/bbolt"
)

// boltConfig writes the demo config with a bolt store at a file of its own
// and returns the config path and the store path.
func boltConfig(t *testing.T) (cfgPath, db string) {
	t.Helper()
	demo, err := os.ReadFile("manifests/examples/demo.yaml")
	if err != nil {
		t.Fatal(err)
	}
	db = filepath.Join(t.TempDir(), "accessbot.db")
	cfg := strings.Replace(string(demo), "bolt: {temporary: true}", "bolt: {path: "+db+"}", 1)
	return writeFile(t, cfg), db
}

func seedAudit(t *testing.T, db string, evs ...access.AuditEvent) {
	t.Helper()
	st, err := bolt.Open(db)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	for _, ev := range evs {
		if err := st.AppendAudit(context.Background(), ev); err != nil {
			t.Fatal(err)
		}
	}
}

// accessbot audit verify: exit 0 and "intact" for an untouched log; exit 1
// naming the position of an event edited in the file.
func TestAuditVerifyCommand(t *testing.T) {
	cfg, db := boltConfig(t)
	now := time.Now()
	var evs []access.AuditEvent
	for i := range 4 {
		evs = append(evs, access.AuditEvent{At: now.Add(time.Duration(i-10) * time.Minute), Action: access.ActDriftRemoved,
			Actor: access.SystemActor, Subject: "mallory@example.com", Role: "prod-admin"})
	}
	seedAudit(t, db, evs...)

	var out, errb bytes.Buffer
	if code := run(context.Background(), []string{"audit", "verify", "--config", cfg}, nil, &out, &errb); code != 0 {
		t.Fatalf("audit verify: exit %d: %s%s", code, out.String(), errb.String())
	}
	for _, want := range []string{"audit log: 4 event(s)", "the chain starts at position 1", "intact: every link from position 1 to 4 verifies"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, out.String())
		}
	}

	// Edit the third event in the file.
	db2, err := bbolt.Open(db, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	err = db2.Update(func(tx *bbolt.Tx) error {
		seq := binary.BigEndian.AppendUint64(nil, 3) // the file's sequence key
		k := tx.Bucket([]byte("audit_order")).Get(seq)
		v := tx.Bucket([]byte("audit")).Get(k)
		return tx.Bucket([]byte("audit")).Put(k, bytes.Replace(v, []byte("mallory"), []byte("nobody1"), 1))
	})
	if err != nil {
		t.Fatal(err)
	}
	db2.Close()
	out.Reset()
	if code := run(context.Background(), []string{"audit", "verify", "--config", cfg}, nil, &out, &errb); code != 1 {
		t.Fatalf("audit verify of an edited log: exit %d, want 1: %s", code, out.String())
	}
	if want := "BROKEN at position 3 (id 3, "; !strings.Contains(out.String(), want) || !strings.Contains(out.String(), "edited: hash mismatch") {
		t.Errorf("output lacks %q and the kind:\n%s", want, out.String())
	}
}

func TestReportCommand(t *testing.T) {
	cfg, db := boltConfig(t)
	now := time.Now()
	seedAudit(t, db,
		access.AuditEvent{At: now.Add(-2 * time.Hour), Action: access.ActDenied, RequestID: "r-x", Actor: "dave@example.com", Subject: "erin@example.com", Role: "prod-admin", Reason: "no ticket"},
		access.AuditEvent{At: now.Add(-time.Hour), Action: access.ActDriftRemoved, Actor: access.SystemActor, Subject: "mallory@example.com", Role: "prod-admin"})
	var out, errb bytes.Buffer
	if code := run(context.Background(), []string{"report", "--config", cfg, "--since", "1d"}, nil, &out, &errb); code != 0 {
		t.Fatalf("report: exit %d: %s", code, errb.String())
	}
	for _, want := range []string{"# Access report", "- Denials: 1", "- Drift found: 1", "| erin@example.com | prod-admin | dave@example.com | no ticket | r-x |"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("report lacks %q:\n%s", want, out.String())
		}
	}
	out.Reset()
	if code := run(context.Background(), []string{"report", "--config", cfg, "--format", "csv"}, nil, &out, &errb); code != 0 {
		t.Fatalf("report csv: exit %d: %s", code, errb.String())
	}
	if !strings.HasPrefix(out.String(), "section,at,request_id,") || !strings.Contains(out.String(), "denial,") {
		t.Errorf("csv report:\n%s", out.String())
	}
	errb.Reset()
	if code := run(context.Background(), []string{"report", "--config", cfg, "--format", "pdf"}, nil, &out, &errb); code != 2 ||
		!strings.Contains(errb.String(), "--format must be md or csv") {
		t.Errorf("report --format pdf: exit %d: %s", code, errb.String())
	}
}
