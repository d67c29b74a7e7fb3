package config

import (
	"fmt"
	"strings"
	"time"

	"github.com/accessbot/accessbot/access"
	"github.com/accessbot/accessbot/auditsink"
	"github.com/accessbot/accessbot/bot/discord"
	"github.com/accessbot/accessbot/bot/slack"
	"github.com/accessbot/accessbot/providers/aws"
	"github.com/accessbot/accessbot/providers/okta"
	"github.com/accessbot/accessbot/providers/opsgenie"
	"github.com/accessbot/accessbot/providers/pagerduty"
	"github.com/accessbot/accessbot/providers/static"
	redisstore "github.com/accessbot/accessbot/store/redis"
)

// Config is the whole config file. Every key is listed here; unknown keys
// are errors, so a typo can never silently disable a rule.
type Config struct {
	Store      StoreConfig               `yaml:"store"`
	Chat       ChatConfig                `yaml:"chat"`
	Providers  ProvidersConfig           `yaml:"providers"`
	Rotations  map[string]RotationConfig `yaml:"rotations"`
	Roles      map[string]RoleConfig     `yaml:"roles"`
	BreakGlass BreakGlassConfig          `yaml:"break_glass"`
	Admins     []string                  `yaml:"admins"`
	Scheduler  SchedulerConfig           `yaml:"scheduler"`
	Limits     LimitsConfig              `yaml:"limits"`
	Log        LogConfig                 `yaml:"log"`
	Metrics    MetricsConfig             `yaml:"metrics"`
	// ShutdownTimeout is how long a replica told to stop (SIGTERM) may
	// finish the events it acknowledged before it hands the rest back to
	// the other replicas (default 20s).
	ShutdownTimeout string `yaml:"shutdown_timeout"`

	// Evidence for auditors (evidence.go): audit sinks and the weekly report.
	Audit  *auditsink.Config `yaml:"audit"`  // validated by auditsink.Config.Validate
	Report *ReportConfig     `yaml:"report"` // the weekly report post
}

// MetricsConfig is the HTTP server of /metrics, /healthz and /readyz.
type MetricsConfig struct {
	// Listen is host:port (":9090", "127.0.0.1:9090"); default ":9090",
	// except with the console transport, where metrics are off unless set.
	Listen string `yaml:"listen"`
}

// LimitsConfig bounds what one person can ask for, shared across replicas
// through the store. Revoke, cancel, decisions and break-glass are never
// limited.
type LimitsConfig struct {
	PendingPerUser    *int `yaml:"pending_per_user"`    // requests waiting for approval at once; default 5, 0: no limit
	CommandsPerMinute *int `yaml:"commands_per_minute"` // default 20, 0: no limit

	// Scheduled access: how far ahead a request's start may lie, for roles
	// that do not say (default 14d).
	MaxScheduleAhead string `yaml:"max_schedule_ahead"`
	// Several roles in one request: how many roles one request may name.
	RolesPerRequest *int `yaml:"roles_per_request"` // default 5, at least 1
}

// StoreConfig picks the store: bolt (default) or redis.
type StoreConfig struct {
	Bolt  *BoltConfig        `yaml:"bolt"`
	Redis *redisstore.Config `yaml:"redis"` // validated by redisstore.Config.Validate
}

// BoltConfig is the embedded store.
type BoltConfig struct {
	Path      string `yaml:"path"`      // default accessbot.db
	Temporary bool   `yaml:"temporary"` // a fresh file in the temp dir, deleted on exit (demos)
}

// ChatConfig holds the transports; exactly one is used.
type ChatConfig struct {
	Console *ConsoleConfig  `yaml:"console"`
	Slack   *SlackConfig    `yaml:"slack"`
	Discord *discord.Config `yaml:"discord"` // validated by discord.Config.Validate
}

// ConsoleConfig is the terminal transport: chat user names and their identities.
type ConsoleConfig struct {
	Users            map[string]string `yaml:"users"` // name -> email
	ApprovalsChannel string            `yaml:"approvals_channel"`
	SecurityChannel  string            `yaml:"security_channel"`
}

