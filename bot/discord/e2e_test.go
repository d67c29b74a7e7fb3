package discord_test

import (
	"context"
	"encoding/json"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/accessbot/accessbot/access"
	"github.com/accessbot/accessbot/bot/discord"
	"github.com/accessbot/accessbot/bot/discord/discordfake"
	"github.com/accessbot/accessbot/handlers"
	"github.com/accessbot/accessbot/providers/dryrun"
	"github.com/accessbot/accessbot/scheduler"
	"github.com/accessbot/accessbot/store/bolt"
)

// End-to-end: the real engine (bolt store, dry-run provider, workflow
// service, expiry scheduler, handlers and notifier) behind this transport,
// against the fake Discord, which the real discordgo client talks to.

const (
	guild      = "1300000000000000001"
	otherGuild = "1300000000000000099"
	chApprove  = "1300000000000000010"
	chSecurity = "1300000000000000011"
	chGeneral  = "1300000000000000012"

	uAlice   = "1400000000000000001"
	uBob     = "1400000000000000002"
	uCarol   = "1400000000000000003"
	uMallory = "1400000000000000009" // not linked

	alice      = "alice@example.com"
	groupAdmin = "g-prod-admin"
	groupRead  = "g-prod-read"
)

var users = map[string]string{uAlice: alice, uBob: "bob@example.com", uCarol: "carol@example.com"}

