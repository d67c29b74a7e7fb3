package slack

import (
	"encoding/json"
	"fmt"
	"strings"
	"unicode/utf8"

	goslack "github.com/slack-go/slack"

	"github.com/accessbot/accessbot/access"
	"github.com/accessbot/accessbot/handlers"
)

// Block Kit limits (https://docs.slack.dev/reference/block-kit/blocks).
const (
	maxSectionText   = 3000
	maxFieldText     = 2000
	maxFieldsPerSect = 10
	maxFallbackText  = 3000 // Slack truncates longer `text` anyway
	maxButtonText    = 75
	maxButtonValue   = 2000
	maxActionsPerBlk = 25
	maxOptionText    = 75
	maxOptionValue   = 150
	maxStaticOptions = 100
)

// Block ids of rendered messages.
const (
	blockTitle   = "title"
	blockFields  = "fields" // + index when there are more than maxFieldsPerSect
	blockFooter  = "footer"
	blockActions = "actions"
)

// Callback ids of the modals this transport opens.
const (
	callbackRequest = "accessbot_request"
	callbackAsk     = "accessbot_ask"
	// callbackDeny is the deny-reason modal of earlier versions, which
	// denied only when submitted; one still open is handled as before.
	callbackDeny = "accessbot_deny"
)

// Block and action ids of the deny-reason modal of earlier versions.
const (
	blockDenyReason  = "deny_reason"
	actionDenyReason = "deny_reason"
)

// Block and action ids of the text input of an Ask modal.
const (
	blockAskText  = "ask_text"
	actionAskText = "ask_text"
)

// escape makes user-provided text inert in mrkdwn: `<!channel>`, `<@U123>`
// and `<https://x|label>` lose their meaning once & < > are entities.
// Slack documents exactly these three replacements.
func escape(s string) string {
	if !strings.ContainsAny(s, "&<>") {
		return s
	}
	var b strings.Builder
	b.Grow(len(s) + 16)
	for _, r := range s {
		switch r {
		case '&':
			b.WriteString("&amp;")
		case '<':
			b.WriteString("&lt;")
		case '>':
			b.WriteString("&gt;")
		default:
			b.WriteRune(r)
		}
	}
	return b.String()
}

// truncate cuts escaped mrkdwn to at most limit bytes (Slack counts
// characters; bytes are a safe upper bound), never inside an entity or a
// UTF-8 sequence, and marks the cut with an ellipsis.
func truncate(s string, limit int) string {
	if len(s) <= limit {
		return s
	}
	ell := "…"
	if limit < len(ell) {
		ell = ""
	}
	cut := max(limit-len(ell), 0)
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	// Do not leave half an entity (&amp; &lt; &gt;) behind.
	if amp := strings.LastIndexByte(s[:cut], '&'); amp >= 0 && !strings.Contains(s[amp:cut], ";") {
		cut = amp
	}
	return s[:cut] + ell
}

// truncatePlain cuts plain text (not mrkdwn) to limit runes.
func truncatePlain(s string, limit int) string {
	if utf8.RuneCountInString(s) <= limit {
		return s
	}
	if limit < 1 {
		return ""
	}
	r := []rune(s)
	return string(r[:limit-1]) + "…"
}

// mrkdwn builds a verbatim mrkdwn text object: verbatim stops Slack from
// turning bare names and URLs into links or mentions on its own.
func mrkdwn(s string) *goslack.TextBlockObject {
	return &goslack.TextBlockObject{Type: goslack.MarkdownType, Text: s, Verbatim: true}
}

func plain(s string) *goslack.TextBlockObject {
	return &goslack.TextBlockObject{Type: goslack.PlainTextType, Text: s}
}

