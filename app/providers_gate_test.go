package app

import (
	"context"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/accessbot/accessbot/config"
	"github.com/accessbot/accessbot/internal/testclock"
	"github.com/accessbot/accessbot/providers/aws/awsfake"
	"github.com/accessbot/accessbot/providers/okta/oktafake"
	"github.com/accessbot/accessbot/store/bolt"
)

// TestRequesterGroupsThroughProviders builds the real Okta and AWS
// provisioners from a config, behind the metrics wrapper (metrics.listen
// set), and checks requesters groups against the fakes: a member of the
// group may ask, anyone else is refused.
func TestRequesterGroupsThroughProviders(t *testing.T) {
	idstore := awsfake.New()
	defer idstore.Close()
	idstore.AllowAccessKeys("AKIDACCESSBOTTEST")
	awsGroup, awsSRE := idstore.AddGroup("prod-admins"), idstore.AddGroup("sre")
	aliceAWS := idstore.AddUser("alice@example.com")
	idstore.AddUser("mallory@example.com")
	idstore.AddMember(awsSRE, aliceAWS)

	org := oktafake.New()
	defer org.Close()
	org.AddAPIToken("okta-test-token")
	oktaGroup, oktaSRE := org.AddGroup("support-admins"), org.AddGroup("support")
	org.AddMember(oktaSRE, org.AddUser("alice@example.com"))
	org.AddUser("mallory@example.com")

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
    users: {alice: alice@example.com, bob: bob@example.com, mallory: mallory@example.com}
metrics: {listen: "127.0.0.1:0"}
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
    requesters: {groups: [{provider: aws, group: ` + awsSRE + `, name: sre}]}
  support-admin:
    description: Okta support administrator
    provider: okta
    group: ` + oktaGroup + `
    max_duration: 4h
    approvers: {users: [bob@example.com]}
    requesters: {groups: [{provider: okta, group: ` + oktaSRE + `, name: support}]}
`
	l, err := config.Load(writeFile(t, cfgText))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	st, err := bolt.Open(filepath.Join(t.TempDir(), "g.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	out := &syncBuffer{}
	a, err := New(ctx, l, Deps{Clock: testclock.New(time.Now().UTC()), Store: st, Stdout: out})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	for _, line := range []string{
		"mallory: /access prod-admin 30m x", "mallory: /access support-admin 30m x",
		"alice: /access prod-admin 30m fixing checkout", "bob: approve",
		"alice: /access support-admin 1h customer escalation", "bob: approve",
	} {
		if err := a.Console().Line(ctx, line); err != nil {
			t.Fatal(err)
		}
	}
	o := out.String()
	for _, want := range []string{"you may not request prod-admin; who may: members of sre", "you may not request support-admin; who may: members of support"} {
		if !strings.Contains(o, want) {
			t.Errorf("missing %q in\n%s", want, o)
		}
	}
	if got := idstore.MemberEmails(awsGroup); !slices.Equal(got, []string{"alice@example.com"}) {
		t.Fatalf("identity store members %v\n%s", got, o)
	}
	if got := org.MemberEmails(oktaGroup); !slices.Equal(got, []string{"alice@example.com"}) {
		t.Fatalf("okta members %v\n%s", got, o)
	}
}
