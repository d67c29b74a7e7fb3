package okta_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/accessbot/accessbot/access"
	"github.com/accessbot/accessbot/providers/okta"
	"github.com/accessbot/accessbot/providers/okta/oktafake"
)

func TestNewValidates(t *testing.T) {
	garbage := filepath.Join(t.TempDir(), "garbage.pem")
	os.WriteFile(garbage, []byte("not a key"), 0o600)
	for _, c := range []struct {
		cfg  okta.Config
		want string
	}{
		{okta.Config{APIToken: "x"}, "org_url is required"},
		{okta.Config{OrgURL: "http://acme.okta.com", APIToken: "x"}, "https is required"},
		{okta.Config{OrgURL: "https://acme.okta.com/api/v1", APIToken: "x"}, "without path"},
		{okta.Config{OrgURL: "ftp://acme.okta.com", APIToken: "x"}, "scheme must be https"},
		{okta.Config{OrgURL: "https://acme.okta.com"}, "no credentials"},
		{okta.Config{OrgURL: "https://acme.okta.com", APIToken: "x", ClientID: "c", PrivateKeyFile: garbage}, "not both"},
		// private_key is the config key of PrivateKeyFile.
		{okta.Config{OrgURL: "https://acme.okta.com", ClientID: "c"}, "okta: private_key is missing: an OAuth service app needs both client_id and private_key"},
		{okta.Config{OrgURL: "https://acme.okta.com", PrivateKeyFile: garbage}, "okta: client_id is missing: an OAuth service app needs both client_id and private_key"},
		{okta.Config{OrgURL: "https://acme.okta.com", ClientID: "c", PrivateKeyFile: "/nonexistent/key.pem"}, "no such file"},
		{okta.Config{OrgURL: "https://acme.okta.com", ClientID: "c", PrivateKeyFile: garbage}, "no PEM private key"},
		{okta.Config{OrgURL: "https://acme.okta.com", APIToken: "SSWS abc"}, "bare token"},
	} {
		_, err := okta.New(c.cfg, nil)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("New(%+v) = %v, want an error containing %q", c.cfg, err, c.want)
		}
		if err != nil && c.cfg.APIToken != "" && c.cfg.APIToken != "x" && strings.Contains(err.Error(), "abc") {
			t.Errorf("error shows the token: %v", err)
		}
	}
	for _, ok := range []string{"https://acme.okta.com/", "http://127.0.0.1:8080", "http://localhost:1234"} {
		if _, err := okta.New(okta.Config{OrgURL: ok, APIToken: "x"}, nil); err != nil {
			t.Errorf("New(%s): %v", ok, err)
		}
	}
	for _, typ := range []string{"PRIVATE KEY", "RSA PRIVATE KEY"} {
		if _, err := okta.New(okta.Config{OrgURL: "https://acme.okta.com", ClientID: "c", PrivateKeyFile: writeKey(t, testRSAKey(t), typ)}, nil); err != nil {
			t.Errorf("RSA key as %s: %v", typ, err)
		}
	}
}

func TestErrorMessages(t *testing.T) {
	f := newFake(t)
	p := newProvider(t, okta.Config{OrgURL: f.URL, APIToken: apiToken})
	f.AddUser("alice@example.com")
	ctx := context.Background()
	err := p.Grant(ctx, access.Grant{Group: "00g1missing", User: "alice@example.com"})
	want := "okta: add alice@example.com to 00g1missing: E0000007 Not found: Resource not found: 00g1missing (Group)"
	if err == nil || err.Error() != want {
		t.Errorf("unknown group:\n got %v\nwant %s", err, want)
	}
	app := f.AddGroupOfType("Salesforce users", oktafake.AppGroup)
	err = p.Grant(ctx, access.Grant{Group: app, User: "alice@example.com"})
	if !access.IsPermanent(err) || !strings.Contains(err.Error(), "is an APP_GROUP: only OKTA_GROUP groups can be managed") {
		t.Errorf("APP_GROUP: %v", err)
	}
	bad := newProvider(t, okta.Config{OrgURL: f.URL, APIToken: wrongToken})
	err = bad.Grant(ctx, access.Grant{Group: f.AddGroup("g"), User: "alice@example.com"})
	if !access.IsPermanent(err) || !strings.Contains(err.Error(), "E0000011 Invalid token provided") || strings.Contains(err.Error(), wrongToken) {
		t.Errorf("wrong token: %v", err)
	}
}

