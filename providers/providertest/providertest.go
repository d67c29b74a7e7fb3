// Package providertest is the contract every identity provider adapter
// (providers/aws, providers/okta) must pass: idempotent Grant and Revoke
// under duplicates, the error classes the engine relies on (unknown and
// disabled users, unknown groups, bad credentials: permanent; an
// unreachable endpoint: transient), surviving a throttled burst, and
// Members listing exactly the members.
//
// Each adapter's tests call Run against its protocol-faithful fake
// (awsfake, oktafake on 127.0.0.1) always, and against a real organisation
// (TestContractRealOrg) when the environment names one; without the
// variables that test is skipped with a log line saying which to set.
//
// AWS (providers/aws): ACCESSBOT_AWS_IDENTITY_STORE_ID,
// ACCESSBOT_AWS_TEST_GROUP (an Identity Store group id that grants nothing
// important) and ACCESSBOT_AWS_TEST_USER (an enabled user's email);
// optional ACCESSBOT_AWS_REGION (else AWS_REGION),
// ACCESSBOT_AWS_TEST_DISABLED_USER and ACCESSBOT_AWS_INSTANCE_ARN.
// Credentials come from the default chain (AWS_PROFILE, AWS_ACCESS_KEY_ID,
// IRSA, instance role).
//
// Okta (providers/okta): OKTA_ORG_URL; OKTA_API_TOKEN, or OKTA_CLIENT_ID
// with OKTA_PRIVATE_KEY_FILE (and optional OKTA_KEY_ID); ACCESSBOT_OKTA_TEST_GROUP
// (an OKTA_GROUP id) and ACCESSBOT_OKTA_TEST_USER (an active user's
// login or email); optional ACCESSBOT_OKTA_TEST_DISABLED_USER.
//
// For example:
//
//	ACCESSBOT_AWS_IDENTITY_STORE_ID=d-1234567890 \
//	ACCESSBOT_AWS_TEST_GROUP=906700000a-... ACCESSBOT_AWS_TEST_USER=jit-test@example.com \
//	AWS_PROFILE=sandbox go test -run TestContractRealOrg -v ./providers/aws/
//
//	OKTA_ORG_URL=https://acme-sandbox.okta.com OKTA_API_TOKEN=... \
//	ACCESSBOT_OKTA_TEST_GROUP=00g... ACCESSBOT_OKTA_TEST_USER=jit-test@example.com \
//	go test -run TestContractRealOrg -v ./providers/okta/
//
// Against a real organisation the suite adds and removes the one test user
// in the one test group and removes it again at the end of each case; the
// cases that need hooks into a fake (out-of-band members, throttling, more
// users, wrong credentials, an unreachable endpoint) are skipped there, and
// membership checks look for the test user only.
package providertest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/accessbot/accessbot/access"
)

// Provider is what the suite drives: a Provisioner with the optional
// capabilities both adapters have.
type Provider interface {
	access.Provisioner
	access.MemberLister
	access.UserChecker
}