func testLogger(t testing.TB) *slog.Logger {
	if os.Getenv("ACCESSBOT_TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.DiscardHandler)
}

type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

type world struct {
	fake  *discordfake.Server
	bot   *discord.Bot
	svc   *access.Service
	prov  *dryrun.Provider
	sched *scheduler.Scheduler
	clk   *clock
	st    access.Store
}

func policy() *access.Policy {
	return &access.Policy{Roles: map[string]access.Role{
		"prod-admin": {Name: "prod-admin", Description: "Administrator on production", Provider: "dryrun", Group: groupAdmin,
			MaxDuration: 4 * time.Hour, DefaultDuration: time.Hour, ApproverUsers: []string{"bob@example.com"},
			Approvals: 1, PendingTTL: time.Hour, BreakGlass: true},
		"prod-read": {Name: "prod-read", Description: "Read-only on production", Provider: "dryrun", Group: groupRead,
			MaxDuration: 8 * time.Hour, DefaultDuration: time.Hour, ApproverUsers: []string{"bob@example.com"},
			Approvals: 1, PendingTTL: time.Hour},
	}, BreakGlass: []string{alice}}
}

func botConfig(f *discordfake.Server) discord.Config {
	return discord.Config{Token: f.Token(), APIURL: f.APIBase(), Guilds: []string{guild},
		ApprovalsChannel: chApprove, SecurityChannel: chSecurity, Users: users}
}

func newFake(t testing.TB, opts discordfake.Options) *discordfake.Server {
	t.Helper()
	if opts.Guilds == nil {
		opts.Guilds = []string{guild}
	}
	f := discordfake.New(opts)
	t.Cleanup(f.Close)
	return f
}

// newWorld wires the engine on a bolt store behind one bot.
func newWorld(t testing.TB, opts discordfake.Options, mods ...func(*discord.Config)) *world {
	t.Helper()
	st, err := bolt.Open(filepath.Join(t.TempDir(), "accessbot.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	return newWorldOn(t, newFake(t, opts), st, mods...)
}

func newWorldOn(t testing.TB, f *discordfake.Server, st access.Store, mods ...func(*discord.Config)) *world {
	t.Helper()
	log := testLogger(t)
	prov := dryrun.New(log)
	clk := &clock{now: time.Date(2031, 3, 4, 10, 0, 0, 0, time.UTC)}
	svc, err := access.NewService(access.Deps{Store: st, Policy: policy(), Providers: map[string]access.Provisioner{"dryrun": prov}, Clock: clk, Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	cfg := botConfig(f)
	for _, m := range mods {
		m(&cfg)
	}
	b, err := discord.New(cfg, nil, st, log, nil)
	if err != nil {
		t.Fatal(err)
	}
	svc.SetNotifier(handlers.NewNotifier(b, log))
	b.SetHandler(handlers.New(svc, b, log))
	sched := scheduler.New(st, svc, clk, log, scheduler.Options{})
	svc.SetWaker(sched)
	n := f.Overwrites()
	runBot(t, b)
	waitFor(t, f, "commands registered", func() bool { return f.Overwrites() > n })
	return &world{fake: f, bot: b, svc: svc, prov: prov, sched: sched, clk: clk, st: st}
}

func runBot(t testing.TB, b *discord.Bot) {
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
		case <-time.After(15 * time.Second):
			t.Errorf("Run did not return after cancel")
		}
	})
}

func tctx(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func waitFor(t testing.TB, f *discordfake.Server, what string, cond func() bool) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	if err := f.WaitFor(ctx, cond); err != nil {
		t.Fatalf("waiting for %s: %v", what, err)
	}
}

func percentile(ds []time.Duration, p float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[int(float64(len(s)-1)*p)]
}

func in(user string) discordfake.Source {
	return discordfake.Source{User: user, Guild: guild, Channel: chGeneral}
}

// answer waits until the interaction's response holds an answer (an
// immediate one, or the edit of a deferred one) and returns its text.
func (w *world) answer(t testing.TB, in *discordfake.Interaction) (string, *discordfake.Interaction) {
	t.Helper()
	var got *discordfake.Interaction
	waitFor(t, w.fake, "answer to "+in.ID, func() bool {
		got = w.fake.Interaction(in.ID)
		return got != nil && got.Original != nil && (got.ResponseType == 4 || got.Original.Edits > 0)
	})
	if got.Flags()&64 == 0 {
		t.Errorf("answer to %s (%s) is not ephemeral: flags %d", in.ID, in.Type, got.Flags())
	}
	if got.Latency > 3*time.Second || got.Late || got.Callbacks != 1 {
		t.Errorf("interaction %s: first response after %v, late %v, %d callbacks", in.ID, got.Latency, got.Late, got.Callbacks)
	}
	return discordfake.Text(*got.Original), got
}

func (w *world) command(t testing.TB, user, sub string, opts ...discordfake.Option) (string, *discordfake.Interaction) {
	t.Helper()
	in, err := w.fake.Command(tctx(t), in(user), sub, opts...)
	if err != nil {
		t.Fatalf("/access %s: %v", sub, err)
	}
	return w.answer(t, in)
}

func (w *world) click(t testing.TB, src discordfake.Source, m discordfake.Message, action, id string) (string, *discordfake.Interaction) {
	t.Helper()
	in, err := w.fake.Click(tctx(t), src, m, "access:"+action+":"+id)
	if err != nil {
		t.Fatalf("%s clicks %s on %s: %v", src.User, action, id, err)
	}
	if in.ResponseType == 9 {
		return "", in
	}
	return w.answer(t, in)
}

// card waits for the n-th approval card and returns it and its request id.
func (w *world) card(t testing.TB, n int) (discordfake.Message, string) {
	t.Helper()
	waitFor(t, w.fake, "approval card", func() bool { return len(w.fake.Messages(chApprove)) >= n })
	m := w.fake.Messages(chApprove)[n-1]
	for _, b := range discordfake.Buttons(m.Components) {
		if id, ok := strings.CutPrefix(b.CustomID, "access:approve:"); ok {
			return m, id
		}
	}
	t.Fatalf("card without an Approve button: %s", discordfake.Text(m))
	return m, ""
}

func (w *world) state(t testing.TB, id string) access.State {
	t.Helper()
	r, err := w.svc.Get(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	return r.State
}

func dmWith(w *world, user, text string) bool {
	for _, m := range w.fake.DMs(user) {
		if strings.Contains(discordfake.Text(m), text) {
			return true
		}
	}
	return false
}

func (w *world) latencies() []time.Duration {
	var out []time.Duration
	for _, in := range w.fake.Interactions() {
		if in.ResponseType != 0 {
			out = append(out, in.Latency)
		}
	}
	return out
}

// (1) request, approval card, approve, grant, card edited, DMs, expiry.
func TestE2ERequestApproveExpire(t *testing.T) {
	w := newWorld(t, discordfake.Options{})
	ids := w.fake.Identifies()
	if len(ids) != 1 || ids[0].Intents != 1 {
		t.Errorf("IDENTIFY %+v, want one with the guilds intent (1) only", ids)
	}
	txt, _ := w.command(t, uAlice, "request", discordfake.Option{Name: "role", Value: "prod-admin"},
		discordfake.Option{Name: "duration", Value: "30m"}, discordfake.Option{Name: "reason", Value: "fixing checkout @everyone <@&1300000000000000777> [x](https://evil.example)"})
	card, id := w.card(t, 1)
	if !strings.Contains(txt, id) {
		t.Errorf("alice's answer %q lacks the request id %s", txt, id)
	}
	ct := discordfake.Text(card)
	for _, want := range []string{"alice@example.com asks for prod-admin", "Administrator on production", "30m", id, "bob@example.com"} {
		if !strings.Contains(ct, want) {
			t.Errorf("card lacks %q:\n%s", want, ct)
		}
	}
	// Text safety: only bob is pinged; user text cannot mention or link.
	if card.Content != "<@"+uBob+">" {
		t.Errorf("card content %q, want a ping of bob only", card.Content)
	}
	am := card.AllowedMentions
	if p, ok := am["parse"].([]any); !ok || len(p) != 0 {
		t.Errorf("allowed_mentions.parse = %v, want []", am["parse"])
	}
	if u, _ := am["users"].([]any); len(u) != 1 || u[0] != uBob {
		t.Errorf("allowed_mentions.users = %v, want [bob]", am["users"])
	}
	if strings.Contains(ct, "@everyone") || !strings.Contains(ct, `\<@&1300000000000000777\>`) || !strings.Contains(ct, `\[x\](`) {
		t.Errorf("user text not made inert on the card:\n%s", ct)
	}
	waitFor(t, w.fake, "alice's waiting DM", func() bool { return dmWith(w, uAlice, "waiting for approval") })

	txt, _ = w.click(t, in(uBob), card, handlers.ActionApprove, id)
	if !strings.Contains(txt, "You approved "+id) {
		t.Errorf("bob sees %q", txt)
	}
	waitFor(t, w.fake, "grant", func() bool { return w.prov.IsMember(groupAdmin, alice) })
	waitFor(t, w.fake, "card edited, buttons gone", func() bool {
		m, _ := w.fake.Message(card.ChannelID, card.ID)
		return m.Edits > 0 && len(discordfake.Buttons(m.Components)) == 0 && strings.Contains(discordfake.Text(m), "active until")
	})
	waitFor(t, w.fake, "grant DM with Revoke now", func() bool {
		for _, m := range w.fake.DMs(uAlice) {
			if strings.Contains(discordfake.Text(m), "You have prod-admin until") {
				bs := discordfake.Buttons(m.Components)
				return len(bs) == 1 && bs[0].Label == "Revoke now" && bs[0].CustomID == "access:revoke:"+id
			}
		}
		return false
	})

	w.clk.Advance(31 * time.Minute)
	if _, err := w.sched.Drain(tctx(t)); err != nil {
		t.Fatal(err)
	}
	if w.prov.IsMember(groupAdmin, alice) || w.state(t, id) != access.StateEnded {
		t.Fatalf("after expiry: member %v, state %s", w.prov.IsMember(groupAdmin, alice), w.state(t, id))
	}
	waitFor(t, w.fake, "card shows the end", func() bool {
		m, _ := w.fake.Message(card.ChannelID, card.ID)
		return strings.Contains(strings.ToLower(discordfake.Text(m)), "expired")
	})
	waitFor(t, w.fake, "end DM", func() bool { return dmWith(w, uAlice, "access has ended") })
	if g, r := w.prov.Count("grant", alice), w.prov.Count("revoke", alice); g != 1 || r != 1 {
		t.Errorf("%d grants, %d revokes", g, r)
	}
	lat := w.latencies()
	t.Logf("first responses: %d, p50=%v max=%v", len(lat), percentile(lat, 0.5), percentile(lat, 1))
}

// (2) refusals, 20 concurrent approvals, deny then a replayed approve.
func TestE2ERefusalsConcurrentApprovalsAndDeny(t *testing.T) {
	w := newWorld(t, discordfake.Options{})
	w.command(t, uAlice, "request", discordfake.Option{Name: "role", Value: "prod-admin"},
		discordfake.Option{Name: "duration", Value: "1h"}, discordfake.Option{Name: "reason", Value: "deploy hotfix"})
	card, id := w.card(t, 1)

	txt, _ := w.click(t, in(uAlice), card, handlers.ActionApprove, id)
	if !strings.Contains(txt, "own request") {
		t.Errorf("self-approval: alice sees %q", txt)
	}
	txt, _ = w.click(t, in(uCarol), card, handlers.ActionApprove, id)
	if !strings.Contains(txt, "not an approver") {
		t.Errorf("non-approver: carol sees %q", txt)
	}
	txt, _ = w.click(t, in(uMallory), card, handlers.ActionApprove, id)
	if !strings.Contains(txt, "not linked") || !strings.Contains(txt, uMallory) || !strings.Contains(txt, "chat.discord.users") {
		t.Errorf("unlinked: mallory sees %q", txt)
	}
	txt, _ = w.click(t, discordfake.Source{User: uBob, Guild: otherGuild, Channel: chGeneral}, card, handlers.ActionApprove, id)
	if !strings.Contains(txt, "server is not allowed") {
		t.Errorf("foreign guild: bob sees %q", txt)
	}
	if got := w.state(t, id); got != access.StatePending || w.prov.Count("grant", alice) != 0 {
		t.Fatalf("after refusals: %s, %d grants", got, w.prov.Count("grant", alice))
	}
	if m, _ := w.fake.Message(card.ChannelID, card.ID); m.Edits != 0 {
		t.Errorf("refused clicks edited the card %d times", m.Edits)
	}

	const clicks = 20
	var wg sync.WaitGroup
	texts := make([]string, clicks)
	for i := range clicks {
		wg.Go(func() { texts[i], _ = w.click(t, in(uBob), card, handlers.ActionApprove, id) })
	}
	wg.Wait()
	approved := 0
	for _, s := range texts {
		if strings.Contains(s, "You approved "+id) {
			approved++
		}
	}
	waitFor(t, w.fake, "grant", func() bool { return w.prov.IsMember(groupAdmin, alice) })
	if n := w.prov.Count("grant", alice); n != 1 || approved != 1 {
		t.Errorf("%d grants and %d 'You approved' answers from %d clicks, want 1 and 1", n, approved, clicks)
	}
	if ms := w.fake.Messages(chGeneral); len(ms) != 0 {
		t.Errorf("%d public messages in the command channel", len(ms))
	}

	// Deny, then a replayed Approve on the stale card: denied, never granted.
	w.command(t, uAlice, "request", discordfake.Option{Name: "role", Value: "prod-read"},
		discordfake.Option{Name: "duration", Value: "1h"}, discordfake.Option{Name: "reason", Value: "read logs"})
	card2, id2 := w.card(t, 2)
	txt, dn := w.click(t, in(uBob), card2, handlers.ActionDeny, id2)
	if !strings.Contains(txt, "You denied request "+id2) {
		t.Errorf("bob sees %q", txt)
	}
	note := discordfake.Buttons(dn.Original.Components)
	if len(note) != 1 || note[0].Label != "Add a reason" {
		t.Errorf("deny note buttons %+v, want Add a reason", note)
	}
	waitFor(t, w.fake, "card shows the denial", func() bool {
		m, _ := w.fake.Message(card2.ChannelID, card2.ID)
		bs := discordfake.Buttons(m.Components)
		return strings.Contains(discordfake.Text(m), "denied by bob@example.com") && len(bs) == 1 && bs[0].Label == "Add a reason"
	})
	waitFor(t, w.fake, "alice told", func() bool { return dmWith(w, uAlice, "was denied") })
	txt, _ = w.click(t, in(uBob), card2, handlers.ActionApprove, id2)
	if !strings.Contains(txt, "already denied") {
		t.Errorf("replayed approve: bob sees %q", txt)
	}
	if w.state(t, id2) != access.StateDenied || w.prov.IsMember(groupRead, alice) {
		t.Fatalf("after replayed approve: %s, member %v", w.state(t, id2), w.prov.IsMember(groupRead, alice))
	}

	// Add a reason: carol may not; bob gets the modal and the reason lands.
	txt, _ = w.click(t, in(uCarol), card2, handlers.ActionAddReason, id2)
	if txt == "" || strings.Contains(txt, "reason is on request") {
		t.Errorf("carol adding a reason sees %q", txt)
	}
	_, mod := w.click(t, in(uBob), card2, handlers.ActionAddReason, id2)
	if mod.ResponseType != 9 {
		t.Fatalf("Add a reason answered with type %d, want a modal (9)", mod.ResponseType)
	}
	cid, _ := mod.Response["custom_id"].(string)
	sub, err := w.fake.SubmitModal(tctx(t), in(uBob), cid, []discordfake.Option{{Name: "text", Value: "no ticket"}})
	if err != nil {
		t.Fatal(err)
	}
	if txt, _ := w.answer(t, sub); !strings.Contains(txt, "reason is on request "+id2) {
		t.Errorf("after the reason: bob sees %q", txt)
	}
	waitFor(t, w.fake, "card shows the reason", func() bool {
		m, _ := w.fake.Message(card2.ChannelID, card2.ID)
		return strings.Contains(discordfake.Text(m), "no ticket") && len(discordfake.Buttons(m.Components)) == 0
	})
	evs, err := w.st.Audit(context.Background(), time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, e := range evs {
		found = found || (e.RequestID == id2 && e.Reason == "no ticket")
	}
	if !found {
		t.Error("the added reason is not in the audit log")
	}
	lat := w.latencies()
	t.Logf("first responses: %d, p50=%v max=%v", len(lat), percentile(lat, 0.5), percentile(lat, 1))
}

// (3) request with only a role opens the modal, prefilled; an invalid
// submission names the field and creates nothing; a valid one creates the
// request.
func TestE2ERequestModal(t *testing.T) {
	w := newWorld(t, discordfake.Options{})
	in1, err := w.fake.Command(tctx(t), in(uAlice), "request", discordfake.Option{Name: "role", Value: "prod-admin"})
	if err != nil {
		t.Fatal(err)
	}
	if in1.ResponseType != 9 || in1.Latency > 3*time.Second {
		t.Fatalf("response type %d after %v, want a modal (9) within 3 s", in1.ResponseType, in1.Latency)
	}
	cid, _ := in1.Response["custom_id"].(string)
	if !strings.Contains(mustJSON(in1.Response), `"value":"prod-admin"`) {
		t.Errorf("modal not prefilled with the role: %s", mustJSON(in1.Response))
	}
	bad, err := w.fake.SubmitModal(tctx(t), in(uAlice), cid, []discordfake.Option{{Name: "role", Value: "prod-admin"}, {Name: "duration", Value: "banana"}, {Name: "reason", Value: "fixing"}})
	if err != nil {
		t.Fatal(err)
	}
	if txt, _ := w.answer(t, bad); !strings.Contains(txt, "duration") || !strings.Contains(txt, "not submitted") {
		t.Errorf("invalid submission answered %q", txt)
	}
	if rs, _ := w.st.List(context.Background(), access.Filter{}); len(rs) != 0 {
		t.Fatalf("an invalid submission created %d requests", len(rs))
	}
	good, err := w.fake.SubmitModal(tctx(t), in(uAlice), cid, []discordfake.Option{{Name: "role", Value: "prod-admin"}, {Name: "duration", Value: "2h"}, {Name: "reason", Value: "fixing checkout"}})
	if err != nil {
		t.Fatal(err)
	}
	txt, _ := w.answer(t, good)
	_, id := w.card(t, 1)
	if !strings.Contains(txt, "Request "+id) {
		t.Errorf("valid submission answered %q", txt)
	}
	// Autocomplete lists the policy's roles.
	ac, err := w.fake.Autocomplete(tctx(t), in(uAlice), "request", "role", "read")
	if err != nil {
		t.Fatal(err)
	}
	if ac.ResponseType != 8 || !strings.Contains(mustJSON(ac.Response), `"value":"prod-read"`) || strings.Contains(mustJSON(ac.Response), `"value":"prod-admin"`) {
		t.Errorf("autocomplete: type %d %s", ac.ResponseType, mustJSON(ac.Response))
	}
}

func mustJSON(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		return err.Error()
	}
	return string(b)
}

// Every subcommand reaches the handlers with its options in place.
func TestE2ESubcommands(t *testing.T) {
	w := newWorld(t, discordfake.Options{})
	o := func(n, v string) discordfake.Option { return discordfake.Option{Name: n, Value: v} }
	check := func(txt, want string) {
		t.Helper()
		if !strings.Contains(txt, want) {
			t.Errorf("answer %q lacks %q", txt, want)
		}
	}
	txt, _ := w.command(t, uAlice, "help")
	check(txt, "/access")
	txt, _ = w.command(t, uAlice, "roles")
	check(txt, "prod-admin")
	txt, _ = w.command(t, uAlice, "oncall")
	check(txt, "No rotations are configured")
	txt, _ = w.command(t, uAlice, "oncall", o("rotation", "platform"))
	check(txt, `no rotation "platform"`)

	w.command(t, uAlice, "request", o("role", "prod-admin"), o("duration", "1h"), o("reason", "deploy"))
	card, id := w.card(t, 1)
	txt, _ = w.command(t, uAlice, "cancel", o("id", id))
	check(txt, "Request "+id+" is cancelled")
	waitFor(t, w.fake, "card shows the cancellation", func() bool {
		m, _ := w.fake.Message(card.ChannelID, card.ID)
		return strings.Contains(discordfake.Text(m), "cancelled") && len(discordfake.Buttons(m.Components)) == 0
	})

	w.command(t, uAlice, "request", o("role", "prod-read"), o("duration", "1h"), o("reason", "read logs"))
	card2, id2 := w.card(t, 2)
	w.click(t, in(uBob), card2, handlers.ActionApprove, id2)
	waitFor(t, w.fake, "grant", func() bool { return w.prov.IsMember(groupRead, alice) })
	txt, _ = w.command(t, uAlice, "extend", o("id", id2), o("duration", "30m"), o("reason", "still reading"))
	check(txt, "Extension request")
	txt, _ = w.command(t, uAlice, "list")
	check(txt, id2)
	txt, _ = w.command(t, uAlice, "revoke", o("target", "prod-read"), o("reason", "done"))
	check(txt, "has ended")
	if w.prov.IsMember(groupRead, alice) {
		t.Error("still a member after revoke")
	}
	txt, _ = w.command(t, uAlice, "breakglass", o("role", "prod-admin"), o("duration", "banana"), o("reason", "sev1"))
	check(txt, "not a duration")
	txt, _ = w.command(t, uAlice, "revoke", o("target", "r-1 prod-admin"))
	check(txt, "takes one word")
	if n := len(w.fake.Messages(chSecurity)); n != 0 {
		t.Errorf("%d security announcements after a refused break-glass", n)
	}
}
