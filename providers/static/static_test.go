package static

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/accessbot/accessbot/access"
)

// row is one expected shift, times written with their UTC offsets.
type row struct {
	person, start, end string
}

func ts(t *testing.T, s string) time.Time {
	t.Helper()
	v, err := time.Parse(time.RFC3339, s)
	if err != nil {
		t.Fatalf("bad test time %q: %v", s, err)
	}
	return v
}

func mustNew(t *testing.T, cfg Config) *Rotation {
	t.Helper()
	r, errs := New(cfg)
	if len(errs) > 0 {
		t.Fatalf("New(%+v): %v", cfg, errs)
	}
	return r
}

func render(s access.Shift) row {
	return row{strings.Join(s.People, ","), s.Start.Format(time.RFC3339), s.End.Format(time.RFC3339)}
}

func checkShifts(t *testing.T, got []access.Shift, want []row) {
	t.Helper()
	var g []row
	for _, s := range got {
		g = append(g, render(s))
	}
	if !slices.Equal(g, want) {
		var b strings.Builder
		for i := range max(len(g), len(want)) {
			var gr, wr row
			if i < len(g) {
				gr = g[i]
			}
			if i < len(want) {
				wr = want[i]
			}
			mark := "  "
			if gr != wr {
				mark = "!!"
			}
			fmt.Fprintf(&b, "%s got  %v\n   want %v\n", mark, gr, wr)
		}
		t.Fatalf("shifts differ:\n%s", b.String())
	}
}

// walk follows OnCall from one shift's End to the next, the way the engine does.
func walk(t *testing.T, r *Rotation, from, to time.Time) []access.Shift {
	t.Helper()
	var out []access.Shift
	for at := from; at.Before(to); {
		s, err := r.OnCall(context.Background(), "x", at)
		if err != nil {
			t.Fatal(err)
		}
		if !s.End.After(at) || s.Start.After(at) {
			t.Fatalf("OnCall(%v) = [%v, %v): does not contain at", at, s.Start, s.End)
		}
		out = append(out, s)
		at = s.End
	}
	return out
}

// Acceptance: a weekly rotation over eight weeks with two overrides and the
// spring-forward change in Europe/Berlin (Sunday 2026-03-29).
func TestEightWeeksWithOverridesAndDST(t *testing.T) {
	r := mustNew(t, Config{
		Name:     "platform",
		Timezone: "Europe/Berlin",
		Handoff:  "monday 09:00",
		Shift:    "weekly",
		Start:    "2026-03-02",
		Members:  []string{"alice@example.com", "bob@example.com", "carol@example.com"},
		Overrides: []Override{
			// Across the DST change, inside alice's week.
			{From: "2026-03-27 18:00", Until: "2026-03-29 18:00", Member: "dave@example.com"},
			// Across the handoff from carol to alice.
			{From: "2026-04-10 17:00", Until: "2026-04-13 12:00", Member: "erin@example.com"},
		},
	})
	want := []row{
		{"alice@example.com", "2026-03-02T09:00:00+01:00", "2026-03-09T09:00:00+01:00"},
		{"bob@example.com", "2026-03-09T09:00:00+01:00", "2026-03-16T09:00:00+01:00"},
		{"carol@example.com", "2026-03-16T09:00:00+01:00", "2026-03-23T09:00:00+01:00"},
		{"alice@example.com", "2026-03-23T09:00:00+01:00", "2026-03-27T18:00:00+01:00"},
		{"dave@example.com", "2026-03-27T18:00:00+01:00", "2026-03-29T18:00:00+02:00"},
		{"alice@example.com", "2026-03-29T18:00:00+02:00", "2026-03-30T09:00:00+02:00"},
		{"bob@example.com", "2026-03-30T09:00:00+02:00", "2026-04-06T09:00:00+02:00"},
		{"carol@example.com", "2026-04-06T09:00:00+02:00", "2026-04-10T17:00:00+02:00"},
		{"erin@example.com", "2026-04-10T17:00:00+02:00", "2026-04-13T12:00:00+02:00"},
		{"alice@example.com", "2026-04-13T12:00:00+02:00", "2026-04-20T09:00:00+02:00"},
		{"bob@example.com", "2026-04-20T09:00:00+02:00", "2026-04-27T09:00:00+02:00"},
	}
	from, to := ts(t, "2026-03-02T09:00:00+01:00"), ts(t, "2026-04-27T09:00:00+02:00")
	got := r.Shifts(from, to)
	checkShifts(t, got, want)
	checkShifts(t, walk(t, r, from, to), want)
	for _, s := range got {
		t.Logf("%-18s %s  %s  %v", s.People[0], s.Start.Format(time.RFC3339), s.End.Format(time.RFC3339), s.End.Sub(s.Start))
	}

	// Alice's regular week across the change is 167 h of wall-clock week.
	if d := ts(t, want[5].end).Sub(ts(t, want[3].start)); d != 167*time.Hour {
		t.Errorf("week across spring-forward = %v, want 167h", d)
	}
	// The total covers the eight weeks exactly, without gaps.
	var total time.Duration
	for _, s := range got {
		total += s.End.Sub(s.Start)
	}
	if total != 8*7*24*time.Hour-time.Hour {
		t.Errorf("total = %v, want 8 weeks minus the lost hour", total)
	}
}

