package config

import (
	"fmt"
	"maps"
	"net"
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
)

// Load reads, expands and validates a config file. It returns every
// problem it finds (as Problems), not just the first.
func Load(path string) (*Loaded, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read config: %w", err)
	}
	return Parse(data, os.LookupEnv)
}

var envRef = regexp.MustCompile(`\$\{([A-Za-z_][A-Za-z0-9_]*)\}`)

// Parse validates config bytes; lookup resolves ${VAR} references.
func Parse(data []byte, lookup func(string) (string, bool)) (*Loaded, error) {
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
	l.Warnings = gateWarnings(cfg)
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
	checkScheduleLimits(cfg, &ps)
	l.RevokeAlertAfter = 2 * time.Minute
	if v := cfg.Scheduler.RevokeAlertAfter; v != "" {
		d, err := access.ParseDuration(v)
		if err != nil || d < 10*time.Second || d > 24*time.Hour {
			ps.add("scheduler.revoke_alert_after", "%q is not a duration between 10s and 24h (e.g. 2m)", v)
		} else {
			l.RevokeAlertAfter = d
		}
	}
	l.MetricsListen = cfg.Metrics.Listen
	if l.MetricsListen == "" && cfg.Chat.Console == nil {
		l.MetricsListen = DefaultMetricsListen
	}
	if v := cfg.Metrics.Listen; v != "" {
		if msg := listenProblem(v); msg != "" {
			ps.add("metrics.listen", "%q %s", v, msg)
		}
	}
	l.ShutdownTimeout = DefaultShutdownTimeout
	if v := cfg.ShutdownTimeout; v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d < time.Second || d > 10*time.Minute {
			ps.add("shutdown_timeout", "%q is not a duration between 1s and 10m (e.g. 20s)", v)
		} else {
			l.ShutdownTimeout = d
		}
	}
	validateRest(cfg, &ps)
	validateEvidence(cfg, lookup, &ps)
	if len(ps) > 0 {
		sort.SliceStable(ps, func(i, j int) bool { return ps[i].Path < ps[j].Path })
		return nil, env.redact(ps)
	}
	return l, nil
}

// Defaults of metrics.listen (off on the console) and shutdown_timeout.
const (
	DefaultMetricsListen   = ":9090"
	DefaultShutdownTimeout = 20 * time.Second
)

// listenProblem says what is wrong with a metrics.listen value, "" when
// nothing is: it must be host:port with a numeric port (0 picks a free one).
func listenProblem(v string) string {
	host, port, err := net.SplitHostPort(v)
	if err != nil {
		return "is not host:port (e.g. :9090 or 127.0.0.1:9090)"
	}
	if strings.ContainsAny(host, " /") {
		return "has a bad host (e.g. :9090 or 127.0.0.1:9090)"
	}
	if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
		return "needs a port number from 0 to 65535 (e.g. :9090)"
	}
	return ""
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
