package main

import (
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/accessbot/accessbot/config"
	"io"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	goredis "github.com/redis/go-redis/v9"
	"golang.org/x/sync/errgroup"

	"github.com/accessbot/accessbot/access"
	"github.com/accessbot/accessbot/bot/console"
	"github.com/accessbot/accessbot/bot/discord"
	"github.com/accessbot/accessbot/bot/slack"
	"github.com/accessbot/accessbot/handlers"
	"github.com/accessbot/accessbot/providers/dryrun"
	"github.com/accessbot/accessbot/scheduler"
	"github.com/accessbot/accessbot/store/bolt"
	redisstore "github.com/accessbot/accessbot/store/redis"
)

func newLogger(cfg config.Config, w io.Writer) *slog.Logger {
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

// openStore opens the configured store; close releases it (and removes a
// temporary bolt file).
func openStore(ctx context.Context, cfg config.Config) (access.Store, *goredis.Client, func(), error) {
	// A one-shot command (audit) gives up after 5s rather than waiting.
	pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	return openStoreWaiting(pctx, cfg, nil)
}

// openStoreWaiting is openStore for a replica: with Redis it waits, with
// backoff and a Warn per failed attempt on log, until Redis answers or ctx
// ends; ready (may be nil) turns true once it has.
func openStoreWaiting(ctx context.Context, cfg config.Config, log *slog.Logger, ready ...*redisstore.Readiness) (access.Store, *goredis.Client, func(), error) {
	if r := cfg.Store.Redis; r != nil {
		if log == nil {
			log = slog.New(slog.NewTextHandler(io.Discard, nil))
		}
		o := redisstore.OpenOptions{Logger: log}
		if len(ready) > 0 {
			o.Readiness = ready[0]
		}
		c, err := redisstore.Dial(ctx, r.URL, o)
		if err != nil {
			return nil, nil, nil, fmt.Errorf("store.redis.url: %v", redactURL(err.Error(), r.URL))
		}
		prefix := r.Prefix
		if prefix == "" {
			prefix = "accessbot"
		}
		s := redisstore.New(c, prefix)
		return s, c, func() { s.Close(); c.Close() }, nil
	}
	path := "accessbot.db"
	temporary := false
	if b := cfg.Store.Bolt; b != nil {
		if b.Path != "" {
			path = b.Path
		}
		temporary = b.Temporary
	}
	if temporary {
		dir, err := os.MkdirTemp("", "accessbot-")
		if err != nil {
			return nil, nil, nil, err
		}
		path = filepath.Join(dir, "accessbot.db")
		s, err := bolt.Open(path)
		if err != nil {
			os.RemoveAll(dir)
			return nil, nil, nil, err
		}
		return s, nil, func() { s.Close(); os.RemoveAll(dir) }, nil
	}
	s, err := bolt.Open(path)
	if err != nil {
		return nil, nil, nil, err
	}
	return s, nil, func() { s.Close() }, nil
}

func redactURL(msg, url string) string { return strings.ReplaceAll(msg, url, "(the url)") }

// tapStore shows audit events as they are written (the console's audit lines).
type tapStore struct {
	access.Store
	fn func(access.AuditEvent)
}

func (t tapStore) Create(ctx context.Context, r *access.Request, evs ...access.AuditEvent) error {
	if err := t.Store.Create(ctx, r, evs...); err != nil {
		return err
	}
	for _, e := range evs {
		t.fn(e)
	}
	return nil
}

func (t tapStore) Update(ctx context.Context, id string, fn func(*access.Request) ([]access.AuditEvent, error)) (*access.Request, error) {
	var last []access.AuditEvent
	r, err := t.Store.Update(ctx, id, func(r *access.Request) ([]access.AuditEvent, error) {
		evs, err := fn(r)
		last = evs
		return evs, err
	})
	if err == nil {
		for _, e := range last {
			t.fn(e)
		}
	}
	return r, err
}

func (t tapStore) AppendAudit(ctx context.Context, evs ...access.AuditEvent) error {
	if err := t.Store.AppendAudit(ctx, evs...); err != nil {
		return err
	}
	for _, e := range evs {
		t.fn(e)
	}
	return nil
}

func auditLine(e access.AuditEvent) string {
	s := fmt.Sprintf("[audit] %s %s %s role=%s by=%s", e.At.UTC().Format(time.RFC3339), e.RequestID, e.Action, e.Role, e.Actor)
	switch {
	case e.From == "" && e.To != "":
		s += " state=" + string(e.To)
	case e.From != "":
		s += fmt.Sprintf(" %s->%s", e.From, e.To)
	}
	if e.Reason != "" {
		s += fmt.Sprintf(" reason=%q", e.Reason)
	}
	if e.Detail != "" {
		s += " (" + e.Detail + ")"
	}
	return s
}

// errInputDone ends a console run whose script is over and whose requests
// have all settled.
var errInputDone = errors.New("input done")

func cmdRun(ctx context.Context, l *config.Loaded, stdin io.Reader, stdout, stderr io.Writer) error {
	cfg := l.Config
	log := newLogger(cfg, stderr)
	// Redis may be down: wait for it rather than exit; Ctrl-C or SIGTERM
	// while waiting is a clean stop.
	st, _, closeStore, err := openStoreWaiting(ctx, cfg, log)
	if err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return err
	}
	defer closeStore()
	// Singleton jobs lock with the store's own fenced claims (before the
	// console's tap hides the capability).
	fencer, _ := st.(access.Fencer)

	var con *console.Console
	if c := cfg.Chat.Console; c != nil {
		con = console.New(console.Config{Users: c.Users, ApprovalsChannel: c.ApprovalsChannel, SecurityChannel: c.SecurityChannel}, stdout)
		st = tapStore{Store: st, fn: func(e access.AuditEvent) { con.Printf("%s", auditLine(e)) }}
	}
	provs, err := buildProviders(ctx, cfg, log, con)
	if err != nil {
		return err
	}
	oncall, err := buildOnCall(l, log)
	if err != nil {
		return err
	}
	svcOpts := l.Limits
	svcOpts.RevokeAlertAfter = l.RevokeAlertAfter
	svc, err := access.NewService(access.Deps{Store: st, Policy: l.Policy, Providers: provs, OnCall: oncall, Logger: log, Options: svcOpts})
	if err != nil {
		return err
	}

	var chat handlers.Chat
	var dir handlers.Directory
	var runChat func(ctx context.Context) error
	var slackBot *slack.Bot
	var discordBot *discord.Bot
	switch {
	case con != nil:
		chat, dir = con, con
		runChat = func(ctx context.Context) error {
			con.Printf("accessbot %s on the console: type \"<user>: /access <role> <duration> <reason>\" (users: %s); Ctrl-D ends input",
				version, strings.Join(slices.Sorted(maps.Keys(cfg.Chat.Console.Users)), ", "))
			if err := con.Run(ctx, stdin); err != nil {
				return err
			}
			if ctx.Err() != nil {
				return nil
			}
			con.Printf("(input ended; waiting until every request has settled, Ctrl-C to stop now)")
			if err := waitSettled(ctx, st); err != nil {
				return err
			}
			return errInputDone
		}
	case cfg.Chat.Slack != nil:
		sc := cfg.Chat.Slack
		timeout, _ := time.ParseDuration(sc.EventTimeout)
		slackBot, err = slack.New(slack.Config{AppToken: sc.AppToken, BotToken: sc.BotToken, APIURL: sc.APIURL,
			ApprovalsChannel: sc.ApprovalsChannel, SecurityChannel: sc.SecurityChannel, AllowedTeams: sc.AllowedTeams,
			Workers: sc.Workers, UrgentWorkers: sc.UrgentWorkers, EventTimeout: timeout}, nil, st, log)
		if err != nil {
			return err
		}
		chat, dir = slackBot, slackBot
		runChat = slackBot.Run
	case cfg.Chat.Discord != nil:
		if discordBot, err = discord.New(*cfg.Chat.Discord, nil, st, log, nil); err != nil {
			return err
		}
		chat, dir, runChat = discordBot, discordBot, discordBot.Run
	}
	h := handlers.New(svc, dir, log)
	if con != nil {
		con.SetHandler(h)
	}
	if slackBot != nil {
		slackBot.SetHandler(h)
	}
	if discordBot != nil {
		discordBot.SetHandler(h)
	}
	svc.SetNotifier(handlers.NewNotifier(chat, log))

	opts := scheduler.Options{Sweep: l.Sweep}
	if fencer != nil {
		opts.Locker = scheduler.NewStoreLocker(fencer, "", log)
	}
	sched := scheduler.New(st, svc, nil, log, opts)
	svc.SetWaker(sched)
	if err := addJobs(ctx, sched, svc, l, provs, log); err != nil {
		return err
	}

	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error { return sched.Run(gctx) })
	g.Go(func() error { return runChat(gctx) })
	log.Info("accessbot running", "version", version, "roles", len(l.Policy.Roles), "rotations", len(l.Policy.Rotations))
	err = g.Wait()
	if errors.Is(err, errInputDone) || (err != nil && ctx.Err() != nil) || errors.Is(err, context.Canceled) {
		return nil
	}
	return err
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