func TestOnCallHandoffs(t *testing.T) {
	members := []string{"alice@example.com", "bob@example.com", "carol@example.com"}
	berlin := Config{Name: "platform", Timezone: "Europe/Berlin", Handoff: "monday 09:00", Start: "2026-01-05", Members: members}
	thursday := berlin
	thursday.Handoff = "Thursday 17:30"
	tests := []struct {
		name string
		cfg  Config
		at   string
		want row
	}{
		{"at the handoff instant the new person holds it", berlin, "2026-01-05T09:00:00+01:00",
			row{"alice@example.com", "2026-01-05T09:00:00+01:00", "2026-01-12T09:00:00+01:00"}},
		{"just before the handoff the previous person", berlin, "2026-01-05T08:59:59+01:00",
			row{"carol@example.com", "2025-12-29T09:00:00+01:00", "2026-01-05T09:00:00+01:00"}},
		{"shift that started before the bot did (asked mid-week)", berlin, "2026-01-14T15:04:05Z",
			row{"bob@example.com", "2026-01-12T09:00:00+01:00", "2026-01-19T09:00:00+01:00"}},
		{"asked in another zone", berlin, "2026-01-19T03:00:00-05:00",
			row{"carol@example.com", "2026-01-19T09:00:00+01:00", "2026-01-26T09:00:00+01:00"}},
		{"wraps around", berlin, "2026-01-26T09:00:00+01:00",
			row{"alice@example.com", "2026-01-26T09:00:00+01:00", "2026-02-02T09:00:00+01:00"}},
		{"long before start counts backwards", berlin, "2025-12-01T12:00:00+01:00",
			row{"bob@example.com", "2025-12-01T09:00:00+01:00", "2025-12-08T09:00:00+01:00"}},
		{"thursday handoff, start date is a monday", thursday, "2026-01-05T09:00:00+01:00",
			row{"alice@example.com", "2026-01-01T17:30:00+01:00", "2026-01-08T17:30:00+01:00"}},
		{"thursday handoff, next", thursday, "2026-01-08T17:30:00+01:00",
			row{"bob@example.com", "2026-01-08T17:30:00+01:00", "2026-01-15T17:30:00+01:00"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := mustNew(t, tt.cfg)
			s, err := r.OnCall(context.Background(), "asked-name", ts(t, tt.at))
			if err != nil {
				t.Fatal(err)
			}
			if got := render(s); got != tt.want {
				t.Errorf("OnCall(%s)\n got  %v\n want %v", tt.at, got, tt.want)
			}
			if s.Rotation != "asked-name" {
				t.Errorf("Rotation = %q, want the asked name", s.Rotation)
			}
		})
	}
}

