// Package okta provisions access by managing Okta group membership through
// the Management API (net/http, no SDK).
//
// Authentication is an SSWS API token or an OAuth 2.0 service app
// (client credentials with a private_key_jwt assertion, RS256 or ES256/384/512).
// Users are found by login, then by profile.email. DEPROVISIONED and
// SUSPENDED users are refused access; LOCKED_OUT users are not (a lockout is
// a temporary, self-service state that does not say the person should lose
// access, and they cannot sign in until it clears anyway). Only OKTA_GROUP
// groups can be managed; APP_GROUP and BUILT_IN groups are reported as such.
//
// Rate limits: X-Rate-Limit-Remaining / -Reset are tracked per endpoint
// family and requests wait for the reset when the budget is spent; a 429
// (E0000047) waits until the reset, measured against the response's Date
// header so that clock skew does not matter. 5xx answers and network
// errors are retried with capped, jittered backoff. No wait runs past the
// caller's deadline: when the reset (or the next retry) lies beyond it, the
// call gives up at once with the reason.
package okta

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/accessbot/accessbot/access"
	"github.com/accessbot/accessbot/internal/sleep"
	"github.com/accessbot/accessbot/internal/ttlcache"
)

var (
	_ access.Provisioner  = (*Provider)(nil)
	_ access.MemberLister = (*Provider)(nil)
	_ access.UserChecker  = (*Provider)(nil)

	_ access.GroupMembership = (*Provider)(nil)
)

const userAgent = "accessbot (okta provider)"

// Defaults.
const (
	DefaultMaxAttempts   = 6
	DefaultMaxBackoff    = 10 * time.Second
	DefaultThrottleWaits = 20
	DefaultCacheTTL      = 5 * time.Minute
	DefaultConcurrency   = 16
	maxResetWait         = 2 * time.Minute
	cacheSize            = 20000
	pageSize             = 200
)

// DefaultScopes are requested by an OAuth service app.
var DefaultScopes = []string{"okta.users.read", "okta.groups.manage"}

// Config selects the org and how to authenticate: APIToken, or ClientID
// with PrivateKeyFile (OAuth 2.0 service app), never both.
type Config struct {
	OrgURL         string // https://acme.okta.com (http only for loopback)
	APIToken       string
	ClientID       string
	PrivateKeyFile string   // PEM RSA or EC private key registered with the app
	KeyID          string   // optional kid of that key
	Scopes         []string // default DefaultScopes

	// Session revocation (revoke_sessions): Revoke also ends the user's
	// Okta sessions once the membership is gone.
	RevokeSessions bool
	OAuthTokens    bool            // also revoke the OAuth tokens issued to the user (oauthTokens=true)
	RoleSessions   map[string]bool // per role name: overrides RevokeSessions
}

// Option adjusts New; mostly for tests.
type Option func(*settings)

type settings struct {
	hc            *http.Client
	maxAttempts   int
	maxBackoff    time.Duration
	throttleWaits int
	cacheTTL      time.Duration
	concurrency   int
}

// WithHTTPClient sets the HTTP client (default: 30 s timeout).
func WithHTTPClient(c *http.Client) Option { return func(s *settings) { s.hc = c } }

// WithRetry sets the attempts per call on 5xx and network errors (including
// the first) and the cap of the backoff between them.
func WithRetry(maxAttempts int, maxBackoff time.Duration) Option {
	return func(s *settings) { s.maxAttempts, s.maxBackoff = maxAttempts, maxBackoff }
}

// WithThrottleWaits sets how many 429 answers one call waits out before it
// gives up with a transient error.
func WithThrottleWaits(n int) Option { return func(s *settings) { s.throttleWaits = n } }

// WithCacheTTL sets how long user and group lookups are cached; 0 turns
// caching off.
func WithCacheTTL(d time.Duration) Option { return func(s *settings) { s.cacheTTL = d } }

// WithConcurrency caps the requests in flight (Okta allows 75 per org).
func WithConcurrency(n int) Option { return func(s *settings) { s.concurrency = n } }

