package report_test

import (
	"bytes"
	"encoding/csv"
	"math"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/accessbot/accessbot/access"
	"github.com/accessbot/accessbot/report"
)

// mon is the Monday the report week starts.
var mon = time.Date(2030, 3, 11, 0, 0, 0, 0, time.UTC)

// at is day d (0 = Monday) of the week at hh:mm.
func at(d, hh, mm int) time.Time {
	return mon.AddDate(0, 0, d).Add(time.Duration(hh)*time.Hour + time.Duration(mm)*time.Minute)
}

func ev(t time.Time, act access.Action, id, actor, subject, role string) access.AuditEvent {
	return access.AuditEvent{At: t, Action: act, RequestID: id, Actor: actor, Subject: subject, Role: role}
}

const sys = access.SystemActor

// week is a seeded week of events (and some just outside it).
func week() report.Input {
	e := []access.AuditEvent{
		// Just outside the period: neither counted.
		ev(at(-1, 12, 0), access.ActDenied, "r-before", "dave@x", "erin@x", "prod-admin"),
		ev(at(7, 1, 0), access.ActDenied, "r-after", "dave@x", "erin@x", "prod-admin"),
		// r1: alice, Tue 10:00 to 12:03 (due 12:00): 2.05h, 3 minutes late.
		ev(at(1, 10, 0), access.ActGranted, "r1", sys, "alice@x", "prod-admin"),
		ev(at(1, 12, 0), access.ActRevokeStart, "r1", sys, "alice@x", "prod-admin"),
		ev(at(1, 12, 3), access.ActRevoked, "r1", sys, "alice@x", "prod-admin"),
		// r2: alice, Wed 09:00 to 13:30 (due 13:00, alert at 13:05): 4.5h.
		ev(at(2, 9, 0), access.ActGranted, "r2", sys, "alice@x", "prod-admin"),
		ev(at(2, 10, 0), access.ActDriftReapplied, "r2", sys, "alice@x", "prod-admin"),
		ev(at(2, 13, 0), access.ActRevokeStart, "r2", sys, "alice@x", "prod-admin"),
		ev(at(2, 13, 5), access.ActRevokeAlert, "r2", sys, "alice@x", "prod-admin"),
		ev(at(2, 13, 30), access.ActRevoked, "r2", sys, "alice@x", "prod-admin"),
		// r3: bob, Sunday 22:00 before the week to Monday 02:00: 2h in it, no grant started in it.
		ev(at(-1, 22, 0), access.ActGranted, "r3", sys, "bob@x", "prod-read"),
		ev(at(0, 2, 0), access.ActRevokeStart, "r3", sys, "bob@x", "prod-read"),
		ev(at(0, 2, 0), access.ActRevoked, "r3", sys, "bob@x", "prod-read"),
		// r4: carol break-glass Thu 03:00, acknowledged by dave 03:20, revoked early 04:00: 1h.
		ev(at(3, 3, 0), access.ActBreakGlass, "r4", "carol@x", "carol@x", "prod-admin"),
		ev(at(3, 3, 0), access.ActGranted, "r4", sys, "carol@x", "prod-admin"),
		ev(at(3, 3, 20), access.ActAcknowledged, "r4", "dave@x", "carol@x", "prod-admin"),
		ev(at(3, 4, 0), access.ActRevokeStart, "r4", "carol@x", "carol@x", "prod-admin"),
		ev(at(3, 4, 0), access.ActRevoked, "r4", sys, "carol@x", "prod-admin"),
		// r5: bob break-glass Sunday 23:00, still held at the end, not acknowledged: 1h.
		ev(at(6, 23, 0), access.ActBreakGlass, "r5", "bob@x", "bob@x", "prod-admin"),
		ev(at(6, 23, 0), access.ActGranted, "r5", sys, "bob@x", "prod-admin"),
		// r6 denied, r7 timed out.
		ev(at(4, 10, 0), access.ActDenied, "r6", "dave@x", "erin@x", "prod-admin"),
		ev(at(4, 11, 0), access.ActTimedOut, "r7", sys, "erin@x", "prod-read"),
		// Drift with no request.
		ev(at(5, 12, 0), access.ActDriftRemoved, "", sys, "mallory@x", "prod-admin"),
		// Rotation grants: bob Mon 09:00 to Tue 09:00 (24h), carol from Tue 09:00 to the end, Monday 00:00 (5 days 15h = 135h).
		ev(at(0, 9, 0), access.ActGranted, "r8", sys, "bob@x", "prod-read"),
		ev(at(1, 9, 0), access.ActRevokeStart, "r8", sys, "bob@x", "prod-read"),
		ev(at(1, 9, 0), access.ActRevoked, "r8", sys, "bob@x", "prod-read"),
		ev(at(1, 9, 0), access.ActGranted, "r9", sys, "carol@x", "prod-read"),
	}
	e[20].Reason = "no ticket" // r6
	reqs := map[string]*access.Request{
		"r1": {ID: "r1", Kind: access.KindRequest, EndReason: access.EndExpired, EndsAt: at(1, 12, 0)},
		"r2": {ID: "r2", Kind: access.KindRequest, EndReason: access.EndExpired, EndsAt: at(2, 13, 0)},
		"r3": {ID: "r3", Kind: access.KindRequest, EndReason: access.EndExpired, EndsAt: at(0, 2, 0)},
		"r4": {ID: "r4", Kind: access.KindBreakGlass, EndReason: access.EndRevoked},
		"r5": {ID: "r5", Kind: access.KindBreakGlass},
		"r8": {ID: "r8", Kind: access.KindRotation, EndReason: access.EndShiftOver},
		"r9": {ID: "r9", Kind: access.KindRotation},
	}
	// Reverse the order: Compute must not depend on it.
	for i, j := 0, len(e)-1; i < j; i, j = i+1, j-1 {
		e[i], e[j] = e[j], e[i]
	}
	return report.Input{From: mon, To: mon.AddDate(0, 0, 7), Events: e, Requests: reqs}
}