// renderBlocks turns a Message into Block Kit blocks. Every piece of text is
// escaped. A message without buttons has no actions block, which is how
// Update removes buttons from an approval card. Message.Color is not
// rendered: Block Kit has no colour, and legacy attachments are not worth
// their quirks for a bar.
func renderBlocks(m handlers.Message) []goslack.Block {
	var blocks []goslack.Block

	var head []string
	if t := strings.TrimSpace(m.Title); t != "" {
		head = append(head, "*"+escape(oneLine(t))+"*")
	}
	if t := strings.TrimSpace(m.Text); t != "" {
		head = append(head, escape(t))
	}
	if len(head) > 0 {
		blocks = append(blocks, goslack.NewSectionBlock(mrkdwn(truncate(strings.Join(head, "\n"), maxSectionText)), nil, nil, goslack.SectionBlockOptionBlockID(blockTitle)))
	}

	var fields []*goslack.TextBlockObject
	for _, f := range m.Fields {
		if f.Label == "" && f.Value == "" {
			continue
		}
		text := "*" + escape(oneLine(f.Label)) + "*\n" + escape(f.Value)
		if f.Label == "" {
			text = escape(f.Value)
		}
		fields = append(fields, mrkdwn(truncate(text, maxFieldText)))
	}
	for i := 0; len(fields) > 0; i++ {
		n := min(len(fields), maxFieldsPerSect)
		id := blockFields
		if i > 0 {
			id = fmt.Sprintf("%s_%d", blockFields, i)
		}
		blocks = append(blocks, goslack.NewSectionBlock(nil, fields[:n], nil, goslack.SectionBlockOptionBlockID(id)))
		fields = fields[n:]
	}

	if t := strings.TrimSpace(m.Footer); t != "" {
		blocks = append(blocks, goslack.NewContextBlock(blockFooter, mrkdwn(truncate(escape(t), maxFieldText))))
	}

	var buttons []goslack.BlockElement
	for _, btn := range m.Buttons {
		if btn.Action == "" || len(buttons) == maxActionsPerBlk {
			continue
		}
		e := goslack.NewButtonBlockElement(btn.Action, truncatePlain(btn.Value, maxButtonValue), plain(truncatePlain(btn.Label, maxButtonText)))
		switch btn.Style {
		case "primary":
			e.Style = goslack.StylePrimary
		case "danger":
			e.Style = goslack.StyleDanger
		}
		buttons = append(buttons, e)
	}
	if len(buttons) > 0 {
		blocks = append(blocks, goslack.NewActionBlock(blockActions, buttons...))
	}
	return blocks
}

// fallbackText is the message's top-level `text`: shown in notifications
// and by clients that cannot render blocks. It is mrkdwn, so it is escaped
// as well.
func fallbackText(m handlers.Message) string {
	var parts []string
	if t := strings.TrimSpace(m.Title); t != "" {
		parts = append(parts, oneLine(t))
	}
	if t := strings.TrimSpace(m.Text); t != "" {
		parts = append(parts, t)
	}
	if len(parts) == 0 {
		for _, f := range m.Fields {
			parts = append(parts, f.Label+": "+f.Value)
		}
	}
	if len(parts) == 0 {
		parts = append(parts, m.Footer)
	}
	return truncate(escape(strings.Join(parts, "\n")), maxFallbackText)
}

func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }

func messageOptions(m handlers.Message) []goslack.MsgOption {
	return []goslack.MsgOption{
		goslack.MsgOptionText(fallbackText(m), false),
		goslack.MsgOptionBlocks(renderBlocks(m)...),
	}
}

// isEmpty reports whether a Message has nothing to show.
func isEmpty(m handlers.Message) bool {
	return strings.TrimSpace(m.Title) == "" && strings.TrimSpace(m.Text) == "" &&
		len(m.Fields) == 0 && len(m.Buttons) == 0 && strings.TrimSpace(m.Footer) == ""
}

// modalMeta travels in a modal's private_metadata: where to answer the
// person once the modal is submitted, and (deny modal) what it is about.
type modalMeta struct {
	Channel     string `json:"c,omitempty"`
	ResponseURL string `json:"r,omitempty"`
	RequestID   string `json:"id,omitempty"`
	Action      string `json:"a,omitempty"` // Ask modal: the action the answer completes
}

func (m modalMeta) encode() string {
	b, _ := json.Marshal(m) // plain strings: cannot fail
	return string(b)
}

func decodeMeta(s string) modalMeta {
	var m modalMeta
	_ = json.Unmarshal([]byte(s), &m) // unknown or empty metadata: answer by DM
	return m
}

// roleOption renders one choice of the role select. Slack limits option
// text to 75 and values to 150 characters; role names are short.
func roleOption(r handlers.RoleOption) *goslack.OptionBlockObject {
	o := &goslack.OptionBlockObject{Text: plain(truncatePlain(r.Name, maxOptionText)), Value: truncatePlain(r.Name, maxOptionValue)}
	var desc []string
	if r.Description != "" {
		desc = append(desc, r.Description)
	}
	if r.MaxDuration != "" {
		desc = append(desc, "up to "+r.MaxDuration)
	}
	if len(desc) > 0 {
		o.Description = plain(truncatePlain(strings.Join(desc, " · "), maxOptionText))
	}
	return o
}

