package slack

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	goslack "github.com/slack-go/slack"
	"github.com/slack-go/slack/slackevents"

	"github.com/accessbot/accessbot/handlers"
)

// The App Home: each person's Home tab shows their grants (Revoke), their
// pending requests (Cancel), the requests waiting for their decision
// (Approve, Deny) and who is on call, rendered from handlers.Home. It is
// published with views.publish when the person opens the tab
// (app_home_opened) and whenever a request that concerns them changes
// (the notifier calls RefreshHome after each delivery). Refreshes go
// through a per-person queue drained by one worker after a short pause,
// so a burst of changes publishes each person's Home once. The buttons
// carry the action ids and values of the cards: a press from the Home
// arrives as block_actions without channel or message and is handled like
// one on a card, the answer going by DM.

// HomeSource is the optional capability of a Handler that builds a
// person's Home (*handlers.Handler has it). Without it the bot publishes
// no Home.
type HomeSource interface {
	Home(ctx context.Context, chatUser string) (handlers.Home, error)
}

// Limits of a Home tab view (https://docs.slack.dev/reference/views/home-tab-views).
const (
	maxHomeBlocks = 100
	// maxHomeBytes is the size of view JSON views.publish accepts
	// (view_too_large beyond); homeBytes leaves a margin below it.
	maxHomeBytes = 250 * 1000
	homeBytes    = 200 * 1000
	// homeMaxItems is the most items of one list a Home shows; fewer when
	// the blocks or bytes would not fit.
	homeMaxItems = 20
	// homeItemText bounds one item's text (bytes of escaped mrkdwn).
	homeItemText  = 1000
	maxHeaderText = 150
)

// Refresh queue bounds.
const (
	// DefaultHomeDebounce is how long the refresh worker waits after the
	// first refresh of a burst before publishing, so that the other
	// changes of the burst are published with it.
	DefaultHomeDebounce = time.Second
	// maxHomeQueue bounds the people waiting for a refresh; beyond it new
	// refreshes are dropped (the next change or opening of the tab
	// publishes again).
	maxHomeQueue = 10000
)

// callbackHome is the callback id of the Home view.
const callbackHome = "accessbot_home"

// homeKey names a person to refresh: by Slack user id (opened the tab,
// clicked in it) or by identity (a change concerns them).
type homeKey struct{ user, identity string }

// homeQueue holds the people whose Home needs publishing, each once.
type homeQueue struct {
	mu    sync.Mutex
	dirty map[homeKey]bool
	order []homeKey
	wake  chan struct{} // one token: the worker has something to do
	// off is set after Slack answered not_enabled (the app has no Home
	// tab): changes then publish nothing until someone opens the tab.
	off atomic.Bool
	// debounce is the pause before a batch; pause, when set, replaces it
	// (tests release batches by hand).
	debounce time.Duration
	pause    func(ctx context.Context)
}

func newHomeQueue() *homeQueue {
	return &homeQueue{dirty: map[homeKey]bool{}, wake: make(chan struct{}, 1), debounce: DefaultHomeDebounce}
}

// mark queues k once and wakes the worker; false when the queue is full.
func (q *homeQueue) mark(k homeKey) bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	if !q.dirty[k] {
		if len(q.order) >= maxHomeQueue {
			return false
		}
		q.dirty[k] = true
		q.order = append(q.order, k)
	}
	select {
	case q.wake <- struct{}{}:
	default:
	}
	return true
}

// take returns the queued people in the order they were queued and
// empties the queue.
func (q *homeQueue) take() []homeKey {
	q.mu.Lock()
	defer q.mu.Unlock()
	out := q.order
	q.order = nil
	clear(q.dirty)
	return out
}

// wait pauses before a batch until the debounce passed or ctx ended.
func (q *homeQueue) wait(ctx context.Context) {
	if q.pause != nil {
		q.pause(ctx)
		return
	}
	if q.debounce <= 0 {
		return
	}
	t := time.NewTimer(q.debounce)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}

// RefreshHome implements handlers.HomeRefresher: it queues the Home of
// each identity for publishing and returns at once.
func (b *Bot) RefreshHome(identities ...string) {
	if _, ok := b.getHandler().(HomeSource); !ok || b.home.off.Load() {
		return
	}
	for _, id := range identities {
		if id == "" {
			continue
		}
		if !b.home.mark(homeKey{identity: id}) {
			b.log.WarnContext(context.Background(), "slack home refresh queue full; refresh dropped", "identity", id)
		}
	}
}

