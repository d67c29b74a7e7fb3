package slack_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/accessbot/accessbot/access"
	slackbot "github.com/accessbot/accessbot/bot/slack"
	"github.com/accessbot/accessbot/bot/slack/slackfake"
	"github.com/accessbot/accessbot/handlers"
)

const (
	team      = slackfake.DefaultTeam
	otherTeam = "T0OTHER"
	chGeneral = "C0GENERAL"
	chApprove = "C0APPROVALS"
	chSecure  = "C0SECURITY"
)

// recorder is a Handler that records what it is called with and answers
// with configurable replies.
type recorder struct {
	mu       sync.Mutex
	commands []handlers.Command
	actions  []handlers.Action
	forms    []handlers.FormInput
	queries  []string

	onCommand func(handlers.Command) handlers.Reply
	onAction  func(handlers.Action) handlers.Reply
	onForm    func(handlers.FormInput) (handlers.Reply, handlers.FormErrors)
	roles     []handlers.RoleOption
}

func (r *recorder) Command(_ context.Context, c handlers.Command) handlers.Reply {
	r.mu.Lock()
	r.commands = append(r.commands, c)
	f := r.onCommand
	r.mu.Unlock()
	if f != nil {
		return f(c)
	}
	return handlers.Reply{Message: handlers.Message{Text: "got " + c.Text}}
}

func (r *recorder) Action(_ context.Context, a handlers.Action) handlers.Reply {
	r.mu.Lock()
	r.actions = append(r.actions, a)
	f := r.onAction
	r.mu.Unlock()
	if f != nil {
		return f(a)
	}
	return handlers.Reply{Message: handlers.Message{Text: "did " + a.Action + " " + a.RequestID}}
}

func (r *recorder) SubmitForm(_ context.Context, in handlers.FormInput) (handlers.Reply, handlers.FormErrors) {
	r.mu.Lock()
	r.forms = append(r.forms, in)
	f := r.onForm
	r.mu.Unlock()
	if f != nil {
		return f(in)
	}
	return handlers.Reply{Message: handlers.Message{Text: "submitted " + in.Role}}, nil
}

func (r *recorder) RoleOptions(_ context.Context, _ string, query string) []handlers.RoleOption {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.queries = append(r.queries, query)
	var out []handlers.RoleOption
	for _, o := range r.roles {
		if strings.Contains(o.Name, query) {
			out = append(out, o)
		}
	}
	return out
}

func (r *recorder) counts() (cmds, acts, forms int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.commands), len(r.actions), len(r.forms)
}

func (r *recorder) commandTexts() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []string
	for _, c := range r.commands {
		out = append(out, c.Text)
	}
	return out
}

func testLogger(t *testing.T) *slog.Logger {
	if os.Getenv("ACCESSBOT_TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.DiscardHandler)
}

type env struct {
	fake *slackfake.Server
	bot  *slackbot.Bot
	h    *recorder
}

func newFake(t *testing.T, opts slackfake.Options) *slackfake.Server {
	t.Helper()
	f := slackfake.New(opts)
	t.Cleanup(f.Close)
	for _, c := range []string{chGeneral, chApprove, chSecure} {
		f.AddChannel(c)
	}
	f.AddUser(slackfake.User{ID: "UALICE", Name: "alice", Email: "alice@example.com"})
	f.AddUser(slackfake.User{ID: "UBOB", Name: "bob", Email: "bob@example.com"})
	f.AddUser(slackfake.User{ID: "UMALLORY", Name: "mallory", Email: "mallory@other.example", Team: otherTeam})
	f.AddUser(slackfake.User{ID: "UGONE", Name: "gone", Email: "gone@example.com", Deleted: true})
	f.AddUser(slackfake.User{ID: "UNOMAIL", Name: "nomail"})
	f.AddUser(slackfake.User{ID: "UBOT", Name: "somebot", Email: "bot@example.com", IsBot: true})
	return f
}

func botConfig(f *slackfake.Server) slackbot.Config {
	return slackbot.Config{
		AppToken: f.AppToken(), BotToken: f.BotToken(), APIURL: f.APIURL(),
		ApprovalsChannel: chApprove, SecurityChannel: chSecure,
		AllowedTeams: []string{team},
	}
}

// start runs a bot against f until the test ends and waits for its first
// connection.
func start(t *testing.T, f *slackfake.Server, cfg slackbot.Config, h slackbot.Handler) *slackbot.Bot {
	t.Helper()
	b, err := slackbot.New(cfg, nil, nil, testLogger(t))
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	b.SetHandler(h)
	runBot(t, b)
	waitFor(t, f, "first connection", func() bool { return f.LiveConnections() == 1 })
	return b
}

func runBot(t *testing.T, b *slackbot.Bot) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- b.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Run: %v", err)
			}
		case <-time.After(10 * time.Second):
			t.Errorf("Run did not return after cancel")
		}
	})
}

func setup(t *testing.T, mod func(*slackbot.Config)) env {
	t.Helper()
	f := newFake(t, slackfake.Options{})
	cfg := botConfig(f)
	if mod != nil {
		mod(&cfg)
	}
	h := &recorder{}
	b := start(t, f, cfg, h)
	return env{fake: f, bot: b, h: h}
}

func tctx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func waitFor(t *testing.T, f *slackfake.Server, what string, cond func() bool) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	if err := f.Wait(ctx, cond); err != nil {
		t.Fatalf("waiting for %s: %v", what, err)
	}
}

func percentile(ds []time.Duration, p float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	i := int(float64(len(s)-1) * p)
	return s[i]
}

