package access

import (
	"errors"
	"fmt"
	"regexp"
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

	// Reminders and escalation (remind.go).
	RemindAfter       time.Duration // first reminder of undecided approvers; 0: none
	EscalateAfter     time.Duration // when EscalateUsers/EscalateRotations may decide too; 0: never
	EscalateUsers     []string      // identities asked at escalation
	EscalateRotations []string      // rotations whose on-call people are asked at escalation
	// Scheduled access: how far ahead a start may lie (0: DefaultMaxScheduleAhead).
	MaxScheduleAhead time.Duration
	// Request gate (gate.go): who may ask, what a reason must say, when
	// a request is approved without a click, where its card goes and who
	// is told of its outcome.
	Requesters       *Requesters    // nil: everyone may request the role
	ReasonPattern    *regexp.Regexp // nil: any reason
	ReasonHint       string         // how to write a reason that matches ReasonPattern
	AutoApprove      *AutoApprove   // nil: every request needs approval
	ApprovalsChannel string         // where the role's approval card goes; "": the chat default
	Notify           []string       // identities told of outcomes (not approvers)
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
	if SameIdentity(identity, requester) {
		return false
	}
	if len(p.Acknowledgers) == 0 {
		return true
	}
	return contains(p.Acknowledgers, identity) || p.IsAdmin(identity)
}

func contains(list []string, s string) bool {
	s = NormalizeIdentity(s)
	for _, v := range list {
		if NormalizeIdentity(v) == s {
			return true
		}
	}
	return false
}

// ErrBadIdentity says an identity is not a plain ASCII email address.
var ErrBadIdentity = errors.New("identity is not a plain ASCII email address")

// NormalizeIdentity returns the one form in which identities (emails) are
// stored and compared everywhere: surrounding space trimmed and the ASCII
// letters A-Z lower-cased. Nothing else is folded, so "ſam@example.com"
// (U+017F) or "\u212Aate@example.com" (the Kelvin sign) never equals an
// ASCII address, as they would under strings.EqualFold or strings.ToLower.
// Two identities are the same person exactly when their normal forms are
// equal. CheckIdentity refuses non-ASCII identities where they enter.
func NormalizeIdentity(s string) string {
	s = strings.TrimSpace(s)
	for i := 0; i < len(s); i++ {
		if c := s[i]; 'A' <= c && c <= 'Z' {
			b := []byte(s)
			for j := i; j < len(b); j++ {
				if 'A' <= b[j] && b[j] <= 'Z' {
					b[j] += 'a' - 'A'
				}
			}
			return string(b)
		}
	}
	return s
}

// SameIdentity reports whether a and b name the same person.
func SameIdentity(a, b string) bool { return NormalizeIdentity(a) == NormalizeIdentity(b) }

// CheckIdentity returns an error wrapping ErrBadIdentity unless s is an
// email address written in printable ASCII only (local part and domain):
// characters such as ſ (U+017F) or the Kelvin sign (U+212A) look like, or
// fold to, ASCII letters and could stand in for another person.
func CheckIdentity(s string) error {
	s = strings.TrimSpace(s)
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x21 || c > 0x7e {
			return fmt.Errorf("%w: %q contains a character that is not printable ASCII", ErrBadIdentity, s)
		}
	}
	local, domain, ok := strings.Cut(s, "@")
	if !ok || local == "" || domain == "" || strings.Contains(domain, "@") {
		return fmt.Errorf("%w: %q is not an email address", ErrBadIdentity, s)
	}
	return nil
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
