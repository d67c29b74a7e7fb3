package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"github.com/accessbot/accessbot/bot/discord/discordfake"
)

const discordGuild = "1300000000000000001"

func discordConfig(apiURL, extra string) string {
	return `
store: {bolt: {temporary: true}}
chat:
  discord:
    token: ${ACCESSBOT_TEST_DISCORD_TOKEN}
    api_url: ` + apiURL + `
    guilds: ["` + discordGuild + `"]
    approvals_channel: "1300000000000000010"
    security_channel: "1300000000000000011"
    users:
      "1400000000000000001": alice@example.com
      "1400000000000000002": bob@example.com
` + extra + `
providers:
  dryrun: {}
roles:
  prod-admin:
    description: Administrator on production
    provider: dryrun
    group: prod-admins
    max_duration: 4h
    approvers: {users: [bob@example.com]}
metrics: {listen: "127.0.0.1:0"}  # not the default :9090, which another test may hold
`
}

func TestCheckDiscordSection(t *testing.T) {
	t.Setenv("ACCESSBOT_TEST_DISCORD_TOKEN", "Bot abc")
	cfg := strings.Replace(discordConfig("https://discord.com/api/v10", "    workers: 4"), `"`+discordGuild+`"`, `"general"`, 1)
	cfg = strings.Replace(cfg, "bob@example.com\n", "bob\n", 1)
	var out, errb bytes.Buffer
	if code := run(context.Background(), []string{"check", "--config", writeFile(t, cfg)}, nil, &out, &errb); code != 1 {
		t.Fatalf("exit %d\n%s", code, errb.String())
	}
	for _, want := range []string{
		"chat.discord.token: give the token without the \"Bot \" prefix",
		"chat.discord.api_url: must end with '/'",
		`chat.discord.guilds[0]: "general" is not a Discord id`,
		`chat.discord.users.1400000000000000002: "bob" is not an email address`,
		"chat.discord.workers: unknown key",
	} {
		if !strings.Contains(errb.String(), want) {
			t.Errorf("missing %q in:\n%s", want, errb.String())
		}
	}
	if strings.Contains(errb.String()+out.String(), "Bot abc") {
		t.Error("check printed the token")
	}
}

// check --online and run with chat: discord, against the fake Discord.
func TestRunAndCheckWithDiscord(t *testing.T) {
	f := discordfake.New(discordfake.Options{Guilds: []string{discordGuild}})
	defer f.Close()
	t.Setenv("ACCESSBOT_TEST_DISCORD_TOKEN", f.Token())
	path := writeFile(t, discordConfig(f.APIBase(), ""))

	var out, errb bytes.Buffer
	if code := run(context.Background(), []string{"check", "--online", "--config", path}, nil, &out, &errb); code != 0 {
		t.Fatalf("check --online: exit %d\n%s%s", code, out.String(), errb.String())
	}
	if !strings.Contains(out.String(), "discord: guild") || !strings.Contains(out.String(), "discord: bot user") {
		t.Errorf("check --online printed:\n%s", out.String())
	}

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan int, 1)
	var rout, rerr bytes.Buffer
	go func() { done <- run(ctx, []string{"run", "--config", path}, nil, &rout, &rerr) }()
	wctx, wcancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer wcancel()
	if err := f.WaitFor(wctx, func() bool { return len(f.Commands(discordGuild)) == 1 }); err != nil {
		cancel()
		t.Fatalf("commands not registered: %v\n%s", err, rerr.String())
	}
	src := discordfake.Source{User: "1400000000000000001", Guild: discordGuild, Channel: "1300000000000000012"}
	if _, err := f.Command(wctx, src, "request", discordfake.Option{Name: "role", Value: "prod-admin"},
		discordfake.Option{Name: "duration", Value: "1h"}, discordfake.Option{Name: "reason", Value: "deploy"}); err != nil {
		t.Fatal(err)
	}
	if err := f.WaitFor(wctx, func() bool { return len(f.Messages("1300000000000000010")) == 1 }); err != nil {
		t.Fatalf("no approval card: %v", err)
	}
	cancel()
	select {
	case code := <-done:
		if code != 0 {
			t.Errorf("run exit %d\n%s", code, rerr.String())
		}
	case <-time.After(15 * time.Second):
		t.Fatal("run did not stop")
	}
}
