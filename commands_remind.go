package main

import (
	"fmt"
	"io"
	"strings"

	"github.com/accessbot/accessbot/access"
)

// printNudges prints, under a role's line of check, its reminders and
// escalation when it has any.
func printNudges(w io.Writer, r access.Role) {
	var parts []string
	if r.RemindAfter > 0 {
		parts = append(parts, fmt.Sprintf("reminds undecided approvers after %s (then 2x, 4x; %d at most)",
			access.FormatDuration(r.RemindAfter), access.MaxReminders))
	}
	if r.EscalateAfter > 0 {
		var to []string
		to = append(to, r.EscalateUsers...)
		for _, rot := range r.EscalateRotations {
			to = append(to, "on-call of "+rot)
		}
		parts = append(parts, fmt.Sprintf("escalates to %s after %s", strings.Join(to, ", "), access.FormatDuration(r.EscalateAfter)))
	}
	if len(parts) > 0 {
		fmt.Fprintf(w, "    %s\n", strings.Join(parts, "; "))
	}
}
