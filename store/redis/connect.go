package redis

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"strings"
	"sync/atomic"
	"time"

	goredis "github.com/redis/go-redis/v9"
)

// Client options that let a running replica ride out a Redis restart of a
// few seconds: a command that meets a dead connection or a refused dial is
// tried restartRetries+1 times (each try dials up to 5 times 100ms apart),
// the waits between tries starting at restartMinBackoff and growing
// (randomly, go-redis's backoff) up to restartMaxBackoff: about 6 s at the
// least before the error reaches the caller, where go-redis's defaults
// give up after about 2 s. A URL that sets max_retries, min_retry_backoff
// or max_retry_backoff keeps its own.
const (
	restartRetries    = 10
	restartMinBackoff = 150 * time.Millisecond
	restartMaxBackoff = time.Second
)

// Backoff of the initial connection when none is given.
const (
	DefaultMinBackoff = 250 * time.Millisecond
	DefaultMaxBackoff = 30 * time.Second
	attemptTimeout    = 5 * time.Second
)

// OpenOptions tune how OpenWith and Dial wait for the server.
type OpenOptions struct {
	// Logger gets a Warn for each failed attempt (URL without its password,
	// attempt count, next try) and an Info "store ready" once connected.
	// Nil means slog.Default().
	Logger *slog.Logger
	// MinBackoff and MaxBackoff bound the wait between attempts: it starts
	// at MinBackoff and doubles up to MaxBackoff. Zero means the defaults.
	MinBackoff, MaxBackoff time.Duration
	// Readiness, when set, turns ready once the server has answered, so a
	// readiness probe can report "not ready" while Open is still waiting.
	Readiness *Readiness
}

// Readiness says whether the store can reach its server: not ready until
// the first connection, then following the client's traffic through
// outages (see readiness.go). The zero value is not ready; it is safe for
// concurrent use.
type Readiness struct{ ready atomic.Bool }

// Ready reports whether the store has connected and its server answered
// the latest command (or nothing failed since).
func (r *Readiness) Ready() bool { return r != nil && r.ready.Load() }

func (r *Readiness) set() {
	if r != nil {
		r.ready.Store(true)
	}
}

// OpenWith is Open with options: it waits (with capped exponential backoff)
// until the server answers or ctx ends, and returns a store that closes its
// client on Close.
func OpenWith(ctx context.Context, rawURL, prefix string, o OpenOptions) (*Store, error) {
	c, err := Dial(ctx, rawURL, o)
	if err != nil {
		return nil, err
	}
	s := New(c, prefix)
	s.ownClient = true
	return s, nil
}

// Dial parses the redis:// or rediss:// URL and waits until the server
// answers a PING, retrying with capped exponential backoff until ctx ends;
// a bad URL fails at once. The client it returns retries commands across a
// short server restart. Errors name the URL without its password.
func Dial(ctx context.Context, rawURL string, o OpenOptions) (*goredis.Client, error) {
	opt, err := parseURL(rawURL)
	if err != nil {
		return nil, err
	}
	shown := redact(rawURL)

	// Attempts use their own client without command retries, so each one
	// is a single dial and the store's client starts with a fresh pool.
	probeOpt := *opt
	probeOpt.MaxRetries = -1
	probeOpt.DialerRetries = 1
	probe := goredis.NewClient(&probeOpt)
	defer probe.Close()

	if err := awaitRedis(ctx, func(ctx context.Context) error { return probe.Ping(ctx).Err() },
		shown, []any{"url", shown}, o); err != nil {
		return nil, err
	}
	c := goredis.NewClient(opt)
	if o.Readiness != nil {
		c.AddHook(readinessHook{o.Readiness})
	}
	return c, nil
}

// parseURL parses rawURL into client options, with the restart-riding
// retry settings unless the URL sets its own.
func parseURL(rawURL string) (*goredis.Options, error) {
	opt, err := goredis.ParseURL(rawURL)
	if err != nil {
		// url.Error repeats the whole URL, password included.
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return nil, fmt.Errorf("redis: bad store URL %s: %v", redact(rawURL), err)
	}
	q := ""
	if u, err := url.Parse(rawURL); err == nil {
		q = u.RawQuery
	}
	if !strings.Contains(q, "max_retries=") {
		opt.MaxRetries = restartRetries
	}
	if !strings.Contains(q, "min_retry_backoff=") {
		opt.MinRetryBackoff = restartMinBackoff
	}
	if !strings.Contains(q, "max_retry_backoff=") {
		opt.MaxRetryBackoff = restartMaxBackoff
	}
	return opt, nil
}
