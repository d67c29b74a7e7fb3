// Package discord is the Discord transport of accessbot: a gateway bot
// (discordgo) with one /access application command and message components.
// It receives interactions, hands them to the handlers (the same ones Slack
// uses, so the platforms never drift) and renders handlers.Message as
// embeds and buttons.
//
// Every interaction gets its first response at once: a modal or a refusal
// (type 9 / 4), or a deferred ephemeral answer (type 5) that a worker of a
// bounded pool edits when the work is done. Interaction ids are recorded
// through a Deduper (the store), so an interaction delivered twice or to
// two replicas is acted on once. When the store is also an access.Inbox,
// deferred work is stored before its first response and survives the
// death of its replica (inbox.go).
package discord

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"time"

	"github.com/bwmarrin/discordgo"
	"golang.org/x/sync/errgroup"

	"github.com/accessbot/accessbot/access"
	"github.com/accessbot/accessbot/handlers"
	"github.com/accessbot/accessbot/internal/inboxlease"
	"github.com/accessbot/accessbot/internal/ttlcache"
)

const (
	platform = "discord"

	// dedupTTL is how long interaction ids are remembered; an interaction
	// token lives 15 minutes.
	dedupTTL = 20 * time.Minute
	// maxRemembered bounds the ids remembered in memory when New is given
	// no Deduper.
	maxRemembered = 100000
	// queuePerWorker sizes the queue between the gateway and the workers.
	queuePerWorker = 64
	// respondTimeout bounds a first response; Discord drops it after 3 s.
	respondTimeout = 3 * time.Second
	// replyTimeout bounds the edit that carries the answer, detached from
	// the work's deadline.
	replyTimeout = 10 * time.Second
	// readyTimeout bounds the wait for READY after the gateway opened.
	readyTimeout = 30 * time.Second
)

// Fixed texts shown to people instead of raw errors.
const (
	textGuildRefused = "This server is not allowed to use accessbot."
	textFailed       = "Sorry, something went wrong on our side. It has been logged; please try again."
	textUnknown      = "accessbot does not know this button or form; nothing was done."
	textStopping     = "accessbot is restarting and did not get to this; nothing was done. Please try again in a minute."
	textBusy         = "accessbot has too many requests waiting right now; nothing was done. Please try again in a minute."
	textRetry        = "accessbot could not take this in just now; nothing was done. Please try again."
	textFormExpired  = "The request form could not be opened in time. Try again, or type `/access request` with its role, duration and reason."
)

// Handler is what the transport needs from the handlers package
// (*handlers.Handler implements it).
type Handler interface {
	Command(ctx context.Context, c handlers.Command) handlers.Reply
	Action(ctx context.Context, a handlers.Action) handlers.Reply
	SubmitForm(ctx context.Context, in handlers.FormInput) (handlers.Reply, handlers.FormErrors)
	RoleOptions(ctx context.Context, chatUser, query string) []handlers.RoleOption
}

// Deduper remembers event ids; access.Store implements it. Seen reports
// whether eventID was recorded before within ttl (the first caller gets
// false).
type Deduper interface {
	Seen(ctx context.Context, eventID string, ttl time.Duration) (bool, error)
}

var (
	_ handlers.Chat      = (*Bot)(nil)
	_ handlers.Directory = (*Bot)(nil)
)

// Bot is the Discord transport. It implements handlers.Chat and
// handlers.Directory, so it can be built before the Handler that needs it:
// pass a nil Handler to New and call SetHandler before Run.
type Bot struct {
	cfg    Config
	log    *slog.Logger
	s      *discordgo.Session
	seen   Deduper
	guilds map[string]bool
	byID   map[string]string // Discord user id -> identity
	byIdnt map[string]string // identity -> Discord user id

	mu      sync.RWMutex
	handler Handler
	lanes   *lanes // nil until Run and after it
	stopped bool   // Run has returned

	dmMu sync.Mutex
	dms  map[string]string // user id -> DM channel id

	ready chan string // application ids from READY

	hooks Hooks // optional observer callbacks (hooks.go)

	// inbox, when the store has it, holds deferred work from before its
	// first response until it is done (inbox.go); owner names this
	// replica in its leases.
	inbox  access.Inbox
	owner  string
	held   inboxlease.Held
	keeper *inboxlease.Keeper
}

