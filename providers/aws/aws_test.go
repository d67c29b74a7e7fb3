package aws_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/accessbot/accessbot/access"
	"github.com/accessbot/accessbot/providers/aws"
	"github.com/accessbot/accessbot/providers/aws/awsfake"
)

func TestNewValidates(t *testing.T) {
	for _, c := range []struct {
		cfg  aws.Config
		want string
	}{
		{aws.Config{IdentityStoreID: "", Region: "us-east-1"}, "identity_store_id"},
		{aws.Config{IdentityStoreID: "d-12345", Region: "us-east-1"}, "identity_store_id"},
		{aws.Config{IdentityStoreID: "d-1234567890", Region: "us-east-1", InstanceARN: "ssoins-1"}, "instance_arn"},
	} {
		_, err := aws.New(context.Background(), c.cfg, nil)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("New(%+v) = %v, want an error about %s", c.cfg, err, c.want)
		}
	}
}

func TestErrorMessages(t *testing.T) {
	f := newFake(t)
	p := newProvider(t, f.URL, testKeyID, testSecret)
	group := f.AddGroup("prod-admin")
	f.AddUser("alice@example.com")
	ctx := context.Background()
	missing := "906700000a-00000000-0000-0000-0000-000000000000"

	err := p.Grant(ctx, access.Grant{Group: missing, User: "alice@example.com"})
	want := "aws: add alice@example.com to group " + missing + ": ResourceNotFoundException: GROUP not found."
	if err == nil || err.Error() != want {
		t.Errorf("unknown group:\n got %v\nwant %s", err, want)
	}
	err = p.Grant(ctx, access.Grant{Group: group, User: "bob@example.com"})
	if !errors.Is(err, access.ErrUnknownUser) || !strings.Contains(err.Error(), "no user with emails.value bob@example.com in identity store d-1234567890") {
		t.Errorf("unknown user: %v", err)
	}
	err = p.Grant(ctx, access.Grant{Group: "not-a-group-id", User: "alice@example.com"})
	if !access.IsPermanent(err) || !strings.Contains(err.Error(), "ValidationException") {
		t.Errorf("malformed group id: %v, want a permanent ValidationException", err)
	}
	bad := newProvider(t, f.URL, wrongKeyID, wrongSec)
	err = bad.Grant(ctx, access.Grant{Group: group, User: "alice@example.com"})
	if !access.IsPermanent(err) || !strings.Contains(err.Error(), "UnrecognizedClientException: The security token included in the request is invalid.") {
		t.Errorf("wrong credentials: %v", err)
	}
	if strings.Contains(err.Error(), wrongSec) {
		t.Errorf("error shows the secret: %v", err)
	}
}

func TestUserNameFallback(t *testing.T) {
	f := newFake(t)
	group := f.AddGroup("g")
	f.AddUserFull(awsfake.User{UserName: "carol@example.com"}) // no email attribute
	ctx := context.Background()
	strict := newProvider(t, f.URL, testKeyID, testSecret)
	if err := strict.Grant(ctx, access.Grant{Group: group, User: "carol@example.com"}); !errors.Is(err, access.ErrUnknownUser) {
		t.Fatalf("without UserNameIsEmail: %v, want ErrUnknownUser", err)
	}
	cfg := aws.Config{IdentityStoreID: awsfake.DefaultIdentityStoreID, UserNameIsEmail: true}
	p, err := aws.New(ctx, cfg, nil, aws.WithAWSConfig(awsCfg(testKeyID, testSecret)), aws.WithEndpoint(f.URL))
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Grant(ctx, access.Grant{Group: group, User: "carol@example.com"}); err != nil {
		t.Fatalf("with UserNameIsEmail: %v", err)
	}
	if got := f.MemberEmails(group); len(got) != 1 {
		t.Fatalf("members %v", got)
	}
	// Members falls back to the user name for users without an email.
	if got, err := p.Members(ctx, group); err != nil || fmt.Sprint(got) != "[carol@example.com]" {
		t.Fatalf("Members = %v, %v", got, err)
	}
}

