// Package app wires accessbot together: an App is built from a loaded
// config plus the dependencies a test may replace (clock, HTTP client,
// logger, store, providers, on-call source, the console's input and
// output), and runs the scheduler and the chat transport until its context
// ends.
package app

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"slices"
	"strings"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/accessbot/accessbot/access"
	"github.com/accessbot/accessbot/auditsink"
	"github.com/accessbot/accessbot/bot/console"
	"github.com/accessbot/accessbot/bot/discord"
	"github.com/accessbot/accessbot/bot/slack"
	"github.com/accessbot/accessbot/config"
	"github.com/accessbot/accessbot/handlers"
	"github.com/accessbot/accessbot/metrics"
	"github.com/accessbot/accessbot/scheduler"
	redisstore "github.com/accessbot/accessbot/store/redis"
)

// Deps are what App takes from outside the config. The zero value is
// production: the system clock, each provider's own HTTP client, a logger
// built from the config's log section, the configured store.
type Deps struct {
	// Clock is the time of the service, the scheduler, the handoff timers
	// and the on-call services; nil is the system clock.
	Clock access.Clock
	// Logger, when nil, is built from the config's log section and writes
	// to Stderr.
	Logger *slog.Logger
	// HTTPClient, when set, is the client of the Okta, AWS, PagerDuty and
	// Opsgenie adapters (nil: each its own default).
	HTTPClient *http.Client
	// Stdin is read by the console transport; Stdout is where it writes;
	// Stderr gets the logs when Logger is nil. Nil is empty input and
	// io.Discard.
	Stdin          io.Reader
	Stdout, Stderr io.Writer
	// Store, when set, is used instead of opening the configured store
	// (the caller closes it).
	Store access.Store
	// Providers, when set, replace the configured provisioners of the same
	// name (tests pass a dryrun.Provider they watch).
	Providers map[string]access.Provisioner
	// OnCall, when set, replaces the configured rotations as the on-call
	// source.
	OnCall access.OnCall
	// Transport, when set, is the chat transport instead of the configured
	// one (the config's chat section is still validated).
	Transport *Transport
	// Owner names this replica in claims and locks; "" is random.
	Owner string
	// Version is shown at start (the CLI's stamped version).
	Version string
}

// Transport is a chat transport given in Deps: how the service posts and
// finds people, how it gets its handler (set once the handlers exist, which
// need the transport first), and what runs it until ctx ends.
type Transport struct {
	Chat       handlers.Chat
	Directory  handlers.Directory
	SetHandler func(*handlers.Handler)
	Run        func(ctx context.Context) error
}

// App is one running accessbot: store, service, scheduler, handlers and
// one chat transport. Build it with New; Run it; Close it.
type App struct {
	cfg   *config.Loaded
	log   *slog.Logger
	clock access.Clock
	deps  Deps

	store     access.Store // tapped when the console shows audit lines
	providers map[string]access.Provisioner
	svc       *access.Service
	sched     *scheduler.Scheduler
	handler   *handlers.Handler
	console   *console.Console // nil unless chat.console
	runChat   func(ctx context.Context) error

	// The metrics/health HTTP server (metrics.listen: /metrics, /healthz,
	// /readyz) starts in New, before the store is opened, so the probes
	// answer (not ready) while Redis is still awaited; Close stops it.
	metrics     *metrics.Metrics // nil when metrics.listen is off
	metricsAddr net.Addr
	stopMetrics context.CancelFunc
	metricsDone chan error

	closeStore func()

	// Evidence (evidence.go): the audit sinks' delivery workers.
	auditSinks []*auditsink.Worker
}

