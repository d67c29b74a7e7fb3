package aws_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/ssoadmin"
	ssotypes "github.com/aws/aws-sdk-go-v2/service/ssoadmin/types"

	"github.com/accessbot/accessbot/access"
	"github.com/accessbot/accessbot/internal/testclock"
	"github.com/accessbot/accessbot/providers/aws"
	"github.com/accessbot/accessbot/providers/aws/awsfake"
)

var t0 = time.Date(2026, 12, 1, 9, 30, 0, 0, time.UTC)

func newSessionProvider(t testing.TB, f *awsfake.Server, cfg aws.Config, opts ...aws.Option) *aws.Provider {
	t.Helper()
	cfg.IdentityStoreID, cfg.InstanceARN = awsfake.DefaultIdentityStoreID, awsfake.DefaultInstanceARN
	opts = append([]aws.Option{aws.WithAWSConfig(awsCfg(testKeyID, testSecret)), aws.WithEndpoint(f.URL),
		aws.WithPollInterval(time.Millisecond)}, opts...)
	p, err := aws.New(context.Background(), cfg, testLogger(t), opts...)
	if err != nil {
		t.Fatalf("aws.New: %v", err)
	}
	return p
}

type policy struct {
	Version   string
	Statement []map[string]any
}

func readPolicy(t *testing.T, text string) policy {
	t.Helper()
	var p policy
	if text == "" {
		return p
	}
	if err := json.Unmarshal([]byte(text), &p); err != nil {
		t.Fatalf("policy %q: %v", text, err)
	}
	return p
}

// ours returns the statements accessbot wrote.
func ours(p policy) []map[string]any {
	var out []map[string]any
	for _, s := range p.Statement {
		if sid, _ := s["Sid"].(string); strings.HasPrefix(sid, "AccessbotRevoke") {
			out = append(out, s)
		}
	}
	return out
}

func cond(s map[string]any, op, key string) any {
	c, _ := s["Condition"].(map[string]any)
	m, _ := c[op].(map[string]any)
	return m[key]
}

const foreign = `{"Version":"2012-10-17","Statement":[{"Sid":"ReadLogs","Effect":"Allow","Action":["logs:Get*"],"Resource":"arn:aws:logs:*:*:log-group:a&b<c>"}]}`

