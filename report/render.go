package report

import (
	"encoding/csv"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"
)

const stamp = "2006-01-02 15:04 MST"

func when(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(stamp)
}

func hours(h float64) string { return strconv.FormatFloat(h, 'f', 2, 64) }

// mdCell keeps a value inside its Markdown table cell.
func mdCell(s string) string {
	s = strings.NewReplacer("|", `\|`, "\n", " ", "\r", " ").Replace(s)
	if s == "" {
		return "-"
	}
	return s
}

// Markdown writes the report as Markdown: a summary, then one table per
// section (sections with nothing to show say so).
func Markdown(w io.Writer, r Report) error {
	var b strings.Builder
	fmt.Fprintf(&b, "# Access report %s to %s\n\n", when(r.From), when(r.To))
	b.WriteString(summary(r))

	table := func(title string, head []string, rows [][]string) {
		fmt.Fprintf(&b, "\n## %s\n\n", title)
		if len(rows) == 0 {
			b.WriteString("None.\n")
			return
		}
		b.WriteString("| " + strings.Join(head, " | ") + " |\n")
		b.WriteString("|" + strings.Repeat(" --- |", len(head)) + "\n")
		for _, row := range rows {
			for i := range row {
				row[i] = mdCell(row[i])
			}
			b.WriteString("| " + strings.Join(row, " | ") + " |\n")
		}
	}
	table("Grants per role and person", []string{"Role", "Person", "Grants", "Hours"}, heldRows(r.Held))
	var rows [][]string
	for _, g := range r.BreakGlass {
		ack := "NOT ACKNOWLEDGED"
		if g.AckedBy != "" {
			ack = g.AckedBy + " at " + when(g.AckedAt)
		}
		rows = append(rows, []string{when(g.At), g.Person, g.Role, g.Reason, ack, g.RequestID})
	}
	table("Break-glass uses", []string{"At", "Person", "Role", "Reason", "Acknowledged", "Request"}, rows)
	table("Denials", []string{"At", "Person", "Role", "Denied by", "Reason", "Request"}, decisionRows(r.Denials, true))
	table("Requests that timed out", []string{"At", "Person", "Role", "Request"}, decisionRows(r.TimedOut, false))
	rows = nil
	for _, v := range r.Revocations {
		rows = append(rows, []string{when(v.Due), v.Person, v.Role, revokedText(v), v.Late.Round(time.Second).String(), yesNo(v.Alerted), v.RequestID})
	}
	table("Revocations that failed or were late", []string{"Due", "Person", "Role", "Revoked", "Late by", "Alert raised", "Request"}, rows)
	rows = nil
	for _, d := range r.Drift {
		rows = append(rows, []string{when(d.At), string(d.Action), d.Person, d.Role, d.Detail})
	}
	table("Drift found", []string{"At", "Correction", "Person", "Role", "Detail"}, rows)
	table("Standing on-call (rotation) grants", []string{"Role", "Person", "Shifts", "Hours"}, heldRows(r.Standing))
	_, err := io.WriteString(w, b.String())
	return err
}

// summary is the report's figures as a bullet list.
func summary(r Report) string {
	var b strings.Builder
	grants := 0
	for _, h := range r.Held {
		grants += h.Grants
	}
	fmt.Fprintf(&b, "- Grants: %d, %s hours held\n", grants, hours(r.TotalHours))
	fmt.Fprintf(&b, "- Break-glass uses: %d (%d not acknowledged)\n", len(r.BreakGlass), unacked(r))
	fmt.Fprintf(&b, "- Denials: %d\n- Requests timed out: %d\n", len(r.Denials), len(r.TimedOut))
	fmt.Fprintf(&b, "- Revocations failed or late: %d\n- Drift found: %d\n", len(r.Revocations), len(r.Drift))
	fmt.Fprintf(&b, "- Standing on-call grants: %s hours\n", hours(r.StandingHours))
	return b.String()
}

