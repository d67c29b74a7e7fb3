package app

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"sort"
	"time"

	"github.com/accessbot/accessbot/access"
	"github.com/accessbot/accessbot/bot/discord"
	"github.com/accessbot/accessbot/config"
	"github.com/accessbot/accessbot/providers/aws"
	"github.com/accessbot/accessbot/providers/dryrun"
	"github.com/accessbot/accessbot/providers/okta"
	"github.com/accessbot/accessbot/providers/opsgenie"
	"github.com/accessbot/accessbot/providers/pagerduty"
)

// buildProviders builds the configured provisioners; Deps.Providers
// replace those of the same name.
func (a *App) buildProviders(ctx context.Context) (map[string]access.Provisioner, error) {
	provs := map[string]access.Provisioner{}
	if a.cfg.Config.Providers.DryRun != nil {
		d := dryrun.New(a.log)
		if con := a.console; con != nil {
			d.Observe(func(c dryrun.Change) {
				verb, prep := "added", "to"
				if c.Op == "revoke" {
					verb, prep = "removed", "from"
				}
				if c.Err != nil {
					con.Printf("[dryrun] FAILED to %s %s %s group %s: %v", c.Op, c.Grant.User, prep, c.Grant.Group, c.Err)
					return
				}
				con.Printf("[dryrun] %s %s %s group %s (request %s)", verb, c.Grant.User, prep, c.Grant.Group, c.Grant.RequestID)
			})
		}
		provs["dryrun"] = d
	}
	if err := buildRealProviders(ctx, a.cfg.Config, a.log, a.deps.HTTPClient, a.deps.Clock, provs); err != nil {
		return nil, err
	}
	for name, p := range a.deps.Providers {
		provs[name] = p
	}
	return provs, nil
}

// buildRealProviders adds the identity providers with credentials (AWS,
// Okta) to provs; hc, when set, is their HTTP client, and clock, when set,
// their clock (AWS session denials are stamped and expired by it).
func buildRealProviders(ctx context.Context, cfg config.Config, log *slog.Logger, hc *http.Client, clock access.Clock, provs map[string]access.Provisioner) error {
	if cfg.Providers.AWS != nil {
		var opts []aws.Option
		if hc != nil {
			opts = append(opts, aws.WithHTTPClient(hc))
		}
		if clock != nil {
			opts = append(opts, aws.WithClock(clock))
		}
		p, err := aws.New(ctx, cfg.AWSProvider(), log, opts...)
		if err != nil {
			return fmt.Errorf("providers.aws: %w", err)
		}
		provs["aws"] = p
	}
	if cfg.Providers.Okta != nil {
		var opts []okta.Option
		if hc != nil {
			opts = append(opts, okta.WithHTTPClient(hc))
		}
		p, err := okta.New(cfg.OktaProvider(), log, opts...)
		if err != nil {
			return fmt.Errorf("providers.okta: %w", err)
		}
		provs["okta"] = p
	}
	return nil
}

// buildOnCall routes each rotation to its source: the static rotations
// the config built, PagerDuty and Opsgenie.
func (a *App) buildOnCall() (access.OnCall, error) {
	router := access.OnCallRouter{}
	for name, r := range a.cfg.Rotations {
		router[name] = r
	}
	for name, rc := range a.cfg.Config.Rotations {
		log := a.log.With("rotation", name)
		switch rc.Source {
		case "pagerduty":
			var opts []pagerduty.Option
			if a.deps.HTTPClient != nil {
				opts = append(opts, pagerduty.WithHTTPClient(a.deps.HTTPClient))
			}
			if a.deps.Clock != nil {
				opts = append(opts, pagerduty.WithClock(a.deps.Clock))
			}
			r, err := pagerduty.New(rc.PagerDuty(name, *a.cfg.Config.Providers.PagerDuty), log, opts...)
			if err != nil {
				return nil, fmt.Errorf("rotations.%s: %w", name, err)
			}
			router[name] = r
		case "opsgenie":
			var opts []opsgenie.Option
			if a.deps.HTTPClient != nil {
				opts = append(opts, opsgenie.WithHTTPClient(a.deps.HTTPClient))
			}
			if a.deps.Clock != nil {
				opts = append(opts, opsgenie.WithClock(a.deps.Clock))
			}
			c := rc.Opsgenie(name, *a.cfg.Config.Providers.Opsgenie)
			c.ShiftEnds = true
			r, err := opsgenie.New(c, log, opts...)
			if err != nil {
				return nil, fmt.Errorf("rotations.%s: %w", name, err)
			}
			router[name] = r
		}
	}
	return router, nil
}

