package config

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// ReportConfig is the weekly access report posted to a chat channel.
type ReportConfig struct {
	// Schedule is "<weekday> HH:MM <IANA time zone>", e.g. "monday 09:00
	// Europe/Berlin"; the report covers the 7 days before it.
	Schedule string `yaml:"schedule"`
	// Channel is where it is posted (default: the transport's security
	// channel).
	Channel string `yaml:"channel"`
}

// ReportSpec turns a report schedule into a cron spec with its time zone
// ("CRON_TZ=Europe/Berlin 0 9 * * 1"), or says what is wrong with it.
func ReportSpec(schedule string) (string, error) {
	f := strings.Fields(schedule)
	if len(f) != 3 {
		return "", fmt.Errorf("%q is not \"<weekday> HH:MM <time zone>\" (e.g. \"monday 09:00 Europe/Berlin\")", schedule)
	}
	wd := -1
	for d := time.Sunday; d <= time.Saturday; d++ {
		if name := strings.ToLower(d.String()); strings.EqualFold(f[0], name) || strings.EqualFold(f[0], name[:3]) {
			wd = int(d)
		}
	}
	if wd < 0 {
		return "", fmt.Errorf("%q is not a weekday (monday ... sunday)", f[0])
	}
	hh, mm, ok := strings.Cut(f[1], ":")
	h, herr := strconv.Atoi(hh)
	m, merr := strconv.Atoi(mm)
	if !ok || herr != nil || merr != nil || h < 0 || h > 23 || m < 0 || m > 59 || len(mm) != 2 {
		return "", fmt.Errorf("%q is not a time of day HH:MM (e.g. 09:00)", f[1])
	}
	if _, err := time.LoadLocation(f[2]); err != nil || f[2] == "Local" {
		return "", fmt.Errorf("%q is not an IANA time zone (e.g. Europe/Berlin, UTC)", f[2])
	}
	return fmt.Sprintf("CRON_TZ=%s %d %d * * %d", f[2], m, h, wd), nil
}

// validateEvidence checks the audit and report sections.
func validateEvidence(cfg Config, lookup func(string) (string, bool), ps *Problems) {
	if a := cfg.Audit; a != nil {
		addFieldErrors(ps, a.Validate(lookup))
	}
	r := cfg.Report
	if r == nil {
		return
	}
	if r.Schedule == "" {
		ps.add("report.schedule", "missing: when to post the weekly report, e.g. \"monday 09:00 Europe/Berlin\"")
	} else if _, err := ReportSpec(r.Schedule); err != nil {
		ps.add("report.schedule", "%v", err)
	}
	if r.Channel == "" {
		hasSecurity := (cfg.Chat.Slack != nil && cfg.Chat.Slack.SecurityChannel != "") ||
			(cfg.Chat.Console != nil && cfg.Chat.Console.SecurityChannel != "") ||
			(cfg.Chat.Discord != nil && cfg.Chat.Discord.SecurityChannel != "")
		if !hasSecurity {
			ps.add("report.channel", "missing: the channel to post the report to (there is no security channel to default to)")
		}
	}
}