// TestRevokeDeniesSessions: Revoke removes the membership, then writes a
// deny statement for the user's user name and the revocation time into
// every permission set the group holds, provisions each to its accounts,
// and leaves the administrator's statement as it was; SweepSessions
// removes each statement once the set's session duration has passed.
func TestRevokeDeniesSessions(t *testing.T) {
	f := newFake(t)
	f.SetProvisioningPolls(2)
	clock := testclock.New(t0)
	p := newSessionProvider(t, f, aws.Config{RevokeSessions: true}, aws.WithClock(clock))
	group := f.AddGroup("prod-admins")
	uid := f.AddUserFull(awsfake.User{UserName: "alice", Email: "alice@example.com"})
	f.AddMember(group, uid)
	admin := f.AddPermissionSet("AdministratorAccess", "PT12H")
	read := f.AddPermissionSet("ReadOnly", "PT1H")
	f.SetInlinePolicy(admin, foreign)
	f.AddAssignment(group, awsfake.Assignment{AccountID: "111111111111", PermissionSetArn: admin})
	f.AddAssignment(group, awsfake.Assignment{AccountID: "222222222222", PermissionSetArn: admin})
	f.AddAssignment(group, awsfake.Assignment{AccountID: "111111111111", PermissionSetArn: read})
	ctx := context.Background()
	grant := access.Grant{RequestID: "r1", Role: "prod-admin", Group: group, User: "alice@example.com"}

	if err := p.Revoke(ctx, grant); err != nil {
		t.Fatal(err)
	}
	if len(f.Members(group)) != 0 {
		t.Fatal("still a member")
	}
	if p.SessionsNote(grant) == "" {
		t.Error("no audit note")
	}
	for _, c := range []struct {
		arn   string
		until time.Time
	}{{admin, t0.Add(12 * time.Hour)}, {read, t0.Add(time.Hour)}} {
		ps, _ := f.PermissionSet(c.arn)
		pol := readPolicy(t, ps.InlinePolicy)
		st := ours(pol)
		if len(st) != 1 {
			t.Fatalf("%s: %d accessbot statements in %s", ps.Name, len(st), ps.InlinePolicy)
		}
		s := st[0]
		if s["Effect"] != "Deny" || s["Action"] != "*" || s["Resource"] != "*" ||
			cond(s, "StringLike", "aws:userid") != "*:alice" ||
			cond(s, "DateLessThan", "aws:TokenIssueTime") != "2026-12-01T09:30:00Z" ||
			s["Sid"] != fmt.Sprintf("AccessbotRevoke%sUntil%d", s["Sid"].(string)[15:23], c.until.Unix()) {
			t.Errorf("%s: statement %v", ps.Name, s)
		}
		if ps.ProvisionedPolicy != ps.InlinePolicy || !ps.Provisioned {
			t.Errorf("%s: not provisioned: accounts hold %q", ps.Name, ps.ProvisionedPolicy)
		}
	}
	adminPS, _ := f.PermissionSet(admin)
	if !strings.HasPrefix(adminPS.InlinePolicy, `{"Version":"2012-10-17","Statement":[{"Sid":"ReadLogs","Effect":"Allow","Action":["logs:Get*"],"Resource":"arn:aws:logs:*:*:log-group:a&b<c>"},`) {
		t.Errorf("the administrator's statement changed: %s", adminPS.InlinePolicy)
	}
	provs := f.Provisionings()
	if len(provs) != 2 || provs[0].TargetType != "ALL_PROVISIONED_ACCOUNTS" || provs[0].Status != awsfake.Succeeded || provs[1].Status != awsfake.Succeeded {
		t.Fatalf("provisionings %+v", provs)
	}
	if n := f.Calls("DescribePermissionSetProvisioningStatus"); n < 6 {
		t.Errorf("%d status reads, want the provider to poll until SUCCEEDED (3 per set)", n)
	}

	groups := map[string]string{"prod-admin": group}
	clock.Advance(59 * time.Minute)
	if err := p.SweepSessions(ctx, groups); err != nil {
		t.Fatal(err)
	}
	if n := len(f.Provisionings()); n != 2 {
		t.Fatalf("sweep before any expiry provisioned %d sets", n-2)
	}
	clock.Advance(time.Minute) // ReadOnly's hour has passed
	if err := p.SweepSessions(ctx, groups); err != nil {
		t.Fatal(err)
	}
	if ps, _ := f.PermissionSet(read); ps.InlinePolicy != "" || ps.ProvisionedPolicy != "" {
		t.Errorf("ReadOnly after its session duration: policy %q, provisioned %q; want none", ps.InlinePolicy, ps.ProvisionedPolicy)
	}
	if ps, _ := f.PermissionSet(admin); len(ours(readPolicy(t, ps.InlinePolicy))) != 1 {
		t.Errorf("AdministratorAccess lost its statement early: %s", ps.InlinePolicy)
	}
	clock.Set(t0.Add(12 * time.Hour))
	if err := p.SweepSessions(ctx, groups); err != nil {
		t.Fatal(err)
	}
	if ps, _ := f.PermissionSet(admin); ps.InlinePolicy != foreign || ps.ProvisionedPolicy != foreign {
		t.Errorf("AdministratorAccess after 12h:\n got %s\nwant %s", ps.InlinePolicy, foreign)
	}
	n := len(f.Provisionings())
	if err := p.SweepSessions(ctx, groups); err != nil || len(f.Provisionings()) != n {
		t.Errorf("a sweep with nothing expired provisioned again (%v)", err)
	}
	// A role without session revocation is not swept.
	off := newSessionProvider(t, f, aws.Config{RoleSessions: map[string]bool{"prod-admin": false}, RevokeSessions: true}, aws.WithClock(clock))
	calls := f.Calls("GetInlinePolicyForPermissionSet")
	if err := off.SweepSessions(ctx, groups); err != nil || f.Calls("GetInlinePolicyForPermissionSet") != calls {
		t.Errorf("sweep of a role without revoke_sessions read policies (%v)", err)
	}
}