// Provider manages Okta group membership. It is safe for concurrent use.
type Provider struct {
	org           string // scheme://host[:port], no trailing slash
	host          string
	hc            *http.Client
	auth          authenticator
	log           *slog.Logger
	users         *ttlcache.Cache[user]
	groups        *ttlcache.Cache[group]
	gate          *rateGate
	sem           chan struct{}
	maxAttempts   int
	maxBackoff    time.Duration
	throttleWaits int

	sessions sessionSettings // session revocation
}

type user struct {
	ID      string `json:"id"`
	Status  string `json:"status"`
	Profile struct {
		Login string `json:"login"`
		Email string `json:"email"`
	} `json:"profile"`
}

type group struct {
	ID      string `json:"id"`
	Type    string `json:"type"`
	Profile struct {
		Name string `json:"name"`
	} `json:"profile"`
}

// disabledStatuses must not get access.
var disabledStatuses = []string{"DEPROVISIONED", "SUSPENDED"}

// New validates cfg (Validate) and builds a Provider. It makes no API call; Check does.
func New(cfg Config, log *slog.Logger, opts ...Option) (*Provider, error) {
	if errs := cfg.Validate(); len(errs) > 0 {
		return nil, problemsError(errs)
	}
	org, host, _ := parseOrg(cfg.OrgURL)
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s := settings{maxAttempts: DefaultMaxAttempts, maxBackoff: DefaultMaxBackoff, throttleWaits: DefaultThrottleWaits,
		cacheTTL: DefaultCacheTTL, concurrency: DefaultConcurrency}
	for _, o := range opts {
		o(&s)
	}
	if s.hc == nil {
		s.hc = &http.Client{Timeout: 30 * time.Second}
	}
	// Never follow a redirect with the token to another host.
	hc := *s.hc
	hc.CheckRedirect = func(req *http.Request, via []*http.Request) error {
		if req.URL.Host != host {
			return fmt.Errorf("redirect to %s refused: it is not the org", req.URL.Host)
		}
		return nil
	}
	p := &Provider{
		org: org, host: host, hc: &hc, log: log,
		users:       ttlcache.New[user](s.cacheTTL, cacheSize),
		groups:      ttlcache.New[group](s.cacheTTL, cacheSize),
		gate:        &rateGate{fams: map[string]*famState{}},
		sem:         make(chan struct{}, max(s.concurrency, 1)),
		maxAttempts: max(s.maxAttempts, 1), maxBackoff: s.maxBackoff, throttleWaits: s.throttleWaits,
		sessions: sessionSettings{all: cfg.RevokeSessions, oauthTokens: cfg.OAuthTokens, roles: cfg.RoleSessions},
	}
	if token := strings.TrimSpace(cfg.APIToken); token != "" {
		p.auth = sswsAuth{value: "SSWS " + token}
		return p, nil
	}
	key, alg, err := loadKey(cfg.PrivateKeyFile)
	if err != nil {
		return nil, fmt.Errorf("okta: private_key %s: %w", cfg.PrivateKeyFile, err)
	}
	scopes := cfg.Scopes
	if len(scopes) == 0 {
		scopes = DefaultScopes
		if cfg.endsSessions() {
			scopes = append(slices.Clone(DefaultScopes), SessionScope)
		}
	}
	p.auth = &oauthAuth{tokenURL: org + "/oauth2/v1/token", clientID: cfg.ClientID, keyID: cfg.KeyID,
		key: key, alg: alg, scopes: scopes, hc: p.hc, attempts: p.maxAttempts, backoff: p.backoff}
	return p, nil
}

// Grant adds the user to the group (PUT, idempotent in Okta). Unknown or
// deactivated/suspended users wrap access.ErrUnknownUser / ErrUserDisabled;
// an unknown group, a group that is not an OKTA_GROUP, or refused
// credentials are permanent.
func (p *Provider) Grant(ctx context.Context, g access.Grant) error {
	if _, err := p.managedGroup(ctx, g.Group); err != nil {
		return fmt.Errorf("okta: add %s to %s: %w", g.User, g.Group, err)
	}
	u, err := p.activeUser(ctx, g.User)
	if err != nil {
		return fmt.Errorf("okta: add %s to %s: %w", g.User, g.Group, err)
	}
	resp, err := p.do(ctx, http.MethodPut, p.membershipPath(g.Group, u.ID))
	if err != nil {
		return fmt.Errorf("okta: add %s to %s: %w", g.User, g.Group, err)
	}
	if resp.status != http.StatusNoContent && resp.status != http.StatusOK {
		return fmt.Errorf("okta: add %s to %s: %w", g.User, g.Group, resp.err())
	}
	p.log.InfoContext(ctx, "okta group membership added", "user", g.User, "group", g.Group, "request_id", g.RequestID)
	return nil
}

