package okta_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/accessbot/accessbot/access"
	"github.com/accessbot/accessbot/providers/okta"
)

// TestRevokeEndsSessions: with revoke_sessions (and oauth_tokens), Revoke
// removes the membership and then ends the user's sessions with
// DELETE /api/v1/users/{id}/sessions?oauthTokens=true; the audit note says so.
func TestRevokeEndsSessions(t *testing.T) {
	f := newFake(t)
	p := newProvider(t, okta.Config{OrgURL: f.URL, APIToken: apiToken, RevokeSessions: true, OAuthTokens: true})
	uid := f.AddUser("alice@example.com")
	g := f.AddGroup("prod-admins")
	f.AddMember(g, uid)
	f.AddSession(uid)
	f.AddSession(uid)
	grant := access.Grant{RequestID: "r1", Role: "prod-admin", Group: g, User: "alice@example.com"}
	if err := p.Revoke(context.Background(), grant); err != nil {
		t.Fatal(err)
	}
	if m := f.MemberEmails(g); len(m) != 0 {
		t.Fatalf("members after revoke: %v", m)
	}
	ends := f.SessionEnds()
	if len(ends) != 1 || ends[0].UserID != uid || !ends[0].OAuthTokens || ends[0].Sessions != 2 || f.Sessions(uid) != 0 {
		t.Fatalf("session ends %+v, open %d; want one with oauthTokens=true that ended 2 sessions", ends, f.Sessions(uid))
	}
	if note := p.SessionsNote(grant); note != "okta sessions ended and oauth tokens revoked" {
		t.Errorf("note %q", note)
	}
	// Idempotent: again, the membership is gone and the sessions end again.
	if err := p.Revoke(context.Background(), grant); err != nil {
		t.Fatal(err)
	}
	if n := len(f.SessionEnds()); n != 2 {
		t.Errorf("%d session ends after a second revoke, want 2", n)
	}
}

// TestSessionsPerRole: the per-role setting overrides the provider's.
func TestSessionsPerRole(t *testing.T) {
	f := newFake(t)
	uid := f.AddUser("alice@example.com")
	g := f.AddGroup("g")
	for _, c := range []struct {
		all   bool
		roles map[string]bool
		role  string
		want  bool
	}{
		{false, nil, "dev", false},
		{true, nil, "dev", true},
		{false, map[string]bool{"prod": true}, "prod", true},
		{false, map[string]bool{"prod": true}, "dev", false},
		{true, map[string]bool{"dev": false}, "dev", false},
		{true, map[string]bool{"dev": false}, "prod", true},
	} {
		p := newProvider(t, okta.Config{OrgURL: f.URL, APIToken: apiToken, RevokeSessions: c.all, RoleSessions: c.roles})
		before := len(f.SessionEnds())
		grant := access.Grant{Role: c.role, Group: g, User: "alice@example.com"}
		if err := p.Revoke(context.Background(), grant); err != nil {
			t.Fatal(err)
		}
		got := len(f.SessionEnds()) > before
		if got != c.want || (p.SessionsNote(grant) != "") != c.want {
			t.Errorf("all=%v roles=%v role %s: sessions ended %v, note %q; want %v", c.all, c.roles, c.role, got, p.SessionsNote(grant), c.want)
		}
		if got && f.SessionEnds()[before].OAuthTokens {
			t.Errorf("oauthTokens=true sent without oauth_tokens")
		}
	}
	_ = uid
}

// TestSessionEndFailureIsRetried: a failing session end fails Revoke with
// a transient error (the membership is already gone); the next Revoke
// finds no membership and ends the sessions.
func TestSessionEndFailureIsRetried(t *testing.T) {
	f := newFake(t)
	p := newProvider(t, okta.Config{OrgURL: f.URL, APIToken: apiToken, RevokeSessions: true}, okta.WithRetry(2, time.Millisecond))
	uid := f.AddUser("alice@example.com")
	g := f.AddGroup("g")
	f.AddMember(g, uid)
	f.AddSession(uid)
	grant := access.Grant{Role: "r", Group: g, User: "alice@example.com"}
	f.FailSessionEnds(http.StatusServiceUnavailable)
	err := p.Revoke(context.Background(), grant)
	if err == nil || access.IsPermanent(err) || !strings.Contains(err.Error(), "okta: end sessions of alice@example.com: E0000009") {
		t.Fatalf("Revoke with failing session end = %v, want a transient error naming the session end", err)
	}
	if len(f.MemberEmails(g)) != 0 || f.Sessions(uid) != 1 {
		t.Fatalf("members %v, sessions %d: want membership gone, session still open", f.MemberEmails(g), f.Sessions(uid))
	}
	f.FailSessionEnds(http.StatusForbidden)
	if err := p.Revoke(context.Background(), grant); err == nil || !strings.Contains(err.Error(), okta.SessionScope) {
		t.Errorf("403: %v, want the missing scope named", err)
	}
	f.FailSessionEnds(0)
	if err := p.Revoke(context.Background(), grant); err != nil {
		t.Fatal(err)
	}
	if f.Sessions(uid) != 0 {
		t.Error("session still open after the retry")
	}
}