// TestDenyReplacesAndExpiresOnRevoke: a second revocation of the same
// user replaces their statement; a revocation also drops other users'
// expired statements (the policy is the record, whoever looks next).
func TestDenyReplacesAndExpiresOnRevoke(t *testing.T) {
	f := newFake(t)
	clock := testclock.New(t0)
	p := newSessionProvider(t, f, aws.Config{RevokeSessions: true}, aws.WithClock(clock))
	group := f.AddGroup("g")
	ps := f.AddPermissionSet("Admin", "PT2H")
	f.AddAssignment(group, awsfake.Assignment{AccountID: "111111111111", PermissionSetArn: ps})
	for _, u := range []string{"alice", "bob"} {
		f.AddUserFull(awsfake.User{UserName: u, Email: u + "@example.com"})
	}
	ctx := context.Background()
	revoke := func(user string) {
		t.Helper()
		if err := p.Revoke(ctx, access.Grant{Role: "r", Group: group, User: user + "@example.com"}); err != nil {
			t.Fatal(err)
		}
	}
	revoke("alice")
	clock.Advance(time.Hour)
	revoke("bob")
	revoke("bob")
	set, _ := f.PermissionSet(ps)
	if st := ours(readPolicy(t, set.InlinePolicy)); len(st) != 2 {
		t.Fatalf("want alice's and bob's statements, got %s", set.InlinePolicy)
	}
	clock.Advance(90 * time.Minute) // alice's expired, bob's not
	f.AddUserFull(awsfake.User{UserName: "carol", Email: "carol@example.com"})
	revoke("carol")
	set, _ = f.PermissionSet(ps)
	var who []string
	for _, s := range ours(readPolicy(t, set.InlinePolicy)) {
		who = append(who, cond(s, "StringLike", "aws:userid").(string))
	}
	if !slices.Equal(who, []string{"*:bob", "*:carol"}) {
		t.Errorf("statements for %v, want bob's and carol's (alice's expired)", who)
	}
}

