// Package slack is the Slack transport of accessbot: it receives slash
// commands and interactions over Socket Mode (no public endpoint needed),
// hands them to the handlers, and renders handlers.Message as Block Kit.
//
// Every envelope is acknowledged before any work is done, then handled on a
// bounded worker pool with a deadline per event. Events that may post a new
// approval card (requests, the request form) and all others (decisions,
// revocations, break-glass, acknowledgements, …) have separate workers, and
// new cards wait behind every other post to a channel, so a flood of
// requests can neither occupy every worker nor delay anyone's decision,
// revocation or break-glass announcement. Envelope ids and a stable
// id per interaction are recorded through a Deduper, so an envelope Slack
// delivers twice is acted on once. Web API calls wait out 429 answers and
// chat.postMessage is paced per channel.
package slack

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	goslack "github.com/slack-go/slack"
	"github.com/slack-go/slack/socketmode"
	"golang.org/x/sync/errgroup"

	"github.com/accessbot/accessbot/access"
	"github.com/accessbot/accessbot/handlers"
	"github.com/accessbot/accessbot/internal/ttlcache"
)

// Defaults of Config.
const (
	DefaultAPIURL       = "https://slack.com/api/"
	DefaultWorkers      = 16
	DefaultEventTimeout = 30 * time.Second

	// dedupTTL is how long envelope and interaction ids are remembered.
	// Slack gives up redelivering long before.
	dedupTTL = 10 * time.Minute
	// maxRemembered bounds the ids remembered in memory when New is given
	// no Deduper.
	maxRemembered = 100000
	// defaultAckBudget is how long a view_submission or block_suggestion
	// may take before it is acknowledged anyway (Slack waits 3 s for such
	// acks).
	defaultAckBudget = 2500 * time.Millisecond
	// queuePerWorker sizes the queue between the socket reader and the
	// workers; when it is full the reader waits (and Slack redelivers),
	// except for the bulk lane, whose overflow is refused (textBusy) so
	// that the reader never waits behind a flood of requests.
	queuePerWorker = 64
	// maxBusyReplies bounds the textBusy answers being sent at once.
	maxBusyReplies = 64
)

// DefaultUrgentWorkers is the default of Config.UrgentWorkers.
const DefaultUrgentWorkers = 8

// Fixed texts shown to people instead of raw errors.
const (
	textTeamRefused = "This workspace is not allowed to use accessbot."
	textFailed      = "Sorry, something went wrong on our side. It has been logged; please try again."
	textFormExpired = "The request form could not be opened in time. Try again, or type `/access <role> <duration> <reason>`."
	textBusy        = "accessbot has too many requests waiting right now; nothing was sent. Please try again in a minute."
)

// Config configures the Slack transport.
type Config struct {
	AppToken         string        // xapp-…, app-level token with connections:write (Socket Mode)
	BotToken         string        // xoxb-…, bot token for the Web API
	APIURL           string        // Web API base; default https://slack.com/api/, must end in "/"
	ApprovalsChannel string        // channel id for approval cards; "" means DM the approvers
	SecurityChannel  string        // channel id for break-glass announcements and alerts
	AllowedTeams     []string      // workspace ids allowed to use the bot; empty allows any
	Workers          int           // events handled at once; default 16
	UrgentWorkers    int           // more, only for events that cannot post a new approval card (clicks, decisions, revoke, break-glass); default 8
	EventTimeout     time.Duration // deadline of one event's handling; default 30 s
	// InboxLease is how long another replica waits before it handles a
	// stored event whose handler stopped renewing (died); default 10 s.
	// Used when the Deduper given to New is also an access.Inbox.
	InboxLease time.Duration
	// ShutdownTimeout, when positive, makes Run stop gracefully when its
	// context ends: it closes the Socket Mode connection at once (Slack
	// then delivers to the other replicas), lets the workers finish the
	// events already acknowledged for up to ShutdownTimeout, and hands the
	// inbox entries it still holds back to the other replicas (see
	// shutdown.go). Zero stops at once and leaves held entries to their
	// leases.
	ShutdownTimeout time.Duration
}

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

