package discord

import (
	"strings"

	"github.com/bwmarrin/discordgo"

	"github.com/accessbot/accessbot/handlers"
)

// Discord's limits on embeds and components.
const (
	maxTitle       = 256
	maxDescription = 4096
	maxFieldName   = 256
	maxFieldValue  = 1024
	maxFooter      = 2048
	maxFields      = 25
	maxButtonLabel = 80
	maxCustomID    = 100
	maxChoices     = 25
	maxChoiceName  = 100
	maxModalTitle  = 45
	maxInputLabel  = 45
)

// customIDPrefix starts the custom id of every button and modal.
const customIDPrefix = "access:"

// Custom ids of the modals.
const (
	modalRequest = customIDPrefix + "form:request"
	modalAsk     = customIDPrefix + "ask:" // + action + ":" + request id
	inputAsk     = "text"
)

var colors = map[string]int{"good": 0x2EB67D, "warning": 0xECB22E, "danger": 0xE01E5A}

// noMentions pings nobody: parse is an empty list (not absent), so user
// text can never ping @everyone, a role or a user.
func noMentions() *discordgo.MessageAllowedMentions {
	return &discordgo.MessageAllowedMentions{Parse: []discordgo.AllowedMentionType{}}
}

// mentions pings exactly users (and nobody else).
func mentions(users []string) *discordgo.MessageAllowedMentions {
	am := noMentions()
	am.Users = users
	return am
}

// isCard reports whether m is a new approval card (it has an Approve button).
func isCard(m handlers.Message) bool {
	for _, b := range m.Buttons {
		if b.Action == handlers.ActionApprove {
			return true
		}
	}
	return false
}

// escape makes text safe for Discord markdown: outside `code` spans it
// escapes the characters of masked links, mentions, quotes, headings and
// spoilers, and turns the handlers' *bold* into Discord's **bold**. Text
// people typed reaches here through handlers.userText, which already made
// * _ ~ ` inert and defused @everyone/@here; what is left of it (<@123>,
// [link](url), ||spoiler||) is escaped here.
func escape(s string) string {
	var b strings.Builder
	b.Grow(len(s) + 8)
	code := false
	lineStart := true
	for _, r := range s {
		if r == '`' {
			code = !code
			b.WriteRune(r)
			lineStart = false
			continue
		}
		if code {
			b.WriteRune(r)
			continue
		}
		switch r {
		case '*':
			b.WriteString("**")
		case '\\', '<', '>', '[', ']', '|', '_', '~':
			b.WriteByte('\\')
			b.WriteRune(r)
		case '#':
			if lineStart {
				b.WriteByte('\\')
			}
			b.WriteRune(r)
		default:
			b.WriteRune(r)
		}
		lineStart = r == '\n'
	}
	return b.String()
}

func clip(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n-1]) + "…"
}

// embedOf renders m as one embed.
func embedOf(m handlers.Message) *discordgo.MessageEmbed {
	e := &discordgo.MessageEmbed{
		Title:       clip(escape(m.Title), maxTitle),
		Description: clip(escape(m.Text), maxDescription),
		Color:       colors[m.Color],
	}
	for i, f := range m.Fields {
		if i == maxFields {
			break
		}
		v := f.Value
		if v == "" {
			v = "-"
		}
		e.Fields = append(e.Fields, &discordgo.MessageEmbedField{Name: clip(escape(f.Label), maxFieldName), Value: clip(escape(v), maxFieldValue), Inline: len(v) < 40})
	}
	if m.Footer != "" {
		e.Footer = &discordgo.MessageEmbedFooter{Text: clip(m.Footer, maxFooter)}
	}
	return e
}

func customID(action, value string) string {
	return clip(customIDPrefix+action+":"+value, maxCustomID)
}

// parseCustomID splits a button's custom id into action and request id.
func parseCustomID(id string) (action, value string, ok bool) {
	rest, ok := strings.CutPrefix(id, customIDPrefix)
	if !ok {
		return "", "", false
	}
	action, value, ok = strings.Cut(rest, ":")
	return action, value, ok && action != "" && value != ""
}

// componentsOf renders buttons as one action row (at most 5 buttons);
// none gives an empty list, which removes a message's buttons.
func componentsOf(buttons []handlers.Button) []discordgo.MessageComponent {
	if len(buttons) == 0 {
		return []discordgo.MessageComponent{}
	}
	row := discordgo.ActionsRow{}
	for i, bt := range buttons {
		if i == 5 {
			break
		}
		style := discordgo.SecondaryButton
		switch bt.Style {
		case "primary":
			style = discordgo.PrimaryButton
		case "danger":
			style = discordgo.DangerButton
		}
		if bt.Action == handlers.ActionApprove {
			style = discordgo.SuccessButton
		}
		row.Components = append(row.Components, discordgo.Button{Label: clip(bt.Label, maxButtonLabel), Style: style, CustomID: customID(bt.Action, bt.Value)})
	}
	return []discordgo.MessageComponent{row}
}