// TestDenyMergesUnderSizeLimit: when the statements do not fit in the
// 10,240 characters of a role's inline policies, they are merged into one
// with a list of userids (latest issue time); when even that does not
// fit, Revoke fails with ErrPolicyTooLarge (retried and alerted), and the
// administrator's statements are never dropped.
func TestDenyMergesUnderSizeLimit(t *testing.T) {
	f := newFake(t)
	clock := testclock.New(t0)
	p := newSessionProvider(t, f, aws.Config{RevokeSessions: true}, aws.WithClock(clock))
	group := f.AddGroup("g")
	ps := f.AddPermissionSet("Admin", "PT8H")
	f.AddAssignment(group, awsfake.Assignment{AccountID: "111111111111", PermissionSetArn: ps})
	big := `{"Version":"2012-10-17","Statement":[{"Sid":"Big","Effect":"Allow","Action":"s3:GetObject","Resource":"arn:aws:s3:::` + strings.Repeat("x", 9750) + `"}]}`
	f.SetInlinePolicy(ps, big)
	ctx := context.Background()
	var users []string
	for i := range 3 {
		u := fmt.Sprintf("user%d", i)
		users = append(users, "*:"+u)
		f.AddUserFull(awsfake.User{UserName: u, Email: u + "@example.com"})
		clock.Advance(time.Minute)
		if err := p.Revoke(ctx, access.Grant{Role: "r", Group: group, User: u + "@example.com"}); err != nil {
			t.Fatalf("revoke %s: %v", u, err)
		}
	}
	set, _ := f.PermissionSet(ps)
	st := ours(readPolicy(t, set.InlinePolicy))
	if len(st) != 1 {
		t.Fatalf("want one merged statement, got %d (policy of %d characters)", len(st), len(set.InlinePolicy))
	}
	ids, _ := json.Marshal(cond(st[0], "StringLike", "aws:userid"))
	want, _ := json.Marshal(users)
	if string(ids) != string(want) || cond(st[0], "DateLessThan", "aws:TokenIssueTime") != "2026-12-01T09:33:00Z" {
		t.Errorf("merged statement %v", st[0])
	}
	if !strings.Contains(set.InlinePolicy, `"Sid":"Big"`) || len(set.InlinePolicy) > aws.PolicyLimit {
		t.Errorf("policy of %d characters", len(set.InlinePolicy))
	}
	// Fill it up: eventually nothing fits.
	var err error
	for i := 3; i < 40 && err == nil; i++ {
		u := fmt.Sprintf("user-with-a-rather-long-name-%02d", i)
		f.AddUserFull(awsfake.User{UserName: u, Email: u + "@example.com"})
		err = p.Revoke(ctx, access.Grant{Role: "r", Group: group, User: u + "@example.com"})
	}
	if !errors.Is(err, aws.ErrPolicyTooLarge) || access.IsPermanent(err) {
		t.Fatalf("over the limit: %v, want a transient ErrPolicyTooLarge", err)
	}
	t.Logf("refused: %v", err)
	set, _ = f.PermissionSet(ps)
	if !strings.Contains(set.InlinePolicy, `"Sid":"Big"`) {
		t.Error("the administrator's statement was dropped")
	}
	// Once the statements expire, the revocation goes through.
	clock.Advance(8 * time.Hour)
	u := "user-with-a-rather-long-name-39"
	f.AddUserFull(awsfake.User{UserName: u, Email: u + "@example.com"})
	if err := p.Revoke(ctx, access.Grant{Role: "r", Group: group, User: u + "@example.com"}); err != nil {
		t.Fatalf("after expiry: %v", err)
	}
}

// TestSSOFakeRefusesOversizedPolicy: the fake answers like the service
// when the real SDK client puts a policy over the limit, or provisions a
// set whose provisioning is still running.
func TestSSOFakeRefusesOversizedPolicy(t *testing.T) {
	f := newFake(t)
	ps := f.AddPermissionSet("Admin", "PT1H")
	c := ssoadmin.NewFromConfig(awsCfg(testKeyID, testSecret), func(o *ssoadmin.Options) { o.BaseEndpoint = &f.URL })
	ctx := context.Background()
	inst := awsfake.DefaultInstanceARN
	big := `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:GetObject","Resource":"` + strings.Repeat("x", 10300) + `"}]}`
	_, err := c.PutInlinePolicyToPermissionSet(ctx, &ssoadmin.PutInlinePolicyToPermissionSetInput{InstanceArn: &inst, PermissionSetArn: &ps, InlinePolicy: &big})
	var ve *ssotypes.ValidationException
	if !errors.As(err, &ve) {
		t.Fatalf("oversized policy: %v, want ValidationException", err)
	}
	f.StartProvisioning(ps, 1)
	_, err = c.ProvisionPermissionSet(ctx, &ssoadmin.ProvisionPermissionSetInput{InstanceArn: &inst, PermissionSetArn: &ps, TargetType: ssotypes.ProvisionTargetTypeAllProvisionedAccounts})
	var ce *ssotypes.ConflictException
	if !errors.As(err, &ce) {
		t.Fatalf("provisioning while one runs: %v, want ConflictException", err)
	}
	out, err := c.DescribePermissionSet(ctx, &ssoadmin.DescribePermissionSetInput{InstanceArn: &inst, PermissionSetArn: &ps})
	if err != nil || *out.PermissionSet.SessionDuration != "PT1H" || *out.PermissionSet.Name != "Admin" {
		t.Fatalf("DescribePermissionSet = %+v, %v", out, err)
	}
}

