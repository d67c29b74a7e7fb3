package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/accessbot/accessbot/access"
	"github.com/accessbot/accessbot/store/bolt"
)

// accessbot audit shows events that belong to no request (a drift removal).
func TestAuditCommandShowsDriftRemoval(t *testing.T) {
	demo, err := os.ReadFile("manifests/examples/demo.yaml")
	if err != nil {
		t.Fatal(err)
	}
	db := filepath.Join(t.TempDir(), "accessbot.db")
	cfg := strings.Replace(string(demo), "bolt: {temporary: true}", "bolt: {path: "+db+"}", 1)
	if cfg == string(demo) {
		t.Fatal("demo config no longer has a temporary bolt store")
	}
	st, err := bolt.Open(db)
	if err != nil {
		t.Fatal(err)
	}
	ev := access.AuditEvent{At: time.Now().Add(-time.Minute), Action: access.ActDriftRemoved, Actor: access.SystemActor,
		Subject: "mallory@example.com", Role: "prod-admin", Detail: "member of dryrun group prod-admins without a grant; removed (reconcile: remove)"}
	if err := st.AppendAudit(context.Background(), ev); err != nil {
		t.Fatal(err)
	}
	st.Close()

	var out, errb bytes.Buffer
	if code := run(context.Background(), []string{"audit", "--config", writeFile(t, cfg), "--since", "1h"}, nil, &out, &errb); code != 0 {
		t.Fatalf("audit: exit %d: %s", code, errb.String())
	}
	for _, want := range []string{`"action":"drift_removed"`, `"actor":"accessbot"`, `"subject":"mallory@example.com"`, "group prod-admins without a grant"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("audit output lacks %s:\n%s", want, out.String())
		}
	}
}
