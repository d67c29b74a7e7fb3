package slack_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/accessbot/accessbot/access"
	"github.com/accessbot/accessbot/bot/slack/slackfake"
)

// A Slack profile email with a look-alike letter (the Kelvin sign K,
// U+212A, which strings.ToLower turns into k) is passed on in the one
// normal form, so the handlers refuse it with their clear message instead
// of taking the person for kate@example.com.
func TestE2ELookAlikeProfileEmailRefused(t *testing.T) {
	w := newWorld(t, slackfake.Options{})
	w.fake.AddUser(slackfake.User{ID: "UKELVIN", Name: "kelvin", Email: "\u212Aate@example.com"})

	id, err := w.bot.Identity(tctx(t), "UKELVIN")
	if err != nil || id != "\u212Aate@example.com" {
		t.Errorf("Identity = %q, %v; want the address as on the profile (only ASCII case folded)", id, err)
	}
	if _, err := w.bot.ChatUser(tctx(t), "\u212Aate@example.com"); !errors.Is(err, access.ErrNoIdentity) || !errors.Is(err, access.ErrBadIdentity) {
		t.Errorf("ChatUser of the look-alike: %v, want ErrNoIdentity and ErrBadIdentity", err)
	}

	w.command(t, "UKELVIN", "prod-admin 30m fixing checkout")
	waitFor(t, w.fake, "the refusal", func() bool { return len(w.fake.EphemeralsFor("UKELVIN")) == 1 })
	if txt := w.fake.EphemeralsFor("UKELVIN")[0].Text; !strings.Contains(txt, "plain ASCII") {
		t.Errorf("refusal %q does not say why", txt)
	}
	if n := len(w.fake.Messages(chApprove)); n != 0 {
		t.Errorf("%d approval cards posted for a look-alike identity", n)
	}
}