// TestSessionEndThrottledAndUnknownUser: a 429 on the session end is
// waited out (X-Rate-Limit-Reset) within the call; a user deleted in
// between (404 E0000007) has no session left, which is success.
func TestSessionEndThrottledAndUnknownUser(t *testing.T) {
	f := newFake(t)
	p := newProvider(t, okta.Config{OrgURL: f.URL, APIToken: apiToken, RevokeSessions: true})
	uid := f.AddUser("alice@example.com")
	g := f.AddGroup("g")
	f.AddMember(g, uid)
	grant := access.Grant{Role: "r", Group: g, User: "alice@example.com"}
	f.ThrottleSessionEnds(1)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := p.Revoke(ctx, grant); err != nil {
		t.Fatal(err)
	}
	if f.Throttled() != 1 || len(f.SessionEnds()) != 1 {
		t.Fatalf("throttled %d, session ends %d; want 1 and 1", f.Throttled(), len(f.SessionEnds()))
	}
	f.DeleteUser(uid) // the provider still has the id cached
	if err := p.Revoke(ctx, grant); err != nil {
		t.Fatalf("revoke of a deleted user: %v", err)
	}
	if n := f.Calls("DELETE /api/v1/users/{id}/sessions"); n != 3 {
		t.Errorf("%d session calls, want 3 (429, 204, 404)", n)
	}
}

// TestSessionsValidate: oauth_tokens needs revoke_sessions; an OAuth app
// with explicit scopes needs okta.users.manage.
func TestSessionsValidate(t *testing.T) {
	for _, c := range []struct {
		cfg  okta.Config
		want []string
	}{
		{okta.Config{OrgURL: "https://acme.okta.com", APIToken: "x", OAuthTokens: true},
			[]string{"providers.okta.oauth_tokens: has no effect without revoke_sessions (on the provider or a role)"}},
		{okta.Config{OrgURL: "https://acme.okta.com", APIToken: "x", OAuthTokens: true, RoleSessions: map[string]bool{"r": true}}, nil},
		{okta.Config{OrgURL: "https://acme.okta.com", ClientID: "c", PrivateKeyFile: "k.pem", Scopes: []string{"okta.groups.manage"}, RevokeSessions: true},
			[]string{"providers.okta.scopes: must include okta.users.manage: revoke_sessions ends users' sessions, which needs it"}},
		{okta.Config{OrgURL: "https://acme.okta.com", ClientID: "c", PrivateKeyFile: "k.pem", RevokeSessions: true}, nil},
	} {
		var got []string
		for _, err := range c.cfg.Validate() {
			got = append(got, err.Error())
		}
		if !slices.Equal(got, c.want) {
			t.Errorf("Validate(%+v):\n got %q\nwant %q", c.cfg, got, c.want)
		}
	}
}

// TestSessionsOAuthScope: an OAuth service app with the default scopes
// asks for okta.users.manage too when sessions are ended, and the session
// end goes through with the Bearer token.
func TestSessionsOAuthScope(t *testing.T) {
	f := newFake(t)
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	f.AddClient(clientID, &key.PublicKey, "okta.users.read", "okta.groups.manage", okta.SessionScope)
	p := newProvider(t, okta.Config{OrgURL: f.URL, ClientID: clientID, PrivateKeyFile: writeKey(t, key, "EC PRIVATE KEY"), RevokeSessions: true})
	uid := f.AddUser("dan@example.com")
	g := f.AddGroup("g")
	f.AddMember(g, uid)
	if err := p.Revoke(context.Background(), access.Grant{Role: "r", Group: g, User: "dan@example.com"}); err != nil {
		t.Fatal(err)
	}
	if len(f.SessionEnds()) != 1 {
		t.Fatalf("session ends %+v", f.SessionEnds())
	}
}