// New validates cfg (Validate) and builds a Bot. h may be nil and set later
// with SetHandler; seen may be nil (ids are remembered in memory, enough
// for one replica); when seen is also an access.Inbox, deferred work goes
// through it (see inbox.go). log may be nil. client may be nil; its transport is
// wrapped to send discordgo's requests to cfg.APIURL.
func New(cfg Config, h Handler, seen Deduper, log *slog.Logger, client *http.Client) (*Bot, error) {
	if errs := cfg.Validate(); len(errs) > 0 {
		return nil, fmt.Errorf("discord: invalid config: %w", errors.Join(errs...))
	}
	cfg = cfg.normalised()
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if seen == nil {
		seen = ttlcache.NewDedup(maxRemembered)
	}
	base, err := url.Parse(cfg.APIURL)
	if err != nil {
		return nil, fmt.Errorf("discord: api_url: %w", err)
	}
	s, err := discordgo.New("Bot " + cfg.Token)
	if err != nil {
		return nil, fmt.Errorf("discord: session: %w", err)
	}
	hc := &http.Client{Timeout: 20 * time.Second}
	if client != nil {
		c := *client
		hc = &c
	}
	next := hc.Transport
	if next == nil {
		// Many interactions are answered at once: keep their connections
		// (the default keeps 2 idle per host and 100 in all, and a burst
		// then opens new ones for most callbacks; over HTTP/2, as with
		// Discord itself, one connection carries them all anyway).
		t := http.DefaultTransport.(*http.Transport).Clone()
		t.MaxIdleConns = 256
		t.MaxIdleConnsPerHost = 256
		next = t
	}
	hc.Transport = rewrite{base: base, next: next}
	s.Client = hc
	s.Identify.Intents = discordgo.IntentsGuilds // no privileged intents
	s.Identify.Compress = false
	s.Compress = false
	s.StateEnabled = false
	s.ShouldReconnectOnError = true
	s.ShouldRetryOnRateLimit = true
	s.LogLevel = -1 // discordgo's own log.Printf lines stay off; we log what matters

	b := &Bot{cfg: cfg, log: log, s: s, seen: seen, handler: h, guilds: map[string]bool{},
		byID: map[string]string{}, byIdnt: map[string]string{}, dms: map[string]string{}, ready: make(chan string, 16)}
	for _, g := range cfg.Guilds {
		b.guilds[g] = true
	}
	if in, ok := seen.(access.Inbox); ok {
		b.inbox, b.owner = in, inboxlease.Owner(platform)
		b.keeper = &inboxlease.Keeper{Inbox: in, Owner: b.owner, Lease: cfg.InboxLease, Held: &b.held, Log: log, Platform: platform}
	}
	for id, e := range cfg.Users {
		b.byID[id] = e
		b.byIdnt[e] = id
	}
	s.AddHandler(b.onReady)
	s.AddHandler(b.onResumed)
	s.AddHandler(b.onDisconnect)
	s.AddHandler(b.onInteraction)
	return b, nil
}

// rewrite sends requests for https://discord.com/api/vN/… to base.
type rewrite struct {
	base *url.URL
	next http.RoundTripper
}

var apiPath = regexp.MustCompile(`^/api/v[0-9]+/`)

func (t rewrite) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.URL.Host == "discord.com" && apiPath.MatchString(r.URL.Path) {
		rest := apiPath.ReplaceAllString(r.URL.EscapedPath(), "")
		u, err := url.Parse(t.base.String() + rest)
		if err != nil {
			return nil, fmt.Errorf("discord: rewrite %s: %w", r.URL.Path, err)
		}
		u.RawQuery = r.URL.RawQuery
		r2 := r.Clone(r.Context())
		r2.URL = u
		r2.Host = u.Host
		return t.next.RoundTrip(r2)
	}
	return t.next.RoundTrip(r)
}

// SetHandler sets the Handler interactions go to. Call it before Run.
func (b *Bot) SetHandler(h Handler) {
	b.mu.Lock()
	b.handler = h
	b.mu.Unlock()
}

func (b *Bot) getHandler() Handler {
	b.mu.RLock()
	defer b.mu.RUnlock()
	return b.handler
}

func (b *Bot) onReady(_ *discordgo.Session, r *discordgo.Ready) {
	id := ""
	if r.Application != nil {
		id = r.Application.ID
	}
	b.log.InfoContext(context.Background(), "discord gateway ready", "session_id", r.SessionID, "guilds", len(r.Guilds))
	b.connected(true)
	select {
	case b.ready <- id:
	default:
	}
}

func (b *Bot) onResumed(_ *discordgo.Session, _ *discordgo.Resumed) {
	b.log.InfoContext(context.Background(), "discord gateway resumed")
	b.connected(true)
}