// Revoke removes the user from the group. A user who is not a member is
// success, and deactivated or suspended users are removed like any other.
// An unknown user wraps access.ErrUnknownUser (the membership cannot be
// checked, so the caller must look); an unknown group is permanent.
//
// Where session revocation is on for the role, the user's Okta sessions
// are ended after the removal (see endSessions); a failure there is
// returned like a failed removal, so the revocation is retried, and a
// retry finds the membership gone and ends the sessions again.
func (p *Provider) Revoke(ctx context.Context, g access.Grant) error {
	if err := p.removeMember(ctx, g); err != nil {
		return err
	}
	return p.endSessions(ctx, g)
}

// removeMember is Revoke's membership removal.
func (p *Provider) removeMember(ctx context.Context, g access.Grant) error {
	u, err := p.resolve(ctx, g.User, false)
	if err != nil {
		return fmt.Errorf("okta: remove %s from %s: %w", g.User, g.Group, err)
	}
	resp, err := p.do(ctx, http.MethodDelete, p.membershipPath(g.Group, u.ID))
	if err != nil {
		return fmt.Errorf("okta: remove %s from %s: %w", g.User, g.Group, err)
	}
	switch resp.status {
	case http.StatusNoContent, http.StatusOK:
		p.log.InfoContext(ctx, "okta group membership removed", "user", g.User, "group", g.Group, "request_id", g.RequestID)
		return nil
	case http.StatusNotFound, http.StatusForbidden:
		// Not a member, unless the group is gone (or not manageable), or
		// the user id went stale.
		if _, gerr := p.managedGroup(ctx, g.Group); gerr != nil {
			return fmt.Errorf("okta: remove %s from %s: %w", g.User, g.Group, gerr)
		}
		if resp.status == http.StatusNotFound {
			if fresh, ferr := p.resolve(ctx, g.User, true); ferr == nil && fresh.ID != u.ID {
				return p.removeMember(ctx, g) // re-created user: try once more with the new id
			}
			p.log.DebugContext(ctx, "okta user not in group", "user", g.User, "group", g.Group, "request_id", g.RequestID)
			return nil
		}
	}
	return fmt.Errorf("okta: remove %s from %s: %w", g.User, g.Group, resp.err())
}

// CheckUser reports whether the login or email belongs to a user who may get
// access: nil, or an error wrapping access.ErrUnknownUser / ErrUserDisabled
// (or a transient or permanent lookup failure).
func (p *Provider) CheckUser(ctx context.Context, identity string) error {
	if _, err := p.activeUser(ctx, identity); err != nil {
		return fmt.Errorf("okta: check %s: %w", identity, err)
	}
	return nil
}

// Members returns the lowercased emails (logins for users without one) of
// the group's members, following every rel="next" link.
func (p *Provider) Members(ctx context.Context, groupID string) ([]string, error) {
	next := p.org + "/api/v1/groups/" + url.PathEscape(groupID) + "/users?limit=" + strconv.Itoa(pageSize)
	var out []string
	for pages := 0; next != ""; pages++ {
		if pages > 100000 {
			return nil, fmt.Errorf("okta: list members of %s: pagination does not end", groupID)
		}
		u, err := url.Parse(next)
		if err != nil || u.Scheme+"://"+u.Host != p.org {
			return nil, access.Permanent(fmt.Errorf("okta: list members of %s: next link %q is not on the org", groupID, next))
		}
		resp, err := p.do(ctx, http.MethodGet, u.RequestURI())
		if err != nil {
			return nil, fmt.Errorf("okta: list members of %s: %w", groupID, err)
		}
		if resp.status != http.StatusOK {
			return nil, fmt.Errorf("okta: list members of %s: %w", groupID, resp.err())
		}
		var users []user
		if err := json.Unmarshal(resp.body, &users); err != nil {
			return nil, fmt.Errorf("okta: list members of %s: decode: %w", groupID, err)
		}
		for _, u := range users {
			email := u.Profile.Email
			if email == "" {
				email = u.Profile.Login
			}
			out = append(out, access.NormalizeIdentity(email))
		}
		next = nextLink(resp.header.Values("Link"))
	}
	return out, nil
}

