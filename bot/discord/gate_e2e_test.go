package discord_test

import (
	"context"
	"path/filepath"
	"regexp"
	"strings"
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

const discordHint = "start with the incident id, e.g. INC-1234 checkout down"

// gatePolicyWorld is newWorld with prod-admin limited to alice and to
// reasons that start with an incident id.
func gatePolicyWorld(t *testing.T) *world {
	t.Helper()
	f := newFake(t, discordfake.Options{})
	st, err := bolt.Open(filepath.Join(t.TempDir(), "accessbot.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	pol := policy()
	r := pol.Roles["prod-admin"]
	r.Requesters = &access.Requesters{Users: []string{alice}}
	r.ReasonPattern, r.ReasonHint = regexp.MustCompile(`^INC-[0-9]+ `), discordHint
	pol.Roles["prod-admin"] = r
	log := testLogger(t)
	prov := dryrun.New(log)
	clk := &clock{now: time.Date(2031, 3, 4, 10, 0, 0, 0, time.UTC)}
	svc, err := access.NewService(access.Deps{Store: st, Policy: pol, Providers: map[string]access.Provisioner{"dryrun": prov}, Clock: clk, Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	b, err := discord.New(botConfig(f), nil, st, log, nil)
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

// The request gate holds on Discord too: a requester outside requesters
// is refused, the form shows the reason hint as the reason's placeholder,
// and a reason off the pattern is refused with the hint.
func TestE2EDiscordRequestGate(t *testing.T) {
	w := gatePolicyWorld(t)
	txt, _ := w.command(t, uCarol, "request", discordfake.Option{Name: "role", Value: "prod-admin"},
		discordfake.Option{Name: "duration", Value: "1h"}, discordfake.Option{Name: "reason", Value: "INC-1 checkout down"})
	if !strings.Contains(txt, "you may not request prod-admin; who may: alice@example.com") {
		t.Errorf("carol's answer %q", txt)
	}
	in1, err := w.fake.Command(tctx(t), in(uAlice), "request", discordfake.Option{Name: "role", Value: "prod-admin"})
	if err != nil {
		t.Fatal(err)
	}
	if in1.ResponseType != 9 || !strings.Contains(mustJSON(in1.Response), `"placeholder":"`+discordHint+`"`) {
		t.Fatalf("modal %d %s", in1.ResponseType, mustJSON(in1.Response))
	}
	cid, _ := in1.Response["custom_id"].(string)
	bad, err := w.fake.SubmitModal(tctx(t), in(uAlice), cid, []discordfake.Option{{Name: "role", Value: "prod-admin"}, {Name: "duration", Value: "1h"}, {Name: "reason", Value: "checkout down"}})
	if err != nil {
		t.Fatal(err)
	}
	if txt, _ := w.answer(t, bad); !strings.Contains(txt, discordHint) {
		t.Errorf("off-pattern submission answered %q", txt)
	}
	if rs, _ := w.st.List(context.Background(), access.Filter{}); len(rs) != 0 {
		t.Fatalf("refusals created %d requests", len(rs))
	}
}
