package main

import (
	"context"
	"fmt"
	"github.com/accessbot/accessbot/config"
	"io"
	"log/slog"
	"sort"
	"time"

	"github.com/accessbot/accessbot/access"
	"github.com/accessbot/accessbot/providers/aws"
	"github.com/accessbot/accessbot/providers/okta"
	"github.com/accessbot/accessbot/providers/opsgenie"
	"github.com/accessbot/accessbot/providers/pagerduty"
	"github.com/accessbot/accessbot/scheduler"
)

// buildRealProviders adds the identity providers with credentials (AWS,
// Okta) to provs.
func buildRealProviders(ctx context.Context, cfg config.Config, log *slog.Logger, provs map[string]access.Provisioner) error {
	if a := cfg.Providers.AWS; a != nil {
		p, err := aws.New(ctx, aws.Config{IdentityStoreID: a.IdentityStoreID, Region: a.Region,
			UserNameIsEmail: a.UserNameIsEmail, InstanceARN: a.InstanceARN}, log)
		if err != nil {
			return fmt.Errorf("providers.aws: %w", err)
		}
		provs["aws"] = p
	}
	if o := cfg.Providers.Okta; o != nil {
		p, err := okta.New(okta.Config{OrgURL: o.OrgURL, APIToken: o.APIToken, ClientID: o.ClientID,
			PrivateKeyFile: o.PrivateKeyFile, KeyID: o.KeyID, Scopes: o.Scopes}, log)
		if err != nil {
			return fmt.Errorf("providers.okta: %w", err)
		}
		provs["okta"] = p
	}
	return nil
}

// buildServiceRotations adds the PagerDuty and Opsgenie rotations.
func buildServiceRotations(l *config.Loaded, log *slog.Logger, router access.OnCallRouter) error {
	for name, rc := range l.Config.Rotations {
		cacheFor, _ := optDuration(rc.CacheFor)
		staleFor, _ := optDuration(rc.StaleFor)
		switch rc.Source {
		case "pagerduty":
			pd := l.Config.Providers.PagerDuty
			r, err := pagerduty.New(pagerduty.Config{APIURL: pd.APIURL, Token: pd.Token, ScheduleIDs: rc.ScheduleIDs,
				EscalationPolicyIDs: rc.EscalationPolicyIDs, EscalationLevels: rc.EscalationLevels,
				CacheFor: cacheFor, StaleFor: staleFor}, log.With("rotation", name))
			if err != nil {
				return fmt.Errorf("rotations.%s: %w", name, err)
			}
			router[name] = r
		case "opsgenie":
			og := l.Config.Providers.Opsgenie
			r, err := opsgenie.New(opsgenie.Config{APIURL: og.APIURL, APIKey: og.APIKey, ScheduleID: rc.ScheduleID,
				CacheFor: cacheFor, StaleFor: staleFor, ShiftEnds: true}, log.With("rotation", name))
			if err != nil {
				return fmt.Errorf("rotations.%s: %w", name, err)
			}
			router[name] = r
		}
	}
	return nil
}

func optDuration(s string) (time.Duration, error) {
	if s == "" {
		return 0, nil
	}
	return access.ParseDuration(s)
}

// addJobs registers the singleton jobs: the drift reconcile (when a
// provider can list group members) and the rotation grants.
func addJobs(ctx context.Context, sched *scheduler.Scheduler, svc *access.Service, l *config.Loaded, provs map[string]access.Provisioner, log *slog.Logger) error {
	lists := false
	for _, r := range l.Policy.Roles {
		if _, ok := provs[r.Provider].(access.MemberLister); ok {
			lists = true
		}
	}
	if lists {
		spec := "@every " + l.Reconcile.String()
		err := sched.AddJob("reconcile", spec, func(ctx context.Context) error {
			drift, err := svc.Reconcile(ctx)
			if err == nil && len(drift) == 0 {
				log.DebugContext(ctx, "reconcile: every managed group matches its grants")
			}
			return err
		})
		if err != nil {
			return err
		}
	}
	return addRotationJobs(ctx, sched, svc, l, log)
}

// checker is the optional check capability of the real providers.
type checker interface {
	Check(ctx context.Context, groups map[string]string) ([]string, []error)
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
		for _, rn := range l.Policy.RoleNames() {
			if r := l.Policy.Roles[rn]; r.Provider == name {
				groups[rn] = r.Group
			}
		}
		lines, problems := c.Check(ctx, groups)
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
