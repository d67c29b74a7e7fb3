package discord_test

import (
	"context"
	"strings"
	"testing"

	"github.com/accessbot/accessbot/access"
	"github.com/accessbot/accessbot/bot/discord/discordfake"
	"github.com/accessbot/accessbot/handlers"
)

// Discord's modal has no selects: the role field takes several roles,
// comma-separated, and the request gets one card with both roles whose
// Approve button carries the request's bundle id.
func TestE2EModalSeveralRoles(t *testing.T) {
	w := newWorld(t, discordfake.Options{})
	in1, err := w.fake.Command(tctx(t), in(uAlice), "request", discordfake.Option{Name: "role", Value: "prod-admin"})
	if err != nil {
		t.Fatal(err)
	}
	cid, _ := in1.Response["custom_id"].(string)
	sub, err := w.fake.SubmitModal(tctx(t), in(uAlice), cid, []discordfake.Option{{Name: "role", Value: "prod-admin, prod-read"},
		{Name: "duration", Value: "1h"}, {Name: "reason", Value: "fixing checkout"}})
	if err != nil {
		t.Fatal(err)
	}
	txt, _ := w.answer(t, sub)
	card, id := w.card(t, 1)
	if !access.IsBundleID(id) || !strings.Contains(txt, "Request "+id) {
		t.Fatalf("answer %q, card button %q", txt, id)
	}
	if ct := discordfake.Text(card); !strings.Contains(ct, "asks for prod-admin, prod-read") || strings.Count(ct, "pending, 0 of 1") != 2 {
		t.Errorf("card:\n%s", ct)
	}
	w.click(t, in(uBob), card, handlers.ActionApprove, id)
	waitFor(t, w.fake, "both granted", func() bool { return w.prov.IsMember(groupAdmin, alice) && w.prov.IsMember(groupRead, alice) })
	ms, err := w.svc.Bundle(context.Background(), id)
	if err != nil || len(ms) != 2 {
		t.Fatalf("bundle: %v %v", ms, err)
	}
	waitFor(t, w.fake, "card without buttons", func() bool {
		m, _ := w.fake.Message(card.ChannelID, card.ID)
		return len(discordfake.Buttons(m.Components)) == 0 && strings.Count(discordfake.Text(m), "active until") == 2
	})
}
