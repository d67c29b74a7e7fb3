package access

import (
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Limits that hold for every role.
const (
	MaxReasonLen      = 1000
	MinDuration       = time.Minute
	DefaultPendingTTL = time.Hour
	DefaultDuration   = time.Hour
)

// Role is a named piece of access: membership of one group in one provider,
// and the rules for getting it.
type Role struct {
	Name              string
	Description       string
	Provider          string // key of the provider in the config (aws, okta, dryrun)
	Group             string
	MaxDuration       time.Duration
	DefaultDuration   time.Duration
	ApproverUsers     []string // identities
	ApproverRotations []string
	Approvals         int  // approvals needed (N of the approvers)
	SelfApprove       bool // the requester may approve their own request
	BreakGlass        bool // allowed break-glass users may take it at once
	PendingTTL        time.Duration
	Reconcile         string // "", "report", "remove"
}

// Rotation is an on-call rotation; the OnCall port answers who is on it.
type Rotation struct {
	Name   string
	Source string   // static | pagerduty | opsgenie
	Grant  []string // roles the on-call person holds during the shift
}

// Policy is the validated access policy: roles, rotations, break-glass
// users and admins. It is immutable once built.
type Policy struct {
	Roles         map[string]Role
	Rotations     map[string]Rotation
	BreakGlass    []string // identities allowed to take break-glass access
	Acknowledgers []string // identities who may acknowledge break-glass use (empty: anyone but the user)
	Admins        []string // identities who may revoke any grant
}

// Role looks a role up by name (case-insensitive).
func (p *Policy) Role(name string) (Role, bool) {
	r, ok := p.Roles[strings.ToLower(strings.TrimSpace(name))]
	return r, ok
}

// RoleNames returns the role names, sorted.
func (p *Policy) RoleNames() []string {
	names := make([]string, 0, len(p.Roles))
	for n := range p.Roles {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// IsAdmin reports whether identity is an admin.
func (p *Policy) IsAdmin(identity string) bool { return contains(p.Admins, identity) }

// MayBreakGlass reports whether identity is on the break-glass list.
func (p *Policy) MayBreakGlass(identity string) bool { return contains(p.BreakGlass, identity) }

// MayAcknowledge reports whether identity may acknowledge a break-glass grant of requester.
func (p *Policy) MayAcknowledge(identity, requester string) bool {
	if strings.EqualFold(identity, requester) {
		return false
	}
	if len(p.Acknowledgers) == 0 {
		return true
	}
	return contains(p.Acknowledgers, identity) || p.IsAdmin(identity)
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if strings.EqualFold(v, s) {
			return true
		}
	}
	return false
}

// MaxParsedDuration is the longest duration ParseDuration accepts (366
// days). Anything longer is a typo or an attempt to overflow, never a real
// access window.
const MaxParsedDuration = 366 * 24 * time.Hour

func tooLongDuration(s string) error {
	return fmt.Errorf("%w: %w: %q is longer than %s, the longest duration accepted", ErrBadDuration, ErrTooLong, s, FormatDuration(MaxParsedDuration))
}

// ParseDuration parses durations as people type them: "30m", "2h", "1d",
// "1h30m", "1d12h", "90s". Days are 24 hours. A bare number is refused (is
// "2" minutes or hours?). Errors wrap ErrBadDuration; a value longer than
// MaxParsedDuration also wraps ErrTooLong, so it can never wrap around to a
// short one.
func ParseDuration(s string) (time.Duration, error) {
	s = strings.TrimSpace(strings.ToLower(s))
	if s == "" {
		return 0, fmt.Errorf("%w: empty", ErrBadDuration)
	}
	var total time.Duration
	rest := s
	for rest != "" {
		i := 0
		for i < len(rest) && rest[i] >= '0' && rest[i] <= '9' {
			i++
		}
		if i == 0 || i == len(rest) {
			return 0, fmt.Errorf("%w: %q (use a number and a unit, like 30m, 2h, 1d or 1h30m)", ErrBadDuration, s)
		}
		n, err := strconv.ParseInt(rest[:i], 10, 64)
		if err != nil {
			return 0, tooLongDuration(s)
		}
		var unit time.Duration
		switch rest[i] {
		case 'd':
			unit = 24 * time.Hour
		case 'h':
			unit = time.Hour
		case 'm':
			unit = time.Minute
		case 's':
			unit = time.Second
		default:
			return 0, fmt.Errorf("%w: %q (unknown unit %q; use d, h, m or s)", ErrBadDuration, s, rest[i])
		}
		// Checked before multiplying and adding: 213504d would wrap
		// around int64 nanoseconds to 25m26s.
		if n > int64(MaxParsedDuration/unit) || time.Duration(n)*unit > MaxParsedDuration-total {
			return 0, tooLongDuration(s)
		}
		total += time.Duration(n) * unit
		rest = rest[i+1:]
	}
	if total <= 0 {
		return 0, fmt.Errorf("%w: %q must be more than zero", ErrBadDuration, s)
	}
	return total, nil
}

// FormatDuration renders d the way ParseDuration reads it ("1d2h", "1h30m", "45m").
func FormatDuration(d time.Duration) string {
	if d <= 0 {
		return "0m"
	}
	d = d.Round(time.Second)
	var b strings.Builder
	if days := d / (24 * time.Hour); days > 0 {
		fmt.Fprintf(&b, "%dd", days)
		d -= days * 24 * time.Hour
	}
	if h := d / time.Hour; h > 0 {
		fmt.Fprintf(&b, "%dh", h)
		d -= h * time.Hour
	}
	if m := d / time.Minute; m > 0 {
		fmt.Fprintf(&b, "%dm", m)
		d -= m * time.Minute
	}
	if s := d / time.Second; s > 0 {
		fmt.Fprintf(&b, "%ds", s)
	}
	return b.String()
}