func TestCommandAckedAndAnsweredEphemeral(t *testing.T) {
	e := setup(t, nil)
	ctx := tctx(t)
	const n = 20
	var lat []time.Duration
	for i := range n {
		res, err := e.fake.SlashCommand(ctx, slackfake.Command{User: "UALICE", Channel: chGeneral, Text: fmt.Sprintf("prod-admin 2h fix %d", i)})
		if err != nil {
			t.Fatalf("command %d: %v", i, err)
		}
		if res.Ack.Payload != nil {
			t.Errorf("slash command ack carries a payload: %s", res.Ack.Payload)
		}
		lat = append(lat, res.Ack.Latency)
	}
	t.Logf("slash command ack latency over %d: p50=%v max=%v", n, percentile(lat, 0.5), percentile(lat, 1))
	waitFor(t, e.fake, "ephemeral replies", func() bool { return len(e.fake.EphemeralsFor("UALICE")) == n })
	e.h.mu.Lock()
	c := e.h.commands[0]
	e.h.mu.Unlock()
	if c.User != "UALICE" || c.Team != team || !strings.HasPrefix(c.Text, "prod-admin 2h fix") {
		t.Errorf("handler got %+v", c)
	}
	for _, eph := range e.fake.EphemeralsFor("UALICE") {
		if eph.Channel != chGeneral || eph.Via != "chat.postEphemeral" || !strings.HasPrefix(eph.Text, "got prod-admin 2h") {
			t.Errorf("ephemeral %+v", eph)
		}
	}
	if got := len(e.fake.Messages(chGeneral)); got != 0 {
		t.Errorf("%d public messages in the channel, want none", got)
	}
}

func TestEphemeralFallsBackToResponseURL(t *testing.T) {
	e := setup(t, nil)
	// A DM between two people: the bot is not a member, chat.postEphemeral
	// answers channel_not_found, the response_url still works.
	if _, err := e.fake.SlashCommand(tctx(t), slackfake.Command{User: "UALICE", Channel: "DPRIVATE", Text: "list"}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, e.fake, "reply", func() bool { return len(e.fake.EphemeralsFor("UALICE")) == 1 })
	if got := e.fake.EphemeralsFor("UALICE")[0]; got.Via != "response_url" || got.Text != "got list" {
		t.Errorf("reply %+v", got)
	}
}

// postCard puts an approval card with buttons in the approvals channel.
func postCard(t *testing.T, b *slackbot.Bot, id string) access.MessageRef {
	t.Helper()
	ref, err := b.Post(tctx(t), chApprove, handlers.Message{
		Title: "alice@example.com requests prod-admin",
		Buttons: []handlers.Button{
			{Label: "Approve", Action: handlers.ActionApprove, Value: id, Style: "primary"},
			{Label: "Deny", Action: handlers.ActionDeny, Value: id, Style: "danger"},
		},
	})
	if err != nil {
		t.Fatalf("Post: %v", err)
	}
	return ref
}