func TestStartAnchor(t *testing.T) {
	members := []string{"alice@example.com", "bob@example.com", "carol@example.com"}
	tests := []struct {
		name, start, at string
		want            row
	}{
		{"date on the handoff weekday: member 0 starts at the handoff that day", "2026-01-05", "2026-01-05T09:00:00+01:00",
			row{"alice@example.com", "2026-01-05T09:00:00+01:00", "2026-01-12T09:00:00+01:00"}},
		{"date mid-week: member 0 holds the week containing it", "2026-01-07", "2026-01-05T09:00:00+01:00",
			row{"alice@example.com", "2026-01-05T09:00:00+01:00", "2026-01-12T09:00:00+01:00"}},
		{"date-time before the handoff: member 0 holds the week before", "2026-01-05 08:00", "2026-01-05T08:00:00+01:00",
			row{"alice@example.com", "2025-12-29T09:00:00+01:00", "2026-01-05T09:00:00+01:00"}},
		{"RFC 3339 start at the handoff instant", "2026-01-05T08:00:00Z", "2026-01-05T09:00:00+01:00",
			row{"alice@example.com", "2026-01-05T09:00:00+01:00", "2026-01-12T09:00:00+01:00"}},
		// 2024-01-01 .. 2026-03-02 is 791 days = 113 weeks; 113 mod 3 = 2.
		{"default start is Monday 2024-01-01", "", "2026-03-02T10:00:00+01:00",
			row{"carol@example.com", "2026-03-02T09:00:00+01:00", "2026-03-09T09:00:00+01:00"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := mustNew(t, Config{Name: "p", Timezone: "Europe/Berlin", Handoff: "monday 09:00", Start: tt.start, Members: members})
			s, err := r.OnCall(context.Background(), "", ts(t, tt.at))
			if err != nil {
				t.Fatal(err)
			}
			if got := render(s); got != tt.want {
				t.Errorf("got  %v\nwant %v", got, tt.want)
			}
			if s.Rotation != "p" {
				t.Errorf("Rotation = %q, want the config name when none is asked", s.Rotation)
			}
		})
	}
}