// requestModal renders the /access form. Block ids are the handlers' field
// names, so FormErrors map to blocks one to one. Up to 100 roles go in a
// static_select; beyond that Slack requires an external_select, served from
// Handler.RoleOptions through block_suggestion.
func requestModal(f handlers.Form, meta modalMeta) goslack.ModalViewRequest {
	// A multi-select: several roles in one request ("prod-admin,db-admin"
	// prefills both).
	sel := &goslack.MultiSelectBlockElement{ActionID: handlers.FieldRole, Placeholder: plain("Choose one or more roles")}
	var initial []*goslack.OptionBlockObject
	for _, name := range access.SplitRoles(f.Role) {
		var o *goslack.OptionBlockObject
		for _, r := range f.Roles {
			if strings.EqualFold(r.Name, name) {
				o = roleOption(r)
			}
		}
		if o == nil {
			o = roleOption(handlers.RoleOption{Name: name})
		}
		initial = append(initial, o)
	}
	if len(f.Roles) <= maxStaticOptions && len(f.Roles) > 0 {
		sel.Type = goslack.MultiOptTypeStatic
		for _, r := range f.Roles {
			sel.Options = append(sel.Options, roleOption(r))
		}
		kept := initial[:0]
		for _, o := range initial {
			if hasOption(sel.Options, o.Value) { // Slack refuses an initial option that is not among the options
				kept = append(kept, o)
			}
		}
		initial = kept
	} else {
		sel.Type = goslack.MultiOptTypeExternal
		zero := 0
		sel.MinQueryLength = &zero
	}
	if len(initial) > 0 {
		sel.InitialOptions = initial
	}
	if f.MaxRoles > 0 {
		sel.MaxSelectedItems = &f.MaxRoles
	}

	duration := &goslack.PlainTextInputBlockElement{
		Type: goslack.METPlainTextInput, ActionID: handlers.FieldDuration,
		Placeholder: plain("30m, 2h, 1d"), InitialValue: f.Duration, MaxLength: 32,
	}
	reason := &goslack.PlainTextInputBlockElement{
		Type: goslack.METPlainTextInput, ActionID: handlers.FieldReason,
		Placeholder: plain("What do you need it for?"), InitialValue: f.Reason,
		Multiline: true, MaxLength: 1000,
	}
	return goslack.ModalViewRequest{
		Type:            goslack.VTModal,
		CallbackID:      callbackRequest,
		Title:           plain("Request access"),
		Submit:          plain("Request"),
		Close:           plain("Cancel"),
		PrivateMetadata: meta.encode(),
		Blocks: goslack.Blocks{BlockSet: []goslack.Block{
			&goslack.InputBlock{Type: goslack.MBTInput, BlockID: handlers.FieldRole, Label: plain("Role"), Element: sel,
				Hint: plain("Pick several to ask for them in one request: each has its own approvers, all end together")},
			&goslack.InputBlock{Type: goslack.MBTInput, BlockID: handlers.FieldDuration, Label: plain("Duration"), Element: duration,
				Hint: plain("How long you need it, like 30m, 2h or 1d")},
			&goslack.InputBlock{Type: goslack.MBTInput, BlockID: handlers.FieldReason, Label: plain("Reason"), Element: reason,
				Hint: reasonHint(f)},
			startBlock(f),
		}},
	}
}

// reasonHint shows how the roles want reasons written (their reason_hint)
// under the reason field; nil when no role asks.
func reasonHint(f handlers.Form) *goslack.TextBlockObject {
	if f.ReasonHint == "" {
		return nil
	}
	return plain(truncatePlain(f.ReasonHint, maxInputHint))
}

// maxInputHint is the longest hint of an input block.
const maxInputHint = 2000

func hasOption(opts []*goslack.OptionBlockObject, value string) bool {
	for _, o := range opts {
		if o.Value == value {
			return true
		}
	}
	return false
}

// Modal limits (https://docs.slack.dev/reference/views/modal-views).
const (
	maxModalTitle  = 24
	maxModalButton = 24
	maxInputLabel  = 2000
)

// askModal asks for the line of text an Ask wants (the reason of a
// denial); meta carries the action and request it completes.
func askModal(a handlers.Ask, meta modalMeta) goslack.ModalViewRequest {
	input := &goslack.PlainTextInputBlockElement{
		Type: goslack.METPlainTextInput, ActionID: actionAskText,
		Multiline: true, MaxLength: 1000,
	}
	submit := a.Submit
	if submit == "" {
		submit = "Send"
	}
	return goslack.ModalViewRequest{
		Type:            goslack.VTModal,
		CallbackID:      callbackAsk,
		Title:           plain(truncatePlain(a.Title, maxModalTitle)),
		Submit:          plain(truncatePlain(submit, maxModalButton)),
		Close:           plain("Cancel"),
		PrivateMetadata: meta.encode(),
		Blocks: goslack.Blocks{BlockSet: []goslack.Block{
			&goslack.InputBlock{Type: goslack.MBTInput, BlockID: blockAskText, Label: plain(truncatePlain(a.Label, maxInputLabel)), Element: input},
		}},
	}
}

// formErrorsAck maps FormErrors to the view_submission ack. Errors for
// fields this modal does not have land on the reason block, so the person
// still sees them.
func formErrorsAck(fe handlers.FormErrors) *goslack.ViewSubmissionResponse {
	out := map[string]string{}
	for field, msg := range fe {
		block := field
		switch field {
		case handlers.FieldRole, handlers.FieldDuration, handlers.FieldReason, handlers.FieldStart:
		default:
			block = handlers.FieldReason
		}
		if prev, ok := out[block]; ok {
			msg = prev + "; " + msg
		}
		out[block] = msg
	}
	return goslack.NewErrorsViewSubmissionResponse(out)
}
