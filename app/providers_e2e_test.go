package app

import (
	"context"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/accessbot/accessbot/access"
	"github.com/accessbot/accessbot/config"
	"github.com/accessbot/accessbot/internal/testclock"
	"github.com/accessbot/accessbot/providers/aws/awsfake"
	"github.com/accessbot/accessbot/providers/okta/oktafake"
	"github.com/accessbot/accessbot/store/bolt"
)

// TestConsoleWithAWSAndOkta drives the real AWS and Okta provisioners,
// built from a config file exactly as `accessbot run` builds them, against
// the Identity Store and Okta fakes: approval adds the user, expiry removes
// them, and the reconcile job reports (and, where configured, removes) an
// out-of-band member.
func TestConsoleWithAWSAndOkta(t *testing.T) {
	idstore := awsfake.New()
	defer idstore.Close()
	idstore.AllowAccessKeys("AKIDACCESSBOTTEST")
	awsGroup := idstore.AddGroup("prod-admins")
	idstore.AddUser("alice@example.com")
	idstore.AddUser("mallory@example.com")

	org := oktafake.New()
	defer org.Close()
	org.AddAPIToken("okta-test-token")
	oktaGroup := org.AddGroup("support-admins")
	org.AddUser("alice@example.com")
	mallory := org.AddUser("mallory@example.com")

	// The standard AWS chain reads these, as in production.
	t.Setenv("AWS_ENDPOINT_URL_IDENTITYSTORE", idstore.URL)
	t.Setenv("AWS_ACCESS_KEY_ID", "AKIDACCESSBOTTEST")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "test-secret")
	t.Setenv("AWS_REGION", "us-east-1")
	t.Setenv("AWS_CONFIG_FILE", filepath.Join(t.TempDir(), "none"))
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", filepath.Join(t.TempDir(), "none"))
	t.Setenv("ACCESSBOT_TEST_OKTA_TOKEN", "okta-test-token")

	cfgText := `
chat:
  console:
    users: {alice: alice@example.com, bob: bob@example.com}
providers:
  aws: {identity_store_id: ` + idstore.IdentityStoreID() + `, region: us-east-1}
  okta: {org_url: "` + org.URL + `", api_token: "${ACCESSBOT_TEST_OKTA_TOKEN}"}
roles:
  prod-admin:
    description: Administrator on the production account
    provider: aws
    group: ` + awsGroup + `
    max_duration: 4h
    approvers: {users: [bob@example.com]}
  support-admin:
    description: Okta support administrator
    provider: okta
    group: ` + oktaGroup + `
    max_duration: 4h
    approvers: {users: [bob@example.com]}
    reconcile: remove
`
	l, err := config.Load(writeFile(t, cfgText))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	st, err := bolt.Open(filepath.Join(t.TempDir(), "e2e.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	out := &syncBuffer{}
	clock := testclock.New(time.Now().UTC())
	a, err := New(ctx, l, Deps{Clock: clock, Store: st, Stdout: out})
	if err != nil {
		t.Fatal(err)
	}
	con, svc, sched := a.Console(), a.Service(), a.Scheduler()

	for _, line := range []string{
		"alice: /access prod-admin 30m fixing checkout",
		"bob: approve",
		"alice: /access support-admin 1h customer escalation",
		"bob: approve",
	} {
		if err := con.Line(ctx, line); err != nil {
			t.Fatal(err)
		}
	}
	if got := idstore.MemberEmails(awsGroup); !slices.Equal(got, []string{"alice@example.com"}) {
		t.Fatalf("identity store members %v\n%s", got, out)
	}
	if got := org.MemberEmails(oktaGroup); !slices.Equal(got, []string{"alice@example.com"}) {
		t.Fatalf("okta members %v\n%s", got, out)
	}

	// Out-of-band members: reported for the AWS group, removed from the
	// Okta group whose role says reconcile: remove.
	malloryAWS, _ := idstore.UserID("mallory@example.com")
	idstore.AddMember(awsGroup, malloryAWS)
	org.AddMember(oktaGroup, mallory)
	drift, err := svc.Reconcile(ctx)
	if err != nil || len(drift) != 2 {
		t.Fatalf("reconcile: %v %+v", err, drift)
	}
	if got := idstore.MemberEmails(awsGroup); !slices.Contains(got, "mallory@example.com") {
		t.Fatal("report-only group changed")
	}
	if got := org.MemberEmails(oktaGroup); slices.Contains(got, "mallory@example.com") {
		t.Fatal("out-of-band Okta member not removed")
	}
	if !strings.Contains(out.String(), "Group drift in aws group") || !strings.Contains(out.String(), "members without a grant: mallory@example.com") {
		t.Fatalf("drift not announced:\n%s", out)
	}

	// Expiry removes alice from both.
	clock.Advance(30 * time.Minute)
	if _, err := sched.Drain(ctx); err != nil {
		t.Fatal(err)
	}
	if got := idstore.MemberEmails(awsGroup); slices.Contains(got, "alice@example.com") {
		t.Fatalf("alice still in the identity store group: %v", got)
	}
	if got := org.MemberEmails(oktaGroup); !slices.Contains(got, "alice@example.com") {
		t.Fatal("okta grant ended early")
	}
	clock.Advance(30 * time.Minute)
	if _, err := sched.Drain(ctx); err != nil {
		t.Fatal(err)
	}
	if got := org.MemberEmails(oktaGroup); slices.Contains(got, "alice@example.com") {
		t.Fatalf("alice still in the okta group: %v", got)
	}
}

// TestUnknownProviderUserRefusedUpFront: a user missing in the provider is
// told at request time, and nothing is posted to approvers.
func TestUnknownProviderUserRefusedUpFront(t *testing.T) {
	org := oktafake.New()
	defer org.Close()
	org.AddAPIToken("tok")
	g := org.AddGroup("g")
	t.Setenv("ACCESSBOT_TEST_OKTA_TOKEN", "tok")
	l, err := config.Load(writeFile(t, `
chat: {console: {users: {zoe: zoe@example.com}}}
providers: {okta: {org_url: "`+org.URL+`", api_token: "${ACCESSBOT_TEST_OKTA_TOKEN}"}}
roles:
  support-admin: {description: d, provider: okta, group: `+g+`, max_duration: 1h, approvers: {users: [bob@example.com]}}
`))
	if err != nil {
		t.Fatal(err)
	}
	provs := map[string]access.Provisioner{}
	if err := buildRealProviders(context.Background(), l.Config, nil, nil, nil, provs); err != nil {
		t.Fatal(err)
	}
	st, err := bolt.Open(filepath.Join(t.TempDir(), "u.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	svc, err := access.NewService(access.Deps{Store: st, Policy: l.Policy, Providers: provs})
	if err != nil {
		t.Fatal(err)
	}
	_, err = svc.Submit(context.Background(), access.SubmitInput{Requester: "zoe@example.com", Role: "support-admin", Duration: time.Hour, Reason: "x"})
	if !strings.Contains(err.Error(), "zoe@example.com has no account in okta") {
		t.Fatalf("got %v", err)
	}
	if all, _ := st.List(context.Background(), access.Filter{}); len(all) != 0 {
		t.Fatal("a request was stored")
	}
}

// TestCheckOnline: `accessbot check --online` asks the providers whether
// the identity store and every group exist, and names what is missing.