func TestDST(t *testing.T) {
	two := []string{"a@example.com", "b@example.com"}
	tests := []struct {
		name     string
		cfg      Config
		from, to string
		want     []row
	}{
		{
			name: "Berlin weekly across spring-forward (last Sunday of March) is 167h",
			cfg:  Config{Timezone: "Europe/Berlin", Handoff: "monday 09:00", Start: "2026-03-23", Members: two},
			from: "2026-03-23T09:00:00+01:00", to: "2026-04-06T09:00:00+02:00",
			want: []row{
				{"a@example.com", "2026-03-23T09:00:00+01:00", "2026-03-30T09:00:00+02:00"},
				{"b@example.com", "2026-03-30T09:00:00+02:00", "2026-04-06T09:00:00+02:00"},
			},
		},
		{
			name: "Berlin weekly across fall-back (last Sunday of October) is 169h",
			cfg:  Config{Timezone: "Europe/Berlin", Handoff: "monday 09:00", Start: "2026-10-19", Members: two},
			from: "2026-10-19T09:00:00+02:00", to: "2026-10-26T09:00:00+01:00",
			want: []row{{"a@example.com", "2026-10-19T09:00:00+02:00", "2026-10-26T09:00:00+01:00"}},
		},
		{
			name: "New York weekly across spring-forward (second Sunday of March) is 167h",
			cfg:  Config{Timezone: "America/New_York", Handoff: "monday 09:00", Start: "2026-03-02", Members: two},
			from: "2026-03-02T09:00:00-05:00", to: "2026-03-09T09:00:00-04:00",
			want: []row{{"a@example.com", "2026-03-02T09:00:00-05:00", "2026-03-09T09:00:00-04:00"}},
		},
		{
			name: "New York weekly across fall-back (first Sunday of November) is 169h",
			cfg:  Config{Timezone: "America/New_York", Handoff: "monday 09:00", Start: "2026-10-26", Members: two},
			from: "2026-10-26T09:00:00-04:00", to: "2026-11-02T09:00:00-05:00",
			want: []row{{"a@example.com", "2026-10-26T09:00:00-04:00", "2026-11-02T09:00:00-05:00"}},
		},
		{
			name: "Berlin daily across spring-forward: a 23h shift",
			cfg:  Config{Timezone: "Europe/Berlin", Shift: "daily", Handoff: "09:00", Start: "2026-03-28", Members: two},
			from: "2026-03-28T09:00:00+01:00", to: "2026-03-30T09:00:00+02:00",
			want: []row{
				{"a@example.com", "2026-03-28T09:00:00+01:00", "2026-03-29T09:00:00+02:00"},
				{"b@example.com", "2026-03-29T09:00:00+02:00", "2026-03-30T09:00:00+02:00"},
			},
		},
		{
			name: "Berlin handoff at non-existent 02:30 resolves as time.Date does (03:30 CEST)",
			cfg:  Config{Timezone: "Europe/Berlin", Shift: "daily", Handoff: "02:30", Start: "2026-03-28", Members: two},
			from: "2026-03-28T02:30:00+01:00", to: "2026-03-30T02:30:00+02:00",
			want: []row{
				{"a@example.com", "2026-03-28T02:30:00+01:00", "2026-03-29T03:30:00+02:00"},
				{"b@example.com", "2026-03-29T03:30:00+02:00", "2026-03-30T02:30:00+02:00"},
			},
		},
		{
			name: "New York handoff at non-existent 02:30 resolves as time.Date does (01:30 EST)",
			cfg:  Config{Timezone: "America/New_York", Shift: "daily", Handoff: "02:30", Start: "2026-03-07", Members: two},
			from: "2026-03-07T02:30:00-05:00", to: "2026-03-09T02:30:00-04:00",
			want: []row{
				{"a@example.com", "2026-03-07T02:30:00-05:00", "2026-03-08T01:30:00-05:00"},
				{"b@example.com", "2026-03-08T01:30:00-05:00", "2026-03-09T02:30:00-04:00"},
			},
		},
		{
			name: "Berlin handoff at the repeated 02:30 of fall-back takes the second one (CET): a 25h shift",
			cfg:  Config{Timezone: "Europe/Berlin", Shift: "daily", Handoff: "02:30", Start: "2026-10-24", Members: two},
			from: "2026-10-24T02:30:00+02:00", to: "2026-10-26T02:30:00+01:00",
			want: []row{
				{"a@example.com", "2026-10-24T02:30:00+02:00", "2026-10-25T02:30:00+01:00"},
				{"b@example.com", "2026-10-25T02:30:00+01:00", "2026-10-26T02:30:00+01:00"},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.cfg.Name = "dst"
			r := mustNew(t, tt.cfg)
			from, to := ts(t, tt.from), ts(t, tt.to)
			checkShifts(t, r.Shifts(from, to), tt.want)
			checkShifts(t, walk(t, r, from, to), tt.want)
		})
	}
	// The durations the names promise.
	for _, c := range []struct {
		a, b string
		want time.Duration
	}{
		{"2026-03-23T09:00:00+01:00", "2026-03-30T09:00:00+02:00", 167 * time.Hour},
		{"2026-10-19T09:00:00+02:00", "2026-10-26T09:00:00+01:00", 169 * time.Hour},
		{"2026-03-02T09:00:00-05:00", "2026-03-09T09:00:00-04:00", 167 * time.Hour},
		{"2026-10-26T09:00:00-04:00", "2026-11-02T09:00:00-05:00", 169 * time.Hour},
		{"2026-10-24T02:30:00+02:00", "2026-10-25T02:30:00+01:00", 25 * time.Hour},
	} {
		if d := ts(t, c.b).Sub(ts(t, c.a)); d != c.want {
			t.Errorf("%s .. %s = %v, want %v", c.a, c.b, d, c.want)
		}
	}
}

