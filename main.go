// Command accessbot is a chat-ops bot for just-in-time access: people ask
// for a role in chat, the on-call engineer or named approvers approve, and
// the bot adds them to the provider group of the role and removes them when
// the time is up.
//
//	accessbot run --config FILE       run the bot
//	accessbot check --config FILE     validate the policy, print every problem
//	accessbot audit --config FILE     print the audit log
//	accessbot version
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/accessbot/accessbot/app"
	"github.com/accessbot/accessbot/config"
)

// Stamped at build time by deploy/build.sh (make build and the Dockerfile):
// -ldflags "-X main.version=... -X main.commit=... -X main.date=...".
var (
	version = "dev"
	commit  = "unknown"
	date    = "unknown"
)

// main runs the command until it ends or a signal stops it: the first
// SIGTERM or Ctrl-C stops it gracefully (run stops taking new events and
// finishes or hands back the rest within shutdown_timeout); a second one
// exits at once.
func main() {
	ctx, cancel := context.WithCancel(context.Background())
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	go func() {
		s := <-sigs
		cancel()
		s = <-sigs
		fmt.Fprintf(os.Stderr, "accessbot: second %v: exiting now\n", s)
		os.Exit(130)
	}()
	code := run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr)
	signal.Stop(sigs)
	cancel()
	os.Exit(code)
}

const usage = `accessbot: just-in-time access through chat

Usage:
  accessbot run   --config FILE                 run the bot
  accessbot check --config FILE [--online]      validate the config; print every problem (exit 1 on any)
  accessbot audit --config FILE [--since 24h] [--format jsonl|csv]
                                                print the audit log
  accessbot audit verify --config FILE          check the audit log's hash chain (exit 1 when broken)
  accessbot report --config FILE [--since 7d] [--format md|csv]
                                                access report from the audit log
  accessbot version
`

// run is main without the process: it returns the exit code.
func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	cmd, rest := args[0], args[1:]
	if cmd == "audit" && len(rest) > 0 && rest[0] == "verify" {
		cmd, rest = "audit verify", rest[1:]
	}
	fs := flag.NewFlagSet("accessbot "+cmd, flag.ContinueOnError)
	fs.SetOutput(stderr)
	cfgPath := fs.String("config", "", "config file (YAML)")
	var online *bool
	var since, format *string
	switch cmd {
	case "run":
	case "check":
		online = fs.Bool("online", false, "also ask the providers whether every group exists")
	case "audit":
		since = fs.String("since", "24h", "how far back (e.g. 1h, 7d)")
		format = fs.String("format", "jsonl", "jsonl or csv")
	case "audit verify":
	case "report":
		since = fs.String("since", "7d", "how far back (e.g. 24h, 7d)")
		format = fs.String("format", "md", "md or csv")
	case "version", "--version", "-v":
		printVersion(stdout)
		return 0
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return 0
	default:
		fmt.Fprintf(stderr, "accessbot: unknown command %q\n\n%s", cmd, usage)
		return 2
	}
	if err := fs.Parse(rest); err != nil {
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "accessbot %s: unexpected argument %q\n", cmd, fs.Arg(0))
		return 2
	}
	if *cfgPath == "" {
		fmt.Fprintf(stderr, "accessbot %s: --config FILE is required\n", cmd)
		return 2
	}
	loaded, err := config.Load(*cfgPath)
	if err != nil {
		var ps config.Problems
		if errors.As(err, &ps) {
			fmt.Fprintf(stderr, "%s: %d problem(s):\n", *cfgPath, len(ps))
			for _, p := range ps {
				fmt.Fprintf(stderr, "  %s\n", p)
			}
			return 1
		}
		fmt.Fprintf(stderr, "accessbot: %v\n", err)
		return 1
	}
	switch cmd {
	case "check":
		return cmdCheck(ctx, loaded, *online, stdout, stderr)
	case "audit":
		return cmdAudit(ctx, loaded, *since, *format, stdout, stderr)
	case "audit verify":
		return cmdAuditVerify(ctx, loaded, stdout, stderr)
	case "report":
		return cmdReport(ctx, loaded, *since, *format, stdout, stderr)
	}
	if err := cmdRun(ctx, loaded, stdin, stdout, stderr); err != nil {
		fmt.Fprintf(stderr, "accessbot: %v\n", err)
		return 1
	}
	return 0
}

// cmdRun runs the bot until ctx ends. Ctrl-C or SIGTERM while it waits
// for Redis at start is a clean stop.
func cmdRun(ctx context.Context, l *config.Loaded, stdin io.Reader, stdout, stderr io.Writer) error {
	a, err := app.New(ctx, l, app.Deps{Stdin: stdin, Stdout: stdout, Stderr: stderr, Version: version})
	if err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return err
	}
	defer a.Close()
	return a.Run(ctx)
}