// Bot is the Slack transport. It implements handlers.Chat and
// handlers.Directory, so it can be built before the Handler that needs it:
// pass a nil Handler to New and call SetHandler before Run.
type Bot struct {
	cfg  Config
	log  *slog.Logger
	api  *goslack.Client
	seen Deduper

	// inbox, when the store has it, holds commands and clicks from before
	// their ack until they are handled (inbox.go); owner names this
	// replica's leases there, held lists them.
	inbox access.Inbox
	owner string
	held  holdings
	// handedBack counts entries handed back on a graceful stop (shutdown.go).
	handedBack atomic.Int64

	mu      sync.RWMutex
	handler Handler

	allowed map[string]bool

	pacer      channelPacer
	identities lookups // chat user -> email
	chatUsers  lookups // email -> chat user
	ims        lookups // chat user -> DM channel

	busy chan struct{} // textBusy answers in flight (maxBusyReplies)

	ackBudget time.Duration // defaultAckBudget; tests shorten it

	hooks ackTimes // optional observer callbacks (hooks.go)

	// App Home (home.go): the people whose Home tab needs publishing.
	home  *homeQueue
	zones lookups // scheduled access: chat user -> profile time zone (schedule.go)
}

// New validates cfg and builds a Bot. h may be nil and set later with
// SetHandler; seen may be nil, in which case ids are remembered in memory
// (enough for one replica). When seen also has the access.Inbox
// capability, commands and clicks are stored there before they are
// acknowledged (see inbox.go). log may be nil (discard).
func New(cfg Config, h Handler, seen Deduper, log *slog.Logger) (*Bot, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if err := cfg.normalise(); err != nil {
		return nil, err
	}
	if seen == nil {
		seen = ttlcache.NewDedup(maxRemembered)
	}
	b := &Bot{
		cfg:        cfg,
		log:        log,
		seen:       seen,
		handler:    h,
		allowed:    map[string]bool{},
		pacer:      channelPacer{every: time.Second},
		identities: newLookups(),
		chatUsers:  newLookups(),
		ims:        newLookups(),
		busy:       make(chan struct{}, maxBusyReplies),
		ackBudget:  defaultAckBudget,
		home:       newHomeQueue(),
		zones:      newLookups(),
	}
	if in, ok := seen.(access.Inbox); ok {
		b.inbox, b.owner = in, newOwner()
	}
	for _, t := range cfg.AllowedTeams {
		b.allowed[t] = true
	}
	b.api = goslack.New(cfg.BotToken,
		goslack.OptionAPIURL(cfg.APIURL),
		goslack.OptionAppLevelToken(cfg.AppToken),
		goslack.OptionLog(logAdapter{log}),
	)
	return b, nil
}

func (c *Config) normalise() error {
	var problems []string
	for _, err := range c.Validate() {
		fe := err.(*FieldError)
		problems = append(problems, strings.TrimPrefix(fe.Path, prefix)+" "+fe.Msg)
	}
	c.AppToken = strings.TrimSpace(c.AppToken)
	c.BotToken = strings.TrimSpace(c.BotToken)
	if c.APIURL == "" {
		c.APIURL = DefaultAPIURL
	}
	if c.Workers == 0 {
		c.Workers = DefaultWorkers
	}
	if c.UrgentWorkers == 0 {
		c.UrgentWorkers = DefaultUrgentWorkers
	}
	if c.EventTimeout == 0 {
		c.EventTimeout = DefaultEventTimeout
	}
	if c.InboxLease == 0 {
		c.InboxLease = DefaultInboxLease
	}
	var teams []string
	for _, t := range c.AllowedTeams {
		if t = strings.TrimSpace(t); t != "" {
			teams = append(teams, t)
		}
	}
	c.AllowedTeams = teams
	if len(problems) > 0 {
		return fmt.Errorf("slack: invalid config: %s", strings.Join(problems, "; "))
	}
	return nil
}

// SetHandler sets the Handler events go to. Call it before Run.
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

// lanes are the two queues between the socket reader and the workers.
type lanes struct {
	bulk   chan job // events that may post a new approval card
	urgent chan job // all others
}

// urgentCommands are the /access subcommands that never post a new
// approval card. Anything else (a role request, extend, unknown words)
// goes to the bulk lane, which is the safe default for a new subcommand.
var urgentCommands = map[string]bool{
	"revoke": true, "cancel": true, "approve": true, "deny": true, "ack": true, "reason": true,
	"breakglass": true, "break-glass": true,
}

