package slackfake_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	goslack "github.com/slack-go/slack"

	"github.com/accessbot/accessbot/bot/slack/slackfake"
)

func publish(s *slackfake.Server, user string, blocks ...goslack.Block) error {
	_, err := client(s, s.BotToken()).PublishViewContext(context.Background(), goslack.PublishViewContextRequest{
		UserID: user, View: goslack.HomeTabViewRequest{Type: goslack.VTHomeTab, Blocks: goslack.Blocks{BlockSet: blocks}}})
	return err
}

func section(id, text string) goslack.Block {
	return goslack.NewSectionBlock(&goslack.TextBlockObject{Type: goslack.MarkdownType, Text: text}, nil, nil, goslack.SectionBlockOptionBlockID(id))
}

func slackMessages(err error) string {
	var se goslack.SlackErrorResponse
	if errors.As(err, &se) {
		return strings.Join(se.ResponseMetadata.Messages, "\n")
	}
	return ""
}

// views.publish refuses what Slack refuses, with Slack's error codes and
// its "[ERROR] … [json-pointer:…]" lines, and keeps the last good view.
func TestViewsPublishValidates(t *testing.T) {
	s := newServer(t, slackfake.Options{})
	button := func(id string) *goslack.ButtonBlockElement {
		return goslack.NewButtonBlockElement(id, "r-1", &goslack.TextBlockObject{Type: goslack.PlainTextType, Text: "Go"})
	}
	many := func(n int) []goslack.Block {
		var bs []goslack.Block
		for i := range n {
			bs = append(bs, section("b"+strings.Repeat("x", i%3)+string(rune('a'+i%26))+strings.Repeat("y", i/26), "item"))
		}
		return bs
	}
	var tooManyButtons []goslack.BlockElement
	for i := range 26 {
		tooManyButtons = append(tooManyButtons, button("a"+string(rune('a'+i))))
	}
	cases := []struct {
		name   string
		blocks []goslack.Block
		code   string
		msg    string
	}{
		{"101 blocks", many(101), "invalid_arguments", "no more than 100 items allowed [json-pointer:/view/blocks]"},
		{"section text of 3001", []goslack.Block{section("s", strings.Repeat("a", 3001))}, "invalid_arguments", "must be less than 3001 characters [json-pointer:/view/blocks/0/text/text]"},
		{"empty section text", []goslack.Block{section("s", "")}, "invalid_arguments", "must be more than 0 characters"},
		{"26 buttons", []goslack.Block{goslack.NewActionBlock("a", tooManyButtons...)}, "invalid_arguments", "no more than 25 items allowed [json-pointer:/view/blocks/0/elements]"},
		{"duplicate block ids", []goslack.Block{section("s", "a"), section("s", "b")}, "invalid_arguments", "duplicate block_id"},
		{"mrkdwn header", []goslack.Block{goslack.NewHeaderBlock(&goslack.TextBlockObject{Type: goslack.MarkdownType, Text: "x"})}, "invalid_arguments", "must be plain_text"},
		{"view over 250 kB", func() []goslack.Block {
			var bs []goslack.Block
			for i := range 90 {
				bs = append(bs, section("big"+string(rune('a'+i%26))+strings.Repeat("z", i/26), strings.Repeat("w", 2990)))
			}
			return bs
		}(), "view_too_large", ""},
	}
	for _, tc := range cases {
		err := publish(s, "U1", tc.blocks...)
		if slackErr(err) != tc.code || !strings.Contains(slackMessages(err), tc.msg) {
			t.Errorf("%s: %v, messages %q; want %s with %q", tc.name, err, slackMessages(err), tc.code, tc.msg)
		}
	}
	if _, ok := s.Home("U1"); ok {
		t.Fatal("a refused view was kept")
	}

	if err := publish(s, "U1", section("s", "hello"), goslack.NewActionBlock("a", button("approve"), button("deny"))); err != nil {
		t.Fatal(err)
	}
	h, ok := s.Home("U1")
	if !ok || h.Publishes != 1 || len(h.Blocks) != 2 || slackfake.BlockText(h.Blocks) == "" || h.Size == 0 {
		t.Fatalf("kept %+v", h)
	}
	if err := publish(s, "UNOBODY", section("s", "x")); slackErr(err) != "invalid_arguments" {
		t.Errorf("unknown user: %v", err)
	}
	// A modal is not a home view.
	_, err := client(s, s.BotToken()).PublishViewContext(context.Background(), goslack.PublishViewContextRequest{
		UserID: "U1", View: goslack.HomeTabViewRequest{Type: goslack.VTModal, Blocks: goslack.Blocks{BlockSet: []goslack.Block{section("s", "x")}}}})
	if slackErr(err) != "invalid_arguments" || !strings.Contains(slackMessages(err), "/view/type") {
		t.Errorf("modal published as home: %v", err)
	}

	off := newServer(t, slackfake.Options{HomeTabDisabled: true})
	if err := publish(off, "U1", section("s", "x")); slackErr(err) != "not_enabled" {
		t.Errorf("home tab disabled: %v", err)
	}
}
