// Package static answers who is on call for rotations defined in the config
// file: a list of members taking turns, handing off at a fixed wall-clock
// time in the rotation's timezone, with overrides for holidays and swaps.
//
// Rules, precisely:
//
//   - timezone: an IANA name (Europe/Berlin); empty means UTC. The zone
//     database is embedded (time/tzdata), so minimal images work.
//   - shift: "weekly" or "1w" (the default), "Nw" (N weeks), "daily" or
//     "1d", "Nd" (N days, up to 366). Hours are refused: a shift is a
//     whole number of days that hands off at the handoff wall-clock time.
//   - handoff: "monday 09:00" for week-based shifts (a weekday is required;
//     "mon" works too), "09:00" for day-based shifts (a weekday is refused).
//     Empty means "monday 09:00" or "09:00".
//   - Shift boundaries are wall-clock times, recomputed for every shift with
//     time.Date, never by adding durations: a weekly shift across the
//     spring-forward change is 167 h long, across fall-back 169 h. A handoff
//     at a local time that does not exist (02:30 on spring-forward day) or
//     exists twice (fall-back) resolves as time.Date resolves it; for
//     Europe/Berlin 02:30 on spring-forward day becomes 03:30 CEST, for
//     America/New_York it becomes 01:30 EST; the repeated 02:30 of
//     fall-back day in Europe/Berlin is the later one (CET).
//   - start anchors the order: member 0 holds the shift that contains the
//     start instant, member 1 the next one, and so on, wrapping around
//     (shifts before start count backwards the same way). A plain date
//     "2026-01-05" means the handoff time on that date, so a date on the
//     handoff weekday makes member 0 start exactly then; a date-time
//     ("2026-01-05 09:00" in the rotation's timezone, or RFC 3339) is taken
//     as it is. Start also sets the phase of day-based and multi-week
//     shifts: they begin every N days (weeks) counting from the latest
//     handoff at or before start. Empty start means DefaultStart.
//   - overrides: Member is on call from From until Until (From inclusive,
//     Until exclusive), whoever the rotation would have. Times are
//     "2026-12-24 09:00" in the rotation's timezone (or RFC 3339); the
//     member need not be one of the members. Overlapping overrides are
//     refused when the config is validated, so a time is in at most one.
//     An override is its own Shift (Start=From, End=Until); a regular shift
//     it interrupts is split into the part before and the part after.
//     Adjacent shifts of the same person are not merged: a Shift always
//     ends at a handoff or at an override's edge.
//   - Emails are returned lower-cased.
package static

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/accessbot/accessbot/access"
)

// Rotation is a validated static rotation. It is immutable and safe for
// concurrent use.
type Rotation struct {
	name      string
	loc       *time.Location
	members   []string
	days      int // shift length in days
	hour, min int // handoff wall-clock time
	// anchor is the local date of the boundary that starts member 0's shift.
	ay        int
	am        time.Month
	ad        int
	overrides []override // sorted by from, non-overlapping
}

type override struct {
	from, until time.Time
	member      string
}

var _ access.OnCall = (*Rotation)(nil)

// maxShifts bounds what Shifts returns, so a silly range cannot exhaust memory.
const maxShifts = 10000

// New validates cfg and builds the rotation. It returns every problem at
// once (and a nil Rotation) when there are any.
func New(cfg Config) (*Rotation, []FieldError) {
	var errs problems
	r := &Rotation{name: cfg.Name}

	loc := time.UTC
	if tz := strings.TrimSpace(cfg.Timezone); tz != "" {
		l, err := time.LoadLocation(tz)
		if err != nil {
			errs.add("timezone", "unknown timezone %q (use an IANA name like Europe/Berlin)", cfg.Timezone)
		} else {
			loc = l
		}
	}
	r.loc = loc

	days, weekly, msg := parseShift(cfg.Shift)
	if msg != "" {
		errs.add("shift", "%s", msg)
		days, weekly = 7, true
	}
	r.days = days

	wd, hour, min, msgs := parseHandoff(cfg.Handoff, weekly)
	if msg != "" && len(strings.Fields(cfg.Handoff)) == 1 {
		// The shift is broken: do not also complain about a weekday
		// that would have been right for the shift that was meant.
		msgs = filterWeekdayMsgs(msgs)
	}
	for _, m := range msgs {
		errs.add("handoff", "%s", m)
	}
	r.hour, r.min = hour, min

	if len(cfg.Members) == 0 {
		errs.add("members", "no members; a rotation needs at least one email address")
	}
	seen := map[string]int{}
	for i, m := range cfg.Members {
		field := fmt.Sprintf("members[%d]", i)
		email, msg := checkEmail(m)
		if msg != "" {
			errs.add(field, "%s", msg)
			continue
		}
		if j, dup := seen[email]; dup {
			errs.add(field, "duplicate member %q (already members[%d])", m, j)
			continue
		}
		seen[email] = i
		r.members = append(r.members, email)
	}

	startText := cfg.Start
	if strings.TrimSpace(startText) == "" {
		startText = DefaultStart
	}
	start, dateOnly, err := parseLocalTime(startText, loc)
	if err != nil {
		errs.add("start", "%v", err)
	} else {
		if dateOnly {
			y, m, d := start.Date()
			start = time.Date(y, m, d, hour, min, 0, 0, loc)
		}
		r.setAnchor(start, weekly, wd)
	}

	r.overrides = checkOverrides(cfg.Overrides, loc, &errs)

	if len(errs) > 0 {
		return nil, errs
	}
	return r, nil
}

