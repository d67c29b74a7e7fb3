package slack

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"unicode/utf8"

	goslack "github.com/slack-go/slack"

	"github.com/accessbot/accessbot/handlers"
)

func TestEscape(t *testing.T) {
	for in, want := range map[string]string{
		"plain":                 "plain",
		"<!channel>":            "&lt;!channel&gt;",
		"<@U123|bob>":           "&lt;@U123|bob&gt;",
		"a&b":                   "a&amp;b",
		"&lt; stays literal":    "&amp;lt; stays literal",
		"*bold* _it_ `code` ~s": "*bold* _it_ `code` ~s",
		"ünïcødé <x>":           "ünïcødé &lt;x&gt;",
	} {
		if got := escape(in); got != want {
			t.Errorf("escape(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestTruncateNeverCutsAnEntityOrARune(t *testing.T) {
	for _, tc := range []struct {
		in  string
		max int
	}{
		{strings.Repeat("a", 10) + "&amp;" + strings.Repeat("b", 10), 14},
		{strings.Repeat("a", 10) + "&lt;" + strings.Repeat("b", 10), 13},
		{strings.Repeat("é", 20), 15},
		{"short", 10},
		{"abcdef", 2},
	} {
		got := truncate(tc.in, tc.max)
		if len(got) > tc.max {
			t.Errorf("truncate(%q, %d) = %q: %d bytes", tc.in, tc.max, got, len(got))
		}
		if !utf8.ValidString(got) {
			t.Errorf("truncate(%q, %d) = %q: invalid UTF-8", tc.in, tc.max, got)
		}
		body := strings.TrimSuffix(got, "…")
		if i := strings.LastIndexByte(body, '&'); i >= 0 && !strings.Contains(body[i:], ";") {
			t.Errorf("truncate(%q, %d) = %q: half an entity", tc.in, tc.max, got)
		}
	}
	if got := truncatePlain(strings.Repeat("x", 100), 75); utf8.RuneCountInString(got) != 75 {
		t.Errorf("truncatePlain: %d runes", utf8.RuneCountInString(got))
	}
}

func TestRenderLimits(t *testing.T) {
	m := handlers.Message{Title: "t", Text: strings.Repeat("<", 2000)} // 8000 bytes once escaped
	for i := range 23 {
		m.Fields = append(m.Fields, handlers.Field{Label: fmt.Sprint("f", i), Value: "v"})
	}
	for i := range 30 {
		m.Buttons = append(m.Buttons, handlers.Button{Label: strings.Repeat("L", 100), Action: fmt.Sprint("a", i), Value: "r-1"})
	}
	blocks := renderBlocks(m)
	raw, err := json.Marshal(blocks)
	if err != nil {
		t.Fatal(err)
	}
	var parsed []map[string]any
	_ = json.Unmarshal(raw, &parsed)
	ids := map[string]bool{}
	fields, buttons := 0, 0
	for _, b := range parsed {
		id, _ := b["block_id"].(string)
		if id == "" || ids[id] {
			t.Errorf("block_id %q missing or repeated", id)
		}
		ids[id] = true
		if txt, ok := b["text"].(map[string]any); ok && len(txt["text"].(string)) > maxSectionText {
			t.Errorf("section text of %d bytes", len(txt["text"].(string)))
		}
		if fs, ok := b["fields"].([]any); ok {
			if len(fs) > maxFieldsPerSect {
				t.Errorf("%d fields in one section", len(fs))
			}
			fields += len(fs)
		}
		if els, ok := b["elements"].([]any); ok && b["type"] == "actions" {
			buttons += len(els)
			for _, e := range els {
				label := e.(map[string]any)["text"].(map[string]any)["text"].(string)
				if utf8.RuneCountInString(label) > maxButtonText {
					t.Errorf("button label of %d characters", utf8.RuneCountInString(label))
				}
			}
		}
	}
	if fields != 23 || buttons != maxActionsPerBlk {
		t.Errorf("%d fields and %d buttons rendered, want 23 and %d", fields, buttons, maxActionsPerBlk)
	}
	if got := renderBlocks(handlers.Message{Title: "done"}); len(got) != 1 || got[0].BlockType() != goslack.MBTSection {
		t.Errorf("a message without buttons renders %d blocks", len(got))
	}
	if fb := fallbackText(handlers.Message{Fields: []handlers.Field{{Label: "Who", Value: "<!here>"}}}); fb != "Who: &lt;!here&gt;" {
		t.Errorf("fallback text %q", fb)
	}
}

func TestFormErrorsMapToBlocks(t *testing.T) {
	resp := formErrorsAck(handlers.FormErrors{handlers.FieldDuration: "bad", "other": "x", handlers.FieldReason: "empty"})
	if resp.ResponseAction != goslack.RAErrors || resp.Errors[handlers.FieldDuration] != "bad" {
		t.Fatalf("%+v", resp)
	}
	// An error for a field the modal lacks still shows, on the reason block.
	if r := resp.Errors[handlers.FieldReason]; !strings.Contains(r, "empty") || !strings.Contains(r, "x") {
		t.Errorf("reason block error %q", r)
	}
	view := requestModal(handlers.Form{}, modalMeta{})
	for block := range resp.Errors {
		found := false
		for _, b := range view.Blocks.BlockSet {
			if ib, ok := b.(*goslack.InputBlock); ok && ib.BlockID == block {
				found = true
			}
		}
		if !found {
			t.Errorf("error for block %q, which the modal does not have", block)
		}
	}
}