// urgent reports whether j cannot post a new approval card: button clicks,
// decisions, revocations, break-glass, the Ask form, role suggestions.
func (j job) urgent() bool {
	switch {
	case j.cmd != nil:
		words := strings.Fields(j.cmd.Text)
		return len(words) > 0 && urgentCommands[strings.ToLower(words[0])]
	case j.cb != nil:
		return j.cb.Type != goslack.InteractionTypeViewSubmission || j.cb.View.CallbackID != callbackRequest
	}
	return false
}

// job is one acknowledged (or to-be-acknowledged) envelope for a worker.
type job struct {
	req      socketmode.Request
	received time.Time
	cmd      *goslack.SlashCommand
	cb       *goslack.InteractionCallback
	entry    string // the job's inbox entry; "" when none
}

// Run connects over Socket Mode and handles events until ctx ends; then it
// returns nil. It returns an error when Slack refuses the app token for good
// (invalid_auth, token_revoked, …) or no Handler was set. The socketmode
// client reconnects on its own after disconnect frames, dropped sockets and
// missing pings.
func (b *Bot) Run(ctx context.Context) error {
	h := b.getHandler()
	if h == nil {
		return errors.New("slack: run: no handler set (call SetHandler before Run)")
	}
	defer b.hooks.stopped()
	sm := socketmode.New(b.api, socketmode.OptionLog(logAdapter{b.log}))

	g, gctx := errgroup.WithContext(ctx)
	jobs := lanes{
		bulk:   make(chan job, b.cfg.Workers*queuePerWorker),
		urgent: make(chan job, b.cfg.UrgentWorkers*queuePerWorker),
	}
	// The readers (the socket, intake, take-over) stop when ctx ends; the
	// workers and the lease renewals run on wctx, which a graceful stop
	// keeps for up to ShutdownTimeout (shutdown.go).
	wctx, stopWork := context.WithCancel(context.WithoutCancel(ctx))
	defer stopWork()
	var producers sync.WaitGroup
	produce := func(f func()) {
		producers.Add(1)
		g.Go(func() error {
			defer producers.Done()
			f()
			return nil
		})
	}

	g.Go(func() error {
		err := sm.RunContext(gctx)
		if gctx.Err() != nil {
			return nil
		}
		return fmt.Errorf("slack: socket mode: %w", err)
	})
	intake := make(chan job)
	produce(func() { b.readEvents(gctx, sm, jobs, intake) })
	g.Go(func() error { b.runHome(gctx, h); return nil }) // home.go
	if b.inbox != nil {
		for range intakeWorkers {
			produce(func() {
				for {
					select {
					case <-gctx.Done():
						return
					case j := <-intake:
						b.admit(gctx, sm, jobs, j)
					}
				}
			})
		}
		produce(func() { b.takeOver(gctx, sm, jobs) })
	}
	readersDone := make(chan struct{})
	go func() {
		<-gctx.Done()
		producers.Wait()
		close(readersDone)
	}()
	var workers sync.WaitGroup
	renewDone := make(chan struct{})
	if b.inbox != nil {
		go func() {
			defer close(renewDone)
			b.renewLeases(wctx)
		}()
	} else {
		close(renewDone)
	}
	// Urgent workers take urgent events only; the others take either,
	// urgent ones first.
	for i := range b.cfg.UrgentWorkers + b.cfg.Workers {
		urgentOnly := i < b.cfg.UrgentWorkers
		workers.Go(func() {
			for {
				j, ok := b.next(gctx, wctx, jobs, urgentOnly, readersDone)
				if !ok {
					return
				}
				b.work(wctx, sm, h, j)
			}
		})
	}
	workersDone := make(chan struct{})
	go func() {
		workers.Wait()
		close(workersDone)
	}()
	b.awaitStop(ctx, gctx, stopWork, workersDone)
	<-workersDone
	stopWork()
	<-renewDone
	err := g.Wait()
	b.handBack()
	if err != nil && ctx.Err() == nil {
		return err
	}
	return nil
}

