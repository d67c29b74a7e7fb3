package main

import (
	"context"
	"errors"
	"github.com/accessbot/accessbot/config"
	"log/slog"
	"sort"
	"sync"
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
// lock), and runs it again at each handoff. A failing first run is logged,
// never fatal: the on-call source may be down while the bot starts.
//
// The handoff run first tries RunJob; when the lock is taken it syncs
// anyway. A scheduled run keeps its lock until just before its next tick
// (so replicas with skewed clocks do not both run a tick), which would
// otherwise delay a handoff by up to the check interval; SyncRotation is
// safe to race (shift grant ids are deterministic and every change is a
// compare-and-set), so a shift is still granted once.
func addRotationJobs(ctx context.Context, sched *scheduler.Scheduler, svc *access.Service, l *config.Loaded, log *slog.Logger) error {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	var names []string
	for name, rot := range l.Policy.Rotations {
		if len(rot.Grant) > 0 {
			names = append(names, name)
		}
	}
	sort.Strings(names)
	for _, name := range names {
		rc := l.Config.Rotations[name]
		grace, _ := optDuration(rc.Grace) // validated by the config check
		svc.SetRotationOptions(name, access.RotationOptions{Grace: grace,
			// Opsgenie answers who is on call at a moment, not when the
			// turn ends: its shift ends are polling horizons.
			RollingEnds: rc.Source == "opsgenie"})
		h := &handoffRun{ctx: ctx, name: name, svc: svc, sched: sched, log: log.With("rotation", name)}
		context.AfterFunc(ctx, h.stop)
		err := sched.AddJob(rotationJob(name), rotationCheck, func(jctx context.Context) error {
			next, err := svc.SyncRotation(jctx, name)
			h.arm(next)
			return err
		})
		if err != nil {
			return err
		}
	}
	for _, name := range names {
		err := sched.RunJob(ctx, rotationJob(name))
		switch {
		case errors.Is(err, scheduler.ErrNotObtained):
			log.DebugContext(ctx, "shift grants: another replica is checking", "rotation", name)
		case err != nil:
			log.WarnContext(ctx, "shift grants: first check failed; retried every 5 minutes", "rotation", name, "err", err)
		}
	}
	return nil
}

// handoffRun runs a rotation's sync at its next handoff. It holds at most
// one timer, stopped when ctx ends; between handoffs no goroutine exists.
type handoffRun struct {
	ctx   context.Context
	name  string
	svc   *access.Service
	sched *scheduler.Scheduler
	log   *slog.Logger

	mu    sync.Mutex
	timer *time.Timer
	at    time.Time
	gen   int
}

// arm sets the timer for next (the handoff SyncRotation returned); a zero
// next leaves an armed timer alone.
func (h *handoffRun) arm(next time.Time) {
	if next.IsZero() {
		return
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.ctx.Err() != nil || (h.timer != nil && h.at.Equal(next)) {
		return
	}
	if h.timer != nil {
		h.timer.Stop()
	}
	h.gen++
	gen := h.gen
	h.at = next
	h.timer = time.AfterFunc(max(next.Sub(h.svc.Now()), 0), func() { h.fire(gen) })
}

func (h *handoffRun) stop() {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.timer != nil {
		h.timer.Stop()
		h.timer = nil
	}
}

func (h *handoffRun) fire(gen int) {
	h.mu.Lock()
	if gen != h.gen || h.ctx.Err() != nil {
		h.mu.Unlock()
		return
	}
	h.timer = nil
	h.mu.Unlock()
	err := h.sched.RunJob(h.ctx, rotationJob(h.name))
	if errors.Is(err, scheduler.ErrNotObtained) {
		var next time.Time
		next, err = h.svc.SyncRotation(h.ctx, h.name)
		h.arm(next)
	}
	if err != nil && h.ctx.Err() == nil {
		h.log.WarnContext(h.ctx, "shift grants: check at handoff failed; retried every 5 minutes", "err", err)
	}
}
