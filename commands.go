package main

import (
	"context"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/accessbot/accessbot/access"
	"github.com/accessbot/accessbot/app"
	"github.com/accessbot/accessbot/config"
)

func cmdCheck(ctx context.Context, l *config.Loaded, online bool, stdout, stderr io.Writer) int {
	// Nothing check prints may show a value that came from ${VAR}.
	stdout, stderr = redacting{stdout, l.Redact}, redacting{stderr, l.Redact}
	fmt.Fprintf(stdout, "config OK: %d role(s), %d rotation(s)\n", len(l.Policy.Roles), len(l.Policy.Rotations))
	for _, name := range l.Policy.RoleNames() {
		r := l.Policy.Roles[name]
		fmt.Fprintf(stdout, "  role %s: %s group %s, up to %s, %d approval(s) from %s\n", name, r.Provider, r.Group,
			access.FormatDuration(r.MaxDuration), r.Approvals, approverSummary(r))
		printNudges(stdout, r)
	}
	for _, w := range l.Warnings {
		fmt.Fprintf(stdout, "WARNING %s\n", w)
	}
	if !online {
		return 0
	}
	return app.CheckOnline(ctx, l, app.NewLogger(l.Config, stderr), stdout, stderr)
}

// redacting passes every write through redact. Each write of check's
// output is a whole line (or a whole log record), so no value is split.
type redacting struct {
	w      io.Writer
	redact func(string) string
}

func (r redacting) Write(p []byte) (int, error) {
	if _, err := io.WriteString(r.w, r.redact(string(p))); err != nil {
		return 0, err
	}
	return len(p), nil
}

func approverSummary(r access.Role) string {
	var parts []string
	for _, rot := range r.ApproverRotations {
		parts = append(parts, "on-call of "+rot)
	}
	parts = append(parts, r.ApproverUsers...)
	return strings.Join(parts, ", ")
}

func cmdAudit(ctx context.Context, l *config.Loaded, since, format string, stdout, stderr io.Writer) int {
	d, err := access.ParseDuration(since)
	if err != nil {
		fmt.Fprintf(stderr, "accessbot audit: --since %q is not a duration (e.g. 1h, 24h, 7d)\n", since)
		return 2
	}
	if format != "jsonl" && format != "csv" {
		fmt.Fprintf(stderr, "accessbot audit: --format must be jsonl or csv, not %q\n", format)
		return 2
	}
	if b := l.Config.Store.Bolt; b != nil && b.Temporary {
		fmt.Fprintln(stderr, "accessbot audit: this config uses a temporary store, which is deleted when the bot stops; nothing to read")
		return 1
	}
	st, closeStore, err := app.OpenStore(ctx, l.Config)
	if err != nil {
		fmt.Fprintf(stderr, "accessbot audit: %v\n", err)
		return 1
	}
	defer closeStore()
	evs, err := st.Audit(ctx, time.Now().Add(-d))
	if err != nil {
		fmt.Fprintf(stderr, "accessbot audit: %v\n", err)
		return 1
	}
	if err := writeAudit(stdout, evs, format); err != nil {
		fmt.Fprintf(stderr, "accessbot audit: %v\n", err)
		return 1
	}
	return 0
}

func writeAudit(w io.Writer, evs []access.AuditEvent, format string) error {
	if format == "jsonl" {
		enc := json.NewEncoder(w)
		for _, e := range evs {
			if err := enc.Encode(e); err != nil {
				return err
			}
		}
		return nil
	}
	cw := csv.NewWriter(w)
	_ = cw.Write([]string{"at", "request_id", "action", "actor", "subject", "role", "from", "to", "reason", "detail"})
	for _, e := range evs {
		row := []string{e.At.UTC().Format(time.RFC3339Nano), e.RequestID, string(e.Action), e.Actor, e.Subject,
			e.Role, string(e.From), string(e.To), e.Reason, e.Detail}
		for i := range row {
			row[i] = csvCell(row[i])
		}
		_ = cw.Write(row)
	}
	cw.Flush()
	return cw.Error()
}

// csvCell neutralises a cell a spreadsheet would read as a formula (the
// OWASP CSV-injection rule): a cell starting with = + - @, a tab or a
// carriage return gets a leading single quote. Reasons and details are typed
// by users, and an audit export is opened in spreadsheets.
func csvCell(s string) string {
	if s != "" && strings.ContainsRune("=+-@\t\r", rune(s[0])) {
		return "'" + s
	}
	return s
}