// Env is one adapter under test with hooks into what it talks to. Optional
// hooks left nil skip the cases that need them.
type Env struct {
	Provider Provider

	// NewGroup returns the id of a managed group (a new, empty one on a
	// fake; the configured test group on a real org).
	NewGroup func(t *testing.T) string
	// MissingGroup is a well-formed id of a group that does not exist.
	MissingGroup string
	// NotFoundCode is the provider's error code for a missing resource
	// ("ResourceNotFoundException", "E0000007"); messages must name it.
	NotFoundCode string

	// NewUser returns the email of an enabled user (a new one on a fake,
	// the configured test user on a real org).
	NewUser func(t *testing.T) string
	// UnknownUser is an email no user has.
	UnknownUser string
	// NewDisabledUser (optional) returns the email of a disabled user.
	NewDisabledUser func(t *testing.T) string

	// Fake reports whether Env talks to a fake: every user and group is
	// then the test's own, and membership checks are exact.
	Fake bool
	// ReadMembers (optional) returns a group's member emails as the
	// service holds them, read past the adapter.
	ReadMembers func(t *testing.T, group string) []string
	// AddMember (optional) adds a user to a group out of band.
	AddMember func(t *testing.T, group, email string)
	// DeleteUser (optional) deletes a user out of band.
	DeleteUser func(t *testing.T, email string)

	// BadCredentials (optional) returns an adapter for the same service
	// with wrong credentials; Secret is the wrong secret it uses, which
	// must not appear in any error.
	BadCredentials func(t *testing.T) Provider
	Secret         string
	// Unreachable (optional) returns an adapter whose endpoint refuses
	// connections, configured to give up quickly.
	Unreachable func(t *testing.T) Provider
	// Throttle (optional) makes the service throttle hard until the test
	// ends and returns a counter of throttled responses.
	Throttle func(t *testing.T) (throttled func() int64)
	// Burst is the number of users in the throttled burst (default 20).
	Burst int
}

// Run runs the contract. newEnv is called once per case.
func Run(t *testing.T, newEnv func(t *testing.T) Env) {
	cases := []struct {
		name string
		run  func(t *testing.T, e Env)
	}{
		{"GrantTwice", grantTwice},
		{"RevokeTwice", revokeTwice},
		{"RevokeNeverGranted", revokeNeverGranted},
		{"ConcurrentDuplicates", concurrentDuplicates},
		{"CheckUser", checkUser},
		{"UnknownUser", unknownUser},
		{"RevokeDeletedUser", revokeDeletedUser},
		{"DisabledUser", disabledUser},
		{"UnknownGroup", unknownGroup},
		{"WrongCredentials", wrongCredentials},
		{"Unreachable", unreachable},
		{"ThrottledBurst", throttledBurst},
		{"MembersExact", membersExact},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			e := newEnv(t)
			c.run(t, e)
		})
	}
}

func ctxFor(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

func grantOf(group, user string) access.Grant {
	return access.Grant{RequestID: "req-" + user, Role: "contract-test", Group: group, User: user}
}

// cleanupRevoke removes the user again at the end (a real org must be left
// as it was found).
func cleanupRevoke(t *testing.T, e Env, group, user string) {
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if err := e.Provider.Revoke(ctx, grantOf(group, user)); err != nil {
			t.Errorf("cleanup: revoke %s from %s: %v", user, group, err)
		}
	})
}

// membership counts how often user appears in group, read past the adapter
// when the env can, through Members otherwise.
func membership(t *testing.T, e Env, group, user string) int {
	t.Helper()
	var list []string
	if e.ReadMembers != nil {
		list = e.ReadMembers(t, group)
	} else {
		var err error
		list, err = e.Provider.Members(ctxFor(t, time.Minute), group)
		if err != nil {
			t.Fatalf("Members(%s): %v", group, err)
		}
	}
	n := 0
	for _, m := range list {
		if strings.EqualFold(m, user) {
			n++
		}
	}
	return n
}

