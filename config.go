package main

import (
	"errors"
	"fmt"
	"maps"
	"net/mail"
	"os"
	"reflect"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/accessbot/accessbot/access"
	"github.com/accessbot/accessbot/bot/discord"
	"github.com/accessbot/accessbot/providers/static"
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
}

// LimitsConfig bounds what one person can ask for, shared across replicas
// through the store. Revoke, cancel, decisions and break-glass are never
// limited.
type LimitsConfig struct {
	PendingPerUser    *int `yaml:"pending_per_user"`    // requests waiting for approval at once; default 5, 0: no limit
	CommandsPerMinute *int `yaml:"commands_per_minute"` // default 20, 0: no limit
}

// StoreConfig picks the store: bolt (default) or redis.
type StoreConfig struct {
	Bolt  *BoltConfig  `yaml:"bolt"`
	Redis *RedisConfig `yaml:"redis"`
}

// BoltConfig is the embedded store.
type BoltConfig struct {
	Path      string `yaml:"path"`      // default accessbot.db
	Temporary bool   `yaml:"temporary"` // a fresh file in the temp dir, deleted on exit (demos)
}

// RedisConfig is the shared store for several replicas.
type RedisConfig struct {
	URL    string `yaml:"url"`
	Prefix string `yaml:"prefix"` // default accessbot
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
}

// OktaConfig is an Okta org.
type OktaConfig struct {
	OrgURL         string   `yaml:"org_url"`
	APIToken       string   `yaml:"api_token"`
	ClientID       string   `yaml:"client_id"`
	PrivateKeyFile string   `yaml:"private_key"`
	KeyID          string   `yaml:"key_id"`
	Scopes         []string `yaml:"scopes"`
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

	env expansions // what ${VAR} expanded to, for Redact
}

// Redact replaces every value that came from ${VAR} expansion in s by its
// ${VAR} reference. Output of commands that show the config goes through
// it, so that no secret from the environment is ever printed.
func (l *Loaded) Redact(s string) string { return l.env.replacer().Replace(s) }

// LoadConfig reads, expands and validates a config file. It returns every
// problem it finds (as Problems), not just the first.
func LoadConfig(path string) (*Loaded, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read config: %w", err)
	}
	return ParseConfig(data, os.LookupEnv)
}

var envRef = regexp.MustCompile(`\$\{([A-Za-z_][A-Za-z0-9_]*)\}`)

// ParseConfig validates config bytes; lookup resolves ${VAR} references.
func ParseConfig(data []byte, lookup func(string) (string, bool)) (*Loaded, error) {
	var root yaml.Node
	if err := yaml.Unmarshal(data, &root); err != nil {
		return nil, Problems{{Path: "(file)", Msg: "not valid YAML: " + strings.TrimPrefix(err.Error(), "yaml: ")}}
	}
	var ps Problems
	if len(root.Content) == 0 {
		return nil, Problems{{Path: "(file)", Msg: "the config is empty"}}
	}
	doc := root.Content[0]
	// ${VAR} is expanded in scalar values only, after parsing, so a value
	// from the environment can never change the structure of the file.
	var env expansions
	expand(doc, "", lookup, &ps, &env)
	checkKeys(doc, reflect.TypeOf(Config{}), "", &ps)
	var cfg Config
	if err := doc.Decode(&cfg); err != nil {
		var te *yaml.TypeError
		if asTypeError(err, &te) {
			for _, e := range te.Errors {
				path, msg := describeTypeError(doc, strings.TrimPrefix(e, "yaml: "))
				ps.add(path, "%s", msg)
			}
		} else {
			ps.add("(file)", "%v", err)
		}
		return nil, env.redact(ps)
	}
	l := &Loaded{Config: cfg, env: env}
	l.Policy, l.Rotations = buildPolicy(cfg, &ps)
	l.Sweep = 15 * time.Second
	if cfg.Scheduler.Sweep != "" {
		d, err := time.ParseDuration(cfg.Scheduler.Sweep)
		if err != nil || d < time.Second {
			ps.add("scheduler.sweep", "%q is not a duration of at least 1s (e.g. 15s)", cfg.Scheduler.Sweep)
		} else {
			l.Sweep = d
		}
	}
	l.Reconcile = 5 * time.Minute
	if cfg.Scheduler.Reconcile != "" {
		d, err := time.ParseDuration(cfg.Scheduler.Reconcile)
		if err != nil || d < time.Minute {
			ps.add("scheduler.reconcile", "%q is not a duration of at least 1m (e.g. 5m)", cfg.Scheduler.Reconcile)
		} else {
			l.Reconcile = d
		}
	}
	l.Limits = buildLimits(cfg.Limits, &ps)
	l.RevokeAlertAfter = 2 * time.Minute
	if v := cfg.Scheduler.RevokeAlertAfter; v != "" {
		d, err := access.ParseDuration(v)
		if err != nil || d < 10*time.Second || d > 24*time.Hour {
			ps.add("scheduler.revoke_alert_after", "%q is not a duration between 10s and 24h (e.g. 2m)", v)
		} else {
			l.RevokeAlertAfter = d
		}
	}
	validateRest(cfg, &ps)
	if len(ps) > 0 {
		sort.SliceStable(ps, func(i, j int) bool { return ps[i].Path < ps[j].Path })
		return nil, env.redact(ps)
	}
	return l, nil
}