// TestDenyThrottledConflictAndFailure: throttling of the shared SSO Admin
// budget is retried; a provisioning already running is waited out; a
// FAILED provisioning fails Revoke (transient) and the retry succeeds
// with one statement for the user.
func TestDenyThrottledConflictAndFailure(t *testing.T) {
	f := newFake(t)
	clock := testclock.New(t0)
	p := newSessionProvider(t, f, aws.Config{RevokeSessions: true}, aws.WithClock(clock),
		aws.WithRateLimit(0), aws.WithRetry(10, 20*time.Millisecond))
	group := f.AddGroup("g")
	ps := f.AddPermissionSet("Admin", "PT4H")
	f.AddAssignment(group, awsfake.Assignment{AccountID: "111111111111", PermissionSetArn: ps})
	f.AddUserFull(awsfake.User{UserName: "alice", Email: "alice@example.com"})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	grant := access.Grant{Role: "r", Group: group, User: "alice@example.com"}

	f.SetThrottle(20, 2, 0, 0)
	f.StartProvisioning(ps, 2)
	if err := p.Revoke(ctx, grant); err != nil {
		t.Fatalf("revoke under throttling and a running provisioning: %v", err)
	}
	if f.Throttled() == 0 {
		t.Error("nothing was throttled; the test did not exercise throttling")
	}
	provs := f.Provisionings()
	if last := provs[len(provs)-1]; len(provs) != 2 || last.Status != awsfake.Succeeded || !strings.Contains(last.Policy, "*:alice") {
		t.Fatalf("provisionings %+v", provs)
	}
	f.SetThrottle(0, 0, 0, 0)

	f.FailNextProvisioning("Role AWSReservedSSO_Admin in account 222222222222 could not be updated")
	clock.Advance(time.Minute)
	err := p.Revoke(ctx, grant)
	if err == nil || access.IsPermanent(err) || !strings.Contains(err.Error(), "FAILED: Role AWSReservedSSO_Admin in account 222222222222 could not be updated") {
		t.Fatalf("failed provisioning: %v", err)
	}
	clock.Advance(time.Minute)
	if err := p.Revoke(ctx, grant); err != nil {
		t.Fatal(err)
	}
	set, _ := f.PermissionSet(ps)
	st := ours(readPolicy(t, set.InlinePolicy))
	if len(st) != 1 || cond(st[0], "DateLessThan", "aws:TokenIssueTime") != "2026-12-01T09:32:00Z" || set.ProvisionedPolicy != set.InlinePolicy {
		t.Errorf("after the retry: %s (provisioned %s)", set.InlinePolicy, set.ProvisionedPolicy)
	}
}

// TestForeignMarkerLeftAlone: a statement that looks like accessbot's but
// cannot be read as one is never changed or removed.
func TestForeignMarkerLeftAlone(t *testing.T) {
	f := newFake(t)
	clock := testclock.New(t0)
	p := newSessionProvider(t, f, aws.Config{RevokeSessions: true}, aws.WithClock(clock))
	group := f.AddGroup("g")
	ps := f.AddPermissionSet("Admin", "PT1H")
	f.AddAssignment(group, awsfake.Assignment{AccountID: "111111111111", PermissionSetArn: ps})
	odd := `{"Sid":"AccessbotRevokeHandWritten","Effect":"Deny","Action":"*","Resource":"*","Condition":{"StringLike":{"aws:userid":"*:mallory"}}}`
	f.SetInlinePolicy(ps, `{"Version":"2012-10-17","Statement":`+odd+`}`)
	f.AddUserFull(awsfake.User{UserName: "alice", Email: "alice@example.com"})
	if err := p.Revoke(context.Background(), access.Grant{Role: "r", Group: group, User: "alice@example.com"}); err != nil {
		t.Fatal(err)
	}
	clock.Advance(48 * time.Hour)
	if err := p.SweepSessions(context.Background(), map[string]string{"r": group}); err != nil {
		t.Fatal(err)
	}
	set, _ := f.PermissionSet(ps)
	if set.InlinePolicy != `{"Version":"2012-10-17","Statement":[`+odd+`]}` {
		t.Errorf("policy %s", set.InlinePolicy)
	}
}

