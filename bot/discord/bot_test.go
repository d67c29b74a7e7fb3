package discord_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/accessbot/accessbot/bot/discord"
	"github.com/accessbot/accessbot/bot/discord/discordfake"
	"github.com/accessbot/accessbot/handlers"
)

// The manifest in the repository is exactly what the bot registers.
func TestCommandsManifestIsWhatTheBotRegisters(t *testing.T) {
	file, err := os.ReadFile(filepath.Join("..", "..", "manifests", "discord-commands.json"))
	if err != nil {
		t.Fatal(err)
	}
	want, err := discord.CommandsJSON()
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(file, want) {
		t.Errorf("manifests/discord-commands.json differs from discord.Commands(); regenerate it from discord.CommandsJSON()")
	}
	w := newWorld(t, discordfake.Options{})
	got := w.fake.Commands(guild)
	for _, c := range got {
		for _, k := range []string{"id", "application_id", "guild_id", "version"} {
			delete(c, k)
		}
	}
	var fromFile []map[string]any
	if err := json.Unmarshal(file, &fromFile); err != nil {
		t.Fatal(err)
	}
	if mustJSON(got) != mustJSON(fromFile) {
		t.Errorf("registered commands differ from the manifest:\n%s\n%s", mustJSON(got), mustJSON(fromFile))
	}
	// Exactly the subcommands and option names of the issue.
	subs := map[string][]string{}
	for _, o := range fromFile[0]["options"].([]any) {
		om := o.(map[string]any)
		var names []string
		if os, ok := om["options"].([]any); ok {
			for _, x := range os {
				xm := x.(map[string]any)
				n := xm["name"].(string)
				if xm["required"] == true {
					n += "!"
				}
				if xm["autocomplete"] == true {
					n += "~"
				}
				names = append(names, n)
			}
		}
		subs[om["name"].(string)] = names
	}
	want2 := map[string][]string{"request": {"role!~", "duration", "reason", "start"}, "breakglass": {"role!", "duration!", "reason!"},
		"list": {"which"}, "roles": nil, "oncall": {"rotation"}, "revoke": {"target!", "reason"}, "cancel": {"id!"},
		"extend": {"id!", "duration!", "reason!"}, "help": nil}
	if mustJSON(subs) != mustJSON(want2) {
		t.Errorf("subcommands %v, want %v", subs, want2)
	}
}

func TestValidateNamesKeyPaths(t *testing.T) {
	good := discord.Config{Token: "abc.def", Guilds: []string{guild}, SecurityChannel: chSecurity, Users: users}
	if errs := good.Validate(); len(errs) != 0 {
		t.Fatalf("good config: %v", errs)
	}
	bad := discord.Config{Token: "Bot abc", APIURL: "https://discord.com/api/v10", Guilds: []string{"general", guild, guild},
		ApprovalsChannel: "#approvals", Users: map[string]string{"alice": "alice@example.com", uBob: "not an email", uCarol: "carol@exampl\u212a.com",
			uAlice: "dup@example.com", uMallory: "DUP@example.com"}}
	var paths []string
	for _, err := range bad.Validate() {
		var fe *discord.FieldError
		if !errors.As(err, &fe) {
			t.Fatalf("%v is not a FieldError", err)
		}
		paths = append(paths, fe.Path)
	}
	want := []string{"chat.discord.token", "chat.discord.api_url", "chat.discord.guilds[0]", "chat.discord.guilds[2]",
		"chat.discord.approvals_channel", "chat.discord.security_channel", "chat.discord.users." + uBob,
		"chat.discord.users." + uCarol, "chat.discord.users." + uMallory, "chat.discord.users.alice"}
	if strings.Join(paths, " ") != strings.Join(want, " ") {
		t.Errorf("paths\n %v\nwant\n %v", paths, want)
	}
	if _, err := discord.New(bad, nil, nil, nil, nil); err == nil {
		t.Error("New accepted a bad config")
	}
	empty := discord.Config{}.Validate()
	if len(empty) != 4 { // token, guilds, security_channel, users
		t.Errorf("empty config: %v", empty)
	}
}