// SlackConfig is the Slack Socket Mode transport.
type SlackConfig struct {
	AppToken         string   `yaml:"app_token"`
	BotToken         string   `yaml:"bot_token"`
	APIURL           string   `yaml:"api_url"`
	ApprovalsChannel string   `yaml:"approvals_channel"`
	SecurityChannel  string   `yaml:"security_channel"`
	AllowedTeams     []string `yaml:"allowed_teams"`
	Workers          int      `yaml:"workers"`
	UrgentWorkers    int      `yaml:"urgent_workers"`
	EventTimeout     string   `yaml:"event_timeout"`
}

// Bot is the Slack transport's Config for s (an event_timeout that does
// not parse is 0, the default; the config check reports it).
func (s SlackConfig) Bot() slack.Config {
	timeout, _ := time.ParseDuration(s.EventTimeout)
	return slack.Config{AppToken: s.AppToken, BotToken: s.BotToken, APIURL: s.APIURL,
		ApprovalsChannel: s.ApprovalsChannel, SecurityChannel: s.SecurityChannel, AllowedTeams: s.AllowedTeams,
		Workers: s.Workers, UrgentWorkers: s.UrgentWorkers, EventTimeout: timeout}
}

// ProvidersConfig holds the provisioners and on-call services.
type ProvidersConfig struct {
	DryRun    *DryRunConfig    `yaml:"dryrun"`
	AWS       *AWSConfig       `yaml:"aws"`
	Okta      *OktaConfig      `yaml:"okta"`
	PagerDuty *PagerDutyConfig `yaml:"pagerduty"`
	Opsgenie  *OpsgenieConfig  `yaml:"opsgenie"`
}

// DryRunConfig enables the recording provider (it has no settings).
type DryRunConfig struct{}

// AWSConfig is IAM Identity Center's Identity Store.
type AWSConfig struct {
	IdentityStoreID string `yaml:"identity_store_id"`
	Region          string `yaml:"region"`
	UserNameIsEmail bool   `yaml:"user_name_is_email"`
	InstanceARN     string `yaml:"instance_arn"`
	// Session revocation: deny the sessions a user already holds at
	// revocation (needs instance_arn).
	RevokeSessions bool `yaml:"revoke_sessions"`
}

// Provider is the AWS provider's Config for a.
func (a AWSConfig) Provider() aws.Config {
	return aws.Config{IdentityStoreID: a.IdentityStoreID, Region: a.Region,
		UserNameIsEmail: a.UserNameIsEmail, InstanceARN: a.InstanceARN, RevokeSessions: a.RevokeSessions}
}

// OktaConfig is an Okta org.
type OktaConfig struct {
	OrgURL         string   `yaml:"org_url"`
	APIToken       string   `yaml:"api_token"`
	ClientID       string   `yaml:"client_id"`
	PrivateKeyFile string   `yaml:"private_key"`
	KeyID          string   `yaml:"key_id"`
	Scopes         []string `yaml:"scopes"`
	// Session revocation: end the user's Okta sessions (and OAuth tokens)
	// at revocation.
	RevokeSessions bool `yaml:"revoke_sessions"`
	OAuthTokens    bool `yaml:"oauth_tokens"`
}

// Provider is the Okta provider's Config for o.
func (o OktaConfig) Provider() okta.Config {
	return okta.Config{OrgURL: o.OrgURL, APIToken: o.APIToken, ClientID: o.ClientID,
		PrivateKeyFile: o.PrivateKeyFile, KeyID: o.KeyID, Scopes: o.Scopes,
		RevokeSessions: o.RevokeSessions, OAuthTokens: o.OAuthTokens}
}

// PagerDutyConfig is the PagerDuty REST API.
type PagerDutyConfig struct {
	APIURL string `yaml:"api_url"`
	Token  string `yaml:"token"`
}

