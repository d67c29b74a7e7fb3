package redis

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"time"

	goredis "github.com/redis/go-redis/v9"
)

// Failover riding for the Sentinel and Cluster clients: a command that
// meets a dead primary is tried haRetries+1 times, the waits growing from
// restartMinBackoff to restartMaxBackoff (as a single server's client rides
// a restart, connect.go), which covers a Sentinel failover of a few
// seconds; a Cluster client follows MOVED/ASK and refreshes its slot map up
// to haRedirects times.
const (
	haRetries   = restartRetries
	haRedirects = 8
)

// OpenConfig validates cfg, builds the go-redis client of its mode (a
// plain client for url, a failover client following the Sentinel-elected
// primary for sentinel, a cluster client for cluster) and waits, with
// capped exponential backoff and a Warn per failed attempt (as OpenWith),
// until the store's slot answers or ctx ends. The store it returns owns
// the client: Close closes it. A bad cfg fails at once with every problem
// of Validate. Errors never show a password.
func OpenConfig(ctx context.Context, cfg Config, o OpenOptions) (*Store, error) {
	if errs := cfg.Validate(); len(errs) > 0 {
		return nil, fmt.Errorf("redis: bad store config: %w", errors.Join(errs...))
	}
	if cfg.Mode() == "url" {
		return OpenWith(ctx, cfg.URL, cfg.Prefix, o)
	}
	c, err := cfg.NewClient()
	if err != nil {
		return nil, err
	}
	if o.Readiness != nil {
		c.AddHook(readinessHook{o.Readiness})
	}
	s := New(c, cfg.Prefix)
	s.ownClient = true
	probe, err := cfg.newClient(true)
	if err != nil {
		s.Close()
		return nil, err
	}
	defer probe.Close()
	if err := waitFor(ctx, probe, s.key("fence"), cfg.describe(), o); err != nil {
		s.Close()
		return nil, err
	}
	return s, nil
}

// NewClient builds the go-redis client cfg describes without connecting:
// *goredis.Client for url and sentinel (goredis.NewFailoverClient),
// *goredis.ClusterClient for cluster. Its commands ride a short outage or
// failover (see haRetries). Validate cfg first; NewClient fails on a cfg
// that sets no mode or several.
func (c Config) NewClient() (goredis.UniversalClient, error) { return c.newClient(false) }

// newClient builds the client; a probe makes a single try per command.
func (c Config) newClient(probe bool) (goredis.UniversalClient, error) {
	retries, redirects := haRetries, haRedirects
	if probe {
		retries, redirects = -1, 1
	}
	switch c.Mode() {
	case "url":
		opt, err := parseURL(c.URL)
		if err != nil {
			return nil, err
		}
		if probe {
			opt.MaxRetries, opt.DialerRetries = -1, 1
		}
		return goredis.NewClient(opt), nil
	case "sentinel":
		s := c.Sentinel
		fo := &goredis.FailoverOptions{
			MasterName:       s.Master,
			SentinelAddrs:    append([]string(nil), s.Addrs...),
			SentinelUsername: s.SentinelUsername,
			SentinelPassword: s.SentinelPassword,
			Username:         s.Username,
			Password:         s.Password,
			DB:               s.DB,
			MaxRetries:       retries,
			MinRetryBackoff:  restartMinBackoff,
			MaxRetryBackoff:  restartMaxBackoff,
			TLSConfig:        tlsConfig(s.TLS),
		}
		if probe {
			fo.DialerRetries = 1
		}
		return goredis.NewFailoverClient(fo), nil
	case "cluster":
		cl := c.Cluster
		co := &goredis.ClusterOptions{
			Addrs:           append([]string(nil), cl.Addrs...),
			Username:        cl.Username,
			Password:        cl.Password,
			MaxRedirects:    redirects,
			MaxRetries:      retries,
			MinRetryBackoff: restartMinBackoff,
			MaxRetryBackoff: restartMaxBackoff,
			TLSConfig:       tlsConfig(cl.TLS),
		}
		if probe {
			co.DialerRetries = 1
		}
		return goredis.NewClusterClient(co), nil
	}
	return nil, errors.New("redis: store config sets none or several of url, sentinel and cluster")
}

func tlsConfig(on bool) *tls.Config {
	if !on {
		return nil
	}
	return &tls.Config{MinVersion: tls.VersionTLS12}
}

// describe names the deployment for logs and errors, without secrets.
func (c Config) describe() []any {
	switch c.Mode() {
	case "sentinel":
		return []any{"sentinel_master", c.Sentinel.Master, "sentinels", strings.Join(c.Sentinel.Addrs, ",")}
	case "cluster":
		return []any{"cluster_nodes", strings.Join(c.Cluster.Addrs, ",")}
	}
	return []any{"url", redact(c.URL)}
}

// waitFor reads key through probe until it answers (on a cluster that is
// the node that holds the store's slot; with Sentinel, the primary the
// sentinels name), with the backoff and logs of Dial.
func waitFor(ctx context.Context, probe goredis.UniversalClient, key string, desc []any, o OpenOptions) error {
	var parts []string
	for i := 0; i+1 < len(desc); i += 2 {
		parts = append(parts, fmt.Sprintf("%v=%v", desc[i], desc[i+1]))
	}
	return awaitRedis(ctx, func(ctx context.Context) error { return probe.Exists(ctx, key).Err() },
		strings.Join(parts, " "), desc, o)
}

// awaitRedis calls check, each attempt on its own short deadline, until
// it answers, waiting with capped exponential backoff in between and
// logging each failure; it gives up only when ctx ends. shown names the
// store in errors, desc in logs (neither holds a password). It marks
// o.Readiness ready once Redis answers.
func awaitRedis(ctx context.Context, check func(context.Context) error, shown string, desc []any, o OpenOptions) error {
	log := o.Logger
	if log == nil {
		log = slog.Default()
	}
	lo, hi := o.MinBackoff, o.MaxBackoff
	if lo <= 0 {
		lo = DefaultMinBackoff
	}
	if hi <= 0 {
		hi = DefaultMaxBackoff
	}
	hi = max(hi, lo)
	wait := lo
	for attempt := 1; ; attempt++ {
		pctx, cancel := context.WithTimeout(ctx, attemptTimeout)
		err := check(pctx)
		cancel()
		if err == nil {
			break
		}
		if ctx.Err() != nil {
			return fmt.Errorf("redis: connect to %s: gave up after %d attempt(s): %w (last error: %v)", shown, attempt, ctx.Err(), err)
		}
		log.WarnContext(ctx, "redis store not reachable; retrying", append(slices.Clone(desc), "attempt", attempt,
			"next_try_in", wait.String(), "err", err.Error())...)
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return fmt.Errorf("redis: connect to %s: gave up after %d attempt(s): %w (last error: %v)", shown, attempt, ctx.Err(), err)
		case <-t.C:
		}
		wait = min(2*wait, hi)
	}
	o.Readiness.set()
	log.InfoContext(ctx, "store ready", append([]any{"store", "redis"}, desc...)...)
	return nil
}

// Client is the go-redis client the store works through (for health
// checks and metrics); the store may own it (see Close).
func (s *Store) Client() goredis.UniversalClient { return s.c }