func asTypeError(err error, te **yaml.TypeError) bool {
	t, ok := err.(*yaml.TypeError)
	if ok {
		*te = t
	}
	return ok
}

func expand(n *yaml.Node, path string, lookup func(string) (string, bool), ps *Problems, env *expansions) {
	switch n.Kind {
	case yaml.ScalarNode:
		if !strings.Contains(n.Value, "${") {
			return
		}
		orig := n.Value
		n.Value = envRef.ReplaceAllStringFunc(n.Value, func(ref string) string {
			name := envRef.FindStringSubmatch(ref)[1]
			v, ok := lookup(name)
			if !ok {
				ps.add(orRoot(path), "environment variable %s is not set", name)
			}
			env.add(v, ref)
			return v
		})
		if n.Value != orig {
			env.add(n.Value, orig)
		}
	case yaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			expand(n.Content[i+1], join(path, n.Content[i].Value), lookup, ps, env)
		}
	case yaml.SequenceNode:
		for i, c := range n.Content {
			expand(c, fmt.Sprintf("%s[%d]", path, i), lookup, ps, env)
		}
	}
}

// expansions remembers what ${VAR} expanded to, so that no problem report
// ever prints a value that came from the environment (tokens, keys): every
// such value is shown as the reference that produced it.
type expansions struct {
	values map[string]string // expanded text -> the ${VAR} text it came from
}

func (e *expansions) add(value, ref string) {
	if value == "" || value == ref {
		return
	}
	if e.values == nil {
		e.values = map[string]string{}
	}
	if _, ok := e.values[value]; !ok {
		e.values[value] = ref
	}
}

// redact rewrites every problem message so that it names the ${VAR}
// reference instead of its value, in any of the forms a message may quote
// it: as it is, inside %q quotes, or escaped by %q. Very short values
// (under 4 bytes) are replaced only where they are quoted, so that words
// and line numbers of the message stay readable.
func (e *expansions) redact(ps Problems) Problems {
	if len(e.values) == 0 {
		return ps
	}
	r := e.replacer()
	out := make(Problems, len(ps))
	for i, p := range ps {
		out[i] = Problem{Path: p.Path, Msg: r.Replace(p.Msg)}
	}
	return out
}

// replacer returns the replacements redact makes.
func (e *expansions) replacer() *strings.Replacer {
	vals := slices.Collect(maps.Keys(e.values))
	// Longest first: strings.Replacer tries the pairs in argument order.
	sort.Slice(vals, func(i, j int) bool {
		if len(vals[i]) != len(vals[j]) {
			return len(vals[i]) > len(vals[j])
		}
		return vals[i] < vals[j]
	})
	var pairs []string
	for _, v := range vals {
		ref := e.values[v]
		pairs = append(pairs, strconv.Quote(v), strconv.Quote(ref), "`"+v+"`", "`"+ref+"`")
	}
	for _, v := range vals {
		if len(v) < 4 {
			continue
		}
		ref := e.values[v]
		if q := strconv.Quote(v); q[1:len(q)-1] != v {
			pairs = append(pairs, q[1:len(q)-1], ref)
		}
		pairs = append(pairs, v, ref)
	}
	return strings.NewReplacer(pairs...)
}

var yamlTypeError = regexp.MustCompile("^line ([0-9]+): cannot unmarshal (!![a-z]+)(?: `.*`)? into (.+)$")

