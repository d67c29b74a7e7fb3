package access

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
	_ "time/tzdata" // hours name IANA zones; minimal images have no zoneinfo
)

// ErrBadHours says an hours window (auto_approve.hours) does not parse.
var ErrBadHours = errors.New("bad hours window")

// Hours is a weekly window in a time zone, such as "mon-fri 09:00-18:00
// Europe/Berlin": the days it holds on and, on each of them, the minutes
// from Start (inclusive) to End (exclusive) of the local day. The zero
// Hours holds always.
type Hours struct {
	Days  [7]bool // by time.Weekday
	Start int     // minutes after local midnight
	End   int     // minutes after local midnight, after Start (1440: midnight)
	Loc   *time.Location
	Text  string // as configured, for messages and the audit log
}

var dayNames = map[string]time.Weekday{"sun": time.Sunday, "mon": time.Monday, "tue": time.Tuesday,
	"wed": time.Wednesday, "thu": time.Thursday, "fri": time.Friday, "sat": time.Saturday}

// ParseHours reads "[DAYS] HH:MM-HH:MM ZONE": DAYS is a comma-separated
// list of days (mon, tue, ..., sun) and ranges of them (mon-fri, fri-mon
// wraps over the weekend), every day when left out; the times are the
// window on each of those days in the IANA zone ZONE (Europe/Berlin, UTC).
// A window past midnight is two windows and is refused, as is an end not
// after the start. Errors wrap ErrBadHours and say what is wrong.
func ParseHours(s string) (Hours, error) {
	h := Hours{Text: strings.Join(strings.Fields(s), " ")}
	f := strings.Fields(strings.ToLower(s))
	orig := strings.Fields(s)
	bad := func(format string, a ...any) (Hours, error) {
		return Hours{}, fmt.Errorf("%w: %s", ErrBadHours, fmt.Sprintf(format, a...))
	}
	switch len(f) {
	case 2:
		var d [7]bool
		if parseDays(f[0], &d) == nil {
			return bad("%q has days but not both a time range and a zone, e.g. \"mon-fri 09:00-18:00 Europe/Berlin\"", s)
		}
		for i := range h.Days {
			h.Days[i] = true
		}
	case 3:
		if err := parseDays(f[0], &h.Days); err != nil {
			return bad("%v (use days like mon-fri, sat,sun or wed)", err)
		}
		f, orig = f[1:], orig[1:]
	default:
		return bad("%q is not \"[days] HH:MM-HH:MM zone\", e.g. \"mon-fri 09:00-18:00 Europe/Berlin\"", s)
	}
	from, to, ok := strings.Cut(f[0], "-")
	if !ok {
		return bad("%q is not a time range HH:MM-HH:MM", f[0])
	}
	var err error
	if h.Start, err = parseClock(from, false); err != nil {
		return bad("%v", err)
	}
	if h.End, err = parseClock(to, true); err != nil {
		return bad("%v", err)
	}
	if h.End <= h.Start {
		return bad("%q ends before it starts; a window past midnight is two windows (e.g. 22:00-24:00 and 00:00-06:00 the next day)", f[0])
	}
	loc, err := time.LoadLocation(orig[1])
	if err != nil || orig[1] == "" || strings.EqualFold(orig[1], "local") {
		return bad("%q is not an IANA time zone (like Europe/Berlin or UTC)", orig[1])
	}
	h.Loc = loc
	return h, nil
}

func parseDays(s string, days *[7]bool) error {
	for _, part := range strings.Split(s, ",") {
		a, b, isRange := strings.Cut(part, "-")
		from, ok := dayNames[a]
		if !ok {
			return fmt.Errorf("%q is not a day", a)
		}
		to := from
		if isRange {
			if to, ok = dayNames[b]; !ok {
				return fmt.Errorf("%q is not a day", b)
			}
		}
		for d := from; ; d = (d + 1) % 7 {
			days[d] = true
			if d == to {
				break
			}
		}
	}
	return nil
}

func parseClock(s string, end bool) (int, error) {
	hh, mm, ok := strings.Cut(s, ":")
	h, err1 := strconv.Atoi(hh)
	m, err2 := strconv.Atoi(mm)
	if !ok || len(hh) != 2 || len(mm) != 2 || err1 != nil || err2 != nil || h < 0 || m < 0 || m > 59 || h > 24 || (h == 24 && (m != 0 || !end)) {
		return 0, fmt.Errorf("%q is not a time of day HH:MM (00:00 to 24:00)", s)
	}
	return h*60 + m, nil
}

// Contains reports whether t falls in the window; the zero Hours holds always.
func (h Hours) Contains(t time.Time) bool {
	if h.Loc == nil {
		return true
	}
	lt := t.In(h.Loc)
	if !h.Days[lt.Weekday()] {
		return false
	}
	m := lt.Hour()*60 + lt.Minute()
	return m >= h.Start && m < h.End
}

// String returns the window as configured ("" for the zero Hours).
func (h Hours) String() string { return h.Text }
