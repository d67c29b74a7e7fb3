package discord_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/accessbot/accessbot/bot/discord/discordfake"
)

// TestE2EScheduledStartInUTC: Discord tells bots no time zone, so a start
// typed at the head of the reason ("at 11:00 …") is read in UTC.
func TestE2EScheduledStartInUTC(t *testing.T) {
	w := newWorld(t, discordfake.Options{})
	txt, _ := w.command(t, uAlice, "request", discordfake.Option{Name: "role", Value: "prod-admin"},
		discordfake.Option{Name: "duration", Value: "1h"}, discordfake.Option{Name: "reason", Value: "at 11:00 patching the database"})
	if !strings.Contains(txt, "(1h from 2031-03-04 11:00 UTC) sent for approval") {
		t.Fatalf("answer %q", txt)
	}
	_, id := w.card(t, 1)
	r, err := w.svc.Get(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	if !r.StartsAt.Equal(time.Date(2031, 3, 4, 11, 0, 0, 0, time.UTC)) || r.Reason != "patching the database" {
		t.Fatalf("starts %v reason %q", r.StartsAt, r.Reason)
	}
}

// The request subcommand's start option schedules the request (in UTC),
// and list's which option shows one list alone.
func TestE2EStartOptionAndOneList(t *testing.T) {
	w := newWorld(t, discordfake.Options{})
	txt, _ := w.command(t, uAlice, "request", discordfake.Option{Name: "role", Value: "prod-admin"},
		discordfake.Option{Name: "duration", Value: "1h"}, discordfake.Option{Name: "reason", Value: "patching the database"},
		discordfake.Option{Name: "start", Value: "2031-03-04T11:00"})
	if !strings.Contains(txt, "(1h from 2031-03-04 11:00 UTC) sent for approval") {
		t.Fatalf("answer %q", txt)
	}
	_, id := w.card(t, 1)
	r, err := w.svc.Get(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	if !r.StartsAt.Equal(time.Date(2031, 3, 4, 11, 0, 0, 0, time.UTC)) || r.Reason != "patching the database" {
		t.Fatalf("starts %v reason %q", r.StartsAt, r.Reason)
	}
	txt, _ = w.command(t, uAlice, "list", discordfake.Option{Name: "which", Value: "pending"})
	if !strings.Contains(txt, id) || strings.Contains(txt, "Waiting for your decision") {
		t.Fatalf("list pending: %q", txt)
	}
}
