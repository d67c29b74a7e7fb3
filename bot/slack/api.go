package slack

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	goslack "github.com/slack-go/slack"

	"github.com/accessbot/accessbot/access"
	"github.com/accessbot/accessbot/handlers"
	"github.com/accessbot/accessbot/internal/ttlcache"
)

const (
	platform = "slack"

	// maxRateLimitWaits bounds how often one call waits out a 429 before
	// giving up; the context deadline bounds it too.
	maxRateLimitWaits = 8
	// minRetryAfter is waited when a 429 carries no usable Retry-After.
	minRetryAfter = time.Second

	identityTTL = 5 * time.Minute  // users.info answers (emails change rarely)
	chatUserTTL = 30 * time.Minute // users.lookupByEmail answers
	missTTL     = time.Minute      // "no such user" answers
	imTTL       = 24 * time.Hour   // conversations.open answers (DM channels do not change)
	maxLookups  = 10000            // answers kept per kind
)

var (
	_ handlers.Chat      = (*Bot)(nil)
	_ handlers.Directory = (*Bot)(nil)
)

// callAPI runs one Web API call, waiting out 429 answers (Retry-After) and
// trying again rather than dropping the call.
func (b *Bot) callAPI(ctx context.Context, method string, fn func(ctx context.Context) error) error {
	for waits := 0; ; waits++ {
		err := fn(ctx)
		var rl *goslack.RateLimitedError
		if !errors.As(err, &rl) {
			return err
		}
		if waits == maxRateLimitWaits {
			return fmt.Errorf("slack: %s: still rate limited after %d waits: %w", method, waits, err)
		}
		wait := max(rl.RetryAfter, minRetryAfter)
		b.log.WarnContext(ctx, "slack rate limited", "method", method, "retry_after", wait.String(), "attempt", waits+1)
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return fmt.Errorf("slack: %s: waiting out rate limit: %w", method, ctx.Err())
		case <-t.C:
		}
	}
}

// channelPacer paces chat.postMessage per channel (Slack allows about one
// message per second per channel; bursts beyond that get 429s). Posts
// waiting for a channel are served in two lanes: urgent ones (decisions,
// revocations, break-glass announcements and alerts, DMs, anything that is
// not a new approval card) first, then bulk ones (new approval cards),
// each lane in arrival order. A backlog of cards therefore delays an
// urgent post by at most one interval, never by the length of the backlog.
type channelPacer struct {
	mu     sync.Mutex
	every  time.Duration
	byChan map[string]*paceQueue
	// pause waits d before the next post to channel; nil is a timer. Tests
	// replace it to hand out slots one at a time, and now (nil: time.Now)
	// to pace on a test clock.
	pause func(channel string, d time.Duration)
	now   func() time.Time
}

func (p *channelPacer) clock() time.Time {
	if p.now != nil {
		return p.now()
	}
	return time.Now()
}

// paceQueue is one channel's pacing state.
type paceQueue struct {
	next         time.Time // earliest time of the next post
	urgent, bulk []*paceWaiter
	serving      bool // a goroutine hands out slots to the waiters
}

type paceWaiter struct {
	ready   chan struct{} // closed when the slot is granted
	granted bool
	gone    bool // the caller gave up (context ended)
}

// wait blocks until a post to channel may go out. bulk posts (new approval
// cards) yield to every urgent post waiting for the same channel.
func (p *channelPacer) wait(ctx context.Context, channel string, bulk bool) error {
	p.mu.Lock()
	if p.byChan == nil {
		p.byChan = map[string]*paceQueue{}
	}
	now := p.clock()
	q, ok := p.byChan[channel]
	if !ok {
		if len(p.byChan) > 10000 { // forget idle channels rather than grow forever
			for k, v := range p.byChan {
				if !v.serving && now.After(v.next) {
					delete(p.byChan, k)
				}
			}
		}
		q = &paceQueue{}
		p.byChan[channel] = q
	}
	if !q.serving && !now.Before(q.next) {
		q.next = now.Add(p.every)
		p.mu.Unlock()
		return nil
	}
	w := &paceWaiter{ready: make(chan struct{})}
	if bulk {
		q.bulk = append(q.bulk, w)
	} else {
		q.urgent = append(q.urgent, w)
	}
	if !q.serving {
		q.serving = true
		go p.serve(channel, q)
	}
	p.mu.Unlock()
	select {
	case <-w.ready:
		return nil
	case <-ctx.Done():
		p.mu.Lock()
		defer p.mu.Unlock()
		if w.granted {
			return nil // the slot is ours; the call itself will see ctx
		}
		w.gone = true
		return ctx.Err()
	}
}

