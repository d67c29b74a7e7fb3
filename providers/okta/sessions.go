package okta

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"slices"

	"github.com/accessbot/accessbot/access"
)

var _ access.SessionEnder = (*Provider)(nil)

// SessionScope is the OAuth scope DELETE /api/v1/users/{id}/sessions needs;
// New requests it with DefaultScopes when session revocation is on.
const SessionScope = "okta.users.manage"

// sessionSettings says for which roles Revoke ends the user's sessions.
type sessionSettings struct {
	all         bool
	oauthTokens bool
	roles       map[string]bool // role name -> on/off, overriding all
}

func (s sessionSettings) on(role string) bool {
	if v, ok := s.roles[role]; ok {
		return v
	}
	return s.all
}

// endsSessions reports whether any role may have its sessions ended.
func (c Config) endsSessions() bool {
	if c.RevokeSessions {
		return true
	}
	for _, on := range c.RoleSessions {
		if on {
			return true
		}
	}
	return false
}

// SessionsNote tells the audit what Revoke of g did to the user's sessions.
func (p *Provider) SessionsNote(g access.Grant) string {
	if !p.sessions.on(g.Role) {
		return ""
	}
	if p.sessions.oauthTokens {
		return "okta sessions ended and oauth tokens revoked"
	}
	return "okta sessions ended"
}

// endSessions ends every Okta session of the user (and, with OAuthTokens,
// revokes the OAuth tokens issued to them) when the role asks for it:
// removing a membership does not sign anyone out of the apps that group
// gave them. DELETE /api/v1/users/{id}/sessions is idempotent; an unknown
// user (404 E0000007) has no session left; a 429 is waited out like any
// other call (do).
func (p *Provider) endSessions(ctx context.Context, g access.Grant) error {
	if !p.sessions.on(g.Role) {
		return nil
	}
	u, err := p.resolve(ctx, g.User, false)
	if err != nil {
		return fmt.Errorf("okta: end sessions of %s: %w", g.User, err)
	}
	path := "/api/v1/users/" + url.PathEscape(u.ID) + "/sessions"
	if p.sessions.oauthTokens {
		path += "?oauthTokens=true"
	}
	resp, err := p.do(ctx, http.MethodDelete, path)
	if err != nil {
		return fmt.Errorf("okta: end sessions of %s: %w", g.User, err)
	}
	switch resp.status {
	case http.StatusNoContent, http.StatusOK:
		p.log.InfoContext(ctx, "okta sessions ended", "user", g.User, "oauth_tokens", p.sessions.oauthTokens, "request_id", g.RequestID)
		return nil
	case http.StatusNotFound:
		p.users.Forget(access.NormalizeIdentity(g.User))
		p.log.InfoContext(ctx, "okta user gone: no session left to end", "user", g.User, "request_id", g.RequestID)
		return nil
	}
	err = resp.err()
	if resp.status == http.StatusForbidden {
		err = fmt.Errorf("%w (the token needs %s, or an API token of an admin who may manage users)", err, SessionScope)
	}
	return fmt.Errorf("okta: end sessions of %s: %w", g.User, err)
}

// validateSessions adds the problems of the session settings.
func (c Config) validateSessions(add func(key, format string, args ...any)) {
	if c.OAuthTokens && !c.endsSessions() {
		add("oauth_tokens", "has no effect without revoke_sessions (on the provider or a role)")
	}
	if c.endsSessions() && c.ClientID != "" && len(c.Scopes) > 0 && !slices.Contains(c.Scopes, SessionScope) {
		add("scopes", "must include %s: revoke_sessions ends users' sessions, which needs it", SessionScope)
	}
}