func TestRetriesServerErrorsAndThrottling(t *testing.T) {
	f := newFake(t)
	group := f.AddGroup("g")
	f.AddUser("dave@example.com")
	p := newProvider(t, f.URL, testKeyID, testSecret, aws.WithRetry(6, 50*time.Millisecond))
	ctx := context.Background()

	f.FailNext(4, 503) // more than the SDK's default 3 attempts
	if err := p.Grant(ctx, access.Grant{Group: group, User: "dave@example.com"}); err != nil {
		t.Fatalf("Grant after 4 server errors: %v", err)
	}
	// Throttling answered with 429 and Retry-After.
	f.SetThrottle(2, 1, http.StatusTooManyRequests, 1)
	var wg sync.WaitGroup
	errs := make([]error, 4)
	for i := range errs {
		wg.Go(func() { errs[i] = p.Revoke(ctx, access.Grant{Group: group, User: "dave@example.com"}) })
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			t.Fatalf("Revoke under 429 throttling: %v", err)
		}
	}
	if f.Throttled() == 0 {
		t.Errorf("the fake throttled nothing; the test did not exercise throttling")
	}
	if len(f.Members(group)) != 0 {
		t.Fatalf("still a member")
	}

	// Out of attempts: a transient error naming the code.
	f.SetThrottle(0, 0, 0, 0)
	f.FailNext(100, 500)
	err := p.Grant(ctx, access.Grant{Group: group, User: "dave@example.com"})
	if err == nil || access.IsPermanent(err) || !strings.Contains(err.Error(), "InternalServerException") {
		t.Fatalf("persistent 500s: %v, want a transient InternalServerException", err)
	}
}

func TestMembersPaginatesAndSeesOutOfBand(t *testing.T) {
	f := newFake(t)
	f.SetPageSize(3)
	group := f.AddGroup("g")
	p := newProvider(t, f.URL, testKeyID, testSecret)
	ctx := context.Background()
	var want []string
	for i := range 8 {
		email := fmt.Sprintf("m%d@example.com", i)
		id := f.AddUser(email)
		if i%2 == 0 {
			if err := p.Grant(ctx, access.Grant{Group: group, User: email}); err != nil {
				t.Fatal(err)
			}
		} else {
			f.AddMember(group, id) // out of band
		}
		want = append(want, email)
	}
	got, err := p.Members(ctx, group)
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("Members = %v, want %v", got, want)
	}
	if n := f.Calls("ListGroupMemberships"); n != 3 {
		t.Errorf("ListGroupMemberships called %d times for 8 members in pages of 3, want 3", n)
	}
}

func TestCheck(t *testing.T) {
	f := newFake(t)
	p := newProvider(t, f.URL, testKeyID, testSecret)
	admin, read := f.AddGroup("prod-admin"), f.AddGroup("prod-read")
	f.AddAssignment(admin, awsfake.Assignment{AccountID: "111122223333", PermissionSetArn: "arn:aws:sso:::permissionSet/ssoins-1234567890abcdef/ps-0123456789abcdef"})
	missing := "906700000a-00000000-0000-0000-0000-000000000000"
	lines, problems := p.Check(context.Background(), map[string]string{"prod-admin": admin, "prod-read": read, "gone": missing})
	out := strings.Join(lines, "\n")
	for _, want := range []string{"identity store d-1234567890 answers", "role prod-admin: group " + admin + " (prod-admin) exists",
		"holds 111122223333:ps-0123456789abcdef", "role prod-read: group " + read + " holds no account assignments"} {
		if !strings.Contains(out, want) {
			t.Errorf("Check lines lack %q:\n%s", want, out)
		}
	}
	if len(problems) != 1 || !strings.Contains(problems[0].Error(), "role gone: group "+missing+": ResourceNotFoundException") {
		t.Errorf("problems = %v, want one about the missing group", problems)
	}

	f.Deny("ListAccountAssignmentsForPrincipal")
	lines, problems = p.Check(context.Background(), map[string]string{"prod-admin": admin})
	if len(problems) != 0 || !strings.Contains(strings.Join(lines, "\n"), "note: account assignments not checked") {
		t.Errorf("AccessDenied on ssoadmin: lines %q problems %v, want a note only", lines, problems)
	}

	bad := newProvider(t, f.URL, wrongKeyID, wrongSec)
	if _, problems := bad.Check(context.Background(), map[string]string{"prod-admin": admin}); len(problems) != 1 || !strings.Contains(problems[0].Error(), "UnrecognizedClientException") {
		t.Errorf("wrong credentials: problems %v", problems)
	}
}