// refreshUser queues the Home of a Slack user.
func (b *Bot) refreshUser(user string) {
	if _, ok := b.getHandler().(HomeSource); !ok || user == "" {
		return
	}
	if !b.home.mark(homeKey{user: user}) {
		b.log.WarnContext(context.Background(), "slack home refresh queue full; refresh dropped", "user", user)
	}
}

var _ handlers.HomeRefresher = (*Bot)(nil)

// runHome publishes queued Homes until ctx ends.
func (b *Bot) runHome(ctx context.Context, h Handler) {
	src, ok := h.(HomeSource)
	if !ok {
		return
	}
	for {
		select {
		case <-ctx.Done():
			return
		case <-b.home.wake:
		}
		b.home.wait(ctx)
		if ctx.Err() != nil {
			return
		}
		seen := map[string]bool{}
		for _, k := range b.home.take() {
			user := k.user
			if user == "" {
				u, err := b.ChatUser(ctx, k.identity)
				if err != nil {
					b.log.DebugContext(ctx, "slack home not refreshed: no Slack account", "identity", k.identity, "err", err)
					continue
				}
				user = u
			}
			if seen[user] {
				continue
			}
			seen[user] = true
			b.publishHome(ctx, src, user)
		}
	}
}

// publishHome renders the Home of user and publishes it. Failures are
// logged; the next change or opening of the tab publishes again.
func (b *Bot) publishHome(ctx context.Context, src HomeSource, user string) {
	ctx, cancel := context.WithTimeout(ctx, b.cfg.EventTimeout)
	defer cancel()
	home, err := src.Home(ctx, user)
	if err != nil {
		b.log.ErrorContext(ctx, "slack home not built", "user", user, "err", err)
		return
	}
	view := homeView(home)
	err = b.callAPI(ctx, "views.publish", func(ctx context.Context) error {
		_, err := b.api.PublishViewContext(ctx, goslack.PublishViewContextRequest{UserID: user, View: view})
		return err
	})
	if err == nil {
		return
	}
	if isSlackError(err, "not_enabled") {
		if !b.home.off.Swap(true) {
			b.log.WarnContext(ctx, "slack home tab is not enabled for the app; enable App Home -> Show Tabs -> Home Tab and subscribe to app_home_opened")
		}
		return
	}
	var se goslack.SlackErrorResponse
	detail := ""
	if errors.As(err, &se) {
		detail = strings.Join(se.ResponseMetadata.Messages, "; ")
	}
	b.log.ErrorContext(ctx, "slack views.publish failed", "user", user, "err", err, "detail", detail)
}

// onEventsAPI handles an Events API envelope (already acknowledged): an
// app_home_opened on the Home tab publishes that person's Home.
func (b *Bot) onEventsAPI(ctx context.Context, data any) {
	ev, ok := data.(slackevents.EventsAPIEvent)
	if !ok {
		return
	}
	var opened *slackevents.AppHomeOpenedEvent
	switch e := ev.InnerEvent.Data.(type) {
	case *slackevents.AppHomeOpenedEvent:
		opened = e
	case slackevents.AppHomeOpenedEvent:
		opened = &e
	default:
		return
	}
	if opened.Tab != "home" || opened.User == "" {
		return
	}
	if !b.teamAllowed(ev.TeamID) {
		b.log.WarnContext(ctx, "slack app_home_opened from a team not allowed", "team", ev.TeamID, "user", opened.User)
		return
	}
	b.home.off.Store(false) // Slack sends it only when the Home tab is on
	b.refreshUser(opened.User)
}

// homeView renders a Home as a Home tab view within Slack's limits: the
// newest items of each list, as many as fit (at most homeMaxItems, fewer
// when the 100 blocks or the size would be exceeded), and a line saying
// how many more there are and where to see them.
func homeView(h handlers.Home) goslack.HomeTabViewRequest {
	for n := homeMaxItems; ; n-- {
		v := goslack.HomeTabViewRequest{Type: goslack.VTHomeTab, CallbackID: callbackHome,
			Blocks: goslack.Blocks{BlockSet: homeBlocks(h, n)}}
		if n == 0 {
			return v
		}
		if len(v.Blocks.BlockSet) > maxHomeBlocks {
			continue
		}
		if raw, err := json.Marshal(v); err == nil && len(raw) <= homeBytes {
			return v
		}
	}
}

