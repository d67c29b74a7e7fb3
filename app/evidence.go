package app

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/accessbot/accessbot/access"
	"github.com/accessbot/accessbot/auditsink"
	"github.com/accessbot/accessbot/config"
	"github.com/accessbot/accessbot/handlers"
	"github.com/accessbot/accessbot/report"
)

// addEvidence builds the audit sinks' delivery workers (run by Run) and
// registers the weekly report job. raw is the store as opened: the
// metrics and console wrappers do not pass its audit capabilities on.
func (a *App) addEvidence(raw access.Store, chat handlers.Chat) error {
	cfg := a.cfg.Config
	if ac := cfg.Audit; ac != nil && len(ac.Sinks) > 0 {
		st, ok := raw.(auditsink.Store)
		if !ok {
			return errors.New("audit.sinks: this store cannot read its audit log in order or keep delivery cursors")
		}
		fencer, _ := raw.(access.Fencer)
		owner := a.deps.Owner
		if owner == "" {
			var b [8]byte
			_, _ = rand.Read(b[:])
			owner = "accessbot-" + hex.EncodeToString(b[:])
		}
		var names []string
		for _, sc := range ac.Sinks {
			names = append(names, sc.SinkName())
		}
		var obs auditsink.Observer
		if a.metrics != nil {
			obs = a.metrics.AuditSinks(names...)
		}
		for i, sc := range ac.Sinks {
			var sink auditsink.Sink
			switch sc.Type {
			case "file":
				sink = auditsink.NewFile(sc)
			case "webhook":
				secret, err := sinkSecret(sc)
				if err != nil {
					return fmt.Errorf("audit.sinks[%d]: %v", i, err)
				}
				client := a.deps.HTTPClient
				if client == nil {
					client = &http.Client{}
				}
				wh := auditsink.NewWebhook(sc, secret, client)
				sink = wh
			default:
				return fmt.Errorf("audit.sinks[%d].type: %q is not a sink type", i, sc.Type)
			}
			a.auditSinks = append(a.auditSinks, &auditsink.Worker{Name: sc.SinkName(), Sink: sink, Store: st, Fencer: fencer,
				Owner: owner, Clock: a.clock, Observer: obs, Log: a.log, LeaseTTL: max(time.Minute, 3*sc.TimeoutOrDefault())})
		}
	}
	if rc := cfg.Report; rc != nil {
		spec, err := config.ReportSpec(rc.Schedule)
		if err != nil {
			return fmt.Errorf("report.schedule: %v", err)
		}
		channel := rc.Channel
		if channel == "" {
			channel = chat.SecurityChannel()
		}
		if channel == "" {
			return errors.New("report.channel: missing, and the transport has no security channel")
		}
		err = a.sched.AddJob("weekly-report", spec, func(ctx context.Context) error {
			return a.postReport(ctx, chat, channel)
		})
		if err != nil {
			return err
		}
	}
	return nil
}

// postReport posts the report of the 7 days up to now to channel.
func (a *App) postReport(ctx context.Context, chat handlers.Chat, channel string) error {
	now := a.clock.Now()
	rep, err := BuildReport(ctx, a.store, now.Add(-7*24*time.Hour), now)
	if err != nil {
		return fmt.Errorf("weekly report: %w", err)
	}
	m := handlers.Message{
		Title:  fmt.Sprintf("Weekly access report, %s to %s", rep.From.UTC().Format("2006-01-02 15:04"), rep.To.UTC().Format("2006-01-02 15:04 MST")),
		Text:   report.Chat(rep),
		Footer: "Tables: accessbot report --since 7d (or --format csv)",
	}
	if _, err := chat.Post(ctx, channel, m); err != nil {
		return fmt.Errorf("weekly report: post to %s: %w", channel, err)
	}
	return nil
}

// sinkSecret reads a webhook's HMAC secret from its environment variable
// or file; it never shows the secret.
func sinkSecret(sc auditsink.SinkConfig) ([]byte, error) {
	if sc.SecretFile != "" {
		b, err := os.ReadFile(sc.SecretFile)
		if err != nil {
			return nil, fmt.Errorf("secret_file: %v", err)
		}
		if s := strings.TrimSpace(string(b)); s != "" {
			return []byte(s), nil
		}
		return nil, fmt.Errorf("secret_file: %s is empty", sc.SecretFile)
	}
	if s := strings.TrimSpace(os.Getenv(sc.SecretEnv)); s != "" {
		return []byte(s), nil
	}
	return nil, fmt.Errorf("secret_env: the environment variable %s is unset or empty", sc.SecretEnv)
}

// AuditSinks are the audit sinks' delivery workers (nil without sinks).
func (a *App) AuditSinks() []*auditsink.Worker { return a.auditSinks }
