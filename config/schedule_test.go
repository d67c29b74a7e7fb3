package config

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/accessbot/accessbot/access"
)

const scheduleBase = `
chat:
  console:
    users: {alice: alice@example.com}
providers:
  dryrun: {}
roles:
  prod-admin:
    description: admin
    provider: dryrun
    group: g
    max_duration: 4h
    approvers: {users: [bob@example.com]}
  db-admin:
    description: db
    provider: dryrun
    group: g2
    max_duration: 4h
    approvers: {users: [bob@example.com]}
`

// TestMaxScheduleAhead: the global default, a role's own value, and bad
// values reported at their key path.
func TestMaxScheduleAhead(t *testing.T) {
	noEnv := func(string) (string, bool) { return "", false }
	cases := []struct {
		name       string
		limits     string // limits section value
		role       string // prod-admin value
		admin, db  time.Duration
		wantErrors []string
	}{
		{name: "defaults", admin: access.DefaultMaxScheduleAhead, db: access.DefaultMaxScheduleAhead},
		{name: "global", limits: "3d", admin: 72 * time.Hour, db: 72 * time.Hour},
		{name: "per role over global", limits: "3d", role: "12h", admin: 12 * time.Hour, db: 72 * time.Hour},
		{name: "per role over default", role: "30d", admin: 30 * 24 * time.Hour, db: access.DefaultMaxScheduleAhead},
		{name: "bad global", limits: "soon", wantErrors: []string{`limits.max_schedule_ahead: "soon" is not a duration`}},
		{name: "bad role", role: "10m", wantErrors: []string{`roles.prod-admin.max_schedule_ahead: "10m" is shorter than 1h`}},
		{name: "too long", role: "400d", wantErrors: []string{`roles.prod-admin.max_schedule_ahead: "400d" is longer than 366d`}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cfg := scheduleBase
			if c.role != "" {
				cfg = strings.Replace(cfg, "    max_duration: 4h\n", "    max_duration: 4h\n    max_schedule_ahead: "+c.role+"\n", 1)
			}
			if c.limits != "" {
				cfg += "limits:\n  max_schedule_ahead: " + c.limits + "\n"
			}
			l, err := Parse([]byte(cfg), noEnv)
			if len(c.wantErrors) > 0 {
				var ps Problems
				if !errors.As(err, &ps) {
					t.Fatalf("got %v, want problems", err)
				}
				for _, w := range c.wantErrors {
					if !strings.Contains(err.Error(), w) {
						t.Errorf("missing %q in:\n%v", w, err)
					}
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := l.Policy.Roles["prod-admin"].MaxScheduleAhead; got != c.admin {
				t.Errorf("prod-admin: %v, want %v", got, c.admin)
			}
			if got := l.Policy.Roles["db-admin"].MaxScheduleAhead; got != c.db {
				t.Errorf("db-admin: %v, want %v", got, c.db)
			}
		})
	}
}
