package main

import (
	"context"
	"path/filepath"
	"strings"
	"testing"

	"github.com/accessbot/accessbot/providers/aws/awsfake"
	"github.com/accessbot/accessbot/providers/okta/oktafake"
)

// TestConsoleWithAWSAndOkta drives the real AWS and Okta provisioners,
// built from a config file exactly as `accessbot run` builds them, against
// the Identity Store and Okta fakes: approval adds the user, expiry removes
// them, and the reconcile job reports (and, where configured, removes) an
// out-of-band member.
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