func mustNil(t *testing.T, what string, err error) {
	t.Helper()
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

func grantTwice(t *testing.T, e Env) {
	ctx := ctxFor(t, time.Minute)
	group, user := e.NewGroup(t), e.NewUser(t)
	cleanupRevoke(t, e, group, user)
	mustNil(t, "first Grant", e.Provider.Grant(ctx, grantOf(group, user)))
	mustNil(t, "second Grant (already a member)", e.Provider.Grant(ctx, grantOf(group, user)))
	if n := membership(t, e, group, user); n != 1 {
		t.Fatalf("after two grants %s is a member %d times, want 1", user, n)
	}
}

func revokeTwice(t *testing.T, e Env) {
	ctx := ctxFor(t, time.Minute)
	group, user := e.NewGroup(t), e.NewUser(t)
	cleanupRevoke(t, e, group, user)
	mustNil(t, "Grant", e.Provider.Grant(ctx, grantOf(group, user)))
	mustNil(t, "first Revoke", e.Provider.Revoke(ctx, grantOf(group, user)))
	mustNil(t, "second Revoke (not a member)", e.Provider.Revoke(ctx, grantOf(group, user)))
	if n := membership(t, e, group, user); n != 0 {
		t.Fatalf("after revoke %s is still a member (%d)", user, n)
	}
}

func revokeNeverGranted(t *testing.T, e Env) {
	ctx := ctxFor(t, time.Minute)
	group, user := e.NewGroup(t), e.NewUser(t)
	if !e.Fake {
		// A real org may still hold the test user from an earlier run.
		mustNil(t, "preparing Revoke", e.Provider.Revoke(ctx, grantOf(group, user)))
	}
	mustNil(t, "Revoke of a non-member", e.Provider.Revoke(ctx, grantOf(group, user)))
	if n := membership(t, e, group, user); n != 0 {
		t.Fatalf("%s is a member (%d) after revoking a grant never made", user, n)
	}
}

// concurrentDuplicates is what double clicks, two replicas and retries look
// like to a provider: the same call several times at once.
func concurrentDuplicates(t *testing.T, e Env) {
	ctx := ctxFor(t, 2*time.Minute)
	group, user := e.NewGroup(t), e.NewUser(t)
	cleanupRevoke(t, e, group, user)
	for _, op := range []struct {
		name string
		call func(context.Context, access.Grant) error
		want int
	}{{"Grant", e.Provider.Grant, 1}, {"Revoke", e.Provider.Revoke, 0}} {
		errs := make([]error, 6)
		var wg sync.WaitGroup
		for i := range errs {
			wg.Go(func() { errs[i] = op.call(ctx, grantOf(group, user)) })
		}
		wg.Wait()
		for i, err := range errs {
			if err != nil {
				t.Fatalf("concurrent %s #%d: %v", op.name, i, err)
			}
		}
		if n := membership(t, e, group, user); n != op.want {
			t.Fatalf("after concurrent %ss %s is a member %d times, want %d", op.name, user, n, op.want)
		}
	}
}

func checkUser(t *testing.T, e Env) {
	mustNil(t, "CheckUser of an enabled user", e.Provider.CheckUser(ctxFor(t, time.Minute), e.NewUser(t)))
}

func wantPermanent(t *testing.T, what string, err error, sentinel error, mentions ...string) {
	t.Helper()
	if err == nil {
		t.Fatalf("%s: no error", what)
	}
	if !access.IsPermanent(err) {
		t.Errorf("%s: %v: not permanent", what, err)
	}
	if sentinel != nil && !errors.Is(err, sentinel) {
		t.Errorf("%s: %v: does not wrap %v", what, err, sentinel)
	}
	for _, m := range mentions {
		if !strings.Contains(err.Error(), m) {
			t.Errorf("%s: %q does not mention %q", what, err, m)
		}
	}
}

func unknownUser(t *testing.T, e Env) {
	ctx := ctxFor(t, time.Minute)
	group := e.NewGroup(t)
	wantPermanent(t, "Grant to an unknown user", e.Provider.Grant(ctx, grantOf(group, e.UnknownUser)), access.ErrUnknownUser, e.UnknownUser, group)
	wantPermanent(t, "CheckUser of an unknown user", e.Provider.CheckUser(ctx, e.UnknownUser), access.ErrUnknownUser, e.UnknownUser)
	// The membership of someone unknown cannot be checked: the engine must
	// hear about it rather than believe the access is gone.
	wantPermanent(t, "Revoke of an unknown user", e.Provider.Revoke(ctx, grantOf(group, e.UnknownUser)), access.ErrUnknownUser, e.UnknownUser)
}

// revokeDeletedUser: a user deleted after a grant holds no membership;
// Revoke says so (nil, or an error wrapping access.ErrUnknownUser) and
// never with a transient error, which would be retried for ever.
func revokeDeletedUser(t *testing.T, e Env) {
	if e.DeleteUser == nil {
		t.Skip("no hook to delete a user in this environment")
	}
	ctx := ctxFor(t, time.Minute)
	group, user := e.NewGroup(t), e.NewUser(t)
	mustNil(t, "Grant", e.Provider.Grant(ctx, grantOf(group, user)))
	mustNil(t, "Revoke", e.Provider.Revoke(ctx, grantOf(group, user))) // the user id is cached now
	mustNil(t, "Grant", e.Provider.Grant(ctx, grantOf(group, user)))
	e.DeleteUser(t, user)
	if err := e.Provider.Revoke(ctx, grantOf(group, user)); err != nil && !errors.Is(err, access.ErrUnknownUser) {
		t.Fatalf("Revoke of a deleted user: %v, want nil or access.ErrUnknownUser", err)
	}
}

func disabledUser(t *testing.T, e Env) {
	if e.NewDisabledUser == nil {
		t.Skip("no disabled user in this environment")
	}
	ctx := ctxFor(t, time.Minute)
	group, user := e.NewGroup(t), e.NewDisabledUser(t)
	wantPermanent(t, "Grant to a disabled user", e.Provider.Grant(ctx, grantOf(group, user)), access.ErrUserDisabled, user)
	wantPermanent(t, "CheckUser of a disabled user", e.Provider.CheckUser(ctx, user), access.ErrUserDisabled, user)
	if n := membership(t, e, group, user); n != 0 {
		t.Fatalf("disabled user %s was added to %s", user, group)
	}
	// Removing access from a disabled user must work.
	mustNil(t, "Revoke of a disabled user", e.Provider.Revoke(ctx, grantOf(group, user)))
}

func unknownGroup(t *testing.T, e Env) {
	ctx := ctxFor(t, time.Minute)
	user := e.NewUser(t)
	wantPermanent(t, "Grant to an unknown group", e.Provider.Grant(ctx, grantOf(e.MissingGroup, user)), nil, e.MissingGroup, e.NotFoundCode, user)
	wantPermanent(t, "Revoke from an unknown group", e.Provider.Revoke(ctx, grantOf(e.MissingGroup, user)), nil, e.MissingGroup, e.NotFoundCode, user)
	if errors.Is(e.Provider.Grant(ctx, grantOf(e.MissingGroup, user)), access.ErrUnknownUser) {
		t.Errorf("an unknown group is reported as an unknown user")
	}
}

func wrongCredentials(t *testing.T, e Env) {
	if e.BadCredentials == nil {
		t.Skip("no wrong-credentials hook in this environment")
	}
	ctx := ctxFor(t, time.Minute)
	p := e.BadCredentials(t)
	group, user := e.NewGroup(t), e.NewUser(t)
	for name, err := range map[string]error{
		"Grant":     p.Grant(ctx, grantOf(group, user)),
		"Revoke":    p.Revoke(ctx, grantOf(group, user)),
		"CheckUser": p.CheckUser(ctx, user),
	} {
		wantPermanent(t, name+" with wrong credentials", err, nil)
		if errors.Is(err, access.ErrUnknownUser) {
			t.Errorf("%s with wrong credentials reports an unknown user: %v", name, err)
		}
		if e.Secret != "" && strings.Contains(err.Error(), e.Secret) {
			t.Errorf("%s: the error shows the secret: %v", name, err)
		}
	}
	if _, err := p.Members(ctx, group); err == nil || !access.IsPermanent(err) {
		t.Errorf("Members with wrong credentials: %v, want a permanent error", err)
	}
	if n := membership(t, e, group, user); n != 0 {
		t.Fatalf("a grant with wrong credentials added the user")
	}
}

func unreachable(t *testing.T, e Env) {
	if e.Unreachable == nil {
		t.Skip("no unreachable-endpoint hook in this environment")
	}
	ctx := ctxFor(t, time.Minute)
	p := e.Unreachable(t)
	group, user := e.NewGroup(t), e.NewUser(t)
	for name, err := range map[string]error{
		"Grant":  p.Grant(ctx, grantOf(group, user)),
		"Revoke": p.Revoke(ctx, grantOf(group, user)),
	} {
		if err == nil {
			t.Fatalf("%s against an unreachable endpoint: no error", name)
		}
		if access.IsPermanent(err) {
			t.Errorf("%s against an unreachable endpoint: %v: permanent, want transient", name, err)
		}
		if !strings.Contains(err.Error(), "unreachable") || !strings.Contains(err.Error(), user) {
			t.Errorf("%s: %q should say the endpoint is unreachable and name the user", name, err)
		}
	}
}

func throttledBurst(t *testing.T, e Env) {
	if e.Throttle == nil {
		t.Skip("no throttling hook in this environment")
	}
	n := e.Burst
	if n == 0 {
		n = 20
	}
	ctx := ctxFor(t, 5*time.Minute)
	group := e.NewGroup(t)
	users := make([]string, n)
	for i := range users {
		users[i] = e.NewUser(t)
	}
	throttled := e.Throttle(t)
	start := time.Now()
	burst := func(name string, call func(context.Context, access.Grant) error) {
		errs := make([]error, n)
		var wg sync.WaitGroup
		for i, u := range users {
			wg.Go(func() { errs[i] = call(ctx, grantOf(group, u)) })
		}
		wg.Wait()
		for i, err := range errs {
			if err != nil {
				t.Fatalf("%s %s under throttling: %v", name, users[i], err)
			}
		}
	}
	burst("Grant", e.Provider.Grant)
	for _, u := range users {
		if membership(t, e, group, u) != 1 {
			t.Fatalf("%s missing after the throttled grants", u)
		}
	}
	burst("Revoke", e.Provider.Revoke)
	for _, u := range users {
		if membership(t, e, group, u) != 0 {
			t.Fatalf("%s still a member after the throttled revocations", u)
		}
	}
	t.Logf("throttled burst: %d grants + %d revocations in %v, %d throttled responses", n, n, time.Since(start).Round(time.Millisecond), throttled())
}

func membersExact(t *testing.T, e Env) {
	ctx := ctxFor(t, time.Minute)
	group := e.NewGroup(t)
	granted := []string{e.NewUser(t)}
	if e.Fake {
		granted = append(granted, e.NewUser(t))
	}
	for _, u := range granted {
		cleanupRevoke(t, e, group, u)
		mustNil(t, "Grant "+u, e.Provider.Grant(ctx, grantOf(group, u)))
	}
	want := slices.Clone(granted)
	if e.AddMember != nil {
		outOfBand := e.NewUser(t)
		e.AddMember(t, group, outOfBand)
		want = append(want, outOfBand)
	}
	got, err := e.Provider.Members(ctx, group)
	mustNil(t, "Members", err)
	lower := func(l []string) []string {
		out := make([]string, len(l))
		for i, s := range l {
			out[i] = strings.ToLower(s)
		}
		slices.Sort(out)
		return out
	}
	if !e.Fake {
		for _, u := range want {
			if !slices.Contains(lower(got), strings.ToLower(u)) {
				t.Fatalf("Members(%s) = %v, missing %s", group, got, u)
			}
		}
		return
	}
	if fmt.Sprint(lower(got)) != fmt.Sprint(lower(want)) {
		t.Fatalf("Members(%s) = %v, want %v", group, lower(got), lower(want))
	}
	if e.ReadMembers != nil {
		if held := lower(e.ReadMembers(t, group)); fmt.Sprint(held) != fmt.Sprint(lower(got)) {
			t.Fatalf("Members(%s) = %v, but the service holds %v", group, lower(got), held)
		}
	}
}