// Run connects to the gateway, registers /access in every allowed guild
// (bulk overwrite, idempotent) and serves interactions until ctx ends; then
// it returns nil. discordgo heartbeats, resumes after op 7 and dropped
// sockets, and identifies again after op 9.
func (b *Bot) Run(ctx context.Context) error {
	h := b.getHandler()
	if h == nil {
		return errors.New("discord: run: no handler set (call SetHandler before Run)")
	}
	defer b.connected(false)
	jobs := &lanes{bulk: make(chan job, b.cfg.Workers*queuePerWorker), urgent: make(chan job, b.cfg.UrgentWorkers*queuePerWorker)}
	b.mu.Lock()
	b.lanes = jobs
	b.mu.Unlock()
	g, gctx := errgroup.WithContext(ctx)
	if b.inbox != nil {
		g.Go(func() error {
			b.warm(gctx)
			return nil
		})
		g.Go(func() error {
			b.keeper.Renew(gctx)
			return nil
		})
		g.Go(func() error {
			b.keeper.TakeOver(gctx, dedupTTL, func(ctx context.Context, e access.InboxEntry) { b.takeOver(ctx, jobs, e) })
			return nil
		})
	}
	// Urgent workers take urgent work only; the others take either, urgent
	// work first, so a flood of requests never delays a decision.
	for range b.cfg.UrgentWorkers {
		g.Go(func() error {
			for {
				select {
				case <-gctx.Done():
					return nil
				case j := <-jobs.urgent:
					b.work(gctx, h, j)
				}
			}
		})
	}
	for range b.cfg.Workers {
		g.Go(func() error {
			for {
				select {
				case <-gctx.Done():
					return nil
				case j := <-jobs.urgent:
					b.work(gctx, h, j)
					continue
				default:
				}
				select {
				case <-gctx.Done():
					return nil
				case j := <-jobs.urgent:
					b.work(gctx, h, j)
				case j := <-jobs.bulk:
					b.work(gctx, h, j)
				}
			}
		})
	}
	g.Go(func() error {
		if err := b.s.Open(); err != nil {
			if gctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("discord: open gateway: %w", err)
		}
		defer b.s.Close()
		var appID string
		t := time.NewTimer(readyTimeout)
		select {
		case appID = <-b.ready:
			t.Stop()
		case <-t.C:
			return errors.New("discord: no READY from the gateway")
		case <-gctx.Done():
			t.Stop()
			return nil
		}
		if err := b.register(gctx, appID); err != nil {
			return err
		}
		<-gctx.Done()
		return nil
	})
	err := g.Wait()
	b.mu.Lock()
	b.lanes, b.stopped = nil, true
	b.mu.Unlock()
	b.drain(jobs)
	if err != nil && ctx.Err() == nil {
		return err
	}
	return nil
}

// drain answers the work still queued at shutdown: those people were
// acknowledged and must not be left with a response that never comes.
// Work held in the inbox is left to its lease instead: another replica
// (or this one restarted) does it and answers.
func (b *Bot) drain(jobs *lanes) {
	for {
		var j job
		select {
		case j = <-jobs.urgent:
		case j = <-jobs.bulk:
		default:
			return
		}
		if j.entry != "" {
			b.held.Drop(j.entry)
			continue
		}
		b.edit(b.log, j.i, handlers.Message{Text: textStopping})
	}
}

// register bulk-overwrites the guild commands of every allowed guild.
func (b *Bot) register(ctx context.Context, appID string) error {
	if appID == "" {
		return errors.New("discord: READY without an application id")
	}
	for _, g := range b.cfg.Guilds {
		if _, err := b.s.ApplicationCommandBulkOverwrite(appID, g, Commands(), discordgo.WithContext(ctx)); err != nil {
			return fmt.Errorf("discord: register /access in guild %s: %w", g, err)
		}
	}
	b.log.InfoContext(ctx, "discord commands registered", "guilds", len(b.cfg.Guilds))
	return nil
}

// Online checks the token and the guilds: GET users/@me and each guild.
// It returns what it found and every problem.
func (b *Bot) Online(ctx context.Context) ([]string, []error) {
	var lines []string
	var errs []error
	u, err := b.s.User("@me", discordgo.WithContext(ctx))
	if err != nil {
		return nil, []error{fmt.Errorf("chat.discord.token: GET users/@me: %w", err)}
	}
	lines = append(lines, fmt.Sprintf("discord: bot user %s (%s)", u.Username, u.ID))
	for i, id := range b.cfg.Guilds {
		gd, err := b.s.Guild(id, discordgo.WithContext(ctx))
		if err != nil {
			errs = append(errs, fmt.Errorf("chat.discord.guilds[%d]: GET guilds/%s: %w (is the bot invited to it?)", i, id, err))
			continue
		}
		lines = append(lines, fmt.Sprintf("discord: guild %s (%s)", gd.Name, gd.ID))
	}
	return lines, errs
}

// duplicate records the interaction id and reports whether it was seen
// before. A failing Deduper is logged and the interaction handled anyway:
// the engine's transitions are idempotent, a lost click is worse.
func (b *Bot) duplicate(ctx context.Context, id string) bool {
	seen, err := b.seen.Seen(ctx, "discord:interaction:"+id, dedupTTL)
	if err != nil {
		b.log.WarnContext(ctx, "discord dedup check failed", "interaction_id", id, "err", err)
		return false
	}
	if seen {
		b.log.InfoContext(ctx, "discord duplicate interaction dropped", "interaction_id", id)
	}
	return seen
}