// TestCheckRolesSessionDuration: check --online warns where a permission
// set's sessions outlive the role's max_duration, naming the set and the
// fix; with revoke_sessions it says the sessions are denied instead.
func TestCheckRolesSessionDuration(t *testing.T) {
	f := newFake(t)
	group := f.AddGroup("prod-admins")
	long := f.AddPermissionSet("AdministratorAccess", "PT12H")
	short := f.AddPermissionSet("ReadOnly", "PT30M")
	f.AddAssignment(group, awsfake.Assignment{AccountID: "111111111111", PermissionSetArn: long})
	f.AddAssignment(group, awsfake.Assignment{AccountID: "111111111111", PermissionSetArn: short})
	roles := map[string]access.Role{"prod-admin": {Name: "prod-admin", Group: group, MaxDuration: time.Hour}}
	lines, problems := newSessionProvider(t, f, aws.Config{}).CheckRoles(context.Background(), roles)
	all := strings.Join(lines, "\n")
	if len(problems) != 0 || !strings.Contains(all, "warning: role prod-admin: permission set AdministratorAccess ("+long+") has a session duration of 12h") ||
		!strings.Contains(all, "lower the permission set's session duration to 1h or less, or set providers.aws.revoke_sessions") ||
		strings.Contains(all, "ReadOnly") {
		t.Errorf("lines:\n%s\nproblems %v", all, problems)
	}
	lines, problems = newSessionProvider(t, f, aws.Config{RevokeSessions: true}).CheckRoles(context.Background(), roles)
	all = strings.Join(lines, "\n")
	if strings.Contains(all, "warning") || !strings.Contains(all, "revoke_sessions denies them at revocation") || len(problems) != 0 {
		t.Errorf("with revoke_sessions:\n%s\n%v", all, problems)
	}
	// Without sso:DescribePermissionSet: a note, unless revoke_sessions needs it.
	f.Deny("DescribePermissionSet")
	lines, problems = newSessionProvider(t, f, aws.Config{}).CheckRoles(context.Background(), roles)
	if len(problems) != 0 || !strings.Contains(strings.Join(lines, "\n"), "note: role prod-admin: session durations not checked") {
		t.Errorf("denied: %q %v", lines, problems)
	}
	if _, problems = newSessionProvider(t, f, aws.Config{RevokeSessions: true}).CheckRoles(context.Background(), roles); len(problems) != 1 ||
		!strings.Contains(problems[0].Error(), "AccessDeniedException") {
		t.Errorf("denied with revoke_sessions: %v", problems)
	}
	f = newFake(t)
	group = f.AddGroup("prod-admins")
	short = f.AddPermissionSet("ReadOnly", "PT30M")
	f.AddAssignment(group, awsfake.Assignment{AccountID: "111111111111", PermissionSetArn: short})
	roles = map[string]access.Role{"prod-admin": {Name: "prod-admin", Group: group, MaxDuration: time.Hour}}
	// An inline policy accessbot could not rewrite is a problem up front.
	f.SetInlinePolicy(short, `{"Version":"2012-10-17","Statement":[],"Extra":1}`)
	_, problems = newSessionProvider(t, f, aws.Config{RevokeSessions: true}).CheckRoles(context.Background(), roles)
	if len(problems) != 1 || !strings.Contains(problems[0].Error(), `inline policy of permission set ReadOnly: unexpected top-level key "Extra"`) {
		t.Errorf("problems %v", problems)
	}
}

func TestRevokeSessionsNeedsInstanceARN(t *testing.T) {
	cfg := aws.Config{IdentityStoreID: "d-1234567890", RoleSessions: map[string]bool{"r": true}}
	var got []string
	for _, err := range cfg.Validate() {
		got = append(got, err.Error())
	}
	want := []string{"providers.aws.revoke_sessions: needs instance_arn (arn:aws:sso:::instance/ssoins-...): the deny statements go into the permission sets of the instance"}
	if !slices.Equal(got, want) {
		t.Errorf("got %q", got)
	}
}