// IsMember reports whether the user (login or email) is a member of the
// group, from the user's groups (GET /api/v1/users/{id}/groups, following
// every rel="next" link until the group is found). A user Okta does not
// know is no member.
func (p *Provider) IsMember(ctx context.Context, identity, groupID string) (bool, error) {
	u, err := p.resolve(ctx, identity, false)
	if errors.Is(err, access.ErrUnknownUser) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("okta: groups of %s: %w", identity, err)
	}
	next := p.org + "/api/v1/users/" + url.PathEscape(u.ID) + "/groups?limit=" + strconv.Itoa(pageSize)
	for pages := 0; next != ""; pages++ {
		if pages > 100000 {
			return false, fmt.Errorf("okta: groups of %s: pagination does not end", identity)
		}
		nu, err := url.Parse(next)
		if err != nil || nu.Scheme+"://"+nu.Host != p.org {
			return false, access.Permanent(fmt.Errorf("okta: groups of %s: next link %q is not on the org", identity, next))
		}
		resp, err := p.do(ctx, http.MethodGet, nu.RequestURI())
		if err != nil {
			return false, fmt.Errorf("okta: groups of %s: %w", identity, err)
		}
		if resp.status == http.StatusNotFound {
			p.users.Forget(access.NormalizeIdentity(identity))
			return false, nil // deleted since it was looked up: no member
		}
		if resp.status != http.StatusOK {
			return false, fmt.Errorf("okta: groups of %s: %w", identity, resp.err())
		}
		var groups []group
		if err := json.Unmarshal(resp.body, &groups); err != nil {
			return false, fmt.Errorf("okta: groups of %s: decode: %w", identity, err)
		}
		for _, g := range groups {
			if g.ID == groupID {
				return true, nil
			}
		}
		next = nextLink(resp.header.Values("Link"))
	}
	return false, nil
}

// Check verifies that the org answers with these credentials and that every
// group exists and is an OKTA_GROUP. lines are human-readable findings,
// problems the failures; it backs `accessbot check --online`.
func (p *Provider) Check(ctx context.Context, groups map[string]string) (lines []string, problems []error) {
	resp, err := p.do(ctx, http.MethodGet, "/api/v1/groups?limit=1")
	if err == nil && resp.status != http.StatusOK {
		err = resp.err()
	}
	if err != nil {
		return nil, []error{fmt.Errorf("okta: org %s: %w", p.org, err)}
	}
	lines = append(lines, fmt.Sprintf("okta: org %s answers", p.org))
	roles := make([]string, 0, len(groups))
	for r := range groups {
		roles = append(roles, r)
	}
	slices.Sort(roles)
	for _, role := range roles {
		gid := groups[role]
		grp, err := p.managedGroup(ctx, gid)
		if err != nil {
			problems = append(problems, fmt.Errorf("okta: role %s: group %s: %w", role, gid, err))
			continue
		}
		lines = append(lines, fmt.Sprintf("okta: role %s: group %s (%s) is an OKTA_GROUP", role, gid, grp.Profile.Name))
	}
	return lines, problems
}

// managedGroup returns the group when it exists and is an OKTA_GROUP;
// otherwise a permanent error (or a transient one when Okta did not answer).
// Only existing OKTA_GROUP groups are cached.
func (p *Provider) managedGroup(ctx context.Context, gid string) (group, error) {
	if g, ok := p.groups.Get(gid); ok {
		return g, nil
	}
	if gid == "" {
		return group{}, access.Permanent(errors.New("empty group id"))
	}
	resp, err := p.do(ctx, http.MethodGet, "/api/v1/groups/"+url.PathEscape(gid))
	if err != nil {
		return group{}, err
	}
	if resp.status != http.StatusOK {
		return group{}, resp.err()
	}
	var g group
	if err := json.Unmarshal(resp.body, &g); err != nil {
		return group{}, fmt.Errorf("decode group %s: %w", gid, err)
	}
	if g.Type != "OKTA_GROUP" {
		return group{}, access.Permanent(fmt.Errorf("group %s (%s) is an %s: only OKTA_GROUP groups can be managed through the API", gid, g.Profile.Name, g.Type))
	}
	p.groups.Put(gid, g)
	return g, nil
}

