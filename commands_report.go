package main

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/accessbot/accessbot/access"
	"github.com/accessbot/accessbot/app"
	"github.com/accessbot/accessbot/config"
	"github.com/accessbot/accessbot/report"
)

func cmdReport(ctx context.Context, l *config.Loaded, since, format string, stdout, stderr io.Writer) int {
	const name = "accessbot report"
	d, err := access.ParseDuration(since)
	if err != nil || d <= 0 {
		fmt.Fprintf(stderr, "%s: --since %q is not a duration (e.g. 24h, 7d)\n", name, since)
		return 2
	}
	if format != "md" && format != "csv" {
		fmt.Fprintf(stderr, "%s: --format must be md or csv, not %q\n", name, format)
		return 2
	}
	if b := l.Config.Store.Bolt; b != nil && b.Temporary {
		fmt.Fprintf(stderr, "%s: this config uses a temporary store, which is deleted when the bot stops; nothing to report\n", name)
		return 1
	}
	st, closeStore, err := app.OpenStore(ctx, l.Config)
	if err != nil {
		fmt.Fprintf(stderr, "%s: %v\n", name, err)
		return 1
	}
	defer closeStore()
	now := time.Now()
	rep, err := app.BuildReport(ctx, st, now.Add(-d), now)
	if err != nil {
		fmt.Fprintf(stderr, "%s: %v\n", name, err)
		return 1
	}
	if format == "csv" {
		err = report.CSV(stdout, rep)
	} else {
		err = report.Markdown(stdout, rep)
	}
	if err != nil {
		fmt.Fprintf(stderr, "%s: %v\n", name, err)
		return 1
	}
	return 0
}
