package slackfake_test

import (
	"context"
	"testing"

	goslack "github.com/slack-go/slack"

	"github.com/accessbot/accessbot/bot/slack/slackfake"
)

// TestThreadReplies: chat.postMessage with thread_ts posts into the
// parent's thread, as Slack does: the answer's message carries thread_ts,
// and the fake lists the reply under its parent only.
func TestThreadReplies(t *testing.T) {
	s := newServer(t, slackfake.Options{})
	c := client(s, s.BotToken())
	ctx := context.Background()
	_, parent, err := c.PostMessageContext(ctx, "C1", goslack.MsgOptionText("card", false))
	if err != nil {
		t.Fatal(err)
	}
	_, reply, err := c.PostMessageContext(ctx, "C1", goslack.MsgOptionText("reminder", false), goslack.MsgOptionTS(parent))
	if err != nil {
		t.Fatal(err)
	}
	rs := s.Replies("C1", parent)
	if len(rs) != 1 || rs[0].TS != reply || rs[0].Text != "reminder" || rs[0].ThreadTS != parent {
		t.Fatalf("replies under %s: %+v", parent, rs)
	}
	if top, _ := s.Message("C1", parent); top.ThreadTS != "" {
		t.Fatalf("parent got a thread_ts: %+v", top)
	}
	if len(s.Replies("C1", reply)) != 0 || len(s.Messages("C1")) != 2 {
		t.Fatalf("messages: %+v", s.Messages("C1"))
	}
}