// activeUser resolves identity freshly (grants are rare; a just-suspended
// user must not get access) and refuses disabled users.
func (p *Provider) activeUser(ctx context.Context, identity string) (user, error) {
	u, err := p.resolve(ctx, identity, true)
	if err != nil {
		return user{}, err
	}
	if slices.Contains(disabledStatuses, u.Status) {
		return user{}, fmt.Errorf("user %s (id %s) is %s: %w", identity, u.ID, u.Status, access.ErrUserDisabled)
	}
	return u, nil
}

// resolve finds a user by login, then by email (cached unless fresh).
func (p *Provider) resolve(ctx context.Context, identity string, fresh bool) (user, error) {
	key := access.NormalizeIdentity(identity)
	if key == "" {
		return user{}, access.Permanent(errors.New("empty user identity"))
	}
	if err := access.CheckIdentity(key); err != nil {
		// Never look up a look-alike (ſ, the Kelvin sign): Okta may fold
		// it onto another person's login.
		return user{}, access.Permanent(err)
	}
	if !fresh {
		if u, ok := p.users.Get(key); ok {
			return u, nil
		}
	}
	resp, err := p.do(ctx, http.MethodGet, "/api/v1/users/"+url.PathEscape(identity))
	if err != nil {
		return user{}, fmt.Errorf("look up user %s: %w", identity, err)
	}
	var u user
	switch resp.status {
	case http.StatusOK:
		if err := json.Unmarshal(resp.body, &u); err != nil {
			return user{}, fmt.Errorf("look up user %s: decode: %w", identity, err)
		}
	case http.StatusNotFound:
		q := url.Values{"search": {`profile.email eq "` + searchEscape(identity) + `"`}}
		resp, err = p.do(ctx, http.MethodGet, "/api/v1/users?"+q.Encode())
		if err != nil {
			return user{}, fmt.Errorf("search user %s: %w", identity, err)
		}
		if resp.status != http.StatusOK {
			return user{}, fmt.Errorf("search user %s: %w", identity, resp.err())
		}
		var found []user
		if err := json.Unmarshal(resp.body, &found); err != nil {
			return user{}, fmt.Errorf("search user %s: decode: %w", identity, err)
		}
		switch len(found) {
		case 0:
			return user{}, fmt.Errorf("no user with login or email %s in %s (E0000007): %w", identity, p.host, access.ErrUnknownUser)
		case 1:
			u = found[0]
		default:
			return user{}, access.Permanent(fmt.Errorf("%d users have the email %s; use their login", len(found), identity))
		}
	default:
		return user{}, fmt.Errorf("look up user %s: %w", identity, resp.err())
	}
	if u.ID == "" {
		return user{}, fmt.Errorf("look up user %s: answer without an id", identity)
	}
	p.users.Put(key, u)
	return u, nil
}

// searchEscape escapes a value for a double-quoted string in an Okta
// search expression.
func searchEscape(s string) string {
	return strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(s)
}

func (p *Provider) membershipPath(gid, uid string) string {
	return "/api/v1/groups/" + url.PathEscape(gid) + "/users/" + url.PathEscape(uid)
}

// APIError is an Okta error answer.
type APIError struct {
	Status  int
	Code    string // E0000007
	Summary string
	Causes  []string
}

func (e *APIError) Error() string {
	msg := e.Code
	if msg == "" {
		msg = "HTTP " + strconv.Itoa(e.Status)
	}
	if e.Summary != "" {
		msg += " " + e.Summary
	}
	if len(e.Causes) > 0 {
		msg += " (" + strings.Join(e.Causes, "; ") + ")"
	}
	return msg
}