func TestDayShifts(t *testing.T) {
	three := []string{"a@example.com", "b@example.com", "c@example.com"}
	tests := []struct {
		name     string
		cfg      Config
		from, to string
		want     []row
	}{
		{
			name: "daily",
			cfg:  Config{Timezone: "UTC", Shift: "daily", Handoff: "08:00", Start: "2026-02-27", Members: three},
			from: "2026-02-27T08:00:00Z", to: "2026-03-03T08:00:00Z",
			want: []row{
				{"a@example.com", "2026-02-27T08:00:00Z", "2026-02-28T08:00:00Z"},
				{"b@example.com", "2026-02-28T08:00:00Z", "2026-03-01T08:00:00Z"},
				{"c@example.com", "2026-03-01T08:00:00Z", "2026-03-02T08:00:00Z"},
				{"a@example.com", "2026-03-02T08:00:00Z", "2026-03-03T08:00:00Z"},
			},
		},
		{
			name: "3d, starting from the start date, including the shift before start",
			cfg:  Config{Timezone: "Europe/Berlin", Shift: "3d", Handoff: "09:00", Start: "2026-01-05", Members: three[:2]},
			from: "2026-01-04T00:00:00+01:00", to: "2026-01-14T09:00:00+01:00",
			want: []row{
				{"b@example.com", "2026-01-02T09:00:00+01:00", "2026-01-05T09:00:00+01:00"},
				{"a@example.com", "2026-01-05T09:00:00+01:00", "2026-01-08T09:00:00+01:00"},
				{"b@example.com", "2026-01-08T09:00:00+01:00", "2026-01-11T09:00:00+01:00"},
				{"a@example.com", "2026-01-11T09:00:00+01:00", "2026-01-14T09:00:00+01:00"},
			},
		},
		{
			name: "3d with a date-time start sets the phase from the latest handoff before it",
			cfg:  Config{Timezone: "UTC", Shift: "3D", Handoff: "09:00", Start: "2026-01-06 08:00", Members: three[:2]},
			from: "2026-01-05T09:00:00Z", to: "2026-01-08T09:00:00Z",
			want: []row{
				{"a@example.com", "2026-01-05T09:00:00Z", "2026-01-08T09:00:00Z"},
			},
		},
		{
			name: "2w with handoff on friday",
			cfg:  Config{Timezone: "UTC", Shift: "2w", Handoff: "fri 16:00", Start: "2026-01-02", Members: three[:2]},
			from: "2026-01-02T16:00:00Z", to: "2026-01-30T16:00:00Z",
			want: []row{
				{"a@example.com", "2026-01-02T16:00:00Z", "2026-01-16T16:00:00Z"},
				{"b@example.com", "2026-01-16T16:00:00Z", "2026-01-30T16:00:00Z"},
			},
		},
		{
			name: "single member, 1w: one shift per week, not merged",
			cfg:  Config{Timezone: "UTC", Shift: "1w", Handoff: "monday 00:00", Start: "2026-01-05", Members: three[:1]},
			from: "2026-01-05T00:00:00Z", to: "2026-01-19T00:00:00Z",
			want: []row{
				{"a@example.com", "2026-01-05T00:00:00Z", "2026-01-12T00:00:00Z"},
				{"a@example.com", "2026-01-12T00:00:00Z", "2026-01-19T00:00:00Z"},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := mustNew(t, tt.cfg)
			from, to := ts(t, tt.from), ts(t, tt.to)
			checkShifts(t, r.Shifts(from, to), tt.want)
			checkShifts(t, walk(t, r, from, to), tt.want)
		})
	}
}

