package app

import (
	"context"

	"github.com/accessbot/accessbot/access"
)

// roleChecker is the optional check capability of a provider that also
// compares what it finds with the roles (aws: session durations against
// max_duration).
type roleChecker interface {
	CheckRoles(ctx context.Context, roles map[string]access.Role) ([]string, []error)
}

// sessionSweeper is the optional capability of a provider that leaves
// expiring session denials behind at revocation (aws) and removes them
// once they have expired.
type sessionSweeper interface {
	SweepSessions(ctx context.Context, groups map[string]string) error
}

// addSessionSweeps registers, for each provider that denies sessions for
// some role, a singleton job that removes its expired denials at the reconcile
// interval. The denials themselves are the record (no state here), so a
// sweep after a restart finds whatever is due.
func (a *App) addSessionSweeps() error {
	for name, p := range a.providers {
		sw, ok := p.(sessionSweeper)
		se, ends := p.(access.SessionEnder)
		if !ok || !ends {
			continue
		}
		groups := map[string]string{} // the roles whose sessions it denies
		for rn, r := range a.cfg.Policy.Roles {
			if r.Provider == name && se.SessionsNote(access.Grant{Role: rn, Group: r.Group}) != "" {
				groups[rn] = r.Group
			}
		}
		if len(groups) == 0 {
			continue
		}
		err := a.sched.AddJob("sessions-"+name, "@every "+a.cfg.Reconcile.String(), func(ctx context.Context) error {
			return sw.SweepSessions(ctx, groups)
		})
		if err != nil {
			return err
		}
	}
	return nil
}
