package slack

import (
	"context"
	"fmt"
	"time"

	goslack "github.com/slack-go/slack"

	"github.com/accessbot/accessbot/handlers"
)

// Scheduled access: a start typed without a zone is read in the time zone
// of the requester's Slack profile (users.info "tz", an IANA name such as
// "Europe/Berlin").

var _ handlers.ZoneDirectory = (*Bot)(nil)

// TimeZone returns the zone of chatUser's Slack profile: from the
// users.info answer Identity cached, or a users.info call of its own.
// nil when the profile names no zone (or one this build does not know).
func (b *Bot) TimeZone(ctx context.Context, chatUser string) (*time.Location, error) {
	name, err, ok := b.zones.get(chatUser)
	if !ok {
		var u *goslack.User
		err = b.callAPI(ctx, "users.info", func(ctx context.Context) error {
			var err error
			u, err = b.api.GetUserInfoContext(ctx, chatUser)
			return err
		})
		if err != nil {
			return nil, fmt.Errorf("slack: time zone of %s: %w", chatUser, err)
		}
		name = u.TZ
		b.zones.put(chatUser, name, nil, identityTTL)
	}
	if err != nil || name == "" {
		return nil, err
	}
	loc, lerr := time.LoadLocation(name)
	if lerr != nil {
		b.log.WarnContext(ctx, "slack profile names an unknown time zone; starts are read in UTC", "user", chatUser, "tz", name)
		return nil, nil
	}
	return loc, nil
}

// startBlock is the request modal's optional start: a plain text input in
// the syntax of the command ("22:00", "2026-12-01T22:00"), prefilled from
// it. (A datetimepicker cannot say "the next 22:00" nor take the typed
// command's start as its initial value without the service's clock.)
func startBlock(f handlers.Form) *goslack.InputBlock {
	el := &goslack.PlainTextInputBlockElement{
		Type: goslack.METPlainTextInput, ActionID: handlers.FieldStart,
		Placeholder: plain("e.g. 22:00 or 2026-12-01T22:00"), InitialValue: f.Start, MaxLength: 40,
	}
	return &goslack.InputBlock{Type: goslack.MBTInput, BlockID: handlers.FieldStart, Label: plain("Start (optional)"),
		Element: el, Optional: true,
		Hint: plain("Leave empty for access as soon as it is approved. A time without a zone is in your Slack time zone.")}
}
