package handlers

import (
	"context"

	"github.com/accessbot/accessbot/access"
)

// Message is a platform-neutral chat message. Transports render it: Block
// Kit on Slack, embeds and components on Discord, plain text on the console.
// Text and field values are user-visible strings. Text typed by users is in
// them only as one quoted line with no markup, control characters or
// broadcast mentions (see userText); transports must still escape them for
// their markup (& < > on Slack), which also makes <@U…> and <!channel> inert.
type Message struct {
	Title   string   // first line, bold
	Text    string   // body; may hold several lines
	Fields  []Field  // label/value pairs
	Buttons []Button // none: nothing left to decide
	Footer  string   // small print (request id, timestamps)
	Color   string   // "good", "warning", "danger" or "" (transports may ignore)
}

// Field is one label/value pair of a Message.
type Field struct {
	Label string
	Value string
}

// Button is one button of a Message. Action and Value come back in an
// Action when it is pressed.
type Button struct {
	Label  string
	Action string // ActionApprove, ActionDeny, ...
	Value  string // the request id
	Style  string // "primary", "danger" or ""
}

// The button actions a transport feeds back into Handler.Action.
const (
	ActionApprove = "approve"
	ActionDeny    = "deny"
	ActionRevoke  = "revoke"
	ActionCancel  = "cancel"
	ActionAck     = "ack"
	// ActionAddReason adds the reason of a denial after it (only the
	// approver who denied may); without a Reason the reply asks for one.
	ActionAddReason = "add_reason"
)

// Chat is what a transport offers the notifier: post to a channel, update a
// posted message, DM a person (by identity), and know its special channels.
// Implementations keep platform quirks (rate limits, escaping) inside.
type Chat interface {
	// Platform names the transport ("slack", "discord", "console").
	Platform() string
	// Post sends m to a channel and returns a reference for updates.
	Post(ctx context.Context, channel string, m Message) (access.MessageRef, error)
	// Update replaces a posted message.
	Update(ctx context.Context, ref access.MessageRef, m Message) error
	// DM sends m to the chat account of identity (an email).
	DM(ctx context.Context, identity string, m Message) (access.MessageRef, error)
	// ApprovalsChannel is where approval cards go; "" means DM each approver.
	ApprovalsChannel() string
	// SecurityChannel is where break-glass use and alerts are announced.
	SecurityChannel() string
	// Reply posts m as a reply to the message ref points at (a thread
	// reply on Slack, a reply that references it on Discord) and returns
	// the reply's reference (reminders under an approval card).
	Reply(ctx context.Context, ref access.MessageRef, m Message) (access.MessageRef, error)
}

// Directory maps chat users to identities (emails) and back. Identity is
// only ever taken from the platform's payload user id, never from text.
type Directory interface {
	// Identity returns the identity of a chat user id; access.ErrNoIdentity
	// when the user has none (no email on the profile, no explicit link).
	Identity(ctx context.Context, chatUser string) (string, error)
	// ChatUser returns the chat user id of an identity; access.ErrNoIdentity
	// when the identity has no chat account.
	ChatUser(ctx context.Context, identity string) (string, error)
}

// Command is a slash command as typed: "/access <Text>".
type Command struct {
	User string // chat user id from the payload
	Team string // workspace / guild id ("" where the platform has none)
	Text string // everything after "/access"
}

// Action is a button press, or a typed equivalent on the console.
type Action struct {
	User      string // chat user id from the payload
	Team      string
	Action    string // ActionApprove, ...
	RequestID string
	Reason    string // deny, revoke or added deny reason, when the transport asked for one
}

// Reply is what the person who typed or clicked sees, only them
// (ephemeral). A Reply with Form set asks the transport to open a form
// (Slack modal, Discord modal, console prompt) instead.
type Reply struct {
	Message
	Form *Form
	Ask  *Ask
}

// Ask asks the person for a line of text about a request (the reason of a
// denial). The transport opens a small form (Slack modal) or says how to
// type it; the answer comes back as Action{Action: Ask.Action, RequestID:
// Ask.RequestID, Reason: the text}.
type Ask struct {
	Action    string // ActionAddReason
	RequestID string
	Title     string // form title, at most 24 characters
	Label     string // what is asked
	Submit    string // submit button label
}

// Form is the request form opened when /access is missing arguments.
type Form struct {
	Roles    []RoleOption // what the user may request
	Role     string       // prefilled values
	Duration string
	Reason   string

	// Scheduled access: the start as typed (optional).
	Start string
	// MaxRoles is how many roles one request may name (several roles in
	// one request); 0: no cap shown.
	MaxRoles int
	// ReasonHint says how reasons must be written (the roles'
	// reason_hint), for the reason field's hint; "" when no role asks.
	ReasonHint string
}

// RoleOption is one choice of the form's role field.
type RoleOption struct {
	Name        string
	Description string
	MaxDuration string
}

// FormInput is a submitted form. Field names are FieldRole, FieldDuration
// and FieldReason.
type FormInput struct {
	User     string
	Team     string
	Role     string
	Duration string
	Reason   string

	// Scheduled access: the start as typed (FieldStart, optional), read
	// in the user's time zone.
	Start string
}

// The form fields, as keys of FormErrors.
const (
	FieldRole     = "role"
	FieldDuration = "duration"
	FieldReason   = "reason"
)

// FormErrors maps a field to what is wrong with it; empty when the form was
// accepted.
type FormErrors map[string]string
