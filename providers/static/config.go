package static

import (
	"fmt"
	"net/mail"
	"strconv"
	"strings"
	"time"
	_ "time/tzdata" // rotations name IANA zones; minimal images have no zoneinfo

	"github.com/accessbot/accessbot/access"
)

// Config is one rotation as written in the config file; every field is the
// raw string from YAML. See the package documentation for the meaning of
// each field and its default.
type Config struct {
	Name      string
	Timezone  string
	Handoff   string
	Shift     string
	Start     string
	Members   []string
	Overrides []Override
}

// Override puts Member on call from From until Until, in place of whoever
// the rotation would have on call.
type Override struct {
	From, Until, Member string
}

// FieldError is one problem with a rotation's config. Field is the path
// relative to the rotation: "timezone", "members[2]", "overrides[1].from".
type FieldError struct {
	Field string
	Msg   string
}

func (e FieldError) Error() string { return e.Field + ": " + e.Msg }

// DefaultStart anchors the order of a rotation whose config has no start:
// member 0 holds the shift that contains the handoff time on this date
// (Monday 2024-01-01) in the rotation's timezone.
const DefaultStart = "2024-01-01"

const (
	defaultWeeklyHandoff = "monday 09:00"
	defaultDailyHandoff  = "09:00"
	maxShiftDays         = 366
)

var weekdays = map[string]time.Weekday{
	"monday": time.Monday, "mon": time.Monday,
	"tuesday": time.Tuesday, "tue": time.Tuesday,
	"wednesday": time.Wednesday, "wed": time.Wednesday,
	"thursday": time.Thursday, "thu": time.Thursday,
	"friday": time.Friday, "fri": time.Friday,
	"saturday": time.Saturday, "sat": time.Saturday,
	"sunday": time.Sunday, "sun": time.Sunday,
}

type problems []FieldError

func (p *problems) add(field, format string, args ...any) {
	*p = append(*p, FieldError{Field: field, Msg: fmt.Sprintf(format, args...)})
}

// parseShift reads the shift length: "weekly", "daily", "Nw" or "Nd".
// It returns the length in days and whether shifts are week-based (and so
// hand off on a weekday).
func parseShift(s string) (days int, weekly bool, msg string) {
	v := strings.ToLower(strings.TrimSpace(s))
	switch v {
	case "", "weekly":
		return 7, true, ""
	case "daily":
		return 1, false, ""
	}
	hint := "use weekly, daily, Nd (like 3d) or Nw (like 2w)"
	if len(v) < 2 {
		return 0, false, fmt.Sprintf("unknown shift %q (%s)", s, hint)
	}
	unit := v[len(v)-1]
	n, err := strconv.Atoi(v[:len(v)-1])
	if err != nil {
		return 0, false, fmt.Sprintf("unknown shift %q (%s)", s, hint)
	}
	switch unit {
	case 'd':
		days, weekly = n, false
	case 'w':
		days, weekly = n*7, true
	case 'h', 'm', 's':
		return 0, false, fmt.Sprintf("shift %q: hours and minutes are not supported, shifts are whole days that hand off at the handoff time (%s)", s, hint)
	default:
		return 0, false, fmt.Sprintf("unknown shift %q (%s)", s, hint)
	}
	if n < 1 {
		return 0, false, fmt.Sprintf("shift %q must be at least one day", s)
	}
	if days > maxShiftDays {
		return 0, false, fmt.Sprintf("shift %q is longer than %d days", s, maxShiftDays)
	}
	return days, weekly, ""
}

// parseHandoff reads "monday 09:00" (weekly) or "09:00" (day-based). It
// returns every problem it finds.
func parseHandoff(s string, weekly bool) (wd time.Weekday, hour, min int, msgs []string) {
	v := strings.ToLower(strings.TrimSpace(s))
	if v == "" {
		if weekly {
			v = defaultWeeklyHandoff
		} else {
			v = defaultDailyHandoff
		}
	}
	fields := strings.Fields(v)
	var clock string
	switch len(fields) {
	case 1:
		clock = fields[0]
		if weekly {
			msgs = append(msgs, fmt.Sprintf("handoff %q needs a weekday for weekly shifts, like \"monday 09:00\"", s))
		}
	case 2:
		d, ok := weekdays[fields[0]]
		switch {
		case !ok:
			msgs = append(msgs, fmt.Sprintf("unknown weekday %q (use monday..sunday)", fields[0]))
		case !weekly:
			msgs = append(msgs, fmt.Sprintf("handoff %q: a weekday is only allowed for weekly shifts; day-based shifts take a time like \"09:00\"", s))
		}
		wd = d
		clock = fields[1]
	default:
		return 0, 0, 0, []string{fmt.Sprintf("handoff %q: use a weekday and a time, like \"monday 09:00\" (or just \"09:00\" for daily shifts)", s)}
	}
	h, m, ok := strings.Cut(clock, ":")
	hv, herr := strconv.Atoi(h)
	mv, merr := strconv.Atoi(m)
	if !ok || herr != nil || merr != nil || len(m) != 2 || len(h) < 1 || len(h) > 2 {
		msgs = append(msgs, fmt.Sprintf("time %q is not HH:MM (24-hour clock, like 09:00)", clock))
		return wd, 0, 0, msgs
	}
	if hv < 0 || hv > 23 {
		msgs = append(msgs, fmt.Sprintf("hour %d out of range (0..23)", hv))
	}
	if mv < 0 || mv > 59 {
		msgs = append(msgs, fmt.Sprintf("minute %d out of range (0..59)", mv))
	}
	return wd, hv, mv, msgs
}

// parseLocalTime reads a date-time in loc: "2006-01-02 15:04",
// "2006-01-02T15:04", with seconds, or RFC 3339 (which carries its own
// offset). dateOnly reports a plain "2006-01-02" (midnight in loc).
func parseLocalTime(s string, loc *time.Location) (t time.Time, dateOnly bool, err error) {
	v := strings.TrimSpace(s)
	if t, err := time.Parse(time.RFC3339, v); err == nil {
		return t, false, nil
	}
	for _, layout := range []string{"2006-01-02 15:04", "2006-01-02T15:04", "2006-01-02 15:04:05", "2006-01-02T15:04:05"} {
		if t, err := time.ParseInLocation(layout, v, loc); err == nil {
			return t, false, nil
		}
	}
	if t, err := time.ParseInLocation("2006-01-02", v, loc); err == nil {
		return t, true, nil
	}
	return time.Time{}, false, fmt.Errorf("%q is not a date-time (use \"2026-12-24 09:00\" in the rotation's timezone, or RFC 3339 like \"2026-12-24T09:00:00+01:00\")", s)
}

// checkEmail returns the lowered address, or a message saying why s is not
// a plain email address.
func checkEmail(s string) (string, string) {
	v := strings.TrimSpace(s)
	if v == "" {
		return "", "empty; want an email address"
	}
	for _, r := range v {
		if r < 0x20 || r > 0x7e {
			return "", fmt.Sprintf("%q contains %q (U+%04X); identities must be plain ASCII email addresses", s, r, r)
		}
	}
	a, err := mail.ParseAddress(v)
	if err != nil || a.Address != v || a.Name != "" {
		return "", fmt.Sprintf("%q is not an email address", s)
	}
	local, domain, _ := strings.Cut(v, "@")
	if local == "" || domain == "" || strings.HasPrefix(domain, ".") || strings.HasSuffix(domain, ".") {
		return "", fmt.Sprintf("%q is not an email address", s)
	}
	return access.NormalizeIdentity(v), ""
}
