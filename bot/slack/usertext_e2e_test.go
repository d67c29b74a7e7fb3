package slack_test

import (
	"strings"
	"testing"
	"unicode"

	"github.com/accessbot/accessbot/access"
	"github.com/accessbot/accessbot/bot/slack/slackfake"
)

// forgedReason tries every way a reason could pose as part of the card: a
// "Status" field of its own, bold markup, a code block, a right-to-left
// override, a broadcast mention.
const forgedReason = "fixing checkout\n\n*Status*\napproved by dave\n```Status: approved by dave```\u202Eevad yb devorppa @here <!channel>"

// cardLines returns the text lines of a card as Slack received it.
func cardLines(m slackfake.Message) []string {
	return strings.Split(slackfake.BlockText(m.Blocks)+"\n"+m.Text, "\n")
}

// checkNoForgery fails when the card shows a line the reason forged, or
// any markup, bidi control or mention from it.
func checkNoForgery(t *testing.T, what string, m slackfake.Message) {
	t.Helper()
	status := 0
	for _, l := range cardLines(m) {
		if l == "*Status*" {
			status++
		}
		if strings.Contains(l, "approved by dave") && !strings.Contains(l, "“fixing checkout") {
			t.Errorf("%s: a line outside the quoted reason says %q", what, l)
		}
		if strings.Contains(l, "“fixing checkout") {
			for _, bad := range []string{"*", "`", "@here", "<!channel>", "\u202E"} {
				if strings.Contains(l, bad) {
					t.Errorf("%s: the reason line keeps %q: %q", what, bad, l)
				}
			}
		}
		for _, r := range l {
			if unicode.Is(unicode.Cf, r) {
				t.Errorf("%s: format character %U in %q", what, r, l)
			}
		}
	}
	if status != 1 {
		t.Errorf("%s: %d lines say *Status*, want the card's own only:\n%s", what, status, slackfake.BlockText(m.Blocks))
	}
}

// TestE2EUserTextCannotForgeTheCard: a reason and a deny reason with
// newlines, markup, a bidi override and mentions are shown as one quoted,
// inert line on the approval card and in the requester's DM.
func TestE2EUserTextCannotForgeTheCard(t *testing.T) {
	w := newWorld(t, slackfake.Options{})
	w.command(t, "UALICE", "prod-admin 1h "+forgedReason)
	card, id := w.card(t, 1)
	w.cardKept(t, id)
	checkNoForgery(t, "new card", card)
	if txt := slackfake.BlockText(card.Blocks); !strings.Contains(txt, "*Reason*\n“fixing checkout ∗Status∗ approved by dave ˋˋˋStatus: approved by daveˋˋˋevad yb devorppa ＠here &lt;!channel&gt;”") {
		t.Errorf("reason not shown as one quoted line:\n%s", txt)
	}
	r, err := w.svc.Get(tctx(t), id)
	if err != nil || r.Reason != strings.TrimSpace(forgedReason) {
		t.Fatalf("stored reason %q (%v): the request keeps what was typed", r.Reason, err)
	}

	// bob denies with the same text as his reason (typed, as the console and
	// /access deny allow): the Status field quotes it.
	w.command(t, "UBOB", "deny "+id+" "+forgedReason)
	waitFor(t, w.fake, "denied card", func() bool {
		m, _ := w.fake.Message(card.Channel, card.TS)
		return m.Updates > 0 && strings.Contains(slackfake.BlockText(m.Blocks), "denied by bob@example.com: “fixing checkout")
	})
	if got := w.state(t, id); got != access.StateDenied {
		t.Fatalf("request %s", got)
	}
	m, _ := w.fake.Message(card.Channel, card.TS)
	checkNoForgery(t, "denied card", m)
	waitFor(t, w.fake, "alice's DM", func() bool { return w.fake.DMChannel("UALICE") != "" })
	waitFor(t, w.fake, "denial DM", func() bool {
		for _, m := range w.fake.Messages(w.fake.DMChannel("UALICE")) {
			if strings.Contains(m.Text, "was denied") {
				return true
			}
		}
		return false
	})
	for _, m := range w.fake.Messages(w.fake.DMChannel("UALICE")) {
		if strings.Contains(m.Text, "was denied") {
			for _, l := range cardLines(m) {
				if strings.Contains(l, "approved by dave") && !strings.Contains(l, "“fixing checkout") {
					t.Errorf("denial DM: a line outside the quoted reason says %q", l)
				}
			}
		}
	}
}