// Chat is the report for a chat post: the figures, then what needs
// someone's attention (break-glass uses nobody acknowledged, revocations
// not done), each on its own line. The tables are left to `accessbot
// report`: chat platforms do not render them.
func Chat(r Report) string {
	var b strings.Builder
	b.WriteString(summary(r))
	for _, g := range r.BreakGlass {
		if g.AckedBy == "" {
			fmt.Fprintf(&b, "Break-glass by %s (%s, %s) is not acknowledged (request %s)\n", g.Person, g.Role, when(g.At), g.RequestID)
		}
	}
	for _, v := range r.Revocations {
		if v.RevokedAt.IsZero() {
			fmt.Fprintf(&b, "Access of %s to %s, due to end %s, is not revoked yet (request %s)\n", v.Person, v.Role, when(v.Due), v.RequestID)
		}
	}
	return b.String()
}

func unacked(r Report) int {
	n := 0
	for _, g := range r.BreakGlass {
		if g.AckedBy == "" {
			n++
		}
	}
	return n
}

func revokedText(v Revocation) string {
	if v.RevokedAt.IsZero() {
		return "NOT REVOKED"
	}
	return when(v.RevokedAt)
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

func heldRows(hs []Held) [][]string {
	var rows [][]string
	for _, h := range hs {
		rows = append(rows, []string{h.Role, h.Person, strconv.Itoa(h.Grants), hours(h.Hours)})
	}
	return rows
}

func decisionRows(ds []Decision, withBy bool) [][]string {
	var rows [][]string
	for _, d := range ds {
		if withBy {
			rows = append(rows, []string{when(d.At), d.Person, d.Role, d.By, d.Reason, d.RequestID})
		} else {
			rows = append(rows, []string{when(d.At), d.Person, d.Role, d.RequestID})
		}
	}
	return rows
}

// CSVHeader is the header row of CSV.
var CSVHeader = []string{"section", "at", "request_id", "person", "role", "count", "hours", "by", "detail"}

// CSV writes the report as one CSV table: a row per line of each section,
// the section named in the first column (grant, break_glass, denial,
// timed_out, revocation, drift, standing, total). Cells a spreadsheet would
// read as a formula are neutralised.
func CSV(w io.Writer, r Report) error {
	cw := csv.NewWriter(w)
	write := func(row ...string) {
		for i := range row {
			row[i] = csvCell(row[i])
		}
		_ = cw.Write(row)
	}
	write(CSVHeader...)
	iso := func(t time.Time) string {
		if t.IsZero() {
			return ""
		}
		return t.UTC().Format(time.RFC3339)
	}
	for _, h := range r.Held {
		write("grant", "", "", h.Person, h.Role, strconv.Itoa(h.Grants), hours(h.Hours), "", "")
	}
	for _, g := range r.BreakGlass {
		detail := "not acknowledged"
		if g.AckedBy != "" {
			detail = "acknowledged " + iso(g.AckedAt)
		}
		write("break_glass", iso(g.At), g.RequestID, g.Person, g.Role, "", "", g.AckedBy, detail)
	}
	for _, d := range r.Denials {
		write("denial", iso(d.At), d.RequestID, d.Person, d.Role, "", "", d.By, d.Reason)
	}
	for _, d := range r.TimedOut {
		write("timed_out", iso(d.At), d.RequestID, d.Person, d.Role, "", "", "", "")
	}
	for _, v := range r.Revocations {
		detail := "revoked " + iso(v.RevokedAt)
		if v.RevokedAt.IsZero() {
			detail = "not revoked"
		}
		if v.Alerted {
			detail += "; alert raised"
		}
		write("revocation", iso(v.Due), v.RequestID, v.Person, v.Role, "", hours(v.Late.Hours()), "", detail)
	}
	for _, d := range r.Drift {
		write("drift", iso(d.At), d.RequestID, d.Person, d.Role, "", "", string(d.Action), d.Detail)
	}
	for _, h := range r.Standing {
		write("standing", "", "", h.Person, h.Role, strconv.Itoa(h.Grants), hours(h.Hours), "", "")
	}
	write("total", iso(r.To), "", "", "", "", hours(r.TotalHours), "", "from "+iso(r.From))
	cw.Flush()
	return cw.Error()
}

// csvCell neutralises a cell a spreadsheet would read as a formula.
func csvCell(s string) string {
	if s != "" && strings.ContainsRune("=+-@\t\r", rune(s[0])) {
		return "'" + s
	}
	return s
}