// New opens the store (with Redis it waits, with backoff, until Redis
// answers or ctx ends), builds the providers, the service, the chat
// transport, the handlers and the scheduler, registers the singleton jobs
// and runs each rotation's first shift check, so the current shift is
// granted before Run. ctx bounds the waiting and is the lifetime of the
// handoff timers. On an error everything opened is closed again.
func New(ctx context.Context, l *config.Loaded, d Deps) (_ *App, err error) {
	if d.Stdout == nil {
		d.Stdout = io.Discard
	}
	if d.Stderr == nil {
		d.Stderr = io.Discard
	}
	if d.Stdin == nil {
		d.Stdin = strings.NewReader("")
	}
	cfg := l.Config
	a := &App{cfg: l, log: d.Logger, clock: d.Clock, deps: d}
	if a.log == nil {
		a.log = NewLogger(cfg, d.Stderr)
	}
	if a.clock == nil {
		a.clock = access.SystemClock{}
	}
	defer func() {
		if err != nil {
			a.Close()
		}
	}()

	var ready *redisstore.Readiness
	if l.MetricsListen != "" {
		if err := a.startMetrics(ctx, l.MetricsListen); err != nil {
			return nil, err
		}
		if cfg.Store.Redis != nil && d.Store == nil {
			ready = new(redisstore.Readiness)
			a.metrics.AddCheck("store connected", func(context.Context) error {
				if !ready.Ready() {
					return errors.New("not connected")
				}
				return nil
			})
		}
	}

	st := d.Store
	if st == nil {
		// Redis may be down: wait for it rather than fail.
		if st, a.closeStore, err = openStoreWaiting(ctx, cfg, a.log, ready); err != nil {
			return nil, err
		}
	}
	raw := st // with its audit capabilities, for the audit sinks
	if a.metrics != nil {
		st = a.metrics.WrapStore(st) // keeps Fencer, Counter, Inbox
	}
	// Singleton jobs lock with the store's own fenced claims (before the
	// console's tap hides the capability).
	fencer, _ := st.(access.Fencer)
	if c := cfg.Chat.Console; c != nil {
		a.console = console.New(console.Config{Users: c.Users, ApprovalsChannel: c.ApprovalsChannel, SecurityChannel: c.SecurityChannel}, d.Stdout)
		con := a.console
		st = tapStore{Store: st, fn: func(e access.AuditEvent) { con.Printf("%s", auditLine(e)) }}
	}
	a.store = st

	if a.providers, err = a.buildProviders(ctx); err != nil {
		return nil, err
	}
	if a.metrics != nil {
		a.providers = a.metrics.WrapProviders(a.providers)
	}
	oncall := d.OnCall
	if oncall == nil {
		if oncall, err = a.buildOnCall(); err != nil {
			return nil, err
		}
	}

	// The transport comes first: the notifier needs it, the service the
	// notifier. Its handler is set last (SetHandler): the handlers need
	// the transport as their Directory and the service, and the transport
	// needs the handlers, a cycle only a setter breaks.
	var chat handlers.Chat
	var dir handlers.Directory
	var setHandler func(*handlers.Handler)
	switch {
	case d.Transport != nil:
		t := d.Transport
		chat, dir, setHandler, a.runChat = t.Chat, t.Directory, t.SetHandler, t.Run
	case a.console != nil:
		chat, dir, setHandler = a.console, a.console, func(h *handlers.Handler) { a.console.SetHandler(h) }
		a.runChat = a.runConsole
	case cfg.Chat.Slack != nil:
		bc := cfg.Chat.Slack.Bot()
		bc.ShutdownTimeout = l.ShutdownTimeout
		b, err := slack.New(bc, nil, st, a.log)
		if err != nil {
			return nil, err
		}
		if a.metrics != nil {
			b.SetHooks(slack.Hooks(a.metrics.Chat("slack")))
		}
		chat, dir, setHandler, a.runChat = b, b, func(h *handlers.Handler) { b.SetHandler(h) }, b.Run
	case cfg.Chat.Discord != nil:
		b, err := discord.New(*cfg.Chat.Discord, nil, st, a.log, nil)
		if err != nil {
			return nil, err
		}
		if a.metrics != nil {
			b.SetHooks(discord.Hooks(a.metrics.Chat("discord")))
		}
		chat, dir, setHandler, a.runChat = b, b, func(h *handlers.Handler) { b.SetHandler(h) }, b.Run
	default:
		return nil, errors.New("app: no chat transport configured")
	}

	opts := l.Limits
	opts.RevokeAlertAfter = l.RevokeAlertAfter
	a.svc, err = access.NewService(access.Deps{Store: st, Policy: l.Policy, Providers: a.providers, OnCall: oncall,
		Notifier: handlers.NewNotifier(chat, a.log), Clock: d.Clock, Logger: a.log, Owner: d.Owner, Options: opts})
	if err != nil {
		return nil, err
	}
	a.handler = handlers.New(a.svc, dir, a.log)
	setHandler(a.handler)

	sopts := scheduler.Options{Sweep: l.Sweep}
	if a.metrics != nil {
		sopts.Hooks = scheduler.Hooks{Loop: a.metrics.Heartbeat, Lock: a.metrics.LeaderChanged}
	}
	if fencer != nil {
		sopts.Locker = scheduler.NewStoreLocker(fencer, d.Owner, a.log)
	}
	a.sched = scheduler.New(st, a.svc, d.Clock, a.log, sopts)
	// The scheduler processes through the service and the service wakes
	// the scheduler: one of the two must be set after both exist.
	a.svc.SetWaker(a.sched)
	if err := a.addJobs(ctx); err != nil {
		return nil, err
	}
	if err := a.addEvidence(raw, chat); err != nil {
		return nil, err
	}
	return a, nil
}