// readEvents drains the socketmode client's events: it acknowledges every
// envelope that does not need an answer in its ack right away, then queues
// it for a worker. Commands and clicks go to intake instead when there is
// an inbox: stored first, then acknowledged.
func (b *Bot) readEvents(ctx context.Context, sm *socketmode.Client, jobs lanes, intake chan<- job) {
	for {
		var evt socketmode.Event
		select {
		case <-ctx.Done():
			return
		case evt = <-sm.Events:
		}
		now := time.Now()
		b.hooks.observe(evt, now)
		switch evt.Type {
		case socketmode.EventTypeConnecting:
			b.log.DebugContext(ctx, "slack connecting")
		case socketmode.EventTypeConnected:
			n := 0
			if ce, ok := evt.Data.(*socketmode.ConnectedEvent); ok {
				n = ce.ConnectionCount
			}
			b.log.InfoContext(ctx, "slack connected", "connection_count", n)
		case socketmode.EventTypeHello:
			b.log.DebugContext(ctx, "slack hello")
		case socketmode.EventTypeConnectionError:
			b.log.WarnContext(ctx, "slack connection error", "err", fmt.Sprint(evt.Data))
		case socketmode.EventTypeInvalidAuth:
			b.log.ErrorContext(ctx, "slack refused the app token")
		case socketmode.EventTypeIncomingError, socketmode.EventTypeErrorBadMessage, socketmode.EventTypeErrorWriteFailed:
			b.log.WarnContext(ctx, "slack socket error", "kind", string(evt.Type), "err", fmt.Sprint(evt.Data))
		case socketmode.EventTypeSlashCommand:
			cmd, ok := evt.Data.(goslack.SlashCommand)
			if !ok || evt.Request == nil {
				continue
			}
			j := job{req: *evt.Request, received: now, cmd: &cmd}
			if b.durable(j) {
				b.toIntake(ctx, intake, j)
				continue
			}
			b.ack(ctx, sm, evt.Request.EnvelopeID, nil)
			b.enqueue(ctx, sm, jobs, j)
		case socketmode.EventTypeInteractive:
			cb, ok := evt.Data.(goslack.InteractionCallback)
			if !ok || evt.Request == nil {
				continue
			}
			j := job{req: *evt.Request, received: now, cb: &cb}
			if b.durable(j) {
				b.toIntake(ctx, intake, j)
				continue
			}
			switch cb.Type {
			case goslack.InteractionTypeViewSubmission, goslack.InteractionTypeBlockSuggestion:
				// Their ack carries the answer (form errors, options): the worker acks.
			default:
				b.ack(ctx, sm, evt.Request.EnvelopeID, nil)
			}
			b.enqueue(ctx, sm, jobs, j)
		case socketmode.EventTypeEventsAPI:
			if evt.Request != nil {
				b.ack(ctx, sm, evt.Request.EnvelopeID, nil) // ack first so Slack stops retrying
			}
			b.onEventsAPI(ctx, evt.Data) // app_home_opened (home.go); others are ignored
		default:
			if evt.Request != nil && evt.Request.EnvelopeID != "" {
				b.ack(ctx, sm, evt.Request.EnvelopeID, nil)
			}
		}
	}
}

// toIntake hands j to an intake worker, waiting while all are writing.
func (b *Bot) toIntake(ctx context.Context, intake chan<- job, j job) {
	select {
	case intake <- j:
	case <-ctx.Done():
	}
}

func (b *Bot) ack(ctx context.Context, sm *socketmode.Client, envelopeID string, payload any) {
	if err := sm.AckCtx(ctx, envelopeID, payload); err != nil {
		b.log.ErrorContext(ctx, "slack ack failed", "envelope_id", envelopeID, "err", err)
		return
	}
	b.hooks.acked(envelopeID)
}

func (b *Bot) enqueue(ctx context.Context, sm *socketmode.Client, jobs lanes, j job) {
	q := jobs.bulk
	if j.urgent() {
		q = jobs.urgent
	}
	select {
	case q <- j:
		return
	default:
	}
	if !j.urgent() {
		// Waiting here would hold up every click, decision and revocation
		// behind the flood: refuse the request instead.
		b.refuseBusy(ctx, sm, j)
		b.finish(ctx, j)
		return
	}
	b.log.WarnContext(ctx, "slack worker queue full; waiting", "envelope_id", j.req.EnvelopeID, "urgent", j.urgent())
	select {
	case q <- j:
	case <-ctx.Done():
		if b.graceful() && j.entry != "" {
			b.handBackOne(j.entry)
		} else {
			b.held.drop(j.entry) // left to its lease
		}
	}
}

