package slack

import (
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/accessbot/accessbot/internal/fielderr"
)

// FieldError is one problem of a Config, at its key path in the accessbot
// config file (chat.slack.…).
type FieldError = fielderr.Error

const prefix = "chat.slack."

// Validate returns every problem of c, each a *FieldError with its key
// path; nil when c is usable. It does not change c and never shows a token.
// New applies the same checks (this is their one source), then the
// defaults.
func (c Config) Validate() []error {
	var errs []error
	add := func(key, format string, args ...any) {
		errs = append(errs, &FieldError{Path: prefix + key, Msg: fmt.Sprintf(format, args...)})
	}
	switch app := strings.TrimSpace(c.AppToken); {
	case app == "":
		add("app_token", "is empty (an app-level token xapp-… with connections:write); set it from the environment, e.g. ${SLACK_APP_TOKEN}")
	case !strings.HasPrefix(app, "xapp-"):
		add("app_token", "is not an app-level token (it must start with xapp-)")
	}
	switch bot := strings.TrimSpace(c.BotToken); {
	case bot == "":
		add("bot_token", "is empty (a bot token xoxb-…); set it from the environment, e.g. ${SLACK_BOT_TOKEN}")
	case !strings.HasPrefix(bot, "xoxb-"):
		add("bot_token", "is not a bot token (it must start with xoxb-)")
	}
	if c.APIURL != "" {
		if u, err := url.Parse(c.APIURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			add("api_url", "%q is not an http(s) URL", c.APIURL)
		} else if !strings.HasSuffix(c.APIURL, "/") {
			add("api_url", "%q must end in \"/\" (like https://slack.com/api/)", c.APIURL)
		}
	}
	if c.Workers < 0 {
		add("workers", "%d must be positive", c.Workers)
	}
	if c.UrgentWorkers < 0 {
		add("urgent_workers", "%d must be positive", c.UrgentWorkers)
	}
	if c.EventTimeout < 0 {
		add("event_timeout", "%s must be positive", c.EventTimeout)
	}
	if c.InboxLease != 0 && c.InboxLease < 30*time.Millisecond {
		add("inbox_lease", "%s is too short (at least 30ms)", c.InboxLease)
	}
	return errs
}
