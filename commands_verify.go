package main

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/accessbot/accessbot/access"
	"github.com/accessbot/accessbot/app"
	"github.com/accessbot/accessbot/config"
)

// cmdAuditVerify recomputes the audit chain of the configured store and
// names its first broken link. Exit 0: intact; 1: broken, or the store
// could not be read.
func cmdAuditVerify(ctx context.Context, l *config.Loaded, stdout, stderr io.Writer) int {
	const name = "accessbot audit verify"
	if b := l.Config.Store.Bolt; b != nil && b.Temporary {
		fmt.Fprintf(stderr, "%s: this config uses a temporary store, which is deleted when the bot stops; nothing to verify\n", name)
		return 1
	}
	st, closeStore, err := app.OpenStore(ctx, l.Config)
	if err != nil {
		fmt.Fprintf(stderr, "%s: %v\n", name, err)
		return 1
	}
	defer closeStore()
	as, ok := st.(access.AuditStream)
	if !ok {
		fmt.Fprintf(stderr, "%s: this store cannot read its audit log in write order\n", name)
		return 1
	}
	evs, head, err := access.ReadAuditChain(ctx, as)
	if err != nil {
		fmt.Fprintf(stderr, "%s: %v\n", name, err)
		return 1
	}
	return reportChain(stdout, evs, access.VerifyChain(evs, head))
}

// reportChain prints what VerifyChain found and returns the exit code.
func reportChain(w io.Writer, evs []access.AuditEvent, c access.ChainCheck) int {
	fmt.Fprintf(w, "audit log: %d event(s)\n", c.Events)
	switch {
	case c.Start == 0 && c.Unchained > 0:
		fmt.Fprintf(w, "all %d event(s) were written before the audit chain existed: nothing is chained yet\n", c.Unchained)
	case c.Unchained > 0:
		fmt.Fprintf(w, "events 1-%d were written before the audit chain existed and are not covered by it\n", c.Unchained)
	}
	if c.Start > 0 {
		e := evs[c.Start-1]
		fmt.Fprintf(w, "the chain starts at position %d (id %s, %s)\n", c.Start, e.ID, e.At.UTC().Format(time.RFC3339))
	}
	if b := c.Break; b != nil {
		if b.Position == 0 {
			fmt.Fprintf(w, "BROKEN: %s: %s\n", b.Kind, b.Detail)
			return 1
		}
		fmt.Fprintf(w, "BROKEN at position %d (id %s, %s): %s: %s\n", b.Position, b.ID, b.At.UTC().Format(time.RFC3339), b.Kind, b.Detail)
		return 1
	}
	if c.Start > 0 {
		last := evs[len(evs)-1]
		fmt.Fprintf(w, "intact: every link from position %d to %d verifies (last id %s, hash %s)\n", c.Start, c.Events, last.ID, last.Hash)
	} else {
		fmt.Fprintln(w, "intact: no chained events to check")
	}
	return 0
}