// describeTypeError turns one of yaml's type errors into a key path and a
// message naming the expected and the found kind of value. The value itself
// is never shown: it may have come from the environment, and yaml shows
// the first characters even of a long one.
func describeTypeError(doc *yaml.Node, e string) (path, msg string) {
	m := yamlTypeError.FindStringSubmatch(e)
	if m == nil {
		return "(file)", e
	}
	line, _ := strconv.Atoi(m[1])
	path = "(file)"
	if p, ok := pathAtLine(doc, "", line, m[2]); ok {
		path = p
	}
	return path, fmt.Sprintf("expected %s, got %s (line %d)", goKind(m[3]), yamlKind(m[2]), line)
}

// pathAtLine finds the key path of the first value node on line whose tag
// is tag.
func pathAtLine(n *yaml.Node, path string, line int, tag string) (string, bool) {
	if n.Line == line && n.ShortTag() == tag && n.Kind != yaml.DocumentNode {
		return orRoot(path), true
	}
	switch n.Kind {
	case yaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			if p, ok := pathAtLine(n.Content[i+1], join(path, n.Content[i].Value), line, tag); ok {
				return p, true
			}
		}
	case yaml.SequenceNode:
		for i, c := range n.Content {
			if p, ok := pathAtLine(c, fmt.Sprintf("%s[%d]", path, i), line, tag); ok {
				return p, true
			}
		}
	}
	return "", false
}

func goKind(t string) string {
	t = strings.TrimPrefix(t, "*")
	switch {
	case strings.HasPrefix(t, "[]"):
		return "a list"
	case strings.HasPrefix(t, "map["):
		return "a mapping"
	case t == "string":
		return "a string"
	case t == "bool":
		return "true or false"
	case strings.HasPrefix(t, "int"), strings.HasPrefix(t, "uint"):
		return "a whole number"
	case strings.HasPrefix(t, "float"):
		return "a number"
	}
	return "a mapping of keys"
}