// refuseBusy answers a request that found the bulk lane full: a form
// submission in its ack (the form stays open), a command by an ephemeral
// answer sent aside, so the reader goes on at once.
func (b *Bot) refuseBusy(ctx context.Context, sm *socketmode.Client, j job) {
	b.log.WarnContext(ctx, "slack request queue full; request refused", "envelope_id", j.req.EnvelopeID)
	if j.cb != nil {
		if j.cb.Type == goslack.InteractionTypeViewSubmission {
			b.ack(ctx, sm, j.req.EnvelopeID, formErrorsAck(handlers.FormErrors{handlers.FieldRole: textBusy}))
		}
		return
	}
	select {
	case b.busy <- struct{}{}:
	default:
		return // already answering as many; the person sees no answer and retries
	}
	go func() {
		defer func() { <-b.busy }()
		b.reply(ctx, replyTo{channel: j.cmd.ChannelID, user: j.cmd.UserID, responseURL: j.cmd.ResponseURL}, handlers.Message{Text: textBusy})
	}()
}

// work handles one envelope with its own deadline, then ends its inbox
// entry. Losing the entry to another replica cancels the handling.
func (b *Bot) work(ctx context.Context, sm *socketmode.Client, h Handler, j job) {
	runCtx := ctx
	ctx, cancel := context.WithTimeout(ctx, b.cfg.EventTimeout)
	defer cancel()
	if j.entry != "" {
		if !b.held.start(j.entry, cancel) {
			b.held.drop(j.entry)
			return
		}
		defer b.finish(runCtx, j)
	}
	defer func() {
		if r := recover(); r != nil {
			b.log.ErrorContext(ctx, "slack event handling panicked", "envelope_id", j.req.EnvelopeID, "panic", fmt.Sprint(r))
		}
	}()
	switch {
	case j.cmd != nil:
		b.onCommand(ctx, h, j)
	case j.cb != nil:
		switch j.cb.Type {
		case goslack.InteractionTypeBlockActions:
			b.onBlockActions(ctx, h, j)
		case goslack.InteractionTypeViewSubmission:
			b.onViewSubmission(ctx, sm, h, j)
		case goslack.InteractionTypeBlockSuggestion:
			b.onBlockSuggestion(ctx, sm, h, j)
		default:
			b.log.DebugContext(ctx, "slack interaction ignored", "type", string(j.cb.Type))
		}
	}
}

// duplicate records the envelope id and the stable ids of an event and
// reports whether one was seen before. It stops at the first id seen, so
// two deliveries of one event racing each other cannot both be dropped. A
// failing Deduper is logged and the event handled anyway: the engine's
// state transitions are idempotent, a lost event is worse. A job from the
// inbox was de-duplicated when it was stored (see inbox.go).
func (b *Bot) duplicate(ctx context.Context, j job, stable ...string) bool {
	if j.entry != "" {
		return false
	}
	ids := []string{"slack:env:" + j.req.EnvelopeID}
	for _, s := range stable {
		if s != "" {
			ids = append(ids, "slack:"+s)
		}
	}
	for _, id := range ids {
		seen, err := b.seen.Seen(ctx, id, dedupTTL)
		if err != nil {
			b.log.WarnContext(ctx, "slack dedup check failed", "event_id", id, "err", err)
			continue
		}
		if seen {
			b.log.InfoContext(ctx, "slack duplicate event dropped", "envelope_id", j.req.EnvelopeID,
				"retry_attempt", j.req.RetryAttempt, "event_id", id)
			return true
		}
	}
	return false
}

// teamAllowed reports whether every team id the payload names is allowed.
func (b *Bot) teamAllowed(teams ...string) bool {
	if len(b.allowed) == 0 {
		return true
	}
	any := false
	for _, t := range teams {
		if t == "" {
			continue
		}
		if !b.allowed[t] {
			return false
		}
		any = true
	}
	return any
}

// logAdapter routes slack-go's internal log lines to slog at debug level.
type logAdapter struct{ log *slog.Logger }

func (l logAdapter) Output(_ int, s string) error {
	l.log.DebugContext(context.Background(), "slack client", "detail", strings.TrimSpace(s))
	return nil
}
