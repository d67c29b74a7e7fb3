package discord

import (
	"fmt"
	"net/mail"
	"net/url"
	"regexp"
	"sort"
	"strings"
	"time"

	"github.com/accessbot/accessbot/access"
	"github.com/accessbot/accessbot/internal/fielderr"
)

// Defaults of Config.
const (
	DefaultAPIURL        = "https://discord.com/api/v10/"
	DefaultWorkers       = 16
	DefaultUrgentWorkers = 8
	DefaultEventTimeout  = 30 * time.Second
)

// Config configures the Discord transport. The yaml keys are those of
// chat.discord in the config file.
type Config struct {
	Token            string            `yaml:"token"`             // bot token, without the "Bot " prefix
	APIURL           string            `yaml:"api_url"`           // REST base, must end in "/"; default https://discord.com/api/v10/
	Guilds           []string          `yaml:"guilds"`            // allowed guilds; /access is registered in each
	ApprovalsChannel string            `yaml:"approvals_channel"` // channel for approval cards; "" means DM the approvers
	SecurityChannel  string            `yaml:"security_channel"`  // channel for break-glass announcements and alerts
	Users            map[string]string `yaml:"users"`             // Discord user id -> identity (email)

	Workers       int           `yaml:"-"` // interactions worked on at once after their first response; default 16
	UrgentWorkers int           `yaml:"-"` // more, only for work that cannot post a new approval card (clicks, revoke, cancel, break-glass); default 8
	EventTimeout  time.Duration `yaml:"-"` // deadline of one interaction's work; default 30 s
	// InboxLease is how long another replica waits before it handles
	// work whose replica stopped renewing it; default 10 s. Used when the
	// Deduper given to New is also an access.Inbox.
	InboxLease time.Duration `yaml:"-"`
}

// FieldError is one problem of a Config, with the key path of the config
// file (chat.discord.guilds[0]).
type FieldError = fielderr.Error

var snowflake = regexp.MustCompile(`^[0-9]{17,20}$`)

const prefix = "chat.discord"

// Validate returns every problem of c, each a *FieldError with its key
// path; nil when c is usable. It does not change c.
func (c Config) Validate() []error {
	var errs []error
	add := func(path, format string, args ...any) {
		errs = append(errs, &FieldError{Path: prefix + path, Msg: fmt.Sprintf(format, args...)})
	}
	tok := c.Token
	switch {
	case strings.TrimSpace(tok) == "":
		add(".token", "missing; set it from the environment, e.g. ${DISCORD_BOT_TOKEN}")
	case strings.HasPrefix(tok, "Bot "):
		add(".token", "give the token without the \"Bot \" prefix")
	case strings.ContainsAny(tok, " \t\r\n"):
		add(".token", "contains white space; a bot token is one word")
	}
	if c.APIURL != "" {
		if u, err := url.Parse(c.APIURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			add(".api_url", "%q is not an http(s) URL", c.APIURL)
		} else if !strings.HasSuffix(c.APIURL, "/") {
			add(".api_url", "must end with '/' (e.g. %s)", DefaultAPIURL)
		}
	}
	if len(c.Guilds) == 0 {
		add(".guilds", "missing: list the ids of the servers (guilds) accessbot serves")
	}
	seen := map[string]bool{}
	for i, g := range c.Guilds {
		switch {
		case !snowflake.MatchString(g):
			add(fmt.Sprintf(".guilds[%d]", i), "%q is not a Discord id (a snowflake of 17-20 digits)", g)
		case seen[g]:
			add(fmt.Sprintf(".guilds[%d]", i), "%s is listed twice", g)
		}
		seen[g] = true
	}
	if c.ApprovalsChannel != "" && !snowflake.MatchString(c.ApprovalsChannel) {
		add(".approvals_channel", "%q is not a Discord channel id (a snowflake of 17-20 digits)", c.ApprovalsChannel)
	}
	switch {
	case c.SecurityChannel == "":
		add(".security_channel", "missing: break-glass use and failing revocations are announced there")
	case !snowflake.MatchString(c.SecurityChannel):
		add(".security_channel", "%q is not a Discord channel id (a snowflake of 17-20 digits)", c.SecurityChannel)
	}
	if len(c.Users) == 0 {
		add(".users", "missing: Discord gives bots no email; link each user id to an identity, e.g. \"140000000000000001\": alice@example.com")
	}
	byIdentity := map[string]string{}
	ids := make([]string, 0, len(c.Users))
	for id := range c.Users {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	for _, id := range ids {
		email := c.Users[id]
		path := ".users." + id
		if !snowflake.MatchString(id) {
			add(path, "%q is not a Discord user id (a snowflake of 17-20 digits)", id)
			continue
		}
		if msg := identityProblem(email); msg != "" {
			add(path, "%s", msg)
			continue
		}
		norm := access.NormalizeIdentity(email)
		if other, dup := byIdentity[norm]; dup {
			add(path, "%s is also linked to user %s; an identity has one Discord account", norm, other)
			continue
		}
		byIdentity[norm] = id
	}
	return errs
}

// identityProblem says what is wrong with an identity, "" when it is a
// plain ASCII email address.
func identityProblem(e string) string {
	if strings.TrimSpace(e) == "" {
		return "missing identity (an email address)"
	}
	for _, r := range e {
		if r > 0x7e || r < 0x20 {
			return fmt.Sprintf("%q contains %q (U+%04X); identities must be plain ASCII email addresses", e, r, r)
		}
	}
	a, err := mail.ParseAddress(e)
	if err != nil || !access.SameIdentity(a.Address, e) {
		return fmt.Sprintf("%q is not an email address", e)
	}
	return ""
}

// normalised returns c with defaults filled in and identities normalised.
func (c Config) normalised() Config {
	if c.APIURL == "" {
		c.APIURL = DefaultAPIURL
	}
	if c.Workers <= 0 {
		c.Workers = DefaultWorkers
	}
	if c.UrgentWorkers <= 0 {
		c.UrgentWorkers = DefaultUrgentWorkers
	}
	if c.EventTimeout <= 0 {
		c.EventTimeout = DefaultEventTimeout
	}
	if c.InboxLease <= 0 {
		c.InboxLease = DefaultInboxLease
	}
	users := make(map[string]string, len(c.Users))
	for id, e := range c.Users {
		users[id] = access.NormalizeIdentity(e)
	}
	c.Users = users
	return c
}