// ---- handlers.Chat and handlers.Directory ----

// Platform returns "discord".
func (b *Bot) Platform() string { return platform }

// ApprovalsChannel returns the approvals channel id ("" means DM approvers).
func (b *Bot) ApprovalsChannel() string { return b.cfg.ApprovalsChannel }

// SecurityChannel returns the security channel id.
func (b *Bot) SecurityChannel() string { return b.cfg.SecurityChannel }

// Identity returns the identity linked to a Discord user id in
// chat.discord.users; access.ErrNoIdentity when there is none.
func (b *Bot) Identity(_ context.Context, chatUser string) (string, error) {
	if e, ok := b.byID[chatUser]; ok {
		return e, nil
	}
	return "", fmt.Errorf("discord: user %s is not linked in chat.discord.users: %w", chatUser, access.ErrNoIdentity)
}

// ChatUser returns the Discord user id linked to identity;
// access.ErrNoIdentity when none is.
func (b *Bot) ChatUser(_ context.Context, identity string) (string, error) {
	if id, ok := b.byIdnt[access.NormalizeIdentity(identity)]; ok {
		return id, nil
	}
	return "", fmt.Errorf("discord: %s has no linked Discord account: %w", identity, access.ErrNoIdentity)
}

// Post sends m to channel. A new approval card pings its approvers (and
// nobody else); every other message pings nobody.
func (b *Bot) Post(ctx context.Context, channel string, m handlers.Message) (access.MessageRef, error) {
	if channel == "" {
		return access.MessageRef{}, errors.New("discord: post: no channel")
	}
	var ping []string
	if isCard(m) {
		ping = b.approverIDs(m)
	}
	msg, err := b.s.ChannelMessageSendComplex(channel, sendOf(m, ping), discordgo.WithContext(ctx))
	if err != nil {
		return access.MessageRef{}, fmt.Errorf("discord: post to %s: %w", channel, err)
	}
	return access.MessageRef{Platform: platform, Channel: channel, ID: msg.ID}, nil
}

// Update replaces a posted message; a message without buttons loses them.
func (b *Bot) Update(ctx context.Context, ref access.MessageRef, m handlers.Message) error {
	if ref.Platform != "" && ref.Platform != platform {
		return fmt.Errorf("discord: update: message of platform %q", ref.Platform)
	}
	if ref.Channel == "" || ref.ID == "" {
		return errors.New("discord: update: message reference without channel or id")
	}
	e := editOf(m)
	e.ID, e.Channel = ref.ID, ref.Channel
	if _, err := b.s.ChannelMessageEditComplex(e, discordgo.WithContext(ctx)); err != nil {
		return fmt.Errorf("discord: update %s/%s: %w", ref.Channel, ref.ID, err)
	}
	return nil
}

// DM sends m to the Discord account linked to identity.
func (b *Bot) DM(ctx context.Context, identity string, m handlers.Message) (access.MessageRef, error) {
	user, err := b.ChatUser(ctx, identity)
	if err != nil {
		return access.MessageRef{}, err
	}
	ch, err := b.dmChannel(ctx, user)
	if err != nil {
		return access.MessageRef{}, fmt.Errorf("discord: dm %s: %w", identity, err)
	}
	msg, err := b.s.ChannelMessageSendComplex(ch, sendOf(m, nil), discordgo.WithContext(ctx))
	if err != nil {
		return access.MessageRef{}, fmt.Errorf("discord: dm %s: %w", identity, err)
	}
	return access.MessageRef{Platform: platform, Channel: ch, ID: msg.ID, For: identity}, nil
}

func (b *Bot) dmChannel(ctx context.Context, user string) (string, error) {
	b.dmMu.Lock()
	ch, ok := b.dms[user]
	b.dmMu.Unlock()
	if ok {
		return ch, nil
	}
	c, err := b.s.UserChannelCreate(user, discordgo.WithContext(ctx))
	if err != nil {
		return "", fmt.Errorf("open dm with %s: %w", user, err)
	}
	b.dmMu.Lock()
	b.dms[user] = c.ID
	b.dmMu.Unlock()
	return c.ID, nil
}

// approverIDs finds the Discord ids of the approvers a card names.
func (b *Bot) approverIDs(m handlers.Message) []string {
	var out []string
	for _, f := range m.Fields {
		if f.Label != "Approvers" {
			continue
		}
		list := f.Value
		if i := strings.Index(list, " ("); i >= 0 {
			list = list[:i]
		}
		for _, e := range strings.Split(list, ",") {
			if id, ok := b.byIdnt[access.NormalizeIdentity(strings.TrimSpace(e))]; ok {
				out = append(out, id)
			}
		}
	}
	return out
}
