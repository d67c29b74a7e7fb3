package app

import (
	"context"
	"errors"
	"sort"
	"time"

	"github.com/accessbot/accessbot/access"
	"github.com/accessbot/accessbot/scheduler"
)

// rotationCheck is how often a rotation's shift grants are compared with
// the on-call source (overrides and schedule changes are seen then).
const rotationCheck = "@every 5m"

func rotationJob(name string) string { return "rotation:" + name }

// addRotationJobs registers, for each rotation with a grant, a singleton
// job that keeps its shift grants in line with who is on call
// (access.Service.SyncRotation), runs it once now through RunJob (so the
// current shift is granted at start unless another replica holds the
// lock), and runs it again at each handoff (a one-shot timer of the
// scheduler, scheduler.At, stopped when ctx ends). A failing first run is
// logged, never fatal: the on-call source may be down while the bot starts.
//
// The handoff run first tries RunJob; when the lock is taken it syncs
// anyway. A scheduled run keeps its lock until just before its next tick
// (so replicas with skewed clocks do not both run a tick), which would
// otherwise delay a handoff by up to the check interval; SyncRotation is
// safe to race (shift grant ids are deterministic and every change is a
// compare-and-set), so a shift is still granted once.
func (a *App) addRotationJobs(ctx context.Context) error {
	var names []string
	for name, rot := range a.cfg.Policy.Rotations {
		if len(rot.Grant) > 0 {
			names = append(names, name)
		}
	}
	sort.Strings(names)
	for _, name := range names {
		rc := a.cfg.Config.Rotations[name]
		grace, _ := optDuration(rc.Grace) // validated by the config check
		a.svc.SetRotationOptions(name, access.RotationOptions{Grace: grace,
			// Opsgenie answers who is on call at a moment, not when the
			// turn ends: its shift ends are polling horizons.
			RollingEnds: rc.Source == "opsgenie"})
		err := a.sched.AddJob(rotationJob(name), rotationCheck, func(jctx context.Context) error {
			next, err := a.svc.SyncRotation(jctx, name)
			a.armHandoff(ctx, name, next)
			return err
		})
		if err != nil {
			return err
		}
	}
	for _, name := range names {
		err := a.sched.RunJob(ctx, rotationJob(name))
		switch {
		case errors.Is(err, scheduler.ErrNotObtained):
			a.log.DebugContext(ctx, "shift grants: another replica is checking", "rotation", name)
		case err != nil:
			a.log.WarnContext(ctx, "shift grants: first check failed; retried every 5 minutes", "rotation", name, "err", err)
		}
	}
	return nil
}

// armHandoff sets the rotation's handoff timer for next (the handoff
// SyncRotation returned); a zero next leaves an armed timer alone.
func (a *App) armHandoff(ctx context.Context, name string, next time.Time) {
	a.sched.At(ctx, rotationJob(name), next, func(ctx context.Context) { a.handoff(ctx, name) })
}

// handoff is the rotation's sync at its handoff.
func (a *App) handoff(ctx context.Context, name string) {
	err := a.sched.RunJob(ctx, rotationJob(name))
	if errors.Is(err, scheduler.ErrNotObtained) {
		var next time.Time
		next, err = a.svc.SyncRotation(ctx, name)
		a.armHandoff(ctx, name, next)
	}
	if err != nil && ctx.Err() == nil {
		a.log.WarnContext(ctx, "shift grants: check at handoff failed; retried every 5 minutes", "rotation", name, "err", err)
	}
}
