package metrics_test

import (
	"context"
	"errors"
	"log/slog"

	"golang.org/x/sync/errgroup"

	"github.com/accessbot/accessbot/access"
	"github.com/accessbot/accessbot/bot/slack"
	"github.com/accessbot/accessbot/metrics"
	"github.com/accessbot/accessbot/scheduler"
	redisstore "github.com/accessbot/accessbot/store/redis"
)

// How the application wires the metrics: wrap the store and providers
// before anything else sees them, pass the hooks to the scheduler and the
// chat transport, observe the reconcile job, and serve.
func Example() {
	ctx := context.Background()
	var (
		log    = slog.Default()
		policy *access.Policy
		raw    access.Store // as opened
		provs  map[string]access.Provisioner
		bot    *slack.Bot
		ready  = new(redisstore.Readiness) // given to redisstore.OpenOptions
	)
	m := metrics.New(metrics.Options{Roles: policy.RoleNames(), Logger: log})
	g, gctx := errgroup.WithContext(ctx)
	// Serve first: /readyz answers "not ready" while Redis is still awaited.
	g.Go(func() error { return m.Server(":9090").Run(gctx) })
	m.AddCheck("store connected", func(context.Context) error {
		if !ready.Ready() {
			return errors.New("still connecting")
		}
		return nil
	})
	m.ConfigLoaded()

	st := m.WrapStore(raw) // keeps Fencer, Counter, Inbox
	svc, _ := access.NewService(access.Deps{Store: st, Policy: policy, Providers: m.WrapProviders(provs), Logger: log})
	sched := scheduler.New(st, svc, nil, log, scheduler.Options{
		Hooks: scheduler.Hooks{Loop: m.Heartbeat, Lock: m.LeaderChanged}})
	_ = sched.AddJob("reconcile", "@every 5m", func(ctx context.Context) error {
		ds, err := svc.Reconcile(ctx)
		m.ObserveReconcile(ds, err)
		return err
	})
	bot.SetHooks(slack.Hooks(m.Chat("slack")))
	g.Go(func() error { return sched.Run(gctx) })
	g.Go(func() error { return bot.Run(gctx) })
	_ = g.Wait()
}