// TestSSOFakeSharedThrottleAndProvisioning: SSO Admin's APIs share one
// budget in the fake as in the service (a GetInlinePolicy right after a
// DescribePermissionSet is throttled with __type ThrottlingException);
// a provisioning answers IN_PROGRESS, then its status read SUCCEEDED.
func TestSSOFakeSharedThrottleAndProvisioning(t *testing.T) {
	f := newFake(t)
	ps := f.AddPermissionSet("Admin", "PT1H")
	c := ssoadmin.NewFromConfig(awsCfg(testKeyID, testSecret), func(o *ssoadmin.Options) {
		o.BaseEndpoint = &f.URL
		o.RetryMaxAttempts = 1
	})
	ctx := context.Background()
	inst := awsfake.DefaultInstanceARN
	f.SetThrottle(0.001, 1, 0, 0)
	if _, err := c.DescribePermissionSet(ctx, &ssoadmin.DescribePermissionSetInput{InstanceArn: &inst, PermissionSetArn: &ps}); err != nil {
		t.Fatal(err)
	}
	_, err := c.GetInlinePolicyForPermissionSet(ctx, &ssoadmin.GetInlinePolicyForPermissionSetInput{InstanceArn: &inst, PermissionSetArn: &ps})
	var te *ssotypes.ThrottlingException
	if !errors.As(err, &te) {
		t.Fatalf("second SSO Admin call within the budget: %v, want ThrottlingException", err)
	}
	f.SetThrottle(0, 0, 0, 0)
	out, err := c.ProvisionPermissionSet(ctx, &ssoadmin.ProvisionPermissionSetInput{InstanceArn: &inst, PermissionSetArn: &ps, TargetType: ssotypes.ProvisionTargetTypeAllProvisionedAccounts})
	if err != nil || out.PermissionSetProvisioningStatus.Status != ssotypes.StatusValuesInProgress {
		t.Fatalf("provision: %+v, %v", out, err)
	}
	st, err := c.DescribePermissionSetProvisioningStatus(ctx, &ssoadmin.DescribePermissionSetProvisioningStatusInput{InstanceArn: &inst, ProvisionPermissionSetRequestId: out.PermissionSetProvisioningStatus.RequestId})
	if err != nil || st.PermissionSetProvisioningStatus.Status != ssotypes.StatusValuesSucceeded || st.PermissionSetProvisioningStatus.CreatedDate == nil {
		t.Fatalf("status: %+v, %v", st, err)
	}
}

