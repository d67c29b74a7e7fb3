package discord

import (
	"encoding/json"

	"github.com/bwmarrin/discordgo"

	"github.com/accessbot/accessbot/access"
)

// Option names of the /access subcommands.
const (
	optRole     = "role"
	optDuration = "duration"
	optReason   = "reason"
	optRotation = "rotation"
	optTarget   = "target"
	optID       = "id"
	optStart    = "start" // request: a start ahead (scheduled access), read in UTC
	optWhich    = "which" // list: one list alone
)

// Commands returns the one /access command with its subcommands, as
// registered (bulk overwrite) in every allowed guild at start and saved in
// manifests/discord-commands.json.
func Commands() []*discordgo.ApplicationCommand {
	str := func(name, desc string, required bool) *discordgo.ApplicationCommandOption {
		o := &discordgo.ApplicationCommandOption{Type: discordgo.ApplicationCommandOptionString, Name: name, Description: desc, Required: required}
		if name == optReason {
			o.MaxLength = access.MaxReasonLen
		}
		return o
	}
	sub := func(name, desc string, opts ...*discordgo.ApplicationCommandOption) *discordgo.ApplicationCommandOption {
		return &discordgo.ApplicationCommandOption{Type: discordgo.ApplicationCommandOptionSubCommand, Name: name, Description: desc, Options: opts}
	}
	role := str(optRole, "The role to request", true)
	role.Autocomplete = true
	which := str(optWhich, "One list alone, more of it", false)
	for _, c := range []string{"grants", "pending", "waiting", "oncall"} {
		which.Choices = append(which.Choices, &discordgo.ApplicationCommandOptionChoice{Name: c, Value: c})
	}
	return []*discordgo.ApplicationCommand{{
		Type:        discordgo.ChatApplicationCommand,
		Name:        "access",
		Description: "Just-in-time access: request, approve, revoke",
		Options: []*discordgo.ApplicationCommandOption{
			sub("request", "Ask for a role (or several, comma-separated) for a while",
				role, str(optDuration, "How long, e.g. 30m, 2h, 1d", false), str(optReason, "Why you need it", false),
				str(optStart, "Start later, in UTC: 22:00 or 2026-12-01T22:00 (or with an offset, +01:00)", false)),
			sub("breakglass", "Emergency access: granted at once and announced to the security team",
				str(optRole, "The role", true), str(optDuration, "How long, e.g. 1h", true), str(optReason, "Why", true)),
			sub("list", "Your access, your pending requests, what waits for your decision, who is on call", which),
			sub("roles", "What you may request, for how long, and who approves"),
			sub("oncall", "Who is on call now and next", str(optRotation, "A rotation (all when left out)", false)),
			sub("revoke", "End access early", str(optTarget, "A request id or a role you hold", true), str(optReason, "Why", false)),
			sub("cancel", "Withdraw a pending request", str(optID, "The request id", true)),
			sub("extend", "Ask for more time on an active grant",
				str(optID, "The request id", true), str(optDuration, "How much longer, e.g. 1h", true), str(optReason, "Why", true)),
			sub("help", "How to use accessbot"),
		},
	}}
}

// CommandsJSON is Commands as indented JSON: the content of
// manifests/discord-commands.json.
func CommandsJSON() ([]byte, error) {
	b, err := json.MarshalIndent(Commands(), "", "  ")
	if err != nil {
		return nil, err
	}
	return append(b, '\n'), nil
}
