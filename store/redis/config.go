package redis

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"strconv"
	"strings"

	goredis "github.com/redis/go-redis/v9"

	"github.com/accessbot/accessbot/internal/fielderr"
)

// Config is the store.redis section of the config file: one server by URL,
// or a Sentinel-managed primary with replicas, or a Redis Cluster. Exactly
// one of URL, Sentinel and Cluster is set. Values may come from ${VAR}
// expansion (passwords); Validate and the errors of OpenConfig never show
// a password.
//
//	store:
//	  redis:
//	    prefix: accessbot
//	    url: redis://:${REDIS_PASSWORD}@redis.internal:6379/0   # one server, or:
//	    sentinel:
//	      master: mymaster
//	      addrs: [sentinel-0:26379, sentinel-1:26379, sentinel-2:26379]
//	      password: ${REDIS_PASSWORD}            # of the primary and replicas
//	      sentinel_password: ${SENTINEL_PASSWORD} # of the sentinels, if they want one
//	    # or:
//	    cluster:
//	      addrs: [redis-0:6379, redis-1:6379, redis-2:6379]
//	      password: ${REDIS_PASSWORD}
type Config struct {
	URL      string          `yaml:"url"`      // redis:// or rediss:// of one server
	Prefix   string          `yaml:"prefix"`   // key prefix (the hash tag of every key); default accessbot
	Sentinel *SentinelConfig `yaml:"sentinel"` // a primary found through Redis Sentinel
	Cluster  *ClusterConfig  `yaml:"cluster"`  // a Redis Cluster
}

// SentinelConfig finds the primary through Redis Sentinel and follows it
// across failovers (go-redis's failover client).
type SentinelConfig struct {
	Master           string   `yaml:"master"`            // the name the sentinels monitor, e.g. mymaster
	Addrs            []string `yaml:"addrs"`             // host:port of the sentinels (three or more)
	Username         string   `yaml:"username"`          // ACL user on the primary and replicas, if any
	Password         string   `yaml:"password"`          // password of the primary and replicas, if any
	SentinelUsername string   `yaml:"sentinel_username"` // ACL user on the sentinels, if any
	SentinelPassword string   `yaml:"sentinel_password"` // password of the sentinels (requirepass in sentinel.conf), if any
	DB               int      `yaml:"db"`                // database number; default 0
	TLS              bool     `yaml:"tls"`               // TLS to sentinels and servers (system roots)
}

// ClusterConfig is a Redis Cluster. Every key of the store shares the hash
// tag {prefix}, so the store lives in one slot (one primary) of it.
type ClusterConfig struct {
	Addrs    []string `yaml:"addrs"`    // host:port of some nodes; the rest are discovered
	Username string   `yaml:"username"` // ACL user, if any
	Password string   `yaml:"password"` // password, if any
	TLS      bool     `yaml:"tls"`      // TLS to the nodes (system roots)
}

// Path is the key path of Config in the config file, used in errors.
const Path = "store.redis"

// FieldError is one problem of a Config with its key path in the config
// file (store.redis.sentinel.addrs[0]).
type FieldError = fielderr.Error

// Mode names which kind of deployment c configures: "url", "sentinel" or
// "cluster" ("" when none or several are set).
func (c Config) Mode() string {
	n := 0
	mode := ""
	if c.URL != "" {
		n, mode = n+1, "url"
	}
	if c.Sentinel != nil {
		n, mode = n+1, "sentinel"
	}
	if c.Cluster != nil {
		n, mode = n+1, "cluster"
	}
	if n != 1 {
		return ""
	}
	return mode
}

// Validate returns every problem of c, each a *FieldError whose Path is a
// key path under store.redis; nil when c is usable. It does not change c
// and never shows a password.
func (c Config) Validate() []error {
	var errs []error
	add := func(path, format string, args ...any) {
		errs = append(errs, &FieldError{Path: Path + path, Msg: fmt.Sprintf(format, args...)})
	}
	set := 0
	for _, on := range []bool{c.URL != "", c.Sentinel != nil, c.Cluster != nil} {
		if on {
			set++
		}
	}
	switch {
	case set == 0:
		add(".url", "missing (e.g. redis://127.0.0.1:6379/0); or configure store.redis.sentinel or store.redis.cluster")
	case set > 1:
		add("", "choose one of url, sentinel and cluster, not several")
	}
	if c.URL != "" {
		if _, err := goredis.ParseURL(c.URL); err != nil {
			var ue *url.Error
			if errors.As(err, &ue) {
				err = ue.Err // it repeats the URL, password included
			}
			add(".url", "%s is not a redis:// or rediss:// URL: %v", redact(c.URL), err)
		}
	}
	if strings.ContainsAny(c.Prefix, "{}") {
		add(".prefix", "%q: braces are not allowed (the prefix becomes the keys' {hash tag})", c.Prefix)
	}
	if s := c.Sentinel; s != nil {
		if strings.TrimSpace(s.Master) == "" {
			add(".sentinel.master", "missing: the master name the sentinels monitor (e.g. mymaster)")
		}
		if len(s.Addrs) == 0 {
			add(".sentinel.addrs", "missing: list the sentinels as host:port (e.g. sentinel-0:26379)")
		}
		checkAddrs(s.Addrs, ".sentinel.addrs", add)
		if s.DB < 0 {
			add(".sentinel.db", "%d is negative", s.DB)
		}
	}
	if cl := c.Cluster; cl != nil {
		if len(cl.Addrs) == 0 {
			add(".cluster.addrs", "missing: list some cluster nodes as host:port (e.g. redis-0:6379)")
		}
		checkAddrs(cl.Addrs, ".cluster.addrs", add)
	}
	return errs
}

func checkAddrs(addrs []string, path string, add func(path, format string, args ...any)) {
	seen := map[string]bool{}
	for i, a := range addrs {
		p := fmt.Sprintf("%s[%d]", path, i)
		host, port, err := net.SplitHostPort(a)
		if err != nil || host == "" {
			add(p, "%q is not host:port (e.g. 10.0.0.5:26379)", a)
			continue
		}
		if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
			add(p, "%q: port %q is not a number from 1 to 65535", a, port)
			continue
		}
		if seen[a] {
			add(p, "%s is listed twice", a)
		}
		seen[a] = true
	}
}