func homeBlocks(h handlers.Home, n int) []goslack.Block {
	blocks := []goslack.Block{
		goslack.NewHeaderBlock(plain("accessbot"), goslack.HeaderBlockOptionBlockID("home_header")),
		goslack.NewContextBlock("home_intro", mrkdwn("Your access, your requests and what waits for your decision. `/access help` lists every command.")),
	}
	if h.Problem != "" {
		return append(blocks, goslack.NewSectionBlock(mrkdwn(truncate(escape(h.Problem), maxSectionText)), nil, nil,
			goslack.SectionBlockOptionBlockID("home_problem")))
	}
	for _, s := range h.Sections() {
		blocks = append(blocks, goslack.NewDividerBlock(),
			goslack.NewHeaderBlock(plain(truncatePlain(s.Title, maxHeaderText)), goslack.HeaderBlockOptionBlockID("home_"+s.Key)))
		if len(s.Items) == 0 {
			blocks = append(blocks, goslack.NewSectionBlock(mrkdwn(escape(s.Empty)), nil, nil, goslack.SectionBlockOptionBlockID("home_"+s.Key+"_empty")))
			continue
		}
		shown := min(n, len(s.Items))
		if s.Key == "oncall" {
			// One section: a line per rotation, as many as fit.
			var lines []string
			size := 0
			shown = 0
			for _, it := range s.Items {
				line := truncate(escape(it.Text), homeItemText)
				if size+len(line)+1 > maxSectionText {
					break
				}
				lines = append(lines, line)
				size += len(line) + 1
				shown++
			}
			blocks = append(blocks, goslack.NewSectionBlock(mrkdwn(strings.Join(lines, "\n")), nil, nil, goslack.SectionBlockOptionBlockID("home_oncall_list")))
		} else {
			for i, it := range s.Items[:shown] {
				blocks = append(blocks, homeItemBlocks(s.Key, i, it)...)
			}
		}
		if more := len(s.Items) - shown; more > 0 {
			blocks = append(blocks, goslack.NewContextBlock("home_"+s.Key+"_more",
				mrkdwn(fmt.Sprintf("and %d more: `%s`", more, s.More))))
		}
	}
	return blocks
}

// homeItemBlocks renders one item: a section, with its one button as the
// accessory, or followed by an actions block when it has more.
func homeItemBlocks(key string, i int, it handlers.HomeItem) []goslack.Block {
	id := fmt.Sprintf("home_%s_%d", key, i)
	if it.RequestID != "" && len(it.RequestID) < 200 {
		id = "home_" + key + "_" + it.RequestID
	}
	text := mrkdwn(truncate(escape(it.Text), homeItemText))
	var buttons []goslack.BlockElement
	for _, btn := range it.Buttons {
		if btn.Action == "" || len(buttons) == maxActionsPerBlk {
			continue
		}
		buttons = append(buttons, homeButton(btn))
	}
	switch len(buttons) {
	case 0:
		return []goslack.Block{goslack.NewSectionBlock(text, nil, nil, goslack.SectionBlockOptionBlockID(id))}
	case 1:
		return []goslack.Block{goslack.NewSectionBlock(text, nil, goslack.NewAccessory(buttons[0]), goslack.SectionBlockOptionBlockID(id))}
	}
	return []goslack.Block{
		goslack.NewSectionBlock(text, nil, nil, goslack.SectionBlockOptionBlockID(id)),
		goslack.NewActionBlock(id+"_actions", buttons...),
	}
}

func homeButton(btn handlers.Button) *goslack.ButtonBlockElement {
	e := goslack.NewButtonBlockElement(btn.Action, truncatePlain(btn.Value, maxButtonValue), plain(truncatePlain(btn.Label, maxButtonText)))
	switch btn.Style {
	case "primary":
		e.Style = goslack.StylePrimary
	case "danger":
		e.Style = goslack.StyleDanger
	}
	return e
}

// fromHome reports whether an interaction came from a Home tab view.
func fromHome(cb *goslack.InteractionCallback) bool {
	return cb.View.Type == goslack.VTHomeTab || cb.Container.Type == "view" && cb.View.CallbackID == callbackHome
}