// serve hands out one slot per interval to the waiters of q, urgent ones
// first, until none is left. The choice is made when the slot comes due, so
// an urgent post that arrives while a slot is awaited takes it.
func (p *channelPacer) serve(channel string, q *paceQueue) {
	for {
		p.mu.Lock()
		d := q.next.Sub(p.clock())
		p.mu.Unlock()
		if d > 0 {
			p.sleep(channel, d)
		}
		p.mu.Lock()
		w := q.pop()
		if w == nil {
			q.serving = false
			p.mu.Unlock()
			return
		}
		w.granted = true
		close(w.ready)
		q.next = p.clock().Add(p.every)
		p.mu.Unlock()
	}
}

func (p *channelPacer) sleep(channel string, d time.Duration) {
	p.mu.Lock()
	pause := p.pause
	p.mu.Unlock()
	if pause != nil {
		pause(channel, d)
		return
	}
	t := time.NewTimer(d)
	defer t.Stop()
	<-t.C
}

// pop removes and returns the first waiter still waiting, urgent before
// bulk; nil when there is none.
func (q *paceQueue) pop() *paceWaiter {
	for _, lane := range []*[]*paceWaiter{&q.urgent, &q.bulk} {
		for len(*lane) > 0 {
			w := (*lane)[0]
			(*lane)[0] = nil
			*lane = (*lane)[1:]
			if !w.gone {
				return w
			}
		}
	}
	return nil
}

// waiting counts the posts waiting for channel (for tests and logs).
func (p *channelPacer) waiting(channel string) (urgent, bulk int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	q := p.byChan[channel]
	if q == nil {
		return 0, 0
	}
	for _, w := range q.urgent {
		if !w.gone {
			urgent++
		}
	}
	for _, w := range q.bulk {
		if !w.gone {
			bulk++
		}
	}
	return urgent, bulk
}

// bulkPost reports whether m is a new approval card: the one kind of post
// a flood of requests multiplies, which therefore yields to all others.
func bulkPost(m handlers.Message) bool {
	for _, b := range m.Buttons {
		if b.Action == handlers.ActionApprove {
			return true
		}
	}
	return false
}

// lookup is a cached directory answer: a value, or the error that says
// there is none (cached for missTTL).
type lookup struct {
	val string
	err error
}

// lookups is the cache of one kind of directory answer.
type lookups struct{ *ttlcache.Cache[lookup] }

func newLookups() lookups { return lookups{ttlcache.New[lookup](0, maxLookups)} }

func (l lookups) get(key string) (string, error, bool) {
	v, ok := l.Get(key)
	return v.val, v.err, ok
}

func (l lookups) put(key, val string, err error, ttl time.Duration) {
	l.PutFor(key, lookup{val, err}, ttl)
}

// Platform returns "slack".
func (b *Bot) Platform() string { return platform }

// ApprovalsChannel returns the configured approvals channel id ("" means
// approvers are DMed).
func (b *Bot) ApprovalsChannel() string { return b.cfg.ApprovalsChannel }

// SecurityChannel returns the configured security channel id.
func (b *Bot) SecurityChannel() string { return b.cfg.SecurityChannel }

// Post sends m to channel with chat.postMessage, paced per channel; a new
// approval card waits behind every other kind of post (see channelPacer).
func (b *Bot) Post(ctx context.Context, channel string, m handlers.Message) (access.MessageRef, error) {
	if channel == "" {
		return access.MessageRef{}, errors.New("slack: post: no channel")
	}
	ch, ts, err := b.postMessage(ctx, channel, m)
	if err != nil {
		return access.MessageRef{}, err
	}
	return access.MessageRef{Platform: platform, Channel: ch, ID: ts}, nil
}

