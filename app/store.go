package app

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/accessbot/accessbot/access"
	"github.com/accessbot/accessbot/config"
	"github.com/accessbot/accessbot/store/bolt"
	redisstore "github.com/accessbot/accessbot/store/redis"
)

// OpenStore opens the configured store for a one-shot command (audit): it
// gives Redis 5s to answer rather than waiting. close releases the store
// (and removes a temporary bolt file).
func OpenStore(ctx context.Context, cfg config.Config) (st access.Store, close func(), err error) {
	pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	return openStoreWaiting(pctx, cfg, nil, nil)
}

// openStoreWaiting opens the store for a replica: with Redis it waits, with
// backoff and a Warn per failed attempt on log, until Redis answers or ctx
// ends. The store package names the URL without its password and picks the
// default key prefix. store.redis (one server, Sentinel or Cluster) is
// opened by redisstore.OpenConfig; ready, when not nil, turns ready once
// Redis answers and follows its outages after that.
func openStoreWaiting(ctx context.Context, cfg config.Config, log *slog.Logger, ready *redisstore.Readiness) (access.Store, func(), error) {
	if r := cfg.Store.Redis; r != nil {
		if log == nil {
			log = slog.New(slog.NewTextHandler(io.Discard, nil))
		}
		s, err := redisstore.OpenConfig(ctx, *r, redisstore.OpenOptions{Logger: log, Readiness: ready})
		if err != nil {
			return nil, nil, fmt.Errorf("%s: %v", redisstore.Path, err)
		}
		return s, func() { s.Close() }, nil
	}
	path := "accessbot.db"
	temporary := false
	if b := cfg.Store.Bolt; b != nil {
		if b.Path != "" {
			path = b.Path
		}
		temporary = b.Temporary
	}
	if temporary {
		dir, err := os.MkdirTemp("", "accessbot-")
		if err != nil {
			return nil, nil, err
		}
		path = filepath.Join(dir, "accessbot.db")
		s, err := bolt.Open(path)
		if err != nil {
			os.RemoveAll(dir)
			return nil, nil, err
		}
		return s, func() { s.Close(); os.RemoveAll(dir) }, nil
	}
	s, err := bolt.Open(path)
	if err != nil {
		return nil, nil, err
	}
	return s, func() { s.Close() }, nil
}

// tapStore shows audit events as they are written (the console's audit lines).
type tapStore struct {
	access.Store
	fn func(access.AuditEvent)
}

func (t tapStore) Create(ctx context.Context, r *access.Request, evs ...access.AuditEvent) error {
	if err := t.Store.Create(ctx, r, evs...); err != nil {
		return err
	}
	for _, e := range evs {
		t.fn(e)
	}
	return nil
}

func (t tapStore) CreateMany(ctx context.Context, rs []*access.Request, evs ...access.AuditEvent) error {
	if err := t.Store.CreateMany(ctx, rs, evs...); err != nil {
		return err
	}
	for _, e := range evs {
		t.fn(e)
	}
	return nil
}

func (t tapStore) Update(ctx context.Context, id string, fn func(*access.Request) ([]access.AuditEvent, error)) (*access.Request, error) {
	var last []access.AuditEvent
	r, err := t.Store.Update(ctx, id, func(r *access.Request) ([]access.AuditEvent, error) {
		evs, err := fn(r)
		last = evs
		return evs, err
	})
	if err == nil {
		for _, e := range last {
			t.fn(e)
		}
	}
	return r, err
}

func (t tapStore) AppendAudit(ctx context.Context, evs ...access.AuditEvent) error {
	if err := t.Store.AppendAudit(ctx, evs...); err != nil {
		return err
	}
	for _, e := range evs {
		t.fn(e)
	}
	return nil
}

func auditLine(e access.AuditEvent) string {
	s := fmt.Sprintf("[audit] %s %s %s role=%s by=%s", e.At.UTC().Format(time.RFC3339), e.RequestID, e.Action, e.Role, e.Actor)
	switch {
	case e.From == "" && e.To != "":
		s += " state=" + string(e.To)
	case e.From != "":
		s += fmt.Sprintf(" %s->%s", e.From, e.To)
	}
	if e.Reason != "" {
		s += fmt.Sprintf(" reason=%q", e.Reason)
	}
	if e.Detail != "" {
		s += " (" + e.Detail + ")"
	}
	return s
}
