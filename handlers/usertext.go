package handlers

import (
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/accessbot/accessbot/access"
)

// userText renders text a person typed (a request reason, a deny or revoke
// reason) for a message that others read. Every piece of user text on a
// card, an announcement or a DM goes through it, so that no reason can
// pose as part of the message around it:
//
//   - one line: every run of whitespace, line and paragraph separators
//     included, becomes one space (a reason cannot start a "Status:" line
//     of its own, nor push one onto a line of its own with spaces);
//   - no control or format characters: bidi overrides and isolates
//     (U+202A-202E, U+2066-2069), marks (U+200E, U+200F, U+061C),
//     zero-width characters and the like are dropped;
//   - no markup: the characters chat markup reads (* _ ~ `) are replaced
//     by look-alikes that no markup reads, and quotation marks by plain
//     ones, so the text cannot close its own quotes;
//   - no broadcast mentions: @here, @channel and @everyone lose their @.
//     Angle-bracket syntax (<@U123>, <!channel>) is made inert by each
//     transport's escaping (& < > on Slack).
//
// The result is quoted (“…”) and at most access.MaxReasonLen characters
// long; empty text stays empty. The stored text and the audit log keep
// what was typed.
func userText(s string) string {
	var b strings.Builder
	b.Grow(len(s) + 8)
	space := false
	n := 0
	for _, r := range s {
		switch {
		case r == utf8.RuneError:
			continue
		case unicode.IsSpace(r) || r == '\u2028' || r == '\u2029':
			space = b.Len() > 0
			continue
		case unicode.Is(unicode.Cc, r) || unicode.Is(unicode.Cf, r):
			continue
		}
		if n == access.MaxReasonLen {
			b.WriteString("…")
			break
		}
		if space {
			b.WriteByte(' ')
			space = false
		}
		if m, ok := inertMarkup[r]; ok {
			r = m
		}
		b.WriteRune(r)
		n++
	}
	out := b.String()
	if out == "" {
		return ""
	}
	return "“" + defuseMentions(out) + "”"
}

// inertMarkup maps the characters of chat markup (Slack mrkdwn, Markdown)
// to look-alikes that no markup reads, and curly quotes to straight ones.
var inertMarkup = map[rune]rune{
	'*': '∗', // U+2217 ASTERISK OPERATOR
	'_': 'ˍ', // U+02CD MODIFIER LETTER LOW MACRON
	'~': '∼', // U+223C TILDE OPERATOR
	'`': 'ˋ', // U+02CB MODIFIER LETTER GRAVE ACCENT
	'“': '"',
	'”': '"',
}

// defuseMentions gives @here, @channel and @everyone (in any case) a
// full-width at sign, which no chat platform reads as a mention.
func defuseMentions(s string) string {
	if !strings.Contains(s, "@") {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '@' && broadcast(s[i+1:]) {
			b.WriteString("＠")
			continue
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

func broadcast(rest string) bool {
	for _, w := range []string{"here", "channel", "everyone"} {
		if len(rest) >= len(w) && strings.EqualFold(rest[:len(w)], w) {
			return true
		}
	}
	return false
}
