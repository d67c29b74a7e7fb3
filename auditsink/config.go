// Package auditsink delivers the audit log, at least once and in order, to
// sinks outside the store: a JSON-lines file with size-based rotation and
// an HTTPS webhook whose body is signed with HMAC-SHA256. The store is the
// spool: each sink has a cursor in the store (the id of the last event it
// took), moved only after the sink accepted the events, and one replica at
// a time delivers to a sink, under a fenced claim.
package auditsink

import (
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/accessbot/accessbot/internal/fielderr"
)

// FieldError is a problem of the audit section at its key path.
type FieldError = fielderr.Error

// Config is the config file's audit section.
type Config struct {
	Sinks []SinkConfig `yaml:"sinks"`
}

// SinkConfig is one sink. Type picks which keys apply.
type SinkConfig struct {
	Type string `yaml:"type"` // file | webhook
	// Name keys the sink's cursor in the store (default: the type). Keep
	// it when editing the rest, or the sink starts again from the first
	// event.
	Name string `yaml:"name"`

	// file
	Path      string `yaml:"path"`
	MaxSizeMB int    `yaml:"max_size_mb"` // rotate when the file would grow past this (default 100)
	Keep      int    `yaml:"keep"`        // rotated files kept: path.1 .. path.N (default 10)

	// webhook
	URL        string `yaml:"url"`
	SecretEnv  string `yaml:"secret_env"`  // environment variable holding the HMAC secret
	SecretFile string `yaml:"secret_file"` // or a file holding it (surrounding space trimmed)
	Timeout    string `yaml:"timeout"`     // per request (default 10s)
}

// Defaults.
const (
	DefaultMaxSizeMB = 100
	DefaultKeep      = 10
	DefaultTimeout   = 10 * time.Second
)

// SinkName is the sink's name: Name, or its type.
func (c SinkConfig) SinkName() string {
	if c.Name != "" {
		return c.Name
	}
	return c.Type
}

// TimeoutOrDefault is the webhook timeout (DefaultTimeout when unset or
// invalid; Validate reports an invalid one).
func (c SinkConfig) TimeoutOrDefault() time.Duration {
	if d, err := time.ParseDuration(c.Timeout); err == nil && d > 0 {
		return d
	}
	return DefaultTimeout
}

// Validate returns every problem of c, each a *FieldError under "audit".
// lookup resolves secret_env (nil: not checked).
func (c Config) Validate(lookup func(string) (string, bool)) []error {
	var errs []error
	add := func(path, format string, args ...any) {
		errs = append(errs, &FieldError{Path: path, Msg: fmt.Sprintf(format, args...)})
	}
	names := map[string]int{}
	for i, s := range c.Sinks {
		p := fmt.Sprintf("audit.sinks[%d]", i)
		if s.Name != "" && strings.ContainsAny(s.Name, " \t\n{}:") {
			add(p+".name", "%q may not contain spaces, braces or colons", s.Name)
		}
		if j, dup := names[s.SinkName()]; dup {
			add(p+".name", "two sinks are named %q (also audit.sinks[%d]): give each its own name; it keys the sink's delivery cursor", s.SinkName(), j)
		} else if s.Type != "" {
			names[s.SinkName()] = i
		}
		switch s.Type {
		case "file":
			if s.Path == "" {
				add(p+".path", "missing: the JSON-lines file to append the audit events to")
			}
			if s.MaxSizeMB < 0 {
				add(p+".max_size_mb", "%d is negative; give the size in MB at which the file rotates (default %d)", s.MaxSizeMB, DefaultMaxSizeMB)
			}
			if s.Keep < 0 {
				add(p+".keep", "%d is negative; give how many rotated files to keep (default %d)", s.Keep, DefaultKeep)
			}
			for key, v := range map[string]string{"url": s.URL, "secret_env": s.SecretEnv, "secret_file": s.SecretFile, "timeout": s.Timeout} {
				if v != "" {
					add(p+"."+key, "only webhook sinks take %s", key)
				}
			}
		case "webhook":
			u, err := url.Parse(s.URL)
			switch {
			case s.URL == "":
				add(p+".url", "missing: the https:// URL the signed events are posted to")
			case err != nil || u.Host == "":
				add(p+".url", "%q is not a URL", s.URL)
			case u.Scheme != "https":
				add(p+".url", "%q must be https://: the audit log is sent in it", s.URL)
			}
			switch {
			case s.SecretEnv == "" && s.SecretFile == "":
				add(p+".secret_env", "missing: name the environment variable (or secret_file) holding the HMAC secret the body is signed with")
			case s.SecretEnv != "" && s.SecretFile != "":
				add(p+".secret_env", "choose one of secret_env and secret_file")
			case s.SecretEnv != "" && lookup != nil:
				if v, ok := lookup(s.SecretEnv); !ok || strings.TrimSpace(v) == "" {
					add(p+".secret_env", "the environment variable %s is unset or empty", s.SecretEnv)
				}
			}
			if s.Timeout != "" {
				if d, err := time.ParseDuration(s.Timeout); err != nil || d <= 0 || d > 5*time.Minute {
					add(p+".timeout", "%q is not a duration between 1ms and 5m (e.g. 10s)", s.Timeout)
				}
			}
			for key, set := range map[string]bool{"path": s.Path != "", "max_size_mb": s.MaxSizeMB != 0, "keep": s.Keep != 0} {
				if set {
					add(p+"."+key, "only file sinks take %s", key)
				}
			}
		case "":
			add(p+".type", "missing: file or webhook")
		default:
			add(p+".type", "%q is not a sink type: file or webhook", s.Type)
		}
	}
	return errs
}