func TestLookupByEmailWhenLoginDiffers(t *testing.T) {
	f := newFake(t)
	p := newProvider(t, okta.Config{OrgURL: f.URL, APIToken: apiToken})
	g := f.AddGroup("g")
	f.AddUserFull(oktafake.User{Login: "bob.smith", Email: `bob"quote@example.com`})
	f.AddUserFull(oktafake.User{Login: "locked@example.com", Email: "locked@example.com", Status: "LOCKED_OUT"})
	f.AddUserFull(oktafake.User{Login: "gone@example.com", Email: "gone@example.com", Status: "DEPROVISIONED"})
	ctx := context.Background()
	if err := p.Grant(ctx, access.Grant{Group: g, User: `bob"quote@example.com`}); err != nil {
		t.Fatalf("grant by email with a quote: %v", err)
	}
	if f.Calls("GET /api/v1/users") != 1 {
		t.Errorf("search not used")
	}
	if err := p.CheckUser(ctx, "locked@example.com"); err != nil {
		t.Errorf("LOCKED_OUT users may get access: %v", err)
	}
	err := p.CheckUser(ctx, "gone@example.com")
	if !errors.Is(err, access.ErrUserDisabled) || !strings.Contains(err.Error(), "DEPROVISIONED") {
		t.Errorf("DEPROVISIONED: %v", err)
	}
}

func TestMembersFollowsLinkHeaders(t *testing.T) {
	f := newFake(t)
	f.SetPageMax(3)
	p := newProvider(t, okta.Config{OrgURL: f.URL, APIToken: apiToken})
	g := f.AddGroup("g")
	ctx := context.Background()
	var want []string
	for i := range 10 {
		email := fmt.Sprintf("m%02d@example.com", i)
		id := f.AddUser(email)
		if i%3 == 0 {
			f.AddMember(g, id) // out of band
		} else if err := p.Grant(ctx, access.Grant{Group: g, User: email}); err != nil {
			t.Fatal(err)
		}
		want = append(want, email)
	}
	got, err := p.Members(ctx, g)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(want) {
		t.Fatalf("Members = %v, want %d members", got, len(want))
	}
	seen := map[string]bool{}
	for _, m := range got {
		seen[m] = true
	}
	for _, w := range want {
		if !seen[w] {
			t.Errorf("Members lacks %s", w)
		}
	}
	if n := f.Calls("GET /api/v1/groups/{gid}/users"); n != 4 {
		t.Errorf("%d pages fetched for 10 members in pages of 3, want 4", n)
	}
}

func TestRateLimitWithClockSkew(t *testing.T) {
	f := newFake(t)
	f.SetClockSkew(-90 * time.Minute) // the server's clock is far behind ours
	p := newProvider(t, okta.Config{OrgURL: f.URL, APIToken: apiToken})
	g := f.AddGroup("g")
	var users []string
	for i := range 12 {
		users = append(users, f.AddUserFull(oktafake.User{Login: fmt.Sprintf("s%d@example.com", i), Email: fmt.Sprintf("s%d@example.com", i)}))
	}
	f.SetRateLimit(5, time.Second)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var wg sync.WaitGroup
	errs := make([]error, len(users))
	for i := range users {
		wg.Go(func() { errs[i] = p.Grant(ctx, access.Grant{Group: g, User: fmt.Sprintf("s%d@example.com", i)}) })
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("grant %d: %v", i, err)
		}
	}
	if n := len(f.MemberEmails(g)); n != len(users) {
		t.Fatalf("%d members, want %d", n, len(users))
	}
	t.Logf("12 grants under a 5/s budget with the server 90 min behind: %d throttled responses", f.Throttled())
}

func TestRetriesServerErrors(t *testing.T) {
	f := newFake(t)
	p := newProvider(t, okta.Config{OrgURL: f.URL, APIToken: apiToken}, okta.WithRetry(5, 20*time.Millisecond))
	g := f.AddGroup("g")
	f.AddUser("carol@example.com")
	f.FailNext(3, http.StatusServiceUnavailable)
	if err := p.Grant(context.Background(), access.Grant{Group: g, User: "carol@example.com"}); err != nil {
		t.Fatalf("grant after 3 server errors: %v", err)
	}
	f.FailNext(100, http.StatusInternalServerError)
	err := p.Revoke(context.Background(), access.Grant{Group: g, User: "carol@example.com"})
	if err == nil || access.IsPermanent(err) || !strings.Contains(err.Error(), "E0000009") {
		t.Fatalf("persistent 500s: %v, want a transient E0000009", err)
	}
}