// OpsgenieConfig is the Opsgenie API.
type OpsgenieConfig struct {
	APIURL string `yaml:"api_url"`
	APIKey string `yaml:"api_key"`
}

// Provider is the PagerDuty Config of the providers.pagerduty section
// alone (no rotation); its ValidateAPI checks the section.
func (p PagerDutyConfig) Provider() pagerduty.Config {
	return pagerduty.Config{APIURL: p.APIURL, Token: p.Token}
}

// Provider is the Opsgenie Config of the providers.opsgenie section alone
// (no rotation); its ValidateAPI checks the section.
func (o OpsgenieConfig) Provider() opsgenie.Config {
	return opsgenie.Config{APIURL: o.APIURL, APIKey: o.APIKey}
}

// PagerDuty is the PagerDuty Config of rotation name (source pagerduty)
// with the API settings of p. A cache_for or stale_for that does not parse
// is 0, the default; the config check reports it.
func (rc RotationConfig) PagerDuty(name string, p PagerDutyConfig) pagerduty.Config {
	c := p.Provider()
	c.Name, c.ScheduleIDs, c.EscalationPolicyIDs, c.EscalationLevels = name, rc.ScheduleIDs, rc.EscalationPolicyIDs, rc.EscalationLevels
	c.CacheFor, c.StaleFor = optDuration(rc.CacheFor), optDuration(rc.StaleFor)
	return c
}

// Opsgenie is the Opsgenie Config of rotation name (source opsgenie) with
// the API settings of o. A cache_for or stale_for that does not parse is
// 0, the default; the config check reports it.
func (rc RotationConfig) Opsgenie(name string, o OpsgenieConfig) opsgenie.Config {
	c := o.Provider()
	c.Name, c.ScheduleID = name, rc.ScheduleID
	c.CacheFor, c.StaleFor = optDuration(rc.CacheFor), optDuration(rc.StaleFor)
	return c
}

// optDuration parses an optional duration; "" and one that does not parse
// are 0.
func optDuration(s string) time.Duration {
	if s == "" {
		return 0
	}
	d, _ := access.ParseDuration(s)
	return d
}

// RotationConfig is one on-call rotation.
type RotationConfig struct {
	Source    string           `yaml:"source"` // static (default) | pagerduty | opsgenie
	Timezone  string           `yaml:"timezone"`
	Handoff   string           `yaml:"handoff"`
	Shift     string           `yaml:"shift"`
	Start     string           `yaml:"start"`
	Members   []string         `yaml:"members"`
	Overrides []OverrideConfig `yaml:"overrides"`
	Grant     []string         `yaml:"grant"`
	Grace     string           `yaml:"grace"`
	// pagerduty
	ScheduleIDs         []string `yaml:"schedule_ids"`
	EscalationPolicyIDs []string `yaml:"escalation_policy_ids"`
	EscalationLevels    []int    `yaml:"escalation_levels"`
	// opsgenie
	ScheduleID string `yaml:"schedule_id"`
	// pagerduty and opsgenie
	CacheFor string `yaml:"cache_for"`
	StaleFor string `yaml:"stale_for"`
}

// OverrideConfig swaps the on-call person for a time window.
type OverrideConfig struct {
	From   string `yaml:"from"`
	Until  string `yaml:"until"`
	Member string `yaml:"member"`
}