func near(a, b float64) bool { return math.Abs(a-b) < 1e-9 }

func TestComputeSeededWeek(t *testing.T) {
	r := report.Compute(week())
	wantHeld := []report.Held{
		{Role: "prod-admin", Person: "alice@x", Grants: 2, Hours: 2.05 + 4.5},
		{Role: "prod-admin", Person: "bob@x", Grants: 1, Hours: 1},
		{Role: "prod-admin", Person: "carol@x", Grants: 1, Hours: 1},
		{Role: "prod-read", Person: "bob@x", Grants: 0, Hours: 2},
	}
	if len(r.Held) != len(wantHeld) {
		t.Fatalf("Held = %+v, want %+v", r.Held, wantHeld)
	}
	for i, w := range wantHeld {
		g := r.Held[i]
		if g.Role != w.Role || g.Person != w.Person || g.Grants != w.Grants || !near(g.Hours, w.Hours) {
			t.Errorf("Held[%d] = %+v, want %+v", i, g, w)
		}
	}
	if !near(r.TotalHours, 10.55) {
		t.Errorf("TotalHours = %v, want 10.55", r.TotalHours)
	}
	wantBG := []report.BreakGlass{
		{RequestID: "r4", Person: "carol@x", Role: "prod-admin", At: at(3, 3, 0), AckedBy: "dave@x", AckedAt: at(3, 3, 20)},
		{RequestID: "r5", Person: "bob@x", Role: "prod-admin", At: at(6, 23, 0)},
	}
	if !reflect.DeepEqual(r.BreakGlass, wantBG) {
		t.Errorf("BreakGlass = %+v, want %+v", r.BreakGlass, wantBG)
	}
	if len(r.Denials) != 1 || r.Denials[0].RequestID != "r6" || r.Denials[0].By != "dave@x" || r.Denials[0].Reason != "no ticket" {
		t.Errorf("Denials = %+v, want r6 by dave@x (no ticket)", r.Denials)
	}
	if len(r.TimedOut) != 1 || r.TimedOut[0].RequestID != "r7" {
		t.Errorf("TimedOut = %+v, want r7", r.TimedOut)
	}
	wantRev := []report.Revocation{
		{RequestID: "r1", Person: "alice@x", Role: "prod-admin", Due: at(1, 12, 0), RevokedAt: at(1, 12, 3), Late: 3 * time.Minute},
		{RequestID: "r2", Person: "alice@x", Role: "prod-admin", Due: at(2, 13, 0), RevokedAt: at(2, 13, 30), Late: 30 * time.Minute, Alerted: true},
	}
	if !reflect.DeepEqual(r.Revocations, wantRev) {
		t.Errorf("Revocations = %+v, want %+v", r.Revocations, wantRev)
	}
	if len(r.Drift) != 2 || r.Drift[0].Action != access.ActDriftReapplied || r.Drift[1].Person != "mallory@x" {
		t.Errorf("Drift = %+v, want r2 reapplied, then mallory@x removed", r.Drift)
	}
	wantStanding := []report.Held{
		{Role: "prod-read", Person: "bob@x", Grants: 1, Hours: 24},
		{Role: "prod-read", Person: "carol@x", Grants: 1, Hours: 135},
	}
	if !reflect.DeepEqual(r.Standing, wantStanding) || !near(r.StandingHours, 159) {
		t.Errorf("Standing = %+v (%v h), want %+v (159 h)", r.Standing, r.StandingHours, wantStanding)
	}
}

