package main

import (
	"context"
	"path/filepath"
	"strings"
	"testing"

	"github.com/accessbot/accessbot/providers/aws/awsfake"
)

// TestCheckOnlineSessionDuration: `accessbot check --online` warns where a
// permission set the role's group holds keeps sessions longer than the
// role's max_duration, naming the set and the fix (a warning: exit 0).
func TestCheckOnlineSessionDuration(t *testing.T) {
	f := awsfake.New()
	defer f.Close()
	g := f.AddGroup("prod-admins")
	ps := f.AddPermissionSet("AdministratorAccess", "PT12H")
	f.AddAssignment(g, awsfake.Assignment{AccountID: "111111111111", PermissionSetArn: ps})
	t.Setenv("AWS_ENDPOINT_URL_IDENTITYSTORE", f.URL)
	t.Setenv("AWS_ENDPOINT_URL_SSO_ADMIN", f.URL)
	t.Setenv("AWS_ACCESS_KEY_ID", "AKIDACCESSBOTTEST")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "test-secret")
	t.Setenv("AWS_REGION", "us-east-1")
	t.Setenv("AWS_CONFIG_FILE", filepath.Join(t.TempDir(), "none"))
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", filepath.Join(t.TempDir(), "none"))
	cfg := writeFile(t, `
chat: {console: {users: {alice: alice@example.com}}}
providers:
  aws: {identity_store_id: `+f.IdentityStoreID()+`, region: us-east-1, instance_arn: "`+f.InstanceARN()+`"}
roles:
  prod-admin: {description: d, provider: aws, group: `+g+`, max_duration: 1h, approvers: {users: [bob@example.com]}}
`)
	var out, errb strings.Builder
	code := run(context.Background(), []string{"check", "--config", cfg, "--online"}, nil, &out, &errb)
	if code != 0 {
		t.Fatalf("exit %d\nstdout:\n%s\nstderr:\n%s", code, out.String(), errb.String())
	}
	want := "aws: warning: role prod-admin: permission set AdministratorAccess (" + ps + ") has a session duration of 12h, longer than the role's max_duration 1h, so sessions would outlive the grant; lower the permission set's session duration to 1h or less, or set providers.aws.revoke_sessions"
	if !strings.Contains(out.String(), want) {
		t.Errorf("missing the warning in\n%s", out.String())
	}
}

// TestCheckRevokeSessionsNeedsInstanceARN: revoke_sessions without
// instance_arn is a config problem at its key path; so is revoke_sessions
// on a role whose provider cannot end sessions.
func TestCheckRevokeSessionsNeedsInstanceARN(t *testing.T) {
	cfg := writeFile(t, `
chat: {console: {users: {alice: alice@example.com}}}
providers:
  dryrun: {}
  aws: {identity_store_id: d-1234567890, region: us-east-1}
roles:
  prod-admin: {description: d, provider: aws, group: 11111111-2222-3333-4444-555555555555, max_duration: 1h, approvers: {users: [bob@example.com]}, revoke_sessions: true}
  demo: {description: d, provider: dryrun, group: g, max_duration: 1h, approvers: {users: [bob@example.com]}, revoke_sessions: true}
`)
	var out, errb strings.Builder
	code := run(context.Background(), []string{"check", "--config", cfg}, nil, &out, &errb)
	all := out.String() + errb.String()
	if code == 0 || !strings.Contains(all, "providers.aws.revoke_sessions: needs instance_arn") ||
		!strings.Contains(all, `roles.demo.revoke_sessions: provider "dryrun" cannot end sessions`) {
		t.Errorf("exit %d\n%s", code, all)
	}
}