// errInputDone ends a console run whose script is over and whose requests
// have all settled.
var errInputDone = errors.New("input done")

// Run runs the scheduler and the chat transport until ctx ends (nil) or
// one of them fails (its error). A console run also ends, with nil, once
// its input is over and every request has settled. Run waits for
// everything it started, the handoff timers' runs included.
func (a *App) Run(ctx context.Context) error {
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error { return a.sched.Run(gctx) })
	g.Go(func() error { return a.runChat(gctx) })
	for _, w := range a.auditSinks {
		g.Go(func() error { return w.Run(gctx) })
	}
	a.log.InfoContext(ctx, "accessbot running", "version", a.deps.Version, "roles", len(a.cfg.Policy.Roles), "rotations", len(a.cfg.Policy.Rotations))
	// A stop (SIGTERM): the chat transport stops taking events and
	// finishes or hands back the rest within shutdown_timeout; the
	// scheduler's work in progress is cut short and its leases released.
	var stopAt time.Time
	stopped := make(chan struct{})
	noStop := context.AfterFunc(ctx, func() {
		defer close(stopped)
		stopAt = time.Now()
		a.log.Info("accessbot stopping", "shutdown_timeout", a.cfg.ShutdownTimeout.String())
	})
	err := g.Wait()
	if !noStop() {
		<-stopped
		a.log.Info("accessbot stopped", "took", time.Since(stopAt).Round(time.Millisecond).String())
	}
	if errors.Is(err, errInputDone) || (err != nil && ctx.Err() != nil) || errors.Is(err, context.Canceled) {
		return nil
	}
	return err
}

// startMetrics binds addr and serves /metrics, /healthz and /readyz on
// it until Close. The config is loaded and valid by now.
func (a *App) startMetrics(ctx context.Context, addr string) error {
	a.metrics = metrics.New(metrics.Options{Roles: a.cfg.Policy.RoleNames(), Clock: a.deps.Clock, Logger: a.log})
	srv := a.metrics.Server(addr)
	bound, err := srv.Listen()
	if err != nil {
		return fmt.Errorf("metrics.listen: %v", err)
	}
	a.metricsAddr = bound
	sctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	a.stopMetrics, a.metricsDone = cancel, make(chan error, 1)
	go func() {
		err := srv.Run(sctx)
		if err != nil {
			a.log.Error("metrics server stopped", "err", err.Error())
		}
		a.metricsDone <- err
	}()
	a.metrics.ConfigLoaded()
	a.log.InfoContext(ctx, "serving /metrics, /healthz and /readyz", "addr", bound.String())
	return nil
}

