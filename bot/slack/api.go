package slack

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	goslack "github.com/slack-go/slack"
	"golang.org/x/time/rate"

	"github.com/accessbot/accessbot/access"
	"github.com/accessbot/accessbot/handlers"
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
// message per second per channel; bursts beyond that get 429s).
type channelPacer struct {
	mu     sync.Mutex
	every  time.Duration
	byChan map[string]*rate.Limiter
}

func (p *channelPacer) wait(ctx context.Context, channel string) error {
	p.mu.Lock()
	if p.byChan == nil {
		p.byChan = map[string]*rate.Limiter{}
	}
	l, ok := p.byChan[channel]
	if !ok {
		if len(p.byChan) > 10000 { // forget idle channels rather than grow forever
			for k, v := range p.byChan {
				if v.Tokens() >= 1 {
					delete(p.byChan, k)
				}
			}
		}
		l = rate.NewLimiter(rate.Every(p.every), 1)
		p.byChan[channel] = l
	}
	p.mu.Unlock()
	return l.Wait(ctx)
}

// ttlCache is a small map with per-entry expiry.
type ttlCache struct {
	mu sync.Mutex
	m  map[string]cacheEntry
}

type cacheEntry struct {
	val     string
	err     error
	expires time.Time
}

func (c *ttlCache) get(key string) (string, error, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.m[key]
	if !ok || time.Now().After(e.expires) {
		return "", nil, false
	}
	return e.val, e.err, true
}

func (c *ttlCache) put(key, val string, err error, ttl time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil {
		c.m = map[string]cacheEntry{}
	}
	now := time.Now()
	if len(c.m) > 10000 {
		for k, e := range c.m {
			if now.After(e.expires) {
				delete(c.m, k)
			}
		}
	}
	c.m[key] = cacheEntry{val: val, err: err, expires: now.Add(ttl)}
}

// Platform returns "slack".
func (b *Bot) Platform() string { return platform }

// ApprovalsChannel returns the configured approvals channel id ("" means
// approvers are DMed).
func (b *Bot) ApprovalsChannel() string { return b.cfg.ApprovalsChannel }

// SecurityChannel returns the configured security channel id.
func (b *Bot) SecurityChannel() string { return b.cfg.SecurityChannel }

// Post sends m to channel with chat.postMessage, paced per channel.
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

func (b *Bot) postMessage(ctx context.Context, channel string, m handlers.Message) (string, string, error) {
	if err := b.pacer.wait(ctx, channel); err != nil {
		return "", "", fmt.Errorf("slack: post to %s: %w", channel, err)
	}
	var ch, ts string
	err := b.callAPI(ctx, "chat.postMessage", func(ctx context.Context) error {
		var err error
		ch, ts, err = b.api.PostMessageContext(ctx, channel, messageOptions(m)...)
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
