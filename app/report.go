package app

import (
	"context"
	"fmt"
	"time"

	"github.com/accessbot/accessbot/access"
	"github.com/accessbot/accessbot/report"
)

// reportLookback is how far before a report's period the audit log is read
// to find the grants still held when the period starts.
const reportLookback = 31 * 24 * time.Hour

// BuildReport computes the access report of [from, to) from st's audit log
// and the requests it names.
func BuildReport(ctx context.Context, st access.Store, from, to time.Time) (report.Report, error) {
	evs, err := st.Audit(ctx, from.Add(-reportLookback))
	if err != nil {
		return report.Report{}, fmt.Errorf("read the audit log: %w", err)
	}
	reqs := map[string]*access.Request{}
	for _, e := range evs {
		if e.RequestID == "" || reqs[e.RequestID] != nil {
			continue
		}
		if r, err := st.Get(ctx, e.RequestID); err == nil {
			reqs[e.RequestID] = r
		}
	}
	return report.Compute(report.Input{From: from, To: to, Events: evs, Requests: reqs}), nil
}
