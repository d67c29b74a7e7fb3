package slack_test

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	awssdk "github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"

	"github.com/accessbot/accessbot/bot/slack/slackfake"
	"github.com/accessbot/accessbot/handlers"
	"github.com/accessbot/accessbot/providers/aws"
	"github.com/accessbot/accessbot/providers/aws/awsfake"
)

// TestE2ESlackWithIdentityStore: the whole path with the real AWS
// provisioner against the Identity Store fake — a Slack request, an
// Approve click, membership in the Identity Store group, and removal at
// expiry.
func TestE2ESlackWithIdentityStore(t *testing.T) {
	idstore := awsfake.New()
	defer idstore.Close()
	admins := idstore.AddGroup("prod-admins")
	readers := idstore.AddGroup("prod-readers")
	idstore.AddUser(alice)
	prov, err := aws.New(context.Background(), aws.Config{IdentityStoreID: idstore.IdentityStoreID()}, testLogger(t),
		aws.WithAWSConfig(awssdk.Config{Region: "us-east-1", Credentials: credentials.NewStaticCredentialsProvider("AKIDTEST", "secret", "")}),
		aws.WithEndpoint(idstore.URL))
	if err != nil {
		t.Fatal(err)
	}
	w := newWorldWith(t, slackfake.Options{}, prov, admins, readers)
	w.command(t, "UALICE", "prod-admin 30m fixing checkout")
	card, id := w.card(t, 1)
	w.click(t, "UBOB", "", handlers.ActionApprove, id, false)
	waitFor(t, w.fake, "membership in the identity store", func() bool {
		return slices.Contains(idstore.MemberEmails(admins), alice)
	})
	waitFor(t, w.fake, "card shows the grant", func() bool {
		m, _ := w.fake.Message(card.Channel, card.TS)
		return !slackfake.HasButtons(m.Blocks) && strings.Contains(slackfake.BlockText(m.Blocks), "active until")
	})
	w.clk.Advance(31 * time.Minute)
	if _, err := w.sched.Drain(tctx(t)); err != nil {
		t.Fatal(err)
	}
	if slices.Contains(idstore.MemberEmails(admins), alice) {
		t.Fatal("alice still in the identity store group after expiry")
	}
	waitFor(t, w.fake, "card shows the end", func() bool {
		m, _ := w.fake.Message(card.Channel, card.TS)
		return strings.Contains(strings.ToLower(slackfake.BlockText(m.Blocks)), "expired")
	})
	if n := idstore.Calls("CreateGroupMembership"); n != 1 {
		t.Errorf("%d CreateGroupMembership calls, want 1", n)
	}
	if n := idstore.Calls("DeleteGroupMembership"); n != 1 {
		t.Errorf("%d DeleteGroupMembership calls, want 1", n)
	}
}