func (b *Bot) postMessage(ctx context.Context, channel string, m handlers.Message, extra ...goslack.MsgOption) (string, string, error) {
	if err := b.pacer.wait(ctx, channel, bulkPost(m)); err != nil {
		return "", "", fmt.Errorf("slack: post to %s: %w", channel, err)
	}
	var ch, ts string
	err := b.callAPI(ctx, "chat.postMessage", func(ctx context.Context) error {
		var err error
		ch, ts, err = b.api.PostMessageContext(ctx, channel, append(messageOptions(m), extra...)...)
		return err
	})
	if err != nil {
		return "", "", fmt.Errorf("slack: post to %s: %w", channel, err)
	}
	if ch == "" {
		ch = channel
	}
	return ch, ts, nil
}

// Update replaces the message ref points at with chat.update. A message
// without buttons loses its actions block.
func (b *Bot) Update(ctx context.Context, ref access.MessageRef, m handlers.Message) error {
	if ref.Platform != "" && ref.Platform != platform {
		return fmt.Errorf("slack: update: message of platform %q", ref.Platform)
	}
	if ref.Channel == "" || ref.ID == "" {
		return errors.New("slack: update: message reference without channel or ts")
	}
	err := b.callAPI(ctx, "chat.update", func(ctx context.Context) error {
		_, _, _, err := b.api.UpdateMessageContext(ctx, ref.Channel, ref.ID, messageOptions(m)...)
		return err
	})
	if err != nil {
		return fmt.Errorf("slack: update %s/%s: %w", ref.Channel, ref.ID, err)
	}
	return nil
}

// DM sends m to the Slack account of identity (users.lookupByEmail, then
// conversations.open, then chat.postMessage). access.ErrNoIdentity when
// nobody in the workspace has that email.
func (b *Bot) DM(ctx context.Context, identity string, m handlers.Message) (access.MessageRef, error) {
	user, err := b.ChatUser(ctx, identity)
	if err != nil {
		return access.MessageRef{}, fmt.Errorf("slack: dm %s: %w", identity, err)
	}
	im, err := b.openIM(ctx, user)
	if err != nil {
		return access.MessageRef{}, fmt.Errorf("slack: dm %s: %w", identity, err)
	}
	ch, ts, err := b.postMessage(ctx, im, m)
	if err != nil {
		return access.MessageRef{}, fmt.Errorf("slack: dm %s: %w", identity, err)
	}
	return access.MessageRef{Platform: platform, Channel: ch, ID: ts, For: identity}, nil
}

// dmUser sends m to a Slack user id by DM.
func (b *Bot) dmUser(ctx context.Context, user string, m handlers.Message) error {
	im, err := b.openIM(ctx, user)
	if err != nil {
		return err
	}
	_, _, err = b.postMessage(ctx, im, m)
	return err
}

func (b *Bot) openIM(ctx context.Context, user string) (string, error) {
	if ch, _, ok := b.ims.get(user); ok {
		return ch, nil
	}
	var ch *goslack.Channel
	err := b.callAPI(ctx, "conversations.open", func(ctx context.Context) error {
		var err error
		ch, _, _, err = b.api.OpenConversationContext(ctx, &goslack.OpenConversationParameters{Users: []string{user}, ReturnIM: true})
		return err
	})
	if err != nil {
		return "", fmt.Errorf("open dm with %s: %w", user, err)
	}
	if ch == nil || ch.ID == "" {
		return "", fmt.Errorf("open dm with %s: no channel in answer", user)
	}
	b.ims.put(user, ch.ID, nil, imTTL)
	return ch.ID, nil
}