func TestOAuthTokenCachedAndRenewed(t *testing.T) {
	f := newFake(t)
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	f.AddClient(clientID, &key.PublicKey, "okta.users.read", "okta.groups.manage")
	p := newProvider(t, okta.Config{OrgURL: f.URL, ClientID: clientID, PrivateKeyFile: writeKey(t, key, "EC PRIVATE KEY"), KeyID: "kid1"})
	g := f.AddGroup("g")
	f.AddUser("dan@example.com")
	ctx := context.Background()
	for range 3 {
		if err := p.Grant(ctx, access.Grant{Group: g, User: "dan@example.com"}); err != nil {
			t.Fatalf("ES256 grant: %v", err)
		}
	}
	if n := f.Tokens(); n != 1 {
		t.Errorf("%d tokens fetched for 3 grants, want 1 (cached)", n)
	}
	// A token the server stops accepting early is replaced once.
	f.RevokeTokens()
	if err := p.Revoke(ctx, access.Grant{Group: g, User: "dan@example.com"}); err != nil {
		t.Fatalf("revoke after the token expired server-side: %v", err)
	}
	if n := f.Tokens(); n != 2 {
		t.Errorf("%d tokens, want 2 after renewal", n)
	}

	// Scopes the app was not granted: a clear, permanent error.
	narrow := newProvider(t, okta.Config{OrgURL: f.URL, ClientID: clientID, PrivateKeyFile: writeKey(t, key, "PRIVATE KEY"), Scopes: []string{"okta.users.manage"}})
	err = narrow.Grant(ctx, access.Grant{Group: g, User: "dan@example.com"})
	if !access.IsPermanent(err) || !strings.Contains(err.Error(), "invalid_scope") {
		t.Errorf("ungranted scope: %v", err)
	}
}

func TestCheck(t *testing.T) {
	f := newFake(t)
	p := newProvider(t, okta.Config{OrgURL: f.URL, APIToken: apiToken})
	ok := f.AddGroup("prod-admins")
	app := f.AddGroupOfType("AWS SSO", oktafake.AppGroup)
	builtIn := f.AddGroupOfType("Everyone", oktafake.BuiltIn)
	lines, problems := p.Check(context.Background(), map[string]string{"prod-admin": ok, "aws": app, "everyone": builtIn, "gone": "00gmissing"})
	if got := strings.Join(lines, "\n"); !strings.Contains(got, "org "+f.URL+" answers") || !strings.Contains(got, "role prod-admin: group "+ok+" (prod-admins) is an OKTA_GROUP") {
		t.Errorf("lines:\n%s", got)
	}
	var all []string
	for _, p := range problems {
		all = append(all, p.Error())
	}
	got := strings.Join(all, "\n")
	for _, want := range []string{"role aws: group " + app + ": group " + app + " (AWS SSO) is an APP_GROUP", "role everyone: group " + builtIn + ": group " + builtIn + " (Everyone) is an BUILT_IN", "role gone: group 00gmissing: E0000007"} {
		if !strings.Contains(got, want) {
			t.Errorf("problems lack %q:\n%s", want, got)
		}
	}
	bad := newProvider(t, okta.Config{OrgURL: f.URL, APIToken: wrongToken})
	if _, problems := bad.Check(context.Background(), nil); len(problems) != 1 || !strings.Contains(problems[0].Error(), "E0000011") {
		t.Errorf("wrong token: %v", problems)
	}
}

// Identities have one normal form (access.NormalizeIdentity): a look-alike
// address (the Kelvin sign K, U+212A) is neither folded onto kate@ in the
// user cache nor looked up, and a member's address is reported as Okta
// has it, not folded by strings.ToLower.
func TestLookAlikeIdentityNotFolded(t *testing.T) {
	f := newFake(t)
	p := newProvider(t, okta.Config{OrgURL: f.URL, APIToken: apiToken})
	g1, g2 := f.AddGroup("g1"), f.AddGroup("g2")
	f.AddUser("kate@example.com")
	ctx := context.Background()
	if err := p.Grant(ctx, access.Grant{Group: g1, User: "kate@example.com"}); err != nil {
		t.Fatal(err)
	}
	err := p.Grant(ctx, access.Grant{Group: g2, User: "\u212Aate@example.com"})
	if !errors.Is(err, access.ErrBadIdentity) || !access.IsPermanent(err) {
		t.Errorf("Grant to the Kelvin-sign address: %v, want a permanent ErrBadIdentity", err)
	}
	if got, err := p.Members(ctx, g2); err != nil || len(got) != 0 {
		t.Fatalf("the look-alike address made %v members of g2 (%v)", got, err)
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