func TestRedeliveredEnvelopeActsOnce(t *testing.T) {
	e := setup(t, func(c *slackbot.Config) { c.Workers = 1 }) // FIFO, so a later barrier command proves the retry was handled
	ctx := tctx(t)
	postCard(t, e.bot, "r-1")

	res, err := e.fake.Click(ctx, slackfake.Click{User: "UBOB", ActionID: handlers.ActionApprove, Value: "r-1"})
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, e.fake, "first action", func() bool { _, a, _ := e.h.counts(); return a == 1 })
	again, err := e.fake.Redeliver(ctx, res.EnvelopeID)
	if err != nil {
		t.Fatal(err)
	}
	if again.RetryAttempt != 1 {
		t.Errorf("redelivery retry_attempt = %d, want 1", again.RetryAttempt)
	}
	// Slack redelivers a slash command too when its ack is lost.
	cres, err := e.fake.SlashCommand(ctx, slackfake.Command{User: "UALICE", Channel: chGeneral, Text: "first"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.fake.Redeliver(ctx, cres.EnvelopeID); err != nil {
		t.Fatal(err)
	}
	if _, err := e.fake.SlashCommand(ctx, slackfake.Command{User: "UALICE", Channel: chGeneral, Text: "barrier"}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, e.fake, "barrier", func() bool { return slices.Contains(e.h.commandTexts(), "barrier") })
	cmds, acts, _ := e.h.counts()
	if acts != 1 || cmds != 2 {
		t.Errorf("handler saw %d actions and %d commands, want 1 and 2 (redeliveries must not act)", acts, cmds)
	}
	e.h.mu.Lock()
	a := e.h.actions[0]
	e.h.mu.Unlock()
	if a.User != "UBOB" || a.Team != team || a.Action != handlers.ActionApprove || a.RequestID != "r-1" || a.Reason != "" {
		t.Errorf("action %+v", a)
	}
}

func TestForeignTeamRefused(t *testing.T) {
	e := setup(t, func(c *slackbot.Config) { c.Workers = 1 })
	ctx := tctx(t)
	postCard(t, e.bot, "r-2")
	if _, err := e.fake.SlashCommand(ctx, slackfake.Command{User: "UMALLORY", Team: otherTeam, Channel: chGeneral, Text: "prod-admin 1h x"}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.fake.Click(ctx, slackfake.Click{User: "UMALLORY", Team: otherTeam, ActionID: handlers.ActionApprove, Value: "r-2"}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.fake.SlashCommand(ctx, slackfake.Command{User: "UALICE", Channel: chGeneral, Text: "barrier"}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, e.fake, "barrier", func() bool { return slices.Contains(e.h.commandTexts(), "barrier") })
	cmds, acts, _ := e.h.counts()
	if cmds != 1 || acts != 0 {
		t.Errorf("handler saw %d commands and %d actions from a foreign team, want only the barrier", cmds, acts)
	}
	waitFor(t, e.fake, "refusals", func() bool { return len(e.fake.EphemeralsFor("UMALLORY")) == 2 })
	for _, eph := range e.fake.EphemeralsFor("UMALLORY") {
		if !strings.Contains(eph.Text, "not allowed") {
			t.Errorf("refusal text %q", eph.Text)
		}
	}
	if m := e.fake.Messages(chApprove); len(m) != 1 || m[0].Updates != 0 {
		t.Errorf("the card changed after a foreign click: %+v", m)
	}
}

func TestEscapingUserText(t *testing.T) {
	e := setup(t, nil)
	ctx := tctx(t)
	evil := "<!channel> <!here> <@UBOB> a&b <https://evil.example|bank>"
	msg := handlers.Message{
		Title:   "Request by " + evil,
		Text:    "reason: " + evil,
		Fields:  []handlers.Field{{Label: "Reason " + evil, Value: evil}},
		Footer:  "r-3 " + evil,
		Buttons: []handlers.Button{{Label: "Approve", Action: handlers.ActionApprove, Value: "r-3"}},
	}
	ref, err := e.bot.Post(ctx, chApprove, msg)
	if err != nil {
		t.Fatal(err)
	}
	e.h.mu.Lock()
	e.h.onCommand = func(handlers.Command) handlers.Reply { return handlers.Reply{Message: msg} }
	e.h.mu.Unlock()
	if _, err := e.fake.SlashCommand(ctx, slackfake.Command{User: "UALICE", Channel: chGeneral, Text: evil}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, e.fake, "reply", func() bool { return len(e.fake.EphemeralsFor("UALICE")) == 1 })

	posted, ok := e.fake.Message(ref.Channel, ref.ID)
	if !ok {
		t.Fatalf("posted message %+v not recorded", ref)
	}
	eph := e.fake.EphemeralsFor("UALICE")[0]
	for name, s := range map[string]string{
		"post blocks": slackfake.BlockText(posted.Blocks), "post text": posted.Text,
		"ephemeral blocks": slackfake.BlockText(eph.Blocks), "ephemeral text": eph.Text,
	} {
		for _, bad := range []string{"<!channel>", "<!here>", "<@UBOB>", "<https://", " a&b "} {
			if strings.Contains(s, bad) {
				t.Errorf("%s contains unescaped %q: %s", name, bad, s)
			}
		}
		if !strings.Contains(s, "&lt;!channel&gt;") || !strings.Contains(s, "&lt;@UBOB&gt;") || !strings.Contains(s, "a&amp;b") {
			t.Errorf("%s lacks the escaped text: %s", name, s)
		}
	}
	// The command text reached the handler unchanged.
	if got := e.h.commandTexts()[0]; got != evil {
		t.Errorf("handler got %q", got)
	}
}

func TestUpdateRemovesButtons(t *testing.T) {
	e := setup(t, nil)
	ctx := tctx(t)
	ref := postCard(t, e.bot, "r-4")
	if ref.Platform != "slack" || ref.Channel != chApprove || ref.ID == "" {
		t.Fatalf("ref %+v", ref)
	}
	m, _ := e.fake.Message(ref.Channel, ref.ID)
	if !slackfake.HasButtons(m.Blocks) {
		t.Fatalf("card has no buttons: %v", m.Blocks)
	}
	for _, b := range m.Blocks {
		if _, ok := b["block_id"].(string); !ok {
			t.Errorf("block without a string block_id: %v", b)
		}
	}
	if err := e.bot.Update(ctx, ref, handlers.Message{Title: "Approved by bob@example.com", Fields: []handlers.Field{{Label: "Role", Value: "prod-admin"}}}); err != nil {
		t.Fatal(err)
	}
	m, _ = e.fake.Message(ref.Channel, ref.ID)
	if m.Updates != 1 || slackfake.HasButtons(m.Blocks) || !strings.Contains(m.Text, "Approved by bob@example.com") {
		t.Errorf("after update: %+v", m)
	}
	if _, err := e.fake.Click(ctx, slackfake.Click{User: "UBOB", ActionID: handlers.ActionApprove, Value: "r-4"}); err == nil {
		t.Error("a button removed by the update could still be clicked")
	}
	err := e.bot.Update(ctx, access.MessageRef{Platform: "slack", Channel: chApprove, ID: "1.2"}, handlers.Message{Text: "x"})
	if err == nil || !strings.Contains(err.Error(), "message_not_found") {
		t.Errorf("update of an unknown message: %v", err)
	}
	if err := e.bot.Update(ctx, access.MessageRef{Platform: "discord", Channel: "1", ID: "2"}, handlers.Message{Text: "x"}); err == nil {
		t.Error("update of a discord message did not fail")
	}
}

func testForm(n int) *handlers.Form {
	f := &handlers.Form{Role: "prod-admin", Duration: "1h"}
	f.Roles = append(f.Roles, handlers.RoleOption{Name: "prod-admin", Description: "Admin on production", MaxDuration: "4h"})
	for i := 1; i < n; i++ {
		f.Roles = append(f.Roles, handlers.RoleOption{Name: fmt.Sprintf("role-%03d", i)})
	}
	return f
}

func TestFormModal(t *testing.T) {
	e := setup(t, nil)
	ctx := tctx(t)
	e.h.mu.Lock()
	e.h.onCommand = func(handlers.Command) handlers.Reply { return handlers.Reply{Form: testForm(3)} }
	e.h.onForm = func(in handlers.FormInput) (handlers.Reply, handlers.FormErrors) {
		if in.Duration == "forever" {
			return handlers.Reply{}, handlers.FormErrors{handlers.FieldDuration: "use a number and a unit, like 30m"}
		}
		return handlers.Reply{Message: handlers.Message{Title: "Request r-9 submitted"}}, nil
	}
	e.h.mu.Unlock()
	if _, err := e.fake.SlashCommand(ctx, slackfake.Command{User: "UALICE", Channel: chGeneral}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, e.fake, "modal", func() bool { return len(e.fake.Views()) == 1 })
	v := e.fake.Views()[0]
	t.Logf("modal opened %v after the trigger was issued", v.SinceTrigger)
	if v.User != "UALICE" || v.CallbackID == "" || len(v.Blocks) != 4 {
		t.Fatalf("view %+v", v)
	}
	var ids []string
	for _, b := range v.Blocks {
		ids = append(ids, b["block_id"].(string))
	}
	if !slices.Equal(ids, []string{handlers.FieldRole, handlers.FieldDuration, handlers.FieldReason, handlers.FieldStart}) {
		t.Errorf("block ids %v", ids)
	}
	role := v.Blocks[0]["element"].(map[string]any)
	if role["type"] != "multi_static_select" || role["initial_options"].([]any)[0].(map[string]any)["value"] != "prod-admin" {
		t.Errorf("role element %v", role)
	}
	if v.Blocks[1]["element"].(map[string]any)["initial_value"] != "1h" {
		t.Errorf("duration not prefilled: %v", v.Blocks[1])
	}

	res, err := e.fake.SubmitView(ctx, v.ID, "UALICE", "", map[string]string{handlers.FieldDuration: "forever", handlers.FieldReason: "fix checkout"})
	if err != nil {
		t.Fatal(err)
	}
	if res.Ack.ResponseAction() != "errors" || res.Ack.Errors()[handlers.FieldDuration] == "" {
		t.Fatalf("invalid submission ack %s", res.Ack.Payload)
	}
	t.Logf("view_submission (errors) ack latency %v", res.Ack.Latency)

	res, err = e.fake.SubmitView(ctx, v.ID, "UALICE", "", map[string]string{handlers.FieldRole: "role-002", handlers.FieldDuration: "30m", handlers.FieldReason: "fix checkout"})
	if err != nil {
		t.Fatal(err)
	}
	if res.Ack.Payload != nil {
		t.Errorf("valid submission ack %s, want a plain ack (closes the modal)", res.Ack.Payload)
	}
	e.h.mu.Lock()
	got := e.h.forms[len(e.h.forms)-1]
	e.h.mu.Unlock()
	want := handlers.FormInput{User: "UALICE", Team: team, Role: "role-002", Duration: "30m", Reason: "fix checkout"}
	if got != want {
		t.Errorf("form input %+v, want %+v", got, want)
	}
	waitFor(t, e.fake, "confirmation", func() bool { return len(e.fake.EphemeralsFor("UALICE")) == 1 })
	if eph := e.fake.EphemeralsFor("UALICE")[0]; eph.Channel != chGeneral || !strings.Contains(eph.Text, "r-9 submitted") {
		t.Errorf("confirmation %+v", eph)
	}
}

func TestFormWithManyRolesUsesExternalSelect(t *testing.T) {
	e := setup(t, nil)
	ctx := tctx(t)
	form := testForm(150)
	e.h.mu.Lock()
	e.h.roles = form.Roles
	e.h.onCommand = func(handlers.Command) handlers.Reply { return handlers.Reply{Form: form} }
	e.h.mu.Unlock()
	if _, err := e.fake.SlashCommand(ctx, slackfake.Command{User: "UALICE", Channel: chGeneral}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, e.fake, "modal", func() bool { return len(e.fake.Views()) == 1 })
	v := e.fake.Views()[0]
	if typ := v.Blocks[0]["element"].(map[string]any)["type"]; typ != "multi_external_select" {
		t.Fatalf("role element type %v with 150 roles", typ)
	}
	opts, res, err := e.fake.Suggest(ctx, v.ID, "UALICE", "", handlers.FieldRole, "role-01")
	if err != nil {
		t.Fatal(err)
	}
	if len(opts) != 10 || opts[0].Value != "role-010" {
		t.Errorf("options %+v", opts)
	}
	t.Logf("block_suggestion ack latency %v", res.Ack.Latency)
	all, _, err := e.fake.Suggest(ctx, v.ID, "UALICE", "", handlers.FieldRole, "")
	if err != nil {
		t.Fatal(err)
	}
	if len(all) != 100 {
		t.Errorf("%d options for an empty query, want Slack's maximum of 100", len(all))
	}
}

func TestFormTriggerExpired(t *testing.T) {
	f := newFake(t, slackfake.Options{TriggerTTL: time.Nanosecond})
	h := &recorder{onCommand: func(handlers.Command) handlers.Reply { return handlers.Reply{Form: testForm(2)} }}
	start(t, f, botConfig(f), h)
	if _, err := f.SlashCommand(tctx(t), slackfake.Command{User: "UALICE", Channel: chGeneral}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, f, "apology", func() bool { return len(f.EphemeralsFor("UALICE")) == 1 })
	if eph := f.EphemeralsFor("UALICE")[0]; !strings.Contains(eph.Text, "could not be opened in time") {
		t.Errorf("reply %q", eph.Text)
	}
	if len(f.Views()) != 0 {
		t.Error("a view opened with an expired trigger")
	}
}

// TestDenyActsAtOnceReasonComesAfter: a Deny click goes to the handler at
// once, without a form (a dismissed form must never leave the request
// pending); a reply that asks for text (Add a reason) opens a form whose
// submission goes back to the handler with the text.
func TestDenyActsAtOnceReasonComesAfter(t *testing.T) {
	e := setup(t, nil)
	ctx := tctx(t)
	e.h.onAction = func(a handlers.Action) handlers.Reply {
		if a.Action == handlers.ActionAddReason && a.Reason == "" {
			return handlers.Reply{Ask: &handlers.Ask{Action: handlers.ActionAddReason, RequestID: a.RequestID,
				Title: "Add a reason", Label: "Why did you deny request " + a.RequestID + "?", Submit: "Add"},
				Message: handlers.Message{Text: "type it"}}
		}
		return handlers.Reply{Message: handlers.Message{Text: "did " + a.Action + " " + a.RequestID}}
	}
	postCard(t, e.bot, "r-5")
	if _, err := e.fake.Click(ctx, slackfake.Click{User: "UBOB", ActionID: handlers.ActionDeny, Value: "r-5"}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, e.fake, "deny", func() bool { _, a, _ := e.h.counts(); return a == 1 })
	e.h.mu.Lock()
	a := e.h.actions[0]
	e.h.mu.Unlock()
	if a.Action != handlers.ActionDeny || a.RequestID != "r-5" || a.User != "UBOB" || a.Reason != "" {
		t.Errorf("action %+v", a)
	}
	waitFor(t, e.fake, "reply to bob", func() bool { return len(e.fake.EphemeralsFor("UBOB")) == 1 })
	if eph := e.fake.EphemeralsFor("UBOB")[0]; eph.Channel != chApprove || eph.Text != "did deny r-5" {
		t.Errorf("reply %+v", eph)
	}
	if n := len(e.fake.Views()); n != 0 {
		t.Fatalf("the Deny click opened %d forms", n)
	}

	// The denied card's Add a reason button.
	if _, err := e.bot.Post(ctx, chApprove, handlers.Message{Title: "denied",
		Buttons: []handlers.Button{{Label: "Add a reason", Action: handlers.ActionAddReason, Value: "r-5"}}}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.fake.Click(ctx, slackfake.Click{User: "UBOB", ActionID: handlers.ActionAddReason, Value: "r-5"}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, e.fake, "reason form", func() bool { return len(e.fake.Views()) == 1 })
	v := e.fake.Views()[0]
	if v.Title != "Add a reason" || !strings.Contains(slackfake.BlockText(v.Blocks), "Why did you deny request r-5?") {
		t.Errorf("form %q: %s", v.Title, slackfake.BlockText(v.Blocks))
	}
	res, err := e.fake.SubmitView(ctx, v.ID, "UBOB", "", map[string]string{"ask_text": "not during the freeze <!here>"})
	if err != nil {
		t.Fatal(err)
	}
	if res.Ack.Payload != nil {
		t.Errorf("submission ack %s", res.Ack.Payload)
	}
	waitFor(t, e.fake, "reason", func() bool { _, a, _ := e.h.counts(); return a == 3 })
	e.h.mu.Lock()
	a = e.h.actions[2]
	e.h.mu.Unlock()
	if a.Action != handlers.ActionAddReason || a.RequestID != "r-5" || a.User != "UBOB" || a.Reason != "not during the freeze <!here>" {
		t.Errorf("action %+v", a)
	}
	waitFor(t, e.fake, "answer to the reason", func() bool { return len(e.fake.EphemeralsFor("UBOB")) == 2 })
	if eph := e.fake.EphemeralsFor("UBOB")[1]; eph.Channel != chApprove || eph.Text != "did add_reason r-5" {
		t.Errorf("reply %+v", eph)
	}
}

// TestAskFallsBackToTextWhenTriggerExpired: when the form cannot open in
// time, the person is told how to type the answer instead.
func TestAskFallsBackToTextWhenTriggerExpired(t *testing.T) {
	f := newFake(t, slackfake.Options{TriggerTTL: time.Nanosecond})
	h := &recorder{onAction: func(a handlers.Action) handlers.Reply {
		return handlers.Reply{Ask: &handlers.Ask{Action: handlers.ActionAddReason, RequestID: a.RequestID, Title: "Add a reason", Label: "Why?"},
			Message: handlers.Message{Text: "Say why you denied request r-8: `/access reason r-8 <reason>`."}}
	}}
	b := start(t, f, botConfig(f), h)
	if _, err := b.Post(tctx(t), chApprove, handlers.Message{Title: "denied",
		Buttons: []handlers.Button{{Label: "Add a reason", Action: handlers.ActionAddReason, Value: "r-8"}}}); err != nil {
		t.Fatal(err)
	}
	if _, err := f.Click(tctx(t), slackfake.Click{User: "UBOB", ActionID: handlers.ActionAddReason, Value: "r-8"}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, f, "typed-answer hint", func() bool { return len(f.EphemeralsFor("UBOB")) == 1 })
	if eph := f.EphemeralsFor("UBOB")[0]; !strings.Contains(eph.Text, "/access reason r-8") {
		t.Errorf("reply %q", eph.Text)
	}
	if len(f.Views()) != 0 {
		t.Error("a view opened with an expired trigger")
	}
}

// TestEarlierDenyModalStillDenies: a deny form opened by an earlier version
// (which denied only on submission) and submitted after an upgrade still
// denies, with its reason.
func TestEarlierDenyModalStillDenies(t *testing.T) {
	e := setup(t, nil)
	payload := map[string]any{
		"type":       "view_submission",
		"team":       map[string]any{"id": team, "domain": "t"},
		"user":       map[string]any{"id": "UBOB", "username": "bob", "name": "bob", "team_id": team},
		"trigger_id": "trig-old",
		"view": map[string]any{"id": "VOLD", "type": "modal", "callback_id": "accessbot_deny",
			"private_metadata": `{"c":"` + chApprove + `","id":"r-9"}`,
			"state":            map[string]any{"values": map[string]any{"deny_reason": map[string]any{"deny_reason": map[string]any{"type": "plain_text_input", "value": "freeze"}}}}},
	}
	if _, err := e.fake.Deliver(tctx(t), "interactive", payload); err != nil {
		t.Fatal(err)
	}
	waitFor(t, e.fake, "deny", func() bool { _, a, _ := e.h.counts(); return a == 1 })
	e.h.mu.Lock()
	a := e.h.actions[0]
	e.h.mu.Unlock()
	if a.Action != handlers.ActionDeny || a.RequestID != "r-9" || a.User != "UBOB" || a.Reason != "freeze" {
		t.Errorf("action %+v", a)
	}
}

func TestDenyWithoutReasonWhenTriggerExpired(t *testing.T) {
	f := newFake(t, slackfake.Options{TriggerTTL: time.Nanosecond})
	h := &recorder{}
	b := start(t, f, botConfig(f), h)
	postCard(t, b, "r-7")
	if _, err := f.Click(tctx(t), slackfake.Click{User: "UBOB", ActionID: handlers.ActionDeny, Value: "r-7"}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, f, "deny", func() bool { _, a, _ := h.counts(); return a == 1 })
	h.mu.Lock()
	a := h.actions[0]
	h.mu.Unlock()
	if a.Action != handlers.ActionDeny || a.RequestID != "r-7" || a.Reason != "" {
		t.Errorf("action %+v", a)
	}
}

func TestRateLimitedCallIsRetried(t *testing.T) {
	e := setup(t, nil)
	e.fake.RateLimit("chat.postMessage", 1, time.Second)
	e.fake.RateLimit("users.info", 1, time.Second)
	ctx := tctx(t)
	ref, err := e.bot.Post(ctx, chApprove, handlers.Message{Text: "after a 429"})
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := e.fake.Message(ref.Channel, ref.ID); !ok {
		t.Error("message lost")
	}
	id, err := e.bot.Identity(ctx, "UALICE")
	if err != nil || id != "alice@example.com" {
		t.Errorf("Identity after a 429 = %q, %v", id, err)
	}
	for _, m := range []string{"chat.postMessage", "users.info"} {
		if e.fake.RateLimited(m) != 1 || e.fake.Calls(m) != 2 {
			t.Errorf("%s: %d rate limited of %d calls, want 1 of 2", m, e.fake.RateLimited(m), e.fake.Calls(m))
		}
	}
}

func TestPostsPacedPerChannel(t *testing.T) {
	e := setup(t, nil)
	ctx := tctx(t)
	const n = 4
	startAt := time.Now()
	var wg sync.WaitGroup
	errs := make(chan error, 2*n)
	for i := range n {
		wg.Go(func() {
			_, err := e.bot.Post(ctx, chApprove, handlers.Message{Text: fmt.Sprint("burst ", i)})
			errs <- err
		})
		wg.Go(func() {
			_, err := e.bot.Post(ctx, chSecure, handlers.Message{Text: fmt.Sprint("other ", i)})
			errs <- err
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	ms := e.fake.Messages(chApprove)
	if len(ms) != n {
		t.Fatalf("%d messages", len(ms))
	}
	span := ms[n-1].PostedAt.Sub(ms[0].PostedAt)
	t.Logf("%d posts to one channel spread over %v (total %v, two channels in parallel)", n, span, time.Since(startAt))
	// One per second per channel: n posts need about n-1 seconds. Loose bound.
	if span < time.Duration(n-1)*time.Second*3/4 {
		t.Errorf("%d posts to one channel within %v: not paced", n, span)
	}
}

func TestReconnectsAndLosesNothing(t *testing.T) {
	e := setup(t, nil)
	ctx := tctx(t)
	sent := 0
	command := func(text string) {
		t.Helper()
		if _, err := e.fake.SlashCommand(ctx, slackfake.Command{User: "UALICE", Channel: chGeneral, Text: text}); err != nil {
			t.Fatalf("%s: %v", text, err)
		}
		sent++
	}
	command("before")
	if got := e.fake.ConnectionsOpened(); got != 1 {
		t.Fatalf("connections.open called %d times", got)
	}

	e.fake.Disconnect("refresh_requested")
	waitFor(t, e.fake, "reconnect after disconnect frame", func() bool { return e.fake.ConnectionsOpened() == 2 && e.fake.LiveConnections() == 1 })
	command("after disconnect")

	e.fake.Drop()
	waitFor(t, e.fake, "reconnect after drop", func() bool { return e.fake.ConnectionsOpened() == 3 && e.fake.LiveConnections() == 1 })
	command("after drop")

	// An envelope whose socket dies before its ack can come back.
	e.fake.DropNextDelivery()
	command("dropped mid-delivery")
	waitFor(t, e.fake, "reconnect after mid-delivery drop", func() bool { return e.fake.ConnectionsOpened() == 4 && e.fake.LiveConnections() == 1 })
	command("last")

	waitFor(t, e.fake, "all commands handled", func() bool { return len(e.h.commandTexts()) >= sent })
	waitFor(t, e.fake, "all replies", func() bool { return len(e.fake.EphemeralsFor("UALICE")) >= sent })
	// Each command exactly once: the redelivered one was de-duplicated.
	got := e.h.commandTexts()
	slices.Sort(got)
	want := []string{"after disconnect", "after drop", "before", "dropped mid-delivery", "last"}
	if !slices.Equal(got, want) {
		t.Errorf("handled %q, want each of %q once", got, want)
	}
	retried := 0
	for _, a := range e.fake.Acks() {
		if a.RetryAttempt > 0 {
			retried++
		}
	}
	t.Logf("connections.open calls: %d; acks: %d (%d of redeliveries); stray acks: %d; unacked: %d",
		e.fake.ConnectionsOpened(), len(e.fake.Acks()), retried, e.fake.StrayAcks(), e.fake.Unacked())
	if e.fake.Unacked() != 0 {
		t.Errorf("%d envelopes never acknowledged", e.fake.Unacked())
	}
}

func TestDirectory(t *testing.T) {
	e := setup(t, nil)
	ctx := tctx(t)
	id, err := e.bot.Identity(ctx, "UALICE")
	if err != nil || id != "alice@example.com" {
		t.Fatalf("Identity(UALICE) = %q, %v", id, err)
	}
	if _, err := e.bot.Identity(ctx, "UALICE"); err != nil {
		t.Fatal(err)
	}
	if n := e.fake.Calls("users.info"); n != 1 {
		t.Errorf("users.info called %d times for two lookups, want 1 (cached)", n)
	}
	for _, u := range []string{"UGONE", "UNOMAIL", "UBOT", "UNOBODY", ""} {
		if _, err := e.bot.Identity(ctx, u); !errors.Is(err, access.ErrNoIdentity) {
			t.Errorf("Identity(%q) error %v, want ErrNoIdentity", u, err)
		}
	}
	u, err := e.bot.ChatUser(ctx, "Bob@Example.com")
	if err != nil || u != "UBOB" {
		t.Errorf("ChatUser(bob) = %q, %v", u, err)
	}
	for _, who := range []string{"nobody@example.com", "gone@example.com", ""} {
		if _, err := e.bot.ChatUser(ctx, who); !errors.Is(err, access.ErrNoIdentity) {
			t.Errorf("ChatUser(%q) error %v, want ErrNoIdentity", who, err)
		}
	}
	ref, err := e.bot.DM(ctx, "bob@example.com", handlers.Message{Title: "Your request", Text: "<!channel>"})
	if err != nil {
		t.Fatal(err)
	}
	if ref.Channel != e.fake.DMChannel("UBOB") || ref.For != "bob@example.com" || ref.Platform != "slack" {
		t.Errorf("DM ref %+v", ref)
	}
	if _, err := e.bot.DM(ctx, "bob@example.com", handlers.Message{Text: "second"}); err != nil {
		t.Fatal(err)
	}
	if n := e.fake.Calls("conversations.open"); n != 1 {
		t.Errorf("conversations.open called %d times for two DMs, want 1 (cached)", n)
	}
	if ms := e.fake.Messages(ref.Channel); len(ms) != 2 || strings.Contains(ms[0].Text, "<!channel>") {
		t.Errorf("DMs %+v", ms)
	}
	if _, err := e.bot.DM(ctx, "nobody@example.com", handlers.Message{Text: "x"}); !errors.Is(err, access.ErrNoIdentity) {
		t.Errorf("DM to nobody: %v", err)
	}
	if e.bot.Platform() != "slack" || e.bot.ApprovalsChannel() != chApprove || e.bot.SecurityChannel() != chSecure {
		t.Error("channel accessors")
	}
}

func TestConfigErrors(t *testing.T) {
	good := slackbot.Config{AppToken: "xapp-1", BotToken: "xoxb-1"}
	for name, tc := range map[string]struct {
		mod  func(*slackbot.Config)
		want string
	}{
		"no app token":    {func(c *slackbot.Config) { c.AppToken = "" }, "app_token is empty"},
		"bot as app":      {func(c *slackbot.Config) { c.AppToken = "xoxb-1" }, "must start with xapp-"},
		"no bot token":    {func(c *slackbot.Config) { c.BotToken = "" }, "bot_token is empty"},
		"user token":      {func(c *slackbot.Config) { c.BotToken = "xoxp-1" }, "must start with xoxb-"},
		"no slash":        {func(c *slackbot.Config) { c.APIURL = "https://slack.com/api" }, "must end in"},
		"not a url":       {func(c *slackbot.Config) { c.APIURL = "slack.com/api/" }, "not an http(s) URL"},
		"workers":         {func(c *slackbot.Config) { c.Workers = -1 }, "workers -1"},
		"urgent workers":  {func(c *slackbot.Config) { c.UrgentWorkers = -2 }, "urgent_workers -2"},
		"event timeout":   {func(c *slackbot.Config) { c.EventTimeout = -time.Second }, "event_timeout"},
		"several at once": {func(c *slackbot.Config) { c.AppToken, c.BotToken = "", "" }, "bot_token is empty"},
	} {
		t.Run(name, func(t *testing.T) {
			c := good
			tc.mod(&c)
			_, err := slackbot.New(c, nil, nil, nil)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %v, want it to mention %q", err, tc.want)
			}
			if err != nil && (strings.Contains(err.Error(), "xoxb-1") || strings.Contains(err.Error(), "xapp-1")) {
				t.Errorf("error shows a token: %v", err)
			}
		})
	}
	b, err := slackbot.New(good, nil, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Run(context.Background()); err == nil || !strings.Contains(err.Error(), "no handler") {
		t.Errorf("Run without a handler: %v", err)
	}
}

func TestInvalidAppTokenStopsRun(t *testing.T) {
	f := newFake(t, slackfake.Options{})
	cfg := botConfig(f)
	cfg.AppToken = "xapp-1-wrong"
	b, err := slackbot.New(cfg, &recorder{}, nil, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	err = b.Run(ctx)
	if err == nil || !strings.Contains(err.Error(), "invalid_auth") {
		t.Errorf("Run with a wrong app token: %v", err)
	}
}

// sharedSeen is an in-memory Deduper shared by replicas in a test (what
// the Redis store is in production). It counts lookups per id.
type sharedSeen struct {
	mu      sync.Mutex
	seen    map[string]bool
	lookups map[string]int
}

func (d *sharedSeen) Seen(_ context.Context, id string, _ time.Duration) (bool, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.seen == nil {
		d.seen, d.lookups = map[string]bool{}, map[string]int{}
	}
	d.lookups[id]++
	was := d.seen[id]
	d.seen[id] = true
	return was, nil
}

func (d *sharedSeen) count(id string) int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.lookups[id]
}

func TestTwoReplicasShareTheWork(t *testing.T) {
	f := newFake(t, slackfake.Options{})
	seen := &sharedSeen{}
	var hs []*recorder
	for range 2 {
		h := &recorder{}
		b, err := slackbot.New(botConfig(f), h, seen, testLogger(t))
		if err != nil {
			t.Fatal(err)
		}
		runBot(t, b)
		hs = append(hs, h)
	}
	waitFor(t, f, "two connections", func() bool { return f.LiveConnections() == 2 })
	ctx := tctx(t)
	const n = 10
	var first slackfake.Result
	for i := range n {
		res, err := f.SlashCommand(ctx, slackfake.Command{User: "UALICE", Channel: chGeneral, Text: fmt.Sprint("cmd ", i)})
		if err != nil {
			t.Fatal(err)
		}
		if i == 0 {
			first = res
		}
	}
	total := func() int { a, _, _ := hs[0].counts(); b, _, _ := hs[1].counts(); return a + b }
	waitFor(t, f, "all commands", func() bool { return total() == n })
	a, _, _ := hs[0].counts()
	t.Logf("replica 1 handled %d, replica 2 handled %d", a, n-a)
	if a == 0 || a == n {
		t.Errorf("one replica got every event (%d of %d)", a, n)
	}
	// A redelivery lands on either replica; the shared record drops it.
	if _, err := f.Redeliver(ctx, first.EnvelopeID); err != nil {
		t.Fatal(err)
	}
	waitFor(t, f, "dedup lookup of the redelivery", func() bool { return seen.count("slack:env:"+first.EnvelopeID) == 2 })
	if got := total(); got != n {
		t.Errorf("%d commands handled after a redelivery, want %d", got, n)
	}
}

// A form submission still being handled when the ack budget runs out is
// acknowledged (closing the modal within Slack's 3 s) and answered by
// message. The handler is held until the ack has arrived, so the test does
// not depend on how long anything takes; the budget is shortened to keep
// it quick.
func TestSlowFormSubmissionAnsweredByMessage(t *testing.T) {
	f := newFake(t, slackfake.Options{})
	h := &recorder{}
	b, err := slackbot.New(botConfig(f), h, nil, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	slackbot.SetAckBudget(b, 50*time.Millisecond)
	release := make(chan struct{})
	var once sync.Once
	t.Cleanup(func() { once.Do(func() { close(release) }) })
	h.mu.Lock()
	h.onCommand = func(handlers.Command) handlers.Reply { return handlers.Reply{Form: testForm(2)} }
	h.onForm = func(in handlers.FormInput) (handlers.Reply, handlers.FormErrors) {
		<-release // past the ack budget: the test lets go once the ack is in
		return handlers.Reply{}, handlers.FormErrors{handlers.FieldDuration: "too long for role-001"}
	}
	h.mu.Unlock()
	runBot(t, b)
	waitFor(t, f, "first connection", func() bool { return f.LiveConnections() == 1 })
	ctx := tctx(t)
	if _, err := f.SlashCommand(ctx, slackfake.Command{User: "UALICE", Channel: chGeneral}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, f, "modal", func() bool { return len(f.Views()) == 1 })
	res, err := f.SubmitView(ctx, f.Views()[0].ID, "UALICE", "", map[string]string{
		handlers.FieldRole: "role-001", handlers.FieldDuration: "9h", handlers.FieldReason: "x"})
	if err != nil {
		t.Fatal(err)
	}
	if res.Ack.Payload != nil || res.Ack.Late {
		t.Errorf("ack after %v carries %s; it must close the modal within Slack's 3 s", res.Ack.Latency, res.Ack.Payload)
	}
	if n := len(f.EphemeralsFor("UALICE")); n != 0 {
		t.Fatalf("%d replies before the handler answered", n)
	}
	once.Do(func() { close(release) })
	waitFor(t, f, "errors by message", func() bool { return len(f.EphemeralsFor("UALICE")) == 1 })
	if eph := f.EphemeralsFor("UALICE")[0]; !strings.Contains(eph.Text, "not submitted") || !strings.Contains(eph.Text, "duration: too long") {
		t.Errorf("reply %q", eph.Text)
	}
}