// MetricsAddr is the address /metrics, /healthz and /readyz are served
// on (the bound port when metrics.listen asked for port 0); nil when
// metrics.listen is off.
func (a *App) MetricsAddr() net.Addr { return a.metricsAddr }

// Metrics is the collectors and health state; nil when metrics.listen is
// off.
func (a *App) Metrics() *metrics.Metrics { return a.metrics }

// Close stops the metrics server and releases the store New opened (a
// store passed in Deps stays open). It is safe to call more than once.
func (a *App) Close() error {
	if a.stopMetrics != nil {
		a.stopMetrics()
		<-a.metricsDone
		a.stopMetrics = nil
	}
	if a.closeStore != nil {
		a.closeStore()
		a.closeStore = nil
	}
	return nil
}

// Service is the workflow service.
func (a *App) Service() *access.Service { return a.svc }

// Scheduler is the expiry engine and job runner.
func (a *App) Scheduler() *scheduler.Scheduler { return a.sched }

// Store is the store the service uses.
func (a *App) Store() access.Store { return a.store }

// Console is the console transport, nil unless chat.console is configured.
func (a *App) Console() *console.Console { return a.console }

// Provider returns the provisioner of that name, nil when there is none.
func (a *App) Provider(name string) access.Provisioner { return a.providers[name] }

func (a *App) runConsole(ctx context.Context) error {
	con := a.console
	con.Printf("accessbot %s on the console: type \"<user>: /access <role> <duration> <reason>\" (users: %s); Ctrl-D ends input",
		a.deps.Version, strings.Join(slices.Sorted(maps.Keys(a.cfg.Config.Chat.Console.Users)), ", "))
	if err := con.Run(ctx, a.deps.Stdin); err != nil {
		return err
	}
	if ctx.Err() != nil {
		return nil
	}
	con.Printf("(input ended; waiting until every request has settled, Ctrl-C to stop now)")
	if err := waitSettled(ctx, a.store); err != nil {
		return err
	}
	return errInputDone
}

// waitSettled returns once no request is pending or live any more
// (on-call shift grants aside).
func waitSettled(ctx context.Context, st access.Store) error {
	t := time.NewTicker(500 * time.Millisecond)
	defer t.Stop()
	for {
		open, err := st.List(ctx, access.Filter{States: []access.State{access.StatePending, access.StateApproved,
			access.StateActive, access.StateRevoking}})
		if err != nil {
			return err
		}
		settled := true
		for _, r := range open {
			// On-call shift grants last until the handoff; they do not keep
			// a finished script waiting.
			if r.Kind != access.KindRotation || r.State == access.StateRevoking {
				settled = false
				break
			}
		}
		if settled {
			return nil
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// NewLogger is the logger the config's log section asks for, writing to w:
// JSON unless the console is the transport (or log.format says), Warn and
// up on the console, Info and up otherwise, unless log.level says.
func NewLogger(cfg config.Config, w io.Writer) *slog.Logger {
	level := slog.LevelInfo
	if cfg.Chat.Console != nil {
		level = slog.LevelWarn // the console shows what happens; logs are for trouble
	}
	switch cfg.Log.Level {
	case "debug":
		level = slog.LevelDebug
	case "info":
		level = slog.LevelInfo
	case "warn":
		level = slog.LevelWarn
	case "error":
		level = slog.LevelError
	}
	opts := &slog.HandlerOptions{Level: level}
	if cfg.Log.Format == "json" || (cfg.Log.Format == "" && cfg.Chat.Console == nil) {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}
