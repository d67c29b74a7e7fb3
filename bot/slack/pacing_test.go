package slack_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	slackbot "github.com/accessbot/accessbot/bot/slack"
	"github.com/accessbot/accessbot/bot/slack/slackfake"
	"github.com/accessbot/accessbot/handlers"
)

// Against a fake that paces chat.postMessage as Slack does (one post per
// second per channel, 429 beyond), on one test clock: the bot's pacing
// never draws a 429, and the posts waiting for the channel go out urgent
// ones first, then the approval cards, each in arrival order.
func TestPostPacingMatchesSlackAndServesUrgentFirst(t *testing.T) {
	clk := &clock{now: time.Date(2031, 3, 4, 10, 0, 0, 0, time.UTC)}
	f := newFake(t, slackfake.Options{PostInterval: time.Second, Now: clk.Now})
	b := start(t, f, botConfig(f), &recorder{})

	held := make(chan struct{})
	pauses := 0
	slackbot.SetPostClock(b, clk.Now)
	slackbot.SetPostPause(b, func(channel string, d time.Duration) {
		<-held
		// The k-th wait comes after k posts were let through: move the
		// clock on only once Slack has taken them, as real time would.
		pauses++
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = f.Wait(ctx, func() bool { return len(f.Messages(channel)) >= pauses })
		clk.Advance(d)
	})

	postCard(t, b, "r-0") // takes the channel's slot at once
	var wg sync.WaitGroup
	errs := make(chan error, 10)
	post := func(m handlers.Message) {
		wg.Go(func() {
			if _, err := b.Post(context.Background(), chApprove, m); err != nil {
				errs <- err
			}
		})
	}
	waiting := func(n int) func() bool {
		return func() bool { u, bk := slackbot.PostsWaiting(b, chApprove); return u+bk == n }
	}
	for i := 1; i <= 5; i++ {
		post(handlers.Message{Title: fmt.Sprintf("card r-%d", i), Buttons: []handlers.Button{
			{Label: "Approve", Action: handlers.ActionApprove, Value: fmt.Sprintf("r-%d", i)}}})
		waitFor(t, f, "the card waiting", waiting(i))
	}
	for i := 1; i <= 3; i++ {
		post(handlers.Message{Text: fmt.Sprintf("urgent %d", i)})
		waitFor(t, f, "the urgent post waiting", waiting(5+i))
	}
	close(held)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Errorf("Post: %v", err)
	}

	var got []string
	for _, m := range f.Messages(chApprove) {
		txt := slackfake.BlockText(m.Blocks)
		switch {
		case strings.Contains(txt, "urgent"):
			got = append(got, strings.TrimSpace(m.Text))
		case strings.Contains(txt, "card r-"):
			got = append(got, txt[strings.Index(txt, "card r-"):strings.Index(txt, "card r-")+8])
		default:
			got = append(got, "card r-0")
		}
	}
	want := "[card r-0 urgent 1 urgent 2 urgent 3 card r-1 card r-2 card r-3 card r-4 card r-5]"
	if fmt.Sprint(got) != want {
		t.Errorf("posted in the order %v, want %s", got, want)
	}
	if n := f.RateLimited("chat.postMessage"); n != 0 {
		t.Errorf("Slack refused %d posts as too fast", n)
	}
}
