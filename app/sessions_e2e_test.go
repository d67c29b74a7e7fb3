package app

import (
	"context"
	"encoding/json"
	"net/http"
	"path/filepath"
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

// TestSessionsEndWithTheAccess drives the real AWS and Okta provisioners,
// built from a config with revoke_sessions, through grant and expiry on a
// test clock: at expiry the AWS user's existing sessions are denied in the
// group's permission set (provisioned to its accounts) and the request
// ends with an audit note; the Okta session end fails (403), so that
// request stays revoking, is retried and alerted like a failed removal,
// and ends once the sessions could be ended. The sweep job removes the
// deny statement once the session duration has passed, leaving the
// administrator's statement as it was.
func TestSessionsEndWithTheAccess(t *testing.T) {
	idstore := awsfake.New()
	defer idstore.Close()
	idstore.AllowAccessKeys("AKIDACCESSBOTTEST")
	awsGroup := idstore.AddGroup("prod-admins")
	idstore.AddUser("alice@example.com")
	ps := idstore.AddPermissionSet("AdministratorAccess", "PT2H")
	admin := `{"Version":"2012-10-17","Statement":[{"Sid":"Admin","Effect":"Allow","Action":"*","Resource":"*"}]}`
	idstore.SetInlinePolicy(ps, admin)
	idstore.AddAssignment(awsGroup, awsfake.Assignment{AccountID: "111111111111", PermissionSetArn: ps})

	org := oktafake.New()
	defer org.Close()
	org.AddAPIToken("okta-test-token")
	oktaGroup := org.AddGroup("support-admins")
	aliceOkta := org.AddUser("alice@example.com")
	org.AddSession(aliceOkta)

	t.Setenv("AWS_ENDPOINT_URL_IDENTITYSTORE", idstore.URL)
	t.Setenv("AWS_ENDPOINT_URL_SSO_ADMIN", idstore.URL)
	t.Setenv("AWS_ACCESS_KEY_ID", "AKIDACCESSBOTTEST")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "test-secret")
	t.Setenv("AWS_REGION", "us-east-1")
	t.Setenv("AWS_CONFIG_FILE", filepath.Join(t.TempDir(), "none"))
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", filepath.Join(t.TempDir(), "none"))
	t.Setenv("ACCESSBOT_TEST_OKTA_TOKEN", "okta-test-token")

	l, err := config.Load(writeFile(t, `
chat:
  console:
    users: {alice: alice@example.com, bob: bob@example.com}
providers:
  aws: {identity_store_id: `+idstore.IdentityStoreID()+`, region: us-east-1, instance_arn: "`+idstore.InstanceARN()+`", revoke_sessions: true}
  okta: {org_url: "`+org.URL+`", api_token: "${ACCESSBOT_TEST_OKTA_TOKEN}", revoke_sessions: true, oauth_tokens: true}
roles:
  prod-admin: {description: Production administrator, provider: aws, group: `+awsGroup+`, max_duration: 4h, approvers: {users: [bob@example.com]}}
  support-admin: {description: Okta support administrator, provider: okta, group: `+oktaGroup+`, max_duration: 4h, approvers: {users: [bob@example.com]}}
`))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	st, err := bolt.Open(filepath.Join(t.TempDir(), "sessions.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	out := &syncBuffer{}
	start := time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)
	clock := testclock.New(start)
	a, err := New(ctx, l, Deps{Clock: clock, Store: st, Stdout: out})
	if err != nil {
		t.Fatal(err)
	}
	con, sched := a.Console(), a.Scheduler()
	for _, line := range []string{
		"alice: /access prod-admin 30m fixing checkout",
		"bob: approve",
		"alice: /access support-admin 30m customer escalation",
		"bob: approve",
	} {
		if err := con.Line(ctx, line); err != nil {
			t.Fatal(err)
		}
	}
	if len(idstore.MemberEmails(awsGroup)) != 1 || len(org.MemberEmails(oktaGroup)) != 1 {
		t.Fatalf("grants missing\n%s", out)
	}
	byRole := func() map[string]*access.Request {
		all, err := st.List(ctx, access.Filter{})
		if err != nil {
			t.Fatal(err)
		}
		m := map[string]*access.Request{}
		for _, r := range all {
			m[r.Role] = r
		}
		return m
	}

	org.FailSessionEnds(http.StatusForbidden)
	clock.Advance(30 * time.Minute)
	revokedAt := clock.Now().UTC().Format(time.RFC3339)
	if _, err := sched.Drain(ctx); err != nil {
		t.Fatal(err)
	}
	reqs := byRole()
	if r := reqs["prod-admin"]; r.State != access.StateEnded || len(idstore.MemberEmails(awsGroup)) != 0 {
		t.Fatalf("aws request %s, members %v\n%s", r.State, idstore.MemberEmails(awsGroup), out)
	}
	set, _ := idstore.PermissionSet(ps)
	var pol struct{ Statement []map[string]any }
	if err := json.Unmarshal([]byte(set.InlinePolicy), &pol); err != nil || len(pol.Statement) != 2 {
		t.Fatalf("policy %s (%v)", set.InlinePolicy, err)
	}
	deny, _ := json.Marshal(pol.Statement[1])
	for _, want := range []string{`"Effect":"Deny"`, `"aws:userid":"*:alice@example.com"`, `"aws:TokenIssueTime":"` + revokedAt + `"`, `"Sid":"AccessbotRevoke`} {
		if !strings.Contains(string(deny), want) {
			t.Errorf("deny statement %s lacks %s", deny, want)
		}
	}
	if set.ProvisionedPolicy != set.InlinePolicy {
		t.Errorf("the deny statement was not provisioned to the accounts")
	}
	// The Okta request: membership gone, sessions not ended, still revoking.
	if r := reqs["support-admin"]; r.State != access.StateRevoking || !strings.Contains(r.LastError, "okta: end sessions of alice@example.com") ||
		len(org.MemberEmails(oktaGroup)) != 0 || org.Sessions(aliceOkta) != 1 {
		t.Fatalf("okta request %s (%q), members %v, sessions %d", r.State, r.LastError, org.MemberEmails(oktaGroup), org.Sessions(aliceOkta))
	}
	// Failing for longer than revoke_alert_after (2m): alerted.
	for range 6 {
		clock.Advance(time.Minute)
		if _, err := sched.Drain(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if r := byRole()["support-admin"]; !r.Alerted || r.State != access.StateRevoking {
		t.Fatalf("okta request after 6 minutes of failing: state %s, alerted %v", r.State, r.Alerted)
	}
	org.FailSessionEnds(0)
	for i := 0; byRole()["support-admin"].State != access.StateEnded; i++ {
		if i == 20 {
			t.Fatalf("okta request never ended\n%s", out)
		}
		clock.Advance(time.Minute)
		if _, err := sched.Drain(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if ends := org.SessionEnds(); len(ends) != 1 || !ends[0].OAuthTokens || org.Sessions(aliceOkta) != 0 {
		t.Fatalf("session ends %+v", ends)
	}
	events, err := st.Audit(ctx, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	notes := map[string]string{}
	alerts := 0
	for _, ev := range events {
		switch ev.Action {
		case access.ActRevoked:
			notes[ev.Role] = ev.Detail
		case access.ActRevokeAlert:
			alerts++
		}
	}
	if !strings.Contains(notes["prod-admin"], "aws sessions issued before the revocation denied") ||
		!strings.Contains(notes["support-admin"], "okta sessions ended and oauth tokens revoked") || alerts != 1 {
		t.Errorf("revoked details %q, %d alerts", notes, alerts)
	}

	// Two hours after the revocation the sweep job removes the statement.
	clock.Set(start.Add(30*time.Minute + 2*time.Hour))
	if err := sched.RunJob(ctx, "sessions-aws"); err != nil {
		t.Fatal(err)
	}
	if set, _ := idstore.PermissionSet(ps); set.InlinePolicy != admin || set.ProvisionedPolicy != admin {
		t.Errorf("after the session duration: %s (provisioned %s)", set.InlinePolicy, set.ProvisionedPolicy)
	}
}

// TestNoSessionSweepWithoutRevokeSessions: without revoke_sessions no
// sweep job is registered (the app's jobs stay as they were).
func TestNoSessionSweepWithoutRevokeSessions(t *testing.T) {
	idstore := awsfake.New()
	defer idstore.Close()
	g := idstore.AddGroup("g")
	t.Setenv("AWS_ENDPOINT_URL_IDENTITYSTORE", idstore.URL)
	t.Setenv("AWS_ENDPOINT_URL_SSO_ADMIN", idstore.URL)
	t.Setenv("AWS_ACCESS_KEY_ID", "AKIDACCESSBOTTEST")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "test-secret")
	t.Setenv("AWS_REGION", "us-east-1")
	t.Setenv("AWS_CONFIG_FILE", filepath.Join(t.TempDir(), "none"))
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", filepath.Join(t.TempDir(), "none"))
	for _, c := range []struct {
		extra string
		want  bool
	}{{"", false}, {", revoke_sessions: true", true}} {
		l, err := config.Load(writeFile(t, `
chat: {console: {users: {alice: alice@example.com}}}
providers:
  aws: {identity_store_id: `+idstore.IdentityStoreID()+`, region: us-east-1, instance_arn: "`+idstore.InstanceARN()+`"}
roles:
  prod-admin: {description: d, provider: aws, group: `+g+`, max_duration: 1h, approvers: {users: [bob@example.com]}`+c.extra+`}
`))
		if err != nil {
			t.Fatal(err)
		}
		st, err := bolt.Open(filepath.Join(t.TempDir(), "s.db"))
		if err != nil {
			t.Fatal(err)
		}
		a, err := New(context.Background(), l, Deps{Clock: testclock.New(time.Now()), Store: st, Stdout: &syncBuffer{}})
		if err != nil {
			t.Fatal(err)
		}
		err = a.Scheduler().RunJob(context.Background(), "sessions-aws")
		if got := err == nil; got != c.want {
			t.Errorf("roles.prod-admin%s: sessions-aws job runs: %v (%v), want %v", c.extra, got, err, c.want)
		}
		st.Close()
	}
}

// TestFailedProvisioningKeepsRevoking: when the permission set's
// provisioning FAILS at expiry, the AWS request stays revoking with the
// reason (the membership is already gone) and the retry ends it.
func TestFailedProvisioningKeepsRevoking(t *testing.T) {
	idstore := awsfake.New()
	defer idstore.Close()
	g := idstore.AddGroup("prod-admins")
	idstore.AddUser("alice@example.com")
	ps := idstore.AddPermissionSet("AdministratorAccess", "PT1H")
	idstore.AddAssignment(g, awsfake.Assignment{AccountID: "111111111111", PermissionSetArn: ps})
	t.Setenv("AWS_ENDPOINT_URL_IDENTITYSTORE", idstore.URL)
	t.Setenv("AWS_ENDPOINT_URL_SSO_ADMIN", idstore.URL)
	t.Setenv("AWS_ACCESS_KEY_ID", "AKIDACCESSBOTTEST")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "test-secret")
	t.Setenv("AWS_REGION", "us-east-1")
	t.Setenv("AWS_CONFIG_FILE", filepath.Join(t.TempDir(), "none"))
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", filepath.Join(t.TempDir(), "none"))
	l, err := config.Load(writeFile(t, `
chat: {console: {users: {alice: alice@example.com, bob: bob@example.com}}}
providers:
  aws: {identity_store_id: `+idstore.IdentityStoreID()+`, region: us-east-1, instance_arn: "`+idstore.InstanceARN()+`"}
roles:
  prod-admin: {description: d, provider: aws, group: `+g+`, max_duration: 1h, approvers: {users: [bob@example.com]}, revoke_sessions: true}
`))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	st, err := bolt.Open(filepath.Join(t.TempDir(), "f.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	clock := testclock.New(time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC))
	a, err := New(ctx, l, Deps{Clock: clock, Store: st, Stdout: &syncBuffer{}})
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range []string{"alice: /access prod-admin 30m fixing checkout", "bob: approve"} {
		if err := a.Console().Line(ctx, line); err != nil {
			t.Fatal(err)
		}
	}
	idstore.FailNextProvisioning("Received a 404 status error: Not supported policy arn:aws:iam::aws:policy/Nope")
	clock.Advance(30 * time.Minute)
	if _, err := a.Scheduler().Drain(ctx); err != nil {
		t.Fatal(err)
	}
	all, _ := st.List(ctx, access.Filter{})
	if r := all[0]; r.State != access.StateRevoking || !strings.Contains(r.LastError, "provisioning of permission set AdministratorAccess FAILED: Received a 404") ||
		len(idstore.MemberEmails(g)) != 0 {
		t.Fatalf("after a failed provisioning: %s %q, members %v", r.State, r.LastError, idstore.MemberEmails(g))
	}
	for i := 0; ; i++ {
		all, _ = st.List(ctx, access.Filter{})
		if all[0].State == access.StateEnded {
			break
		}
		if i == 10 {
			t.Fatalf("never ended: %q", all[0].LastError)
		}
		clock.Advance(time.Minute)
		if _, err := a.Scheduler().Drain(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if set, _ := idstore.PermissionSet(ps); set.ProvisionedPolicy == "" || set.ProvisionedPolicy != set.InlinePolicy {
		t.Errorf("not provisioned after the retry: %q", set.ProvisionedPolicy)
	}
}