// check --online: users/@me and every guild through the api_url rewrite.
func TestOnline(t *testing.T) {
	f := newFake(t, discordfake.Options{})
	cfg := botConfig(f)
	cfg.Guilds = []string{guild, otherGuild}
	b, err := discord.New(cfg, nil, nil, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	lines, errs := b.Online(tctx(t))
	if len(lines) != 2 || !strings.Contains(lines[1], guild) {
		t.Errorf("lines %v", lines)
	}
	if len(errs) != 1 || !strings.Contains(errs[0].Error(), "chat.discord.guilds[1]") {
		t.Errorf("errs %v", errs)
	}
	cfg.Token = "wrong"
	if b, err = discord.New(cfg, nil, nil, nil, nil); err != nil {
		t.Fatal(err)
	}
	if _, errs := b.Online(tctx(t)); len(errs) != 1 || !strings.Contains(errs[0].Error(), "chat.discord.token") {
		t.Errorf("wrong token: %v", errs)
	}
}

// Without an approvals channel the approvers get the card by DM, with
// buttons that work; Revoke now ends access; break-glass is announced in
// the security channel with Acknowledge; 429s are waited out.
func TestE2EDMCardsRevokeNowBreakGlassAndRateLimits(t *testing.T) {
	w := newWorld(t, discordfake.Options{RateLimitEvery: 3}, func(c *discord.Config) { c.ApprovalsChannel = "" })
	w.command(t, uAlice, "request", discordfake.Option{Name: "role", Value: "prod-admin"},
		discordfake.Option{Name: "duration", Value: "1h"}, discordfake.Option{Name: "reason", Value: "deploy"})
	var card discordfake.Message
	waitFor(t, w.fake, "card by DM to bob", func() bool {
		for _, m := range w.fake.DMs(uBob) {
			if len(discordfake.Buttons(m.Components)) == 2 {
				card = m
				return true
			}
		}
		return false
	})
	id := strings.TrimPrefix(discordfake.Buttons(card.Components)[0].CustomID, "access:approve:")
	dm := discordfake.Source{User: uBob, Channel: card.ChannelID} // a DM: no guild
	if txt, _ := w.click(t, dm, card, handlers.ActionApprove, id); !strings.Contains(txt, "You approved") {
		t.Errorf("bob in DM sees %q", txt)
	}
	var grant discordfake.Message
	waitFor(t, w.fake, "grant DM", func() bool {
		for _, m := range w.fake.DMs(uAlice) {
			if len(discordfake.Buttons(m.Components)) == 1 && strings.Contains(discordfake.Text(m), "You have prod-admin") {
				grant = m
				return true
			}
		}
		return false
	})
	txt, _ := w.click(t, discordfake.Source{User: uAlice, Channel: grant.ChannelID}, grant, handlers.ActionRevoke, id)
	if !strings.Contains(txt, "has ended") || w.prov.IsMember(groupAdmin, alice) {
		t.Errorf("revoke now: %q, member %v", txt, w.prov.IsMember(groupAdmin, alice))
	}
	waitFor(t, w.fake, "grant DM loses its button", func() bool {
		m, _ := w.fake.Message(grant.ChannelID, grant.ID)
		return len(discordfake.Buttons(m.Components)) == 0
	})

	txt, _ = w.command(t, uAlice, "breakglass", discordfake.Option{Name: "role", Value: "prod-admin"},
		discordfake.Option{Name: "duration", Value: "30m"}, discordfake.Option{Name: "reason", Value: "sev1"})
	if !strings.Contains(txt, "Break-glass") {
		t.Errorf("alice sees %q", txt)
	}
	waitFor(t, w.fake, "announcement", func() bool { return len(w.fake.Messages(chSecurity)) == 1 })
	ann := w.fake.Messages(chSecurity)[0]
	bs := discordfake.Buttons(ann.Components)
	if len(bs) != 1 || bs[0].Label != "Acknowledge" {
		t.Fatalf("announcement buttons %+v", bs)
	}
	if ann.Content != "" {
		t.Errorf("announcement pings: %q", ann.Content)
	}
	bg := strings.TrimPrefix(bs[0].CustomID, "access:ack:")
	if txt, _ := w.click(t, discordfake.Source{User: uBob, Guild: guild, Channel: chSecurity}, ann, handlers.ActionAck, bg); !strings.Contains(txt, "acknowledged") {
		t.Errorf("bob acks: %q", txt)
	}
	waitFor(t, w.fake, "announcement acknowledged", func() bool {
		m, _ := w.fake.Message(chSecurity, ann.ID)
		return len(discordfake.Buttons(m.Components)) == 0 && strings.Contains(discordfake.Text(m), "Acknowledged by bob@example.com")
	})
	if w.fake.RateLimited() == 0 {
		t.Error("the fake never rate limited; the test proves nothing about 429s")
	}
	t.Logf("429 answers waited out: %d", w.fake.RateLimited())
}

// The first response does not wait for the work: while the handler is
// held, the interaction is already acknowledged (deferred); the answer
// arrives by an edit once the work is done.
func TestFirstResponseDoesNotWaitForWork(t *testing.T) {
	f := newFake(t, discordfake.Options{})
	release := make(chan struct{})
	b, err := discord.New(botConfig(f), heldHandler{release: release}, nil, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	runBot(t, b)
	waitFor(t, f, "commands registered", func() bool { return f.Overwrites() == 1 })
	in, err := f.Command(tctx(t), in(uAlice), "list")
	if err != nil {
		t.Fatal(err)
	}
	if in.ResponseType != 5 || in.Latency > time.Second {
		t.Errorf("first response type %d after %v, want a deferred one at once", in.ResponseType, in.Latency)
	}
	if got := f.Interaction(in.ID); got.Original.Edits != 0 {
		t.Fatal("answered before the work was done")
	}
	close(release)
	waitFor(t, f, "late answer", func() bool { got := f.Interaction(in.ID); return got.Original.Edits == 1 })
	if txt := discordfake.Text(*f.Interaction(in.ID).Original); !strings.Contains(txt, "slow answer") {
		t.Errorf("answer %q", txt)
	}
}

type heldHandler struct{ release chan struct{} }

func (s heldHandler) Command(ctx context.Context, _ handlers.Command) handlers.Reply {
	select {
	case <-s.release:
	case <-ctx.Done():
	}
	return handlers.Reply{Message: handlers.Message{Text: "slow answer"}}
}
func (s heldHandler) Action(context.Context, handlers.Action) handlers.Reply {
	return handlers.Reply{Message: handlers.Message{Text: "clicked"}}
}
func (s heldHandler) SubmitForm(context.Context, handlers.FormInput) (handlers.Reply, handlers.FormErrors) {
	return handlers.Reply{}, nil
}
func (s heldHandler) RoleOptions(context.Context, string, string) []handlers.RoleOption { return nil }

// A flood of requests holding every bulk worker does not delay a click:
// buttons, revoke, cancel and break-glass have workers of their own.
func TestClicksOvertakeAFloodOfRequests(t *testing.T) {
	f := newFake(t, discordfake.Options{})
	release := make(chan struct{})
	cfg := botConfig(f)
	cfg.Workers, cfg.UrgentWorkers = 2, 1
	b, err := discord.New(cfg, heldHandler{release: release}, nil, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	runBot(t, b)
	waitFor(t, f, "commands registered", func() bool { return f.Overwrites() == 1 })
	var held []*discordfake.Interaction
	for range 5 {
		in, err := f.Command(tctx(t), in(uAlice), "list")
		if err != nil {
			t.Fatal(err)
		}
		held = append(held, in)
	}
	click, err := f.Click(tctx(t), in(uBob), discordfake.Message{ID: "1", ChannelID: chApprove}, "access:approve:r-1")
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, f, "the click's answer while requests are held", func() bool { return f.Interaction(click.ID).Original.Edits == 1 })
	for _, in := range held {
		if f.Interaction(in.ID).Original.Edits != 0 {
			t.Fatal("a held request was answered")
		}
	}
	close(release)
	for _, in := range held {
		waitFor(t, f, "held request answered", func() bool { return f.Interaction(in.ID).Original.Edits == 1 })
	}
}

// Work still queued when the bot stops is answered, not left hanging.
func TestQueuedWorkIsAnsweredAtShutdown(t *testing.T) {
	f := newFake(t, discordfake.Options{})
	release := make(chan struct{})
	cfg := botConfig(f)
	cfg.Workers, cfg.UrgentWorkers = 1, 1
	b, err := discord.New(cfg, heldHandler{release: release}, nil, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- b.Run(ctx) }()
	defer cancel()
	waitFor(t, f, "commands registered", func() bool { return f.Overwrites() == 1 })
	var ins []*discordfake.Interaction
	for range 3 {
		in, err := f.Command(tctx(t), in(uAlice), "list")
		if err != nil {
			t.Fatal(err)
		}
		ins = append(ins, in)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("Run did not return")
	}
	stopping := 0
	for _, in := range ins {
		got := f.Interaction(in.ID)
		if got.Original.Edits != 1 {
			t.Errorf("interaction %s: %d answers, want 1", in.ID, got.Original.Edits)
		}
		if strings.Contains(discordfake.Text(*got.Original), "restarting") {
			stopping++
		}
	}
	if stopping != 2 {
		t.Errorf("%d queued interactions told the bot is restarting, want 2", stopping)
	}
}