// Identity returns the email on the Slack profile of chatUser (users.info,
// cached for a few minutes). Deleted users, bots and profiles without an
// email have no identity: access.ErrNoIdentity.
func (b *Bot) Identity(ctx context.Context, chatUser string) (string, error) {
	if chatUser == "" {
		return "", fmt.Errorf("slack: identity: empty user id: %w", access.ErrNoIdentity)
	}
	if v, err, ok := b.identities.get(chatUser); ok {
		return v, err
	}
	var u *goslack.User
	err := b.callAPI(ctx, "users.info", func(ctx context.Context) error {
		var err error
		u, err = b.api.GetUserInfoContext(ctx, chatUser)
		return err
	})
	if err != nil {
		if isSlackError(err, "user_not_found", "users_not_found") {
			nf := fmt.Errorf("slack: identity of %s: user not found: %w", chatUser, access.ErrNoIdentity)
			b.identities.put(chatUser, "", nf, missTTL)
			return "", nf
		}
		return "", fmt.Errorf("slack: identity of %s: %w", chatUser, err)
	}
	// The one normal form (ASCII case only): a look-alike such as the
	// Kelvin sign (U+212A) stays what it is, so the handlers refuse it
	// (access.CheckIdentity) instead of taking it for a k.
	email := access.NormalizeIdentity(u.Profile.Email)
	b.zones.put(chatUser, u.TZ, nil, identityTTL) // for TimeZone (schedule.go)
	var idErr error
	switch {
	case u.Deleted:
		idErr = fmt.Errorf("slack: identity of %s: user is deactivated: %w", chatUser, access.ErrNoIdentity)
	case u.IsBot:
		idErr = fmt.Errorf("slack: identity of %s: user is a bot: %w", chatUser, access.ErrNoIdentity)
	case email == "":
		idErr = fmt.Errorf("slack: identity of %s: no email on the profile (is users:read.email granted?): %w", chatUser, access.ErrNoIdentity)
	}
	if idErr != nil {
		b.identities.put(chatUser, "", idErr, missTTL)
		return "", idErr
	}
	b.identities.put(chatUser, email, nil, identityTTL)
	return email, nil
}

// ChatUser returns the Slack user id for an email (users.lookupByEmail,
// cached). access.ErrNoIdentity when nobody has that email or the account
// is deactivated.
func (b *Bot) ChatUser(ctx context.Context, identity string) (string, error) {
	key := access.NormalizeIdentity(identity)
	if key == "" {
		return "", fmt.Errorf("slack: chat user: empty identity: %w", access.ErrNoIdentity)
	}
	if err := access.CheckIdentity(key); err != nil {
		// Slack may fold a look-alike onto someone else's address.
		return "", fmt.Errorf("slack: chat user: %w: %w", err, access.ErrNoIdentity)
	}
	if v, err, ok := b.chatUsers.get(key); ok {
		return v, err
	}
	var u *goslack.User
	err := b.callAPI(ctx, "users.lookupByEmail", func(ctx context.Context) error {
		var err error
		u, err = b.api.GetUserByEmailContext(ctx, key)
		return err
	})
	if err != nil {
		if isSlackError(err, "users_not_found", "user_not_found") {
			nf := fmt.Errorf("slack: chat user of %s: not in the workspace: %w", key, access.ErrNoIdentity)
			b.chatUsers.put(key, "", nf, missTTL)
			return "", nf
		}
		return "", fmt.Errorf("slack: chat user of %s: %w", key, err)
	}
	if u.Deleted {
		nf := fmt.Errorf("slack: chat user of %s: account deactivated: %w", key, access.ErrNoIdentity)
		b.chatUsers.put(key, "", nf, missTTL)
		return "", nf
	}
	b.chatUsers.put(key, u.ID, nil, chatUserTTL)
	return u.ID, nil
}

// isSlackError reports whether err is a Web API method error with one of codes.
func isSlackError(err error, codes ...string) bool {
	var se goslack.SlackErrorResponse
	if errors.As(err, &se) {
		for _, c := range codes {
			if se.Err == c {
				return true
			}
		}
	}
	msg := err.Error()
	for _, c := range codes {
		if msg == c {
			return true
		}
	}
	return false
}
