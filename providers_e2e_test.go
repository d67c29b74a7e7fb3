package main

import (
	"context"
	"github.com/accessbot/accessbot/config"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/accessbot/accessbot/access"
	"github.com/accessbot/accessbot/bot/console"
	"github.com/accessbot/accessbot/handlers"
	"github.com/accessbot/accessbot/internal/testclock"
	"github.com/accessbot/accessbot/providers/aws/awsfake"
	"github.com/accessbot/accessbot/providers/okta/oktafake"
	"github.com/accessbot/accessbot/scheduler"
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
	ctx := context.Background()
	provs := map[string]access.Provisioner{}
	if err := buildRealProviders(ctx, l.Config, nil, provs); err != nil {
		t.Fatal(err)
	}
	st, err := bolt.Open(filepath.Join(t.TempDir(), "e2e.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	out := &syncBuffer{}
	clock := testclock.New(time.Now().UTC())
	con := console.New(console.Config{Users: l.Config.Chat.Console.Users}, out)
	svc, err := access.NewService(access.Deps{Store: st, Policy: l.Policy, Providers: provs, Clock: clock})
	if err != nil {
		t.Fatal(err)
	}
	con.SetHandler(handlers.New(svc, con, nil))
	svc.SetNotifier(handlers.NewNotifier(con, nil))
	sched := scheduler.New(st, svc, clock, nil, scheduler.Options{})
	svc.SetWaker(sched)

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
	if err := buildRealProviders(context.Background(), l.Config, nil, provs); err != nil {
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
func TestCheckOnline(t *testing.T) {
	idstore := awsfake.New()
	defer idstore.Close()
	g := idstore.AddGroup("prod-admins")
	org := oktafake.New()
	defer org.Close()
	org.AddAPIToken("tok")
	appGroup := org.AddGroupOfType("app-users", "APP_GROUP")
	t.Setenv("AWS_ENDPOINT_URL_IDENTITYSTORE", idstore.URL)
	t.Setenv("AWS_ACCESS_KEY_ID", "AKIDACCESSBOTTEST")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "test-secret")
	t.Setenv("AWS_REGION", "us-east-1")
	t.Setenv("AWS_CONFIG_FILE", filepath.Join(t.TempDir(), "none"))
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", filepath.Join(t.TempDir(), "none"))
	t.Setenv("ACCESSBOT_TEST_OKTA_TOKEN", "tok")
	cfg := writeFile(t, `
chat: {console: {users: {alice: alice@example.com}}}
providers:
  aws: {identity_store_id: `+idstore.IdentityStoreID()+`, region: us-east-1}
  okta: {org_url: "`+org.URL+`", api_token: "${ACCESSBOT_TEST_OKTA_TOKEN}"}
roles:
  prod-admin: {description: d, provider: aws, group: `+g+`, max_duration: 1h, approvers: {users: [bob@example.com]}}
  ghost: {description: d, provider: aws, group: 11111111-2222-3333-4444-555555555555, max_duration: 1h, approvers: {users: [bob@example.com]}}
  app: {description: d, provider: okta, group: `+appGroup+`, max_duration: 1h, approvers: {users: [bob@example.com]}}
`)
	var out, errb strings.Builder
	code := run(context.Background(), []string{"check", "--config", cfg, "--online"}, nil, &out, &errb)
	if code != 1 {
		t.Fatalf("exit %d\nstdout:\n%s\nstderr:\n%s", code, out.String(), errb.String())
	}
	all := out.String() + errb.String()
	for _, want := range []string{"ghost", "11111111-2222-3333-4444-555555555555", "APP_GROUP"} {
		if !strings.Contains(all, want) {
			t.Errorf("missing %q in\n%s", want, all)
		}
	}
	t.Logf("check --online output:\n%s", all)
}