// RoleConfig is one requestable role.
type RoleConfig struct {
	Description     string          `yaml:"description"`
	Provider        string          `yaml:"provider"`
	Group           string          `yaml:"group"`
	MaxDuration     string          `yaml:"max_duration"`
	DefaultDuration string          `yaml:"default_duration"`
	Approvers       ApproversConfig `yaml:"approvers"`
	Approvals       int             `yaml:"approvals"`
	SelfApprove     bool            `yaml:"self_approve"`
	BreakGlass      bool            `yaml:"break_glass"`
	PendingTTL      string          `yaml:"pending_ttl"`
	Reconcile       string          `yaml:"reconcile"`

	// Reminders and escalation of undecided requests (remind.go).
	RemindAfter   string           `yaml:"remind_after"`   // remind undecided approvers, again after 2x and 4x
	EscalateAfter string           `yaml:"escalate_after"` // then escalate_to may decide too
	EscalateTo    EscalateToConfig `yaml:"escalate_to"`
	// Scheduled access: how far ahead a start may lie (default: limits.max_schedule_ahead).
	MaxScheduleAhead string `yaml:"max_schedule_ahead"`
	// Session revocation: overrides providers.<provider>.revoke_sessions
	// for this role (aws and okta only).
	RevokeSessions *bool `yaml:"revoke_sessions"`
	// Request gate (config/gate.go, access/gate.go).
	Requesters       *RequestersConfig  `yaml:"requesters"`        // who may ask; absent: everyone
	ReasonPattern    string             `yaml:"reason_pattern"`    // Go RE2 the reason must match
	ReasonHint       string             `yaml:"reason_hint"`       // how to write such a reason
	AutoApprove      *AutoApproveConfig `yaml:"auto_approve"`      // approved without a click when met
	ApprovalsChannel string             `yaml:"approvals_channel"` // the role's approval cards go here
	Notify           []string           `yaml:"notify"`            // identities told of outcomes
}

// ApproversConfig names who approves a role.
type ApproversConfig struct {
	Rotation  string   `yaml:"rotation"`
	Rotations []string `yaml:"rotations"`
	Users     []string `yaml:"users"`
}

// BreakGlassConfig lists who may take break-glass access and who acknowledges it.
type BreakGlassConfig struct {
	Allowed       []string `yaml:"allowed"`
	Acknowledgers []string `yaml:"acknowledgers"`
}

// SchedulerConfig tunes the expiry engine.
type SchedulerConfig struct {
	Sweep     string `yaml:"sweep"`     // default 15s
	Reconcile string `yaml:"reconcile"` // drift check interval, default 5m
	// RevokeAlertAfter is how long a revocation may keep failing before
	// the security channel is told (default 2m).
	RevokeAlertAfter string `yaml:"revoke_alert_after"`
}

// LogConfig sets logging.
type LogConfig struct {
	Level  string `yaml:"level"`  // debug | info (default) | warn | error
	Format string `yaml:"format"` // text | json (default: text on the console, json otherwise)
}

// Problem is one thing wrong with the config, at a key path.
type Problem struct {
	Path string
	Msg  string
}

func (p Problem) String() string { return p.Path + ": " + p.Msg }

// Problems is every problem found; it is an error when not empty.
type Problems []Problem

func (ps Problems) Error() string {
	lines := make([]string, len(ps))
	for i, p := range ps {
		lines[i] = p.String()
	}
	return strings.Join(lines, "\n")
}

func (ps *Problems) add(path, format string, args ...any) {
	*ps = append(*ps, Problem{Path: path, Msg: fmt.Sprintf(format, args...)})
}

// Loaded is a validated config with what was built from it.
type Loaded struct {
	Config    Config
	Policy    *access.Policy
	Rotations map[string]*static.Rotation // static rotations, by name
	Sweep     time.Duration
	Reconcile time.Duration
	Limits    access.Options // the per-user limits (MaxPendingPerUser, CommandsPerMinute)
	// RevokeAlertAfter is scheduler.revoke_alert_after (default 2m).
	RevokeAlertAfter time.Duration
	// MetricsListen is where /metrics, /healthz and /readyz are served;
	// "" is off (the console demo without metrics.listen).
	MetricsListen string
	// ShutdownTimeout is shutdown_timeout (default 20s).
	ShutdownTimeout time.Duration

	env expansions // what ${VAR} expanded to, for Redact

	// Warnings are what check prints but does not refuse (a role anyone
	// may request), each at its key path.
	Warnings Problems
}

// Redact replaces every value that came from ${VAR} expansion in s by its
// ${VAR} reference. Output of commands that show the config goes through
// it, so that no secret from the environment is ever printed.
func (l *Loaded) Redact(s string) string { return l.env.replacer().Replace(s) }