func optDuration(s string) (time.Duration, error) {
	if s == "" {
		return 0, nil
	}
	return access.ParseDuration(s)
}

// addJobs registers the singleton jobs: the drift reconcile (when a
// provider can list group members) and the rotation grants.
func (a *App) addJobs(ctx context.Context) error {
	lists := false
	for _, r := range a.cfg.Policy.Roles {
		if _, ok := a.providers[r.Provider].(access.MemberLister); ok {
			lists = true
		}
	}
	if lists {
		spec := "@every " + a.cfg.Reconcile.String()
		err := a.sched.AddJob("reconcile", spec, func(ctx context.Context) error {
			drift, err := a.svc.Reconcile(ctx)
			if a.metrics != nil {
				a.metrics.ObserveReconcile(drift, err)
			}
			if err == nil && len(drift) == 0 {
				a.log.DebugContext(ctx, "reconcile: every managed group matches its grants")
			}
			return err
		})
		if err != nil {
			return err
		}
	}
	if err := a.addSessionSweeps(); err != nil {
		return err
	}
	return a.addRotationJobs(ctx)
}

// checker is the optional check capability of the real providers.
type checker interface {
	Check(ctx context.Context, groups map[string]string) ([]string, []error)
}

// CheckOnline is check --online: it asks every provider that can whether
// its groups exist, and Discord whether the bot sees its guilds, printing
// what it found to stdout and each problem to stderr. It returns the exit
// code (1 on any problem).
func CheckOnline(ctx context.Context, l *config.Loaded, log *slog.Logger, stdout, stderr io.Writer) int {
	provs := map[string]access.Provisioner{}
	if err := buildRealProviders(ctx, l.Config, log, nil, nil, provs); err != nil {
		fmt.Fprintf(stderr, "providers: %v\n", err)
		return 1
	}
	code := checkOnline(ctx, l, provs, stdout, stderr)
	if d := l.Config.Chat.Discord; d != nil {
		b, err := discord.New(*d, nil, nil, log, nil)
		if err != nil {
			fmt.Fprintf(stderr, "  problem: %v\n", err)
			return 1
		}
		lines, problems := b.Online(ctx)
		for _, line := range lines {
			fmt.Fprintf(stdout, "  %s\n", line)
		}
		for _, p := range problems {
			fmt.Fprintf(stderr, "  problem: %v\n", p)
			code = 1
		}
	}
	return code
}

// checkOnline asks every provider that can whether its groups exist.
func checkOnline(ctx context.Context, l *config.Loaded, provs map[string]access.Provisioner, stdout, stderr io.Writer) int {
	code := 0
	names := make([]string, 0, len(provs))
	for n := range provs {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, name := range names {
		c, ok := provs[name].(checker)
		if !ok {
			continue
		}
		groups := map[string]string{}
		roles := map[string]access.Role{}
		for _, rn := range l.Policy.RoleNames() {
			if r := l.Policy.Roles[rn]; r.Provider == name {
				groups[rn] = r.Group
				roles[rn] = r
			}
		}
		var lines []string
		var problems []error
		if rc, ok := provs[name].(roleChecker); ok {
			lines, problems = rc.CheckRoles(ctx, roles)
		} else {
			lines, problems = c.Check(ctx, groups)
		}
		for _, line := range lines {
			fmt.Fprintf(stdout, "  %s\n", line)
		}
		for _, p := range problems {
			fmt.Fprintf(stderr, "  problem: %v\n", p)
			code = 1
		}
	}
	return code
}