func TestOverrides(t *testing.T) {
	base := Config{Name: "p", Timezone: "UTC", Handoff: "monday 09:00", Start: "2026-01-05",
		Members: []string{"a@example.com", "b@example.com"}}
	tests := []struct {
		name      string
		overrides []Override
		from, to  string
		want      []row
	}{
		{
			name:      "override inside a shift splits it in three",
			overrides: []Override{{From: "2026-01-07 12:00", Until: "2026-01-08 12:00", Member: "Zed@Example.com"}},
			from:      "2026-01-05T09:00:00Z", to: "2026-01-12T09:00:00Z",
			want: []row{
				{"a@example.com", "2026-01-05T09:00:00Z", "2026-01-07T12:00:00Z"},
				{"zed@example.com", "2026-01-07T12:00:00Z", "2026-01-08T12:00:00Z"},
				{"a@example.com", "2026-01-08T12:00:00Z", "2026-01-12T09:00:00Z"},
			},
		},
		{
			name: "adjacent overrides, one at the handoff instant, one by a member",
			overrides: []Override{
				{From: "2026-01-12 09:00", Until: "2026-01-13 09:00", Member: "a@example.com"},
				{From: "2026-01-11 09:00", Until: "2026-01-12 09:00", Member: "z@example.com"},
			},
			from: "2026-01-10T00:00:00Z", to: "2026-01-19T09:00:00Z",
			want: []row{
				{"a@example.com", "2026-01-05T09:00:00Z", "2026-01-11T09:00:00Z"},
				{"z@example.com", "2026-01-11T09:00:00Z", "2026-01-12T09:00:00Z"},
				{"a@example.com", "2026-01-12T09:00:00Z", "2026-01-13T09:00:00Z"},
				{"b@example.com", "2026-01-13T09:00:00Z", "2026-01-19T09:00:00Z"},
			},
		},
		{
			name:      "override covering two whole shifts, RFC 3339 times",
			overrides: []Override{{From: "2026-01-12T08:00:00Z", Until: "2026-01-26T10:00:00Z", Member: "z@example.com"}},
			from:      "2026-01-12T00:00:00Z", to: "2026-02-02T09:00:00Z",
			want: []row{
				{"a@example.com", "2026-01-05T09:00:00Z", "2026-01-12T08:00:00Z"},
				{"z@example.com", "2026-01-12T08:00:00Z", "2026-01-26T10:00:00Z"},
				{"b@example.com", "2026-01-26T10:00:00Z", "2026-02-02T09:00:00Z"},
			},
		},
		{
			name: "two overrides in the same shift",
			overrides: []Override{
				{From: "2026-01-06 00:00", Until: "2026-01-07 00:00", Member: "x@example.com"},
				{From: "2026-01-08 00:00", Until: "2026-01-09 00:00", Member: "y@example.com"},
			},
			from: "2026-01-05T09:00:00Z", to: "2026-01-12T09:00:00Z",
			want: []row{
				{"a@example.com", "2026-01-05T09:00:00Z", "2026-01-06T00:00:00Z"},
				{"x@example.com", "2026-01-06T00:00:00Z", "2026-01-07T00:00:00Z"},
				{"a@example.com", "2026-01-07T00:00:00Z", "2026-01-08T00:00:00Z"},
				{"y@example.com", "2026-01-08T00:00:00Z", "2026-01-09T00:00:00Z"},
				{"a@example.com", "2026-01-09T00:00:00Z", "2026-01-12T09:00:00Z"},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := base
			cfg.Overrides = tt.overrides
			r := mustNew(t, cfg)
			from, to := ts(t, tt.from), ts(t, tt.to)
			checkShifts(t, r.Shifts(from, to), tt.want)
			checkShifts(t, walk(t, r, from, to), tt.want)
		})
	}
}

