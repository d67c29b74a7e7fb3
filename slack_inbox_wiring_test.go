package main

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/accessbot/accessbot/bot/slack/slackfake"
	"github.com/accessbot/accessbot/internal/redistest"
)

// `accessbot run` with Slack and Redis hands the store to the Slack
// transport as its inbox: a command is stored before its ack, and once
// answered its id is remembered as done in Redis.
func TestRunSlackUsesRedisInbox(t *testing.T) {
	f := slackfake.New(slackfake.Options{})
	defer f.Close()
	f.AddChannel("C0GENERAL")
	f.AddChannel("C0APPROVALS")
	f.AddChannel("C0SECURITY")
	f.AddUser(slackfake.User{ID: "UALICE", Name: "alice", Email: "alice@example.com"})
	f.AddUser(slackfake.User{ID: "UBOB", Name: "bob", Email: "bob@example.com"})

	prefix := redistest.Prefix(t)
	cfg := `
store:
  redis: {url: "` + redistest.URL(t) + `", prefix: "` + prefix + `"}
chat:
  slack:
    app_token: ` + f.AppToken() + `
    bot_token: ` + f.BotToken() + `
    api_url: ` + f.APIURL() + `
    approvals_channel: C0APPROVALS
    security_channel: C0SECURITY
providers:
  dryrun: {}
roles:
  prod-admin:
    description: Administrator on production
    provider: dryrun
    group: prod-admins
    max_duration: 4h
    approvers: {users: [bob@example.com]}
log: {level: warn, format: json}
metrics: {listen: "127.0.0.1:0"}  # not the default :9090, which another test may hold
`
	ctx, cancel := context.WithCancel(context.Background())
	var out, errb lockedBuf
	done := make(chan int, 1)
	go func() {
		done <- run(ctx, []string{"run", "--config", writeFile(t, cfg)}, strings.NewReader(""), &out, &errb)
	}()
	defer func() {
		cancel()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			t.Error("run did not stop")
		}
	}()
	wctx, wcancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer wcancel()
	if err := f.Wait(wctx, func() bool { return f.LiveConnections() == 1 }); err != nil {
		t.Fatalf("no Socket Mode connection: %v\nstderr: %s", err, errb.String())
	}
	res, err := f.SlashCommand(wctx, slackfake.Command{User: "UALICE", Channel: "C0GENERAL", Text: "prod-admin 1h fixing checkout"})
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Wait(wctx, func() bool { return len(f.EphemeralsFor("UALICE")) == 1 }); err != nil {
		t.Fatalf("no answer: %v\nstderr: %s", err, errb.String())
	}
	key := "{" + prefix + "}:inbox:done:slack:cmd:" + res.TriggerID
	c := redistest.Client(t)
	if err := f.Wait(wctx, func() bool { return c.Exists(context.Background(), key).Val() == 1 }); err != nil {
		t.Fatalf("%s not in Redis: the command did not go through the inbox", key)
	}
}
