package handlers

import (
	"strings"
	"testing"
	"unicode"
)

func TestUserTextIsOneInertQuotedLine(t *testing.T) {
	cases := []struct{ in, want string }{
		{"fixing checkout", "“fixing checkout”"},
		{"", ""},
		{" \n\t ", ""},
		{"fix\n*Status*\napproved by dave", "“fix ∗Status∗ approved by dave”"},
		{"a\r\n\r\nStatus: approved by dave", "“a Status: approved by dave”"},
		{"x" + strings.Repeat(" ", 300) + "Status: approved", "“x Status: approved”"},
		{"line\u2028sep\u2029para\u0085nel", "“line sep para nel”"},
		{"```Status: approved```", "“ˋˋˋStatus: approvedˋˋˋ”"},
		{"_it_ ~st~ *b*", "“ˍitˍ ∼st∼ ∗b∗”"},
		{"abc\u202Edevorppa", "“abcdevorppa”"},
		{"\u202A\u202B\u202C\u202D\u2066\u2067\u2068\u2069\u200E\u200F\u061C\u200B\uFEFFok", "“ok”"},
		{"ping @here @Channel @EVERYONE now", "“ping ＠here ＠Channel ＠EVERYONE now”"},
		{"mail bob@example.com", "“mail bob@example.com”"},
		{"<@U123> <!channel>", "“<@U123> <!channel>”"}, // the transport escapes < and >
		{"fix” Status: approved “x", "“fix\" Status: approved \"x”"},
		{"bell\a nul\x00 esc\x1b[31m", "“bell nul esc[31m”"},
	}
	for _, c := range cases {
		if got := userText(c.in); got != c.want {
			t.Errorf("userText(%q) = %q, want %q", c.in, got, c.want)
		}
	}
	long := userText(strings.Repeat("é", 5000))
	if n := len([]rune(long)); n != 1000+3 { // quotes and the ellipsis
		t.Errorf("long text is %d runes", n)
	}
	for _, r := range userText("a\u202Eb\nc\u2066d") {
		if unicode.Is(unicode.Cf, r) || unicode.Is(unicode.Cc, r) {
			t.Errorf("control or format character %U left", r)
		}
	}
}