func yamlKind(tag string) string {
	switch tag {
	case "!!str":
		return "a string"
	case "!!int":
		return "a whole number"
	case "!!float":
		return "a number"
	case "!!bool":
		return "true or false"
	case "!!seq":
		return "a list"
	case "!!map":
		return "a mapping"
	case "!!null":
		return "nothing"
	}
	return "a value of type " + strings.TrimPrefix(tag, "!!")
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

func orRoot(p string) string {
	if p == "" {
		return "(root)"
	}
	return p
}

// checkKeys reports every mapping key that the Go type does not have.
func checkKeys(n *yaml.Node, t reflect.Type, path string, ps *Problems) {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if n.Kind == yaml.AliasNode {
		n = n.Alias
	}
	switch t.Kind() {
	case reflect.Struct:
		if n.Kind != yaml.MappingNode {
			if n.Tag == "!!null" {
				return
			}
			ps.add(orRoot(path), "expected a mapping of keys, got %s", describeNode(n))
			return
		}
		fields := map[string]reflect.Type{}
		var names []string
		for i := 0; i < t.NumField(); i++ {
			f := t.Field(i)
			name := strings.Split(f.Tag.Get("yaml"), ",")[0]
			if name == "" || name == "-" {
				continue
			}
			fields[name] = f.Type
			names = append(names, name)
		}
		sort.Strings(names)
		for i := 0; i+1 < len(n.Content); i += 2 {
			k := n.Content[i].Value
			ft, ok := fields[k]
			if !ok {
				ps.add(join(path, k), "unknown key (known keys here: %s)", strings.Join(names, ", "))
				continue
			}
			checkKeys(n.Content[i+1], ft, join(path, k), ps)
		}
	case reflect.Map:
		if n.Kind != yaml.MappingNode {
			if n.Tag == "!!null" {
				return
			}
			ps.add(orRoot(path), "expected a mapping, got %s", describeNode(n))
			return
		}
		for i := 0; i+1 < len(n.Content); i += 2 {
			checkKeys(n.Content[i+1], t.Elem(), join(path, n.Content[i].Value), ps)
		}
	case reflect.Slice:
		if n.Kind != yaml.SequenceNode {
			if n.Tag == "!!null" {
				return
			}
			ps.add(orRoot(path), "expected a list, got %s", describeNode(n))
			return
		}
		for i, c := range n.Content {
			checkKeys(c, t.Elem(), fmt.Sprintf("%s[%d]", path, i), ps)
		}
	}
}

func describeNode(n *yaml.Node) string {
	switch n.Kind {
	case yaml.ScalarNode:
		return fmt.Sprintf("%q (line %d)", n.Value, n.Line)
	case yaml.SequenceNode:
		return fmt.Sprintf("a list (line %d)", n.Line)
	case yaml.MappingNode:
		return fmt.Sprintf("a mapping (line %d)", n.Line)
	}
	return fmt.Sprintf("line %d", n.Line)
}

var roleName = regexp.MustCompile(`^[a-z0-9][a-z0-9._-]{0,62}$`)

// identityProblem explains why an identity in the config cannot be used
// because of its characters, or returns "". Only plain ASCII is accepted:
// "ſam@example.com" or a Kelvin sign K would otherwise fold to another
// person's address in one place and not in another.
func identityProblem(e string) string {
	for _, r := range strings.TrimSpace(e) {
		if r > 0x7e || r < 0x20 {
			return fmt.Sprintf("%q contains %q (U+%04X); identities must be plain ASCII email addresses", e, r, r)
		}
	}
	return ""
}

func checkEmails(list []string, path string, ps *Problems) []string {
	var out []string
	for i, e := range list {
		if msg := identityProblem(e); msg != "" {
			ps.add(fmt.Sprintf("%s[%d]", path, i), "%s", msg)
			continue
		}
		e = access.NormalizeIdentity(e)
		if a, err := mail.ParseAddress(e); err != nil || a.Address != e {
			ps.add(fmt.Sprintf("%s[%d]", path, i), "%q is not an email address", list[i])
			continue
		}
		out = append(out, e)
	}
	return out
}

// knownProviders returns the provisioners the config enables.
func knownProviders(cfg Config) map[string]bool {
	m := map[string]bool{}
	if cfg.Providers.DryRun != nil {
		m["dryrun"] = true
	}
	if cfg.Providers.AWS != nil {
		m["aws"] = true
	}
	if cfg.Providers.Okta != nil {
		m["okta"] = true
	}
	return m
}

func buildPolicy(cfg Config, ps *Problems) (*access.Policy, map[string]*static.Rotation) {
	p := &access.Policy{Roles: map[string]access.Role{}, Rotations: map[string]access.Rotation{}}
	statics := map[string]*static.Rotation{}
	provs := knownProviders(cfg)

	for name, rc := range cfg.Rotations {
		path := "rotations." + name
		if !roleName.MatchString(name) {
			ps.add(path, "rotation names are lower-case letters, digits, '.', '_' and '-'")
		}
		src := rc.Source
		if src == "" {
			src = "static"
		}
		rot := access.Rotation{Name: name, Source: src, Grant: rc.Grant}
		switch src {
		case "static":
			ovs := make([]static.Override, len(rc.Overrides))
			for i, o := range rc.Overrides {
				ovs[i] = static.Override{From: o.From, Until: o.Until, Member: o.Member}
			}
			r, errs := static.New(static.Config{Name: name, Timezone: rc.Timezone, Handoff: rc.Handoff,
				Shift: rc.Shift, Start: rc.Start, Members: rc.Members, Overrides: ovs})
			for _, e := range errs {
				ps.add(path+"."+e.Field, "%s", e.Msg)
			}
			if len(errs) == 0 {
				statics[name] = r
			}
			for _, k := range []struct {
				set  bool
				name string
			}{{len(rc.ScheduleIDs) > 0, "schedule_ids"}, {len(rc.EscalationPolicyIDs) > 0, "escalation_policy_ids"},
				{rc.ScheduleID != "", "schedule_id"}} {
				if k.set {
					ps.add(path+"."+k.name, "only for pagerduty or opsgenie rotations; this one is static")
				}
			}
		case "pagerduty":
			if cfg.Providers.PagerDuty == nil {
				ps.add(path+".source", "pagerduty rotations need providers.pagerduty (token)")
			}
			if len(rc.ScheduleIDs) == 0 && len(rc.EscalationPolicyIDs) == 0 {
				ps.add(path, "a pagerduty rotation needs schedule_ids or escalation_policy_ids")
			}
		case "opsgenie":
			if cfg.Providers.Opsgenie == nil {
				ps.add(path+".source", "opsgenie rotations need providers.opsgenie (api_key)")
			}
			if rc.ScheduleID == "" {
				ps.add(path+".schedule_id", "an opsgenie rotation needs schedule_id")
			}
		default:
			ps.add(path+".source", "unknown source %q (use static, pagerduty or opsgenie)", rc.Source)
		}
		for _, k := range []struct{ v, name string }{{rc.CacheFor, "cache_for"}, {rc.StaleFor, "stale_for"}, {rc.Grace, "grace"}} {
			if k.v != "" {
				if _, err := access.ParseDuration(k.v); errors.Is(err, access.ErrTooLong) {
					ps.add(path+"."+k.name, "%q is longer than %s, the longest duration accepted", k.v, access.FormatDuration(access.MaxParsedDuration))
				} else if err != nil {
					ps.add(path+"."+k.name, "%q is not a duration (like 5m, 1h)", k.v)
				}
			}
		}
		for i, g := range rc.Grant {
			if _, ok := cfg.Roles[strings.ToLower(g)]; !ok {
				ps.add(fmt.Sprintf("%s.grant[%d]", path, i), "unknown role %q", g)
			}
		}
		p.Rotations[name] = rot
	}

	for name, rc := range cfg.Roles {
		path := "roles." + name
		if !roleName.MatchString(name) {
			ps.add(path, "role names are lower-case letters, digits, '.', '_' and '-', at most 63 characters")
		}
		role := access.Role{Name: name, Description: rc.Description, Provider: rc.Provider, Group: rc.Group,
			SelfApprove: rc.SelfApprove, BreakGlass: rc.BreakGlass, Approvals: rc.Approvals, Reconcile: rc.Reconcile}
		if rc.Description == "" {
			ps.add(path+".description", "missing: say what the role gives (it is shown to approvers)")
		}
		switch {
		case rc.Provider == "":
			ps.add(path+".provider", "missing (one of: %s)", strings.Join(slices.Sorted(maps.Keys(provs)), ", "))
		case !provs[rc.Provider]:
			ps.add(path+".provider", "%q is not configured under providers (configured: %s)", rc.Provider, orNone(slices.Sorted(maps.Keys(provs))))
		}
		if rc.Group == "" {
			ps.add(path+".group", "missing: the provider group that grants this role")
		}
		dur := func(key, v string, def time.Duration) time.Duration {
			if v == "" {
				return def
			}
			d, err := access.ParseDuration(v)
			if errors.Is(err, access.ErrTooLong) {
				ps.add(path+"."+key, "%q is longer than %s, the longest duration accepted", v, access.FormatDuration(access.MaxParsedDuration))
				return def
			}
			if err != nil {
				ps.add(path+"."+key, "%q is not a duration (use 30m, 2h, 1d or 1h30m)", v)
				return def
			}
			if d < access.MinDuration {
				ps.add(path+"."+key, "%q is shorter than the minimum of 1m", v)
			}
			return d
		}
		role.MaxDuration = dur("max_duration", rc.MaxDuration, 0)
		if rc.MaxDuration == "" {
			ps.add(path+".max_duration", "missing: the longest time this role may be held (e.g. 4h)")
		}
		role.DefaultDuration = dur("default_duration", rc.DefaultDuration, access.DefaultDuration)
		if role.MaxDuration > 0 && role.DefaultDuration > role.MaxDuration {
			if rc.DefaultDuration != "" {
				ps.add(path+".default_duration", "%s is longer than max_duration %s", rc.DefaultDuration, rc.MaxDuration)
			}
			role.DefaultDuration = role.MaxDuration
		}
		role.PendingTTL = dur("pending_ttl", rc.PendingTTL, access.DefaultPendingTTL)
		if role.Approvals == 0 {
			role.Approvals = 1
		}
		if role.Approvals < 0 {
			ps.add(path+".approvals", "must be at least 1")
		}
		switch rc.Reconcile {
		case "", "report", "remove":
		default:
			ps.add(path+".reconcile", "unknown value %q (use report or remove)", rc.Reconcile)
		}
		rots := rc.Approvers.Rotations
		if rc.Approvers.Rotation != "" {
			rots = append([]string{rc.Approvers.Rotation}, rots...)
		}
		for i, r := range rots {
			key := path + ".approvers.rotation"
			if rc.Approvers.Rotation == "" || i > 0 {
				key = fmt.Sprintf("%s.approvers.rotations[%d]", path, i-boolInt(rc.Approvers.Rotation != ""))
			}
			if _, ok := cfg.Rotations[strings.ToLower(r)]; !ok {
				ps.add(key, "unknown rotation %q (rotations: %s)", r, orNone(slices.Sorted(maps.Keys(cfg.Rotations))))
				continue
			}
			role.ApproverRotations = append(role.ApproverRotations, strings.ToLower(r))
		}
		role.ApproverUsers = checkEmails(rc.Approvers.Users, path+".approvers.users", ps)
		if len(rots) == 0 && len(rc.Approvers.Users) == 0 {
			ps.add(path+".approvers", "missing: name a rotation and/or users who may approve")
		}
		if len(rots) == 0 && role.Approvals > len(role.ApproverUsers) && len(role.ApproverUsers) > 0 {
			ps.add(path+".approvals", "needs %d approvals but only %d approvers are named", role.Approvals, len(role.ApproverUsers))
		}
		p.Roles[name] = role
	}
	p.BreakGlass = checkEmails(cfg.BreakGlass.Allowed, "break_glass.allowed", ps)
	p.Acknowledgers = checkEmails(cfg.BreakGlass.Acknowledgers, "break_glass.acknowledgers", ps)
	p.Admins = checkEmails(cfg.Admins, "admins", ps)
	if len(cfg.Roles) == 0 {
		ps.add("roles", "no roles are configured")
	}
	return p, statics
}

// buildLimits turns the limits section into access.Options: a missing
// key keeps the service default, 0 turns the limit off.
func buildLimits(lc LimitsConfig, ps *Problems) access.Options {
	var o access.Options
	for _, k := range []struct {
		v    *int
		name string
		dst  *int
	}{{lc.PendingPerUser, "pending_per_user", &o.MaxPendingPerUser}, {lc.CommandsPerMinute, "commands_per_minute", &o.CommandsPerMinute}} {
		switch {
		case k.v == nil:
		case *k.v < 0:
			ps.add("limits."+k.name, "%d is negative; use a positive number, or 0 for no limit", *k.v)
		case *k.v == 0:
			*k.dst = -1
		default:
			*k.dst = *k.v
		}
	}
	return o
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

func validateRest(cfg Config, ps *Problems) {
	if cfg.Store.Bolt != nil && cfg.Store.Redis != nil {
		ps.add("store", "choose one of bolt and redis, not both")
	}
	if r := cfg.Store.Redis; r != nil && r.URL == "" {
		ps.add("store.redis.url", "missing (e.g. redis://127.0.0.1:6379/0)")
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
	if d := cfg.Chat.Discord; d != nil {
		for _, err := range d.Validate() {
			if fe := (*discord.FieldError)(nil); errors.As(err, &fe) {
				ps.add(fe.Path, "%s", fe.Msg)
			}
		}
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
		if !strings.HasPrefix(s.AppToken, "xapp-") {
			ps.add("chat.slack.app_token", "missing or not an app-level token (xapp-...); set it from the environment, e.g. ${SLACK_APP_TOKEN}")
		}
		if !strings.HasPrefix(s.BotToken, "xoxb-") {
			ps.add("chat.slack.bot_token", "missing or not a bot token (xoxb-...); set it from the environment, e.g. ${SLACK_BOT_TOKEN}")
		}
		if s.APIURL != "" && !strings.HasSuffix(s.APIURL, "/") {
			ps.add("chat.slack.api_url", "must end with '/' (e.g. https://slack.com/api/)")
		}
		if s.SecurityChannel == "" {
			ps.add("chat.slack.security_channel", "missing: break-glass use and failing revocations are announced there")
		}
		if s.EventTimeout != "" {
			if _, err := time.ParseDuration(s.EventTimeout); err != nil {
				ps.add("chat.slack.event_timeout", "%q is not a duration (e.g. 30s)", s.EventTimeout)
			}
		}
	}
	if a := cfg.Providers.AWS; a != nil {
		if !regexp.MustCompile(`^d-[0-9a-f]{10}$|^[0-9a-f-]{36}$`).MatchString(a.IdentityStoreID) {
			ps.add("providers.aws.identity_store_id", "%q is not an identity store id (d-1234567890)", a.IdentityStoreID)
		}
	}
	if o := cfg.Providers.Okta; o != nil {
		if o.OrgURL == "" {
			ps.add("providers.okta.org_url", "missing (e.g. https://acme.okta.com)")
		}
		if (o.APIToken == "") == (o.ClientID == "") {
			ps.add("providers.okta", "set exactly one of api_token or client_id + private_key")
		}
		if o.ClientID != "" && o.PrivateKeyFile == "" {
			ps.add("providers.okta.private_key", "missing: the PEM file of the service app's private key")
		}
	}
	if p := cfg.Providers.PagerDuty; p != nil && p.Token == "" {
		ps.add("providers.pagerduty.token", "missing; set it from the environment, e.g. ${PAGERDUTY_TOKEN}")
	}
	if o := cfg.Providers.Opsgenie; o != nil && o.APIKey == "" {
		ps.add("providers.opsgenie.api_key", "missing; set it from the environment, e.g. ${OPSGENIE_API_KEY}")
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