func filterWeekdayMsgs(msgs []string) []string {
	var out []string
	for _, m := range msgs {
		if !strings.Contains(m, "weekday") {
			out = append(out, m)
		}
	}
	return out
}

// setAnchor finds the latest handoff boundary at or before start (on the
// handoff weekday when weekly) and remembers its local date.
func (r *Rotation) setAnchor(start time.Time, weekly bool, wd time.Weekday) {
	sl := start.In(r.loc)
	y, m, d := sl.Date()
	step := 1
	if weekly {
		d -= (int(sl.Weekday()) - int(wd) + 7) % 7
		step = 7
	}
	for time.Date(y, m, d, r.hour, r.min, 0, 0, r.loc).After(start) {
		d -= step
	}
	n := time.Date(y, m, d, 12, 0, 0, 0, time.UTC) // normalise the date
	r.ay, r.am, r.ad = n.Date()
}

func checkOverrides(in []Override, loc *time.Location, errs *problems) []override {
	type indexed struct {
		override
		i int
	}
	var ok []indexed
	for i, o := range in {
		base := fmt.Sprintf("overrides[%d]", i)
		from, _, ferr := parseLocalTime(o.From, loc)
		if ferr != nil {
			errs.add(base+".from", "%v", ferr)
		}
		until, _, uerr := parseLocalTime(o.Until, loc)
		if uerr != nil {
			errs.add(base+".until", "%v", uerr)
		}
		email, msg := checkEmail(o.Member)
		if msg != "" {
			errs.add(base+".member", "%s", msg)
		}
		if ferr != nil || uerr != nil {
			continue
		}
		if !until.After(from) {
			errs.add(base+".until", "until %q must be after from %q", o.Until, o.From)
			continue
		}
		if msg != "" {
			continue
		}
		cur := indexed{override{from: from.In(loc), until: until.In(loc), member: email}, i}
		for _, prev := range ok {
			if cur.from.Before(prev.until) && prev.from.Before(cur.until) {
				errs.add(base, "overlaps overrides[%d] (%s until %s, %s); overlapping overrides are refused",
					prev.i, prev.from.Format(time.RFC3339), prev.until.Format(time.RFC3339), prev.member)
			}
		}
		ok = append(ok, cur)
	}
	out := make([]override, 0, len(ok))
	for _, o := range ok {
		out = append(out, o.override)
	}
	// Sort by start (insertion sort: lists are short).
	for i := 1; i < len(out); i++ {
		for j := i; j > 0 && out[j].from.Before(out[j-1].from); j-- {
			out[j], out[j-1] = out[j-1], out[j]
		}
	}
	return out
}

// Members returns a copy of the members in rotation order (lower-cased).
func (r *Rotation) Members() []string { return append([]string(nil), r.members...) }

// Name returns the rotation's name from the config.
func (r *Rotation) Name() string { return r.name }

// OnCall returns the shift that contains at: the person on call, and when
// their turn started and ends (an override window, or a regular shift
// clipped by overrides). rotation only fills Shift.Rotation (the config
// name when empty). It fails only when ctx is done; it is a pure
// computation and needs no network.
func (r *Rotation) OnCall(ctx context.Context, rotation string, at time.Time) (access.Shift, error) {
	if err := ctx.Err(); err != nil {
		return access.Shift{}, fmt.Errorf("static: rotation %s: %w", r.name, err)
	}
	s := r.shiftAt(at)
	if rotation != "" {
		s.Rotation = rotation
	}
	return s, nil
}

// Shifts returns the exact sequence of shifts that overlap [from, to): the
// first is the one containing from (it may start earlier), each next one
// starts where the previous ended. It returns nil when to is not after
// from, and at most 10000 shifts.
func (r *Rotation) Shifts(from, to time.Time) []access.Shift {
	var out []access.Shift
	for t := from; t.Before(to) && len(out) < maxShifts; {
		s := r.shiftAt(t)
		out = append(out, s)
		t = s.End
	}
	return out
}

func (r *Rotation) shiftAt(at time.Time) access.Shift {
	for _, o := range r.overrides {
		if !at.Before(o.from) && at.Before(o.until) {
			return access.Shift{Rotation: r.name, People: []string{o.member}, Start: o.from, End: o.until}
		}
	}
	k := r.index(at)
	start, end := r.boundary(k), r.boundary(k+1)
	for _, o := range r.overrides {
		if o.until.After(start) && !o.until.After(at) {
			start = o.until
		}
		if o.from.After(at) && o.from.Before(end) {
			end = o.from
		}
	}
	n := len(r.members)
	member := r.members[((k%n)+n)%n]
	return access.Shift{Rotation: r.name, People: []string{member}, Start: start, End: end}
}

// boundary returns the start of regular shift k (shift 0 is member 0's
// shift that contains start).
func (r *Rotation) boundary(k int) time.Time {
	return time.Date(r.ay, r.am, r.ad+k*r.days, r.hour, r.min, 0, 0, r.loc)
}

// index returns k such that boundary(k) <= at < boundary(k+1).
func (r *Rotation) index(at time.Time) int {
	y, m, d := at.In(r.loc).Date()
	diff := civilDay(y, m, d) - civilDay(r.ay, r.am, r.ad)
	k := diff / r.days
	if diff%r.days < 0 {
		k--
	}
	for r.boundary(k).After(at) {
		k--
	}
	for !r.boundary(k + 1).After(at) {
		k++
	}
	return k
}

func civilDay(y int, m time.Month, d int) int {
	return int(time.Date(y, m, d, 0, 0, 0, 0, time.UTC).Unix() / 86400)
}
