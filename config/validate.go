package config

import (
	"errors"
	"net/mail"
	"strings"
	"time"

	"github.com/accessbot/accessbot/access"
	"github.com/accessbot/accessbot/internal/fielderr"
)

// validateRest checks the sections buildPolicy does not read.
func validateRest(cfg Config, ps *Problems) {
	if cfg.Store.Bolt != nil && cfg.Store.Redis != nil {
		ps.add("store", "choose one of bolt and redis, not both")
	}
	if r := cfg.Store.Redis; r != nil {
		addFieldErrors(ps, r.Validate())
	}
	if b := cfg.Store.Bolt; b != nil && b.Temporary && b.Path != "" {
		ps.add("store.bolt.temporary", "temporary stores pick their own file; remove path or temporary")
	}
	switch n := boolInt(cfg.Chat.Console != nil) + boolInt(cfg.Chat.Slack != nil) + boolInt(cfg.Chat.Discord != nil); {
	case n > 1:
		ps.add("chat", "choose one transport: console, slack or discord")
	case n == 0:
		ps.add("chat", "missing: configure chat.console, chat.slack or chat.discord")
	}
	// Each adapter validates its own section (one source of the checks).
	if d := cfg.Chat.Discord; d != nil {
		addFieldErrors(ps, d.Validate())
	}
	if c := cfg.Chat.Console; c != nil {
		if len(c.Users) == 0 {
			ps.add("chat.console.users", "missing: map console user names to emails, e.g. alice: alice@example.com")
		}
		for name, email := range c.Users {
			if msg := identityProblem(email); msg != "" {
				ps.add("chat.console.users."+name, "%s", msg)
				continue
			}
			if a, err := mail.ParseAddress(email); err != nil || !access.SameIdentity(a.Address, email) {
				ps.add("chat.console.users."+name, "%q is not an email address", email)
			}
		}
	}
	if s := cfg.Chat.Slack; s != nil {
		addFieldErrors(ps, s.Bot().Validate())
		if s.SecurityChannel == "" {
			ps.add("chat.slack.security_channel", "missing: break-glass use and failing revocations are announced there")
		}
		if s.EventTimeout != "" {
			if _, err := time.ParseDuration(s.EventTimeout); err != nil {
				ps.add("chat.slack.event_timeout", "%q is not a duration (e.g. 30s)", s.EventTimeout)
			}
		}
	}
	if cfg.Providers.AWS != nil {
		addFieldErrors(ps, cfg.AWSProvider().Validate())
	}
	if cfg.Providers.Okta != nil {
		addFieldErrors(ps, cfg.OktaProvider().Validate())
	}
	validateSessions(cfg, ps)
	// Once here, not per rotation: the rotations share these sections.
	if p := cfg.Providers.PagerDuty; p != nil {
		addFieldErrors(ps, p.Provider().ValidateAPI())
	}
	if o := cfg.Providers.Opsgenie; o != nil {
		addFieldErrors(ps, o.Provider().ValidateAPI())
	}
	switch cfg.Log.Level {
	case "", "debug", "info", "warn", "error":
	default:
		ps.add("log.level", "unknown level %q (debug, info, warn, error)", cfg.Log.Level)
	}
	switch cfg.Log.Format {
	case "", "text", "json":
	default:
		ps.add("log.format", "unknown format %q (text, json)", cfg.Log.Format)
	}
}

func orNone(l []string) string {
	if len(l) == 0 {
		return "none"
	}
	return strings.Join(l, ", ")
}

// addFieldErrors adds an adapter's problems, each at its own key path.
func addFieldErrors(ps *Problems, errs []error) {
	for _, err := range errs {
		var fe *fielderr.Error
		if errors.As(err, &fe) {
			ps.add(fe.Path, "%s", fe.Msg)
			continue
		}
		ps.add("(file)", "%v", err)
	}
}