func buildProviders(ctx context.Context, cfg config.Config, log *slog.Logger, con *console.Console) (map[string]access.Provisioner, error) {
	provs := map[string]access.Provisioner{}
	if cfg.Providers.DryRun != nil {
		d := dryrun.New(log)
		if con != nil {
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
	if err := buildRealProviders(ctx, cfg, log, provs); err != nil {
		return nil, err
	}
	return provs, nil
}

func buildOnCall(l *config.Loaded, log *slog.Logger) (access.OnCall, error) {
	router := access.OnCallRouter{}
	for name, r := range l.Rotations {
		router[name] = r
	}
	if err := buildServiceRotations(l, log, router); err != nil {
		return nil, err
	}
	return router, nil
}

func cmdCheck(ctx context.Context, l *config.Loaded, online bool, stdout, stderr io.Writer) int {
	// Nothing check prints may show a value that came from ${VAR}.
	stdout, stderr = redacting{stdout, l.Redact}, redacting{stderr, l.Redact}
	fmt.Fprintf(stdout, "config OK: %d role(s), %d rotation(s)\n", len(l.Policy.Roles), len(l.Policy.Rotations))
	for _, name := range l.Policy.RoleNames() {
		r := l.Policy.Roles[name]
		fmt.Fprintf(stdout, "  role %s: %s group %s, up to %s, %d approval(s) from %s\n", name, r.Provider, r.Group,
			access.FormatDuration(r.MaxDuration), r.Approvals, approverSummary(r))
	}
	if !online {
		return 0
	}
	log := newLogger(l.Config, stderr)
	provs := map[string]access.Provisioner{}
	if err := buildRealProviders(ctx, l.Config, log, provs); err != nil {
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

// redacting passes every write through redact. Each write of check's
// output is a whole line (or a whole log record), so no value is split.
type redacting struct {
	w      io.Writer
	redact func(string) string
}

func (r redacting) Write(p []byte) (int, error) {
	if _, err := io.WriteString(r.w, r.redact(string(p))); err != nil {
		return 0, err
	}
	return len(p), nil
}

func approverSummary(r access.Role) string {
	var parts []string
	for _, rot := range r.ApproverRotations {
		parts = append(parts, "on-call of "+rot)
	}
	parts = append(parts, r.ApproverUsers...)
	return strings.Join(parts, ", ")
}

func cmdAudit(ctx context.Context, l *config.Loaded, since, format string, stdout, stderr io.Writer) int {
	d, err := access.ParseDuration(since)
	if err != nil {
		fmt.Fprintf(stderr, "accessbot audit: --since %q is not a duration (e.g. 1h, 24h, 7d)\n", since)
		return 2
	}
	if format != "jsonl" && format != "csv" {
		fmt.Fprintf(stderr, "accessbot audit: --format must be jsonl or csv, not %q\n", format)
		return 2
	}
	if b := l.Config.Store.Bolt; b != nil && b.Temporary {
		fmt.Fprintln(stderr, "accessbot audit: this config uses a temporary store, which is deleted when the bot stops; nothing to read")
		return 1
	}
	st, _, closeStore, err := openStore(ctx, l.Config)
	if err != nil {
		fmt.Fprintf(stderr, "accessbot audit: %v\n", err)
		return 1
	}
	defer closeStore()
	evs, err := st.Audit(ctx, time.Now().Add(-d))
	if err != nil {
		fmt.Fprintf(stderr, "accessbot audit: %v\n", err)
		return 1
	}
	if err := writeAudit(stdout, evs, format); err != nil {
		fmt.Fprintf(stderr, "accessbot audit: %v\n", err)
		return 1
	}
	return 0
}

func writeAudit(w io.Writer, evs []access.AuditEvent, format string) error {
	if format == "jsonl" {
		enc := json.NewEncoder(w)
		for _, e := range evs {
			if err := enc.Encode(e); err != nil {
				return err
			}
		}
		return nil
	}
	cw := csv.NewWriter(w)
	_ = cw.Write([]string{"at", "request_id", "action", "actor", "subject", "role", "from", "to", "reason", "detail"})
	for _, e := range evs {
		row := []string{e.At.UTC().Format(time.RFC3339Nano), e.RequestID, string(e.Action), e.Actor, e.Subject,
			e.Role, string(e.From), string(e.To), e.Reason, e.Detail}
		for i := range row {
			row[i] = csvCell(row[i])
		}
		_ = cw.Write(row)
	}
	cw.Flush()
	return cw.Error()
}

// csvCell neutralises a cell a spreadsheet would read as a formula (the
// OWASP CSV-injection rule): a cell starting with = + - @, a tab or a
// carriage return gets a leading single quote. Reasons and details are typed
// by users, and an audit export is opened in spreadsheets.
func csvCell(s string) string {
	if s != "" && strings.ContainsRune("=+-@\t\r", rune(s[0])) {
		return "'" + s
	}
	return s
}