func TestMarkdown(t *testing.T) {
	var b bytes.Buffer
	if err := report.Markdown(&b, report.Compute(week())); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	for _, want := range []string{
		"# Access report 2030-03-11 00:00 UTC to 2030-03-18 00:00 UTC",
		"- Grants: 4, 10.55 hours held",
		"- Break-glass uses: 2 (1 not acknowledged)",
		"- Denials: 1\n- Requests timed out: 1",
		"- Revocations failed or late: 2\n- Drift found: 2",
		"- Standing on-call grants: 159.00 hours",
		"| prod-admin | alice@x | 2 | 6.55 |",
		"| prod-read | bob@x | 0 | 2.00 |",
		"| 2030-03-14 03:00 UTC | carol@x | prod-admin | - | dave@x at 2030-03-14 03:20 UTC | r4 |",
		"| 2030-03-17 23:00 UTC | bob@x | prod-admin | - | NOT ACKNOWLEDGED | r5 |",
		"| 2030-03-15 10:00 UTC | erin@x | prod-admin | dave@x | no ticket | r6 |",
		"| 2030-03-13 13:00 UTC | alice@x | prod-admin | 2030-03-13 13:30 UTC | 30m0s | yes | r2 |",
		"| prod-read | carol@x | 1 | 135.00 |",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("Markdown lacks %q:\n%s", want, out)
		}
	}
}

func TestCSV(t *testing.T) {
	var b bytes.Buffer
	if err := report.CSV(&b, report.Compute(week())); err != nil {
		t.Fatal(err)
	}
	rows, err := csv.NewReader(&b).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(rows[0], report.CSVHeader) {
		t.Fatalf("header = %v", rows[0])
	}
	count := map[string]int{}
	for _, r := range rows[1:] {
		count[r[0]]++
	}
	want := map[string]int{"grant": 4, "break_glass": 2, "denial": 1, "timed_out": 1, "revocation": 2, "drift": 2, "standing": 2, "total": 1}
	if !reflect.DeepEqual(count, want) {
		t.Errorf("rows per section = %v, want %v", count, want)
	}
	last := rows[len(rows)-1]
	if last[0] != "total" || last[6] != "10.55" {
		t.Errorf("total row = %v, want 10.55 hours", last)
	}
	if got := rows[1]; got[3] != "alice@x" || got[4] != "prod-admin" || got[5] != "2" || got[6] != "6.55" {
		t.Errorf("first grant row = %v", got)
	}
}

func TestCSVNeutralisesFormulas(t *testing.T) {
	in := week()
	in.Events = append(in.Events, access.AuditEvent{At: at(4, 12, 0), Action: access.ActDenied, RequestID: "r-x", Actor: "dave@x",
		Subject: "erin@x", Role: "prod-admin", Reason: "=HYPERLINK(\"http://evil\")"})
	var b bytes.Buffer
	if err := report.CSV(&b, report.Compute(in)); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(b.String(), `'=HYPERLINK`) {
		t.Fatalf("formula not neutralised:\n%s", b.String())
	}
}

func TestChat(t *testing.T) {
	in := week()
	// r2's removal still failing at the end of the week.
	var evs []access.AuditEvent
	for _, e := range in.Events {
		if !(e.RequestID == "r2" && e.Action == access.ActRevoked) {
			evs = append(evs, e)
		}
	}
	in.Events = evs
	out := report.Chat(report.Compute(in))
	for _, want := range []string{
		"- Break-glass uses: 2 (1 not acknowledged)\n",
		"Break-glass by bob@x (prod-admin, 2030-03-17 23:00 UTC) is not acknowledged (request r5)\n",
		"Access of alice@x to prod-admin, due to end 2030-03-13 13:00 UTC, is not revoked yet (request r2)\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("Chat lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "|") || strings.Contains(out, "#") {
		t.Errorf("Chat has Markdown tables or headings:\n%s", out)
	}
}