func TestOnCallCancelledAndShiftsEmptyRange(t *testing.T) {
	r := mustNew(t, Config{Name: "p", Members: []string{"a@example.com"}})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := r.OnCall(ctx, "p", time.Now()); err == nil || !strings.HasPrefix(err.Error(), "static: rotation p:") {
		t.Errorf("OnCall with a cancelled context: err = %v", err)
	}
	at := ts(t, "2026-01-05T09:00:00Z")
	if got := r.Shifts(at, at); got != nil {
		t.Errorf("Shifts over an empty range = %v, want nil", got)
	}
	m := r.Members()
	m[0] = "changed"
	if r.Members()[0] != "a@example.com" {
		t.Error("Members returned the rotation's own slice")
	}
	// Defaults: UTC, weekly, monday 09:00, start 2024-01-01.
	s, err := r.OnCall(context.Background(), "", ts(t, "2026-01-07T00:00:00Z"))
	if err != nil {
		t.Fatal(err)
	}
	if got, want := render(s), (row{"a@example.com", "2026-01-05T09:00:00Z", "2026-01-12T09:00:00Z"}); got != want {
		t.Errorf("defaults: got %v, want %v", got, want)
	}
}

func TestValidation(t *testing.T) {
	valid := func() Config {
		return Config{Name: "p", Timezone: "Europe/Berlin", Handoff: "monday 09:00", Shift: "weekly", Start: "2026-01-05",
			Members: []string{"a@example.com", "b@example.com", "c@example.com"}}
	}
	type fe struct{ field, msg string }
	tests := []struct {
		name   string
		change func(c *Config)
		want   []fe
	}{
		{"no members", func(c *Config) { c.Members = nil }, []fe{{"members", "no members"}}},
		{"duplicate member, case-insensitive", func(c *Config) { c.Members[2] = "A@example.com" },
			[]fe{{"members[2]", `duplicate member "A@example.com" (already members[0])`}}},
		{"member not an email", func(c *Config) { c.Members[1] = "bob" }, []fe{{"members[1]", `"bob" is not an email address`}}},
		{"member with a display name", func(c *Config) { c.Members[1] = "Bob <bob@example.com>" }, []fe{{"members[1]", "is not an email address"}}},
		{"empty member", func(c *Config) { c.Members[0] = " " }, []fe{{"members[0]", "empty; want an email address"}}},
		{"unknown timezone", func(c *Config) { c.Timezone = "Mars/Olympus_Mons" }, []fe{{"timezone", `unknown timezone "Mars/Olympus_Mons"`}}},
		{"bad weekday and hour", func(c *Config) { c.Handoff = "funday 25:00" }, []fe{
			{"handoff", `unknown weekday "funday" (use monday..sunday)`},
			{"handoff", "hour 25 out of range"},
		}},
		{"bad minute", func(c *Config) { c.Handoff = "monday 09:60" }, []fe{{"handoff", "minute 60 out of range"}}},
		{"time not HH:MM", func(c *Config) { c.Handoff = "monday 9am" }, []fe{{"handoff", `time "9am" is not HH:MM`}}},
		{"too many words", func(c *Config) { c.Handoff = "every monday 09:00" }, []fe{{"handoff", "use a weekday and a time"}}},
		{"weekly without a weekday", func(c *Config) { c.Handoff = "09:00" }, []fe{{"handoff", "needs a weekday for weekly shifts"}}},
		{"daily with a weekday", func(c *Config) { c.Shift = "daily"; c.Handoff = "monday 09:00" },
			[]fe{{"handoff", "a weekday is only allowed for weekly shifts"}}},
		{"3d with a weekday", func(c *Config) { c.Shift = "3d"; c.Handoff = "tuesday 09:00" },
			[]fe{{"handoff", "a weekday is only allowed for weekly shifts"}}},
		{"shift in hours", func(c *Config) { c.Shift = "12h" }, []fe{{"shift", "hours and minutes are not supported"}}},
		{"zero days", func(c *Config) { c.Shift = "0d" }, []fe{{"shift", "must be at least one day"}}},
		{"too long", func(c *Config) { c.Shift = "400d" }, []fe{{"shift", "longer than 366 days"}}},
		{"unknown shift", func(c *Config) { c.Shift = "fortnightly" }, []fe{{"shift", `unknown shift "fortnightly"`}}},
		{"bad start", func(c *Config) { c.Start = "05/01/2026" }, []fe{{"start", `"05/01/2026" is not a date-time`}}},
		{"override bad from", func(c *Config) {
			c.Overrides = []Override{{From: "christmas", Until: "2026-12-27 09:00", Member: "z@example.com"}}
		}, []fe{{"overrides[0].from", `"christmas" is not a date-time`}}},
		{"override bad until", func(c *Config) {
			c.Overrides = []Override{{From: "2026-12-24 09:00", Until: "2026-12-27 25:00", Member: "z@example.com"}}
		}, []fe{{"overrides[0].until", `"2026-12-27 25:00" is not a date-time`}}},
		{"override until not after from", func(c *Config) {
			c.Overrides = []Override{{From: "2026-12-24 09:00", Until: "2026-12-24 09:00", Member: "z@example.com"}}
		}, []fe{{"overrides[0].until", `until "2026-12-24 09:00" must be after from "2026-12-24 09:00"`}}},
		{"override member not an email", func(c *Config) {
			c.Overrides = []Override{{From: "2026-12-24 09:00", Until: "2026-12-27 09:00", Member: "zed"}}
		}, []fe{{"overrides[0].member", `"zed" is not an email address`}}},
		{"overlapping overrides", func(c *Config) {
			c.Overrides = []Override{
				{From: "2026-12-24 09:00", Until: "2026-12-27 09:00", Member: "z@example.com"},
				{From: "2026-12-20 09:00", Until: "2026-12-22 09:00", Member: "y@example.com"},
				{From: "2026-12-26 09:00", Until: "2026-12-28 09:00", Member: "x@example.com"},
			}
		}, []fe{{"overrides[2]", "overlaps overrides[0] (2026-12-24T09:00:00+01:00 until 2026-12-27T09:00:00+01:00, z@example.com)"}}},
		{"everything at once", func(c *Config) {
			c.Timezone = "Nowhere/Land"
			c.Handoff = "funday 25:00"
			c.Shift = "3x"
			c.Start = "soon"
			c.Members = []string{"a@example.com", "nope", "a@example.com"}
			c.Overrides = []Override{{From: "x", Until: "y", Member: "z"}}
		}, []fe{
			{"timezone", "unknown timezone"},
			{"shift", "unknown shift"},
			{"handoff", "unknown weekday"},
			{"handoff", "hour 25"},
			{"members[1]", "not an email"},
			{"members[2]", "duplicate member"},
			{"start", "not a date-time"},
			{"overrides[0].from", "not a date-time"},
			{"overrides[0].until", "not a date-time"},
			{"overrides[0].member", "not an email"},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := valid()
			tt.change(&cfg)
			r, errs := New(cfg)
			if r != nil {
				t.Error("New returned a rotation along with errors")
			}
			if len(errs) != len(tt.want) {
				t.Fatalf("got %d errors %v, want %d %v", len(errs), errs, len(tt.want), tt.want)
			}
			for i, w := range tt.want {
				if errs[i].Field != w.field || !strings.Contains(errs[i].Msg, w.msg) {
					t.Errorf("error %d = %q, want field %q with %q", i, errs[i].Error(), w.field, w.msg)
				}
			}
		})
	}
	if _, errs := New(valid()); errs != nil {
		t.Fatalf("valid config refused: %v", errs)
	}
}

func TestConcurrentCallers(t *testing.T) {
	r := mustNew(t, Config{Name: "p", Timezone: "Europe/Berlin", Members: []string{"a@example.com", "b@example.com"}})
	base := ts(t, "2026-03-29T12:00:00Z")
	done := make(chan access.Shift, 8)
	for i := range 8 {
		go func() {
			s, err := r.OnCall(context.Background(), "p", base.Add(time.Duration(i)*time.Minute))
			if err != nil {
				t.Error(err)
			}
			done <- s
		}()
	}
	first := <-done
	for range 7 {
		if s := <-done; !slices.Equal(s.People, first.People) || !s.Start.Equal(first.Start) {
			t.Errorf("concurrent answers differ: %v vs %v", s, first)
		}
	}
}