// pingLine is the content that pings users (the approvers of a card).
func pingLine(users []string) string {
	if len(users) == 0 {
		return ""
	}
	parts := make([]string, len(users))
	for i, u := range users {
		parts[i] = "<@" + u + ">"
	}
	return strings.Join(parts, " ")
}

func sendOf(m handlers.Message, ping []string) *discordgo.MessageSend {
	return &discordgo.MessageSend{Content: pingLine(ping), Embeds: []*discordgo.MessageEmbed{embedOf(m)},
		Components: componentsOf(m.Buttons), AllowedMentions: mentions(ping)}
}

func editOf(m handlers.Message) *discordgo.MessageEdit {
	embeds := []*discordgo.MessageEmbed{embedOf(m)}
	comps := componentsOf(m.Buttons)
	return &discordgo.MessageEdit{Embeds: &embeds, Components: &comps, AllowedMentions: noMentions()}
}

func webhookEditOf(m handlers.Message) *discordgo.WebhookEdit {
	embeds := []*discordgo.MessageEmbed{embedOf(m)}
	comps := componentsOf(m.Buttons)
	return &discordgo.WebhookEdit{Embeds: &embeds, Components: &comps, AllowedMentions: noMentions()}
}

// ephemeral is an immediate answer (type 4) only the person sees.
func ephemeral(m handlers.Message) *discordgo.InteractionResponse {
	return &discordgo.InteractionResponse{Type: discordgo.InteractionResponseChannelMessageWithSource,
		Data: &discordgo.InteractionResponseData{Embeds: []*discordgo.MessageEmbed{embedOf(m)}, Components: componentsOf(m.Buttons),
			Flags: discordgo.MessageFlagsEphemeral, AllowedMentions: noMentions()}}
}

// deferred acknowledges at once (type 5, ephemeral); the answer comes as
// an edit of the original response.
func deferred() *discordgo.InteractionResponse {
	return &discordgo.InteractionResponse{Type: discordgo.InteractionResponseDeferredChannelMessageWithSource,
		Data: &discordgo.InteractionResponseData{Flags: discordgo.MessageFlagsEphemeral}}
}

func textInput(id, label, value, placeholder string, style discordgo.TextInputStyle, required bool, maxLen int) discordgo.MessageComponent {
	return discordgo.ActionsRow{Components: []discordgo.MessageComponent{discordgo.TextInput{
		CustomID: id, Label: clip(label, maxInputLabel), Style: style, Value: value, Placeholder: placeholder,
		Required: required, MaxLength: maxLen}}}
}

// requestModal is the request form (type 9), prefilled with what was given.
func requestModal(f handlers.Form) *discordgo.InteractionResponse {
	var names []string
	for i, r := range f.Roles {
		if i == 5 {
			names = append(names, "…")
			break
		}
		names = append(names, r.Name)
	}
	return &discordgo.InteractionResponse{Type: discordgo.InteractionResponseModal, Data: &discordgo.InteractionResponseData{
		CustomID: modalRequest, Title: "Request access",
		Components: []discordgo.MessageComponent{
			textInput(handlers.FieldRole, "Roles (comma-separated for several)", f.Role, clip(strings.Join(names, ", "), 100), discordgo.TextInputShort, true, 100),
			textInput(handlers.FieldDuration, "Duration (30m, 2h, 1d)", f.Duration, "e.g. 2h", discordgo.TextInputShort, true, 20),
			textInput(handlers.FieldReason, "Reason", f.Reason, reasonPlaceholder(f), discordgo.TextInputParagraph, true, 1000),
		}}}
}

// askModal asks for a line of text about a request (a denial's reason).
func askModal(a handlers.Ask) *discordgo.InteractionResponse {
	return &discordgo.InteractionResponse{Type: discordgo.InteractionResponseModal, Data: &discordgo.InteractionResponseData{
		CustomID: clip(modalAsk+a.Action+":"+a.RequestID, maxCustomID), Title: clip(a.Title, maxModalTitle),
		Components: []discordgo.MessageComponent{textInput(inputAsk, a.Label, "", "", discordgo.TextInputParagraph, true, 1000)}}}
}

// reasonPlaceholder shows the roles' reason_hint in the reason field
// (a placeholder holds at most 100 characters).
func reasonPlaceholder(f handlers.Form) string {
	if f.ReasonHint == "" {
		return "Why you need the access"
	}
	return clip(f.ReasonHint, 100)
}