func TestFakeProtocol(t *testing.T) {
	f := newFake(t)
	post := func(target, authz, body string) (int, http.Header, map[string]any) {
		req, _ := http.NewRequest(http.MethodPost, f.URL+"/", strings.NewReader(body))
		req.Header.Set("Content-Type", "application/x-amz-json-1.1")
		req.Header.Set("X-Amz-Target", target)
		if authz != "" {
			req.Header.Set("Authorization", authz)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		raw, _ := io.ReadAll(resp.Body)
		var m map[string]any
		if err := json.NewDecoder(bytes.NewReader(raw)).Decode(&m); err != nil {
			t.Fatalf("body %q: %v", raw, err)
		}
		return resp.StatusCode, resp.Header, m
	}
	authz := "AWS4-HMAC-SHA256 Credential=" + testKeyID + "/20260101/us-east-1/identitystore/aws4_request, SignedHeaders=host, Signature=00"
	if code, _, body := post("AWSIdentityStore.DescribeGroup", "", `{}`); code != 403 || body["__type"] != "com.amazonaws.identitystore#MissingAuthenticationTokenException" {
		t.Errorf("unsigned request: %d %v", code, body)
	}
	group := f.AddGroup("g")
	user := f.AddUser("erin@example.com")
	req := fmt.Sprintf(`{"IdentityStoreId":"%s","GroupId":"%s","MemberId":{"UserId":"%s"}}`, f.IdentityStoreID(), group, user)
	if code, _, body := post("AWSIdentityStore.CreateGroupMembership", authz, req); code != 200 || body["MembershipId"] == "" {
		t.Errorf("create: %d %v", code, body)
	}
	code, h, body := post("AWSIdentityStore.CreateGroupMembership", authz, req)
	if code != 400 || !strings.HasPrefix(h.Get("X-Amzn-ErrorType"), "ConflictException") ||
		body["__type"] != "com.amazonaws.identitystore#ConflictException" || body["Message"] != "Member and Group relationship already exists" {
		t.Errorf("duplicate: %d %v %v", code, h, body)
	}
	if code, _, body := post("AWSIdentityStore.IsMemberInGroups", authz, fmt.Sprintf(`{"IdentityStoreId":"%s","MemberId":{"UserId":"%s"},"GroupIds":["%s"]}`, f.IdentityStoreID(), user, group)); code != 200 ||
		fmt.Sprint(body["Results"]) != fmt.Sprintf("[map[GroupId:%s MemberId:map[UserId:%s] MembershipExists:true]]", group, user) {
		t.Errorf("IsMemberInGroups: %d %v", code, body)
	}
	if code, _, body := post("AWSIdentityStore.Frobnicate", authz, `{"IdentityStoreId":"d-1234567890"}`); code != 400 || !strings.Contains(fmt.Sprint(body["__type"]), "UnknownOperationException") {
		t.Errorf("unknown op: %d %v", code, body)
	}
	f.SetThrottle(1, 1, 0, 0)
	post("AWSIdentityStore.DescribeGroup", authz, `{}`)
	if code, _, body := post("AWSIdentityStore.DescribeGroup", authz, `{}`); code != 400 || body["Message"] != "Rate exceeded" || f.Throttled() != 1 {
		t.Errorf("throttle: %d %v (throttled %d)", code, body, f.Throttled())
	}
}

// Identities have one normal form (access.NormalizeIdentity): a look-alike
// address (the Kelvin sign K, U+212A) is neither folded onto kate@ in the
// user cache nor looked up, and a member's address is reported as the
// store has it, not folded by strings.ToLower.
func TestLookAlikeIdentityNotFolded(t *testing.T) {
	f := newFake(t)
	g1, g2 := f.AddGroup("g1"), f.AddGroup("g2")
	f.AddUser("kate@example.com")
	p := newProvider(t, f.URL, testKeyID, testSecret)
	ctx := context.Background()
	if err := p.Grant(ctx, access.Grant{Group: g1, User: "kate@example.com"}); err != nil {
		t.Fatal(err)
	}
	err := p.Grant(ctx, access.Grant{Group: g2, User: "\u212Aate@example.com"})
	if !errors.Is(err, access.ErrBadIdentity) || !access.IsPermanent(err) {
		t.Errorf("Grant to the Kelvin-sign address: %v, want a permanent ErrBadIdentity", err)
	}
	if got := f.MemberEmails(g2); len(got) != 0 {
		t.Fatalf("the look-alike address made %v members of g2", got)
	}

	id := f.AddUser("\u212Aate@example.com")
	f.AddMember(g2, id) // out of band
	got, err := p.Members(ctx, g2)
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(got) != "[\u212Aate@example.com]" {
		t.Fatalf("Members = %q, want the address as stored (not folded to kate@)", got)
	}
}