// TestDenyWaitsForEarlierProvisioning: a provisioning that outlasts one
// attempt's deadline fails the attempt (transient); the retry of the same
// revocation writes nothing new and waits for that provisioning instead of
// starting another, keeping the first attempt's revocation time.
func TestDenyWaitsForEarlierProvisioning(t *testing.T) {
	f := newFake(t)
	f.SetProvisioningPolls(1 << 30)
	clock := testclock.New(t0)
	p := newSessionProvider(t, f, aws.Config{RevokeSessions: true}, aws.WithClock(clock))
	group := f.AddGroup("g")
	ps := f.AddPermissionSet("Admin", "PT1H")
	f.AddAssignment(group, awsfake.Assignment{AccountID: "111111111111", PermissionSetArn: ps})
	f.AddMember(group, f.AddUserFull(awsfake.User{UserName: "alice", Email: "alice@example.com"}))
	grant := access.Grant{RequestID: "r1", Role: "r", Group: group, User: "alice@example.com"}
	ctx, cancel := context.WithTimeout(context.Background(), 1500*time.Millisecond)
	defer cancel()
	err := p.Revoke(ctx, grant)
	if err == nil || access.IsPermanent(err) || !strings.Contains(err.Error(), "still in progress") {
		t.Fatalf("first attempt: %v", err)
	}
	clock.Advance(time.Minute)
	f.SetProvisioningPolls(0)
	if err := p.Revoke(context.Background(), grant); err != nil {
		t.Fatal(err)
	}
	if n, puts := len(f.Provisionings()), f.Calls("PutInlinePolicyToPermissionSet"); n != 1 || puts != 1 {
		t.Errorf("%d provisionings, %d puts; want 1 and 1", n, puts)
	}
	set, _ := f.PermissionSet(ps)
	if st := ours(readPolicy(t, set.InlinePolicy)); len(st) != 1 || cond(st[0], "DateLessThan", "aws:TokenIssueTime") != "2026-12-01T09:30:00Z" || set.ProvisionedPolicy != set.InlinePolicy {
		t.Errorf("policy %s, provisioned %s", set.InlinePolicy, set.ProvisionedPolicy)
	}
	// A new revocation (another request) starts from the current time.
	f.AddMember(group, mustUser(t, f, "alice@example.com"))
	clock.Advance(time.Minute)
	if err := p.Revoke(context.Background(), access.Grant{RequestID: "r2", Role: "r", Group: group, User: "alice@example.com"}); err != nil {
		t.Fatal(err)
	}
	set, _ = f.PermissionSet(ps)
	if st := ours(readPolicy(t, set.InlinePolicy)); len(st) != 1 || cond(st[0], "DateLessThan", "aws:TokenIssueTime") != "2026-12-01T09:32:00Z" {
		t.Errorf("second request: %s", set.InlinePolicy)
	}
}

func mustUser(t *testing.T, f *awsfake.Server, email string) string {
	t.Helper()
	id, ok := f.UserID(email)
	if !ok {
		t.Fatalf("no user %s", email)
	}
	return id
}

// TestDenyRewritesAfterALostUpdate: another writer overwrites the policy
// right after accessbot's put (the API has no compare-and-set); the check
// that follows sees the statement missing and writes it again on top of
// the other writer's policy, which it keeps.
func TestDenyRewritesAfterALostUpdate(t *testing.T) {
	f := newFake(t)
	clock := testclock.New(t0)
	p := newSessionProvider(t, f, aws.Config{RevokeSessions: true}, aws.WithClock(clock))
	group := f.AddGroup("g")
	ps := f.AddPermissionSet("Admin", "PT1H")
	f.AddAssignment(group, awsfake.Assignment{AccountID: "111111111111", PermissionSetArn: ps})
	f.AddUserFull(awsfake.User{UserName: "alice", Email: "alice@example.com"})
	other := `{"Version":"2012-10-17","Statement":[{"Sid":"Other","Effect":"Allow","Action":"s3:ListBucket","Resource":"*"}]}`
	f.OverwriteAfterPut(other)
	if err := p.Revoke(context.Background(), access.Grant{RequestID: "r1", Role: "r", Group: group, User: "alice@example.com"}); err != nil {
		t.Fatal(err)
	}
	set, _ := f.PermissionSet(ps)
	if !strings.Contains(set.InlinePolicy, `"Sid":"Other"`) || len(ours(readPolicy(t, set.InlinePolicy))) != 1 || set.ProvisionedPolicy != set.InlinePolicy {
		t.Errorf("policy %s (provisioned %s)", set.InlinePolicy, set.ProvisionedPolicy)
	}
	if n := f.Calls("PutInlinePolicyToPermissionSet"); n != 2 {
		t.Errorf("%d puts, want 2", n)
	}
	// Overwritten every time: a clear error after three tries.
	clock.Advance(time.Minute)
	for range 3 {
		f.OverwriteAfterPut(other)
	}
	err := p.Revoke(context.Background(), access.Grant{RequestID: "r2", Role: "r", Group: group, User: "alice@example.com"})
	if err == nil || !strings.Contains(err.Error(), "overwritten three times by concurrent writers") {
		t.Errorf("always overwritten: %v", err)
	}
}