type response struct {
	status int
	header http.Header
	body   []byte
}

// err turns a non-success answer into an *APIError, permanent for 4xx
// answers other than 408 and 429.
func (r *response) err() error {
	e := &APIError{Status: r.status}
	var body struct {
		Code    string `json:"errorCode"`
		Summary string `json:"errorSummary"`
		Causes  []struct {
			Summary string `json:"errorSummary"`
		} `json:"errorCauses"`
	}
	if json.Unmarshal(r.body, &body) == nil && body.Code != "" {
		e.Code, e.Summary = body.Code, body.Summary
		for _, c := range body.Causes {
			e.Causes = append(e.Causes, c.Summary)
		}
	} else {
		e.Summary = http.StatusText(r.status)
		if snippet := strings.TrimSpace(string(r.body)); snippet != "" && len(snippet) < 200 {
			e.Summary += ": " + snippet
		}
	}
	if r.status >= 400 && r.status < 500 && r.status != http.StatusRequestTimeout && r.status != http.StatusTooManyRequests {
		return access.Permanent(e)
	}
	return e
}

// do sends one API request, waiting out rate limits and retrying 5xx and
// network errors. It returns the final answer, whatever its status, or an
// error when none came.
func (p *Provider) do(ctx context.Context, method, pathAndQuery string) (*response, error) {
	fam := family(pathAndQuery)
	failures, throttles, reauthed := 0, 0, false
	for {
		if err := p.gate.wait(ctx, fam); err != nil {
			return nil, err
		}
		authz, err := p.auth.header(ctx)
		if err != nil {
			return nil, err
		}
		req, err := http.NewRequestWithContext(ctx, method, p.org+pathAndQuery, nil)
		if err != nil {
			return nil, access.Permanent(fmt.Errorf("build request: %w", err))
		}
		req.Header.Set("Authorization", authz)
		req.Header.Set("Accept", "application/json")
		req.Header.Set("User-Agent", userAgent)
		select {
		case p.sem <- struct{}{}:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
		resp, err := p.hc.Do(req)
		var body []byte
		if err == nil {
			body, err = io.ReadAll(io.LimitReader(resp.Body, 32<<20))
			resp.Body.Close()
		}
		<-p.sem
		if err != nil {
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			failures++
			if failures >= p.maxAttempts {
				return nil, fmt.Errorf("okta endpoint unreachable after %d attempts: %w", failures, err)
			}
			if err := pause(ctx, p.backoff(failures), fmt.Errorf("okta endpoint unreachable after %d attempts: %w", failures, err)); err != nil {
				return nil, err
			}
			continue
		}
		r := &response{status: resp.StatusCode, header: resp.Header, body: body}
		p.gate.observe(fam, resp.Header)
		switch {
		case r.status == http.StatusTooManyRequests:
			throttles++
			if throttles > p.throttleWaits {
				return nil, r.err()
			}
			wait := resetWait(resp.Header)
			p.log.DebugContext(ctx, "okta rate limit hit", "family", fam, "wait", wait)
			if err := pause(ctx, wait, r.err()); err != nil {
				return nil, err
			}
			continue
		case r.status >= 500:
			failures++
			if failures >= p.maxAttempts {
				return nil, r.err()
			}
			if err := pause(ctx, p.backoff(failures), r.err()); err != nil {
				return nil, err
			}
			continue
		case r.status == http.StatusUnauthorized && !reauthed && p.auth.invalidate(authz):
			reauthed = true // an access token revoked or expired early: get a new one once
			continue
		}
		return r, nil
	}
}

// attemptTime is the least time worth starting another attempt with.
const attemptTime = time.Second

// pause waits d before another attempt, unless that would not leave
// attemptTime before ctx's deadline (the service gives each provider call
// one): then it returns last at once, so the caller hears Okta's own
// answer in time to record it instead of a bare "deadline exceeded".
func pause(ctx context.Context, d time.Duration, last error) error {
	if deadline, ok := ctx.Deadline(); ok && time.Until(deadline) < d+attemptTime {
		return last
	}
	return sleep.For(ctx, d)
}

func (p *Provider) backoff(failures int) time.Duration {
	d := min(p.maxBackoff, 200*time.Millisecond<<min(failures-1, 10))
	return d/2 + rand.N(d/2+1)
}

// family groups endpoints that share a rate-limit bucket closely enough.
func family(pathAndQuery string) string {
	p := strings.TrimPrefix(pathAndQuery, "/api/v1/")
	p, _, _ = strings.Cut(p, "?")
	first, rest, _ := strings.Cut(p, "/")
	if first == "groups" && strings.Contains(rest, "/users") {
		return "groups/users"
	}
	return first
}

// resetWait is how long to wait after a 429: X-Rate-Limit-Reset minus the
// response's Date (both the server's clock), plus jitter; at least 500 ms.
func resetWait(h http.Header) time.Duration {
	wait := time.Second
	reset, rerr := strconv.ParseInt(h.Get("X-Rate-Limit-Reset"), 10, 64)
	date, derr := http.ParseTime(h.Get("Date"))
	if rerr == nil && derr == nil {
		wait = time.Unix(reset, 0).Sub(date)
	} else if rerr == nil {
		wait = time.Until(time.Unix(reset, 0))
	}
	wait = min(max(wait, 500*time.Millisecond), maxResetWait)
	return wait + rand.N(wait/4+1)
}

// rateGate holds requests of a family back while its budget is spent.
type rateGate struct {
	mu   sync.Mutex
	fams map[string]*famState
}

type famState struct {
	remaining int
	until     time.Time // local time at which the budget resets
}

func (g *rateGate) observe(fam string, h http.Header) {
	rem, err := strconv.Atoi(h.Get("X-Rate-Limit-Remaining"))
	if err != nil {
		return
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	g.fams[fam] = &famState{remaining: rem, until: time.Now().Add(resetWait(h))}
}

func (g *rateGate) wait(ctx context.Context, fam string) error {
	for {
		g.mu.Lock()
		st := g.fams[fam]
		if st == nil || st.remaining > 0 || !time.Now().Before(st.until) {
			if st != nil {
				st.remaining-- // count this request against what is left
				if !time.Now().Before(st.until) {
					delete(g.fams, fam)
				}
			}
			g.mu.Unlock()
			return nil
		}
		until := st.until
		d := time.Until(until)
		g.mu.Unlock()
		// Like pause: a wait that would not leave attemptTime before the
		// caller's deadline gives up now, with a reason the caller can
		// record, instead of sleeping into a bare "deadline exceeded".
		if deadline, ok := ctx.Deadline(); ok && time.Until(deadline) < d+attemptTime {
			return fmt.Errorf("okta rate limit for %s requests is used up until %s (X-Rate-Limit-Reset, %s from now), after this call's deadline: request not sent",
				fam, until.UTC().Format(time.RFC3339), d.Round(time.Second))
		}
		if err := sleep.For(ctx, d); err != nil {
			return err
		}
	}
}

// nextLink finds the rel="next" target among Link headers, each of which
// may hold several comma-separated links.
func nextLink(headers []string) string {
	for _, h := range headers {
		for h != "" {
			start := strings.IndexByte(h, '<')
			end := strings.IndexByte(h, '>')
			if start < 0 || end < start {
				break
			}
			target := h[start+1 : end]
			h = h[end+1:]
			params := h
			if i := strings.IndexByte(h, '<'); i >= 0 {
				params, h = h[:i], h[i:]
			} else {
				h = ""
			}
			for _, p := range strings.Split(params, ";") {
				k, v, ok := strings.Cut(strings.TrimSpace(p), "=")
				if !ok || !strings.EqualFold(strings.TrimSpace(k), "rel") {
					continue
				}
				for _, rel := range strings.Fields(strings.Trim(strings.TrimSpace(strings.TrimRight(v, ", ")), `"`)) {
					if rel == "next" {
						return target
					}
				}
			}
		}
	}
	return ""
}

// ErrorCode returns Okta's error code (E0000007), or "HTTP_<status>" when
// the answer had none; metrics count provider errors by it.
func (e *APIError) ErrorCode() string {
	if e.Code == "" {
		return "HTTP_" + strconv.Itoa(e.Status)
	}
	return e.Code
}
