// Package oktafake is a protocol-faithful fake of the parts of the Okta
// Management API accessbot uses, for tests: users by id or login and by
// search, groups, paginated group members (Link headers, after= cursor),
// PUT/DELETE group membership, ending a user's sessions (sessions.go), and the OAuth 2.0 client-credentials token
// endpoint with private_key_jwt client authentication (the assertion's
// signature, iss, sub, aud and exp are verified).
//
// Every response carries Date and X-Rate-Limit-Limit/-Remaining/-Reset;
// a configurable budget per window and endpoint family answers 429
// E0000047 when exceeded. Errors use Okta's body
// {"errorCode","errorSummary","errorLink","errorId","errorCauses"}.
package oktafake

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"hash"
	"math/big"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/accessbot/accessbot/internal/fakeswitch"
)

// Group types.
const (
	OktaGroup = "OKTA_GROUP"
	AppGroup  = "APP_GROUP"
	BuiltIn   = "BUILT_IN"
)

// User is an Okta user. Status is ACTIVE, STAGED, PROVISIONED, RECOVERY,
// LOCKED_OUT, PASSWORD_EXPIRED, SUSPENDED or DEPROVISIONED.
type User struct {
	ID, Login, Email, Status string
}

// Group is an Okta group.
type Group struct {
	ID, Name, Type string
}

type client struct {
	key    crypto.PublicKey
	scopes []string
}

type issued struct {
	expires time.Time
	scopes  []string
}

type window struct {
	start time.Time
	count int
}

// Server is the fake. All methods are safe for concurrent use.
type Server struct {
	// URL is the org URL, e.g. http://127.0.0.1:41234.
	URL string
	srv *httptest.Server

	mu       sync.Mutex
	tokens   map[string]bool
	clients  map[string]*client
	issued   map[string]issued
	jtis     map[string]bool
	users    map[string]*User
	groups   map[string]*Group
	members  map[string]map[string]int64 // group id -> user id -> seq
	seq      int64
	limit    int
	window   time.Duration
	windows  map[string]*window
	skew     time.Duration
	tokenTTL time.Duration
	pageMax  int
	failNext int
	failCode int
	calls    map[string]int

	throttled atomic.Int64
	hang      fakeswitch.Blackhole // Hang

	sessions sessionState // sessions.go
}

// New starts a fake on 127.0.0.1 with a budget of 600 requests per minute
// per endpoint family. Call Close when done.
func New() *Server {
	s := &Server{
		tokens: map[string]bool{}, clients: map[string]*client{}, issued: map[string]issued{}, jtis: map[string]bool{},
		users: map[string]*User{}, groups: map[string]*Group{}, members: map[string]map[string]int64{},
		limit: 600, window: time.Minute, windows: map[string]*window{}, tokenTTL: time.Hour, pageMax: 1000,
		calls: map[string]int{},
	}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /oauth2/v1/token", s.token)
	mux.HandleFunc("GET /api/v1/users/{id}", s.auth("okta.users.read", s.getUser))
	mux.HandleFunc("GET /api/v1/users", s.auth("okta.users.read", s.searchUsers))
	mux.HandleFunc("GET /api/v1/groups/{gid}", s.auth("okta.groups.read", s.getGroup))
	mux.HandleFunc("GET /api/v1/groups", s.auth("okta.groups.read", s.listGroups))
	mux.HandleFunc("GET /api/v1/groups/{gid}/users", s.auth("okta.groups.read", s.listMembers))
	mux.HandleFunc("PUT /api/v1/groups/{gid}/users/{uid}", s.auth("okta.groups.manage", s.membership))
	mux.HandleFunc("DELETE /api/v1/groups/{gid}/users/{uid}", s.auth("okta.groups.manage", s.membership))
	mux.HandleFunc("DELETE /api/v1/users/{id}/sessions", s.auth("okta.users.manage", s.clearSessions))
	mux.HandleFunc("GET /api/v1/users/{id}/groups", s.auth("okta.users.read", s.userGroups))
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		oktaError(w, http.StatusNotFound, "E0000022", "The endpoint does not support the provided HTTP method")
	})
	s.srv = httptest.NewServer(s.common(mux))
	s.URL = s.srv.URL
	return s
}

// Close stops the server.
func (s *Server) Close() { s.srv.Close() }

// AddAPIToken registers an SSWS API token.
func (s *Server) AddAPIToken(token string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.tokens[token] = true
}

// AddClient registers an OAuth 2.0 service app with its public key (RSA or
// ECDSA) and the scopes it was granted.
func (s *Server) AddClient(clientID string, key crypto.PublicKey, scopes ...string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.clients[clientID] = &client{key: key, scopes: scopes}
}

// SetTokenTTL sets the lifetime of issued access tokens (default 1 h).
func (s *Server) SetTokenTTL(d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.tokenTTL = d
}

// RevokeTokens invalidates every issued access token (they stay counted
// by Tokens).
func (s *Server) RevokeTokens() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for tok, it := range s.issued {
		it.expires = time.Time{}
		s.issued[tok] = it
	}
}

// Tokens returns how many access tokens were issued.
func (s *Server) Tokens() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.issued)
}

// SetRateLimit sets the budget: limit requests per window per endpoint
// family (oauth2, users, groups). limit <= 0 turns it off.
func (s *Server) SetRateLimit(limit int, per time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.limit, s.window, s.windows = limit, per, map[string]*window{}
}

// SetClockSkew shifts the server's clock (Date, X-Rate-Limit-Reset, token
// expiry) by d.
func (s *Server) SetClockSkew(d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.skew = d
}

// SetPageMax caps the page size of list endpoints (default 1000).
func (s *Server) SetPageMax(n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.pageMax = max(n, 1)
}

// FailNext makes the next n API requests fail with the given 5xx status.
func (s *Server) FailNext(n, status int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.failNext, s.failCode = n, status
}

// Hang makes the fake a blackhole, as a dropped network path is: every API
// request is accepted and never answered until the client gives up (its
// deadline) or Hang(false) releases it, after which it is served normally.
func (s *Server) Hang(on bool) {
	s.hang.Set(on)
}

// Hung returns how many requests the fake held while hanging.
func (s *Server) Hung() int64 { return s.hang.Held() }

// Throttled returns how many requests were answered with 429.
func (s *Server) Throttled() int64 { return s.throttled.Load() }

// Calls returns how many requests matched a route, e.g.
// "PUT /api/v1/groups/{gid}/users/{uid}".
func (s *Server) Calls(route string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.calls[route]
}

// AddUser creates an ACTIVE user whose login and email are email and
// returns its id.
func (s *Server) AddUser(email string) string {
	return s.AddUserFull(User{Login: email, Email: email, Status: "ACTIVE"})
}

// AddUserFull creates u (ID generated when empty, Status ACTIVE when empty)
// and returns its id.
func (s *Server) AddUserFull(u User) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if u.ID == "" {
		u.ID = newID("00u")
	}
	if u.Status == "" {
		u.Status = "ACTIVE"
	}
	s.users[u.ID] = &u
	return u.ID
}

// SetStatus changes a user's status.
func (s *Server) SetStatus(userID, status string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if u := s.users[userID]; u != nil {
		u.Status = status
	}
}

// DeleteUser deletes a user and its group memberships (deactivate and
// delete in Okta).
func (s *Server) DeleteUser(userID string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.users, userID)
	for _, m := range s.members {
		delete(m, userID)
	}
}

// UserID returns the id of the user with that login or email.
func (s *Server) UserID(loginOrEmail string) (string, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, u := range s.users {
		if strings.EqualFold(u.Login, loginOrEmail) || strings.EqualFold(u.Email, loginOrEmail) {
			return u.ID, true
		}
	}
	return "", false
}

// AddGroup creates an OKTA_GROUP and returns its id.
func (s *Server) AddGroup(name string) string { return s.AddGroupOfType(name, OktaGroup) }

// AddGroupOfType creates a group of the given type and returns its id.
func (s *Server) AddGroupOfType(name, typ string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	id := newID("00g")
	s.groups[id] = &Group{ID: id, Name: name, Type: typ}
	s.members[id] = map[string]int64{}
	return id
}

// AddMember adds a user to a group directly (out of band). It returns false
// for an unknown group or user.
func (s *Server) AddMember(groupID, userID string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.groups[groupID] == nil || s.users[userID] == nil {
		return false
	}
	if _, ok := s.members[groupID][userID]; !ok {
		s.seq++
		s.members[groupID][userID] = s.seq
	}
	return true
}

// MemberEmails returns the emails of a group's members, in the order they
// were added.
func (s *Server) MemberEmails(groupID string) []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	ids := s.memberIDsLocked(groupID, func(a, b string) int {
		return int(s.members[groupID][a] - s.members[groupID][b])
	})
	out := make([]string, len(ids))
	for i, id := range ids {
		out[i] = s.users[id].Email
	}
	return out
}

func (s *Server) memberIDsLocked(groupID string, cmp func(a, b string) int) []string {
	var ids []string
	for id := range s.members[groupID] {
		ids = append(ids, id)
	}
	slices.SortFunc(ids, cmp)
	return ids
}

const idChars = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"

func newID(prefix string) string {
	b := make([]byte, 17)
	_, _ = rand.Read(b)
	for i := range b {
		b[i] = idChars[int(b[i])%len(idChars)]
	}
	return prefix + string(b)
}

func (s *Server) now() time.Time { return time.Now().Add(s.skew) }

func oktaError(w http.ResponseWriter, status int, code, summary string, causes ...string) {
	list := []map[string]string{}
	for _, c := range causes {
		list = append(list, map[string]string{"errorSummary": c})
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]any{
		"errorCode": code, "errorSummary": summary, "errorLink": code,
		"errorId": newID("oae"), "errorCauses": list,
	})
}

func notFound(w http.ResponseWriter, id, kind string) {
	oktaError(w, http.StatusNotFound, "E0000007", "Not found: Resource not found: "+id+" ("+kind+")")
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(v)
}

func family(path string) string {
	switch {
	case strings.HasPrefix(path, "/oauth2/"):
		return "oauth2"
	case strings.HasPrefix(path, "/api/v1/users"):
		return "users"
	default:
		return "groups"
	}
}

// common sets Date and the rate-limit headers, counts calls, throttles and
// fails on demand.
func (s *Server) common(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		_, pattern := routePattern(r)
		s.calls[pattern]++
		if strings.HasPrefix(r.URL.Path, "/api/") {
			s.mu.Unlock()
			if !s.hang.Hold(r.Context()) {
				return // the client gave up while the fake hung; nothing was done
			}
			s.mu.Lock()
		}
		now := s.now()
		w.Header().Set("Date", now.UTC().Format(http.TimeFormat))
		if s.limit > 0 {
			fam := family(r.URL.Path)
			start := now.Truncate(s.window)
			win := s.windows[fam]
			if win == nil || !win.start.Equal(start) {
				win = &window{start: start}
				s.windows[fam] = win
			}
			win.count++
			reset := start.Add(s.window)
			w.Header().Set("X-Rate-Limit-Limit", strconv.Itoa(s.limit))
			w.Header().Set("X-Rate-Limit-Remaining", strconv.Itoa(max(s.limit-win.count, 0)))
			w.Header().Set("X-Rate-Limit-Reset", strconv.FormatInt((reset.UnixNano()+int64(time.Second)-1)/int64(time.Second), 10))
			if win.count > s.limit {
				s.mu.Unlock()
				s.throttled.Add(1)
				oktaError(w, http.StatusTooManyRequests, "E0000047", "API call exceeded rate limit due to too many requests.")
				return
			}
		}
		if s.failNext > 0 && strings.HasPrefix(r.URL.Path, "/api/") {
			s.failNext--
			code := s.failCode
			s.mu.Unlock()
			oktaError(w, code, "E0000009", "Internal Server Error")
			return
		}
		s.mu.Unlock()
		next.ServeHTTP(w, r)
	})
}

var routes = []string{
	"POST /oauth2/v1/token",
	"GET /api/v1/users/{id}",
	"GET /api/v1/users",
	"GET /api/v1/groups/{gid}",
	"GET /api/v1/groups",
	"GET /api/v1/groups/{gid}/users",
	"PUT /api/v1/groups/{gid}/users/{uid}",
	"DELETE /api/v1/groups/{gid}/users/{uid}",
	"DELETE /api/v1/users/{id}/sessions",
	"GET /api/v1/users/{id}/groups",
}

var routeMux = func() *http.ServeMux {
	m := http.NewServeMux()
	for _, r := range routes {
		m.HandleFunc(r, func(http.ResponseWriter, *http.Request) {})
	}
	return m
}()

func routePattern(r *http.Request) (http.Handler, string) { return routeMux.Handler(r) }

// auth checks SSWS and Bearer tokens (and, for Bearer, the scope: a
// *.manage scope includes *.read).
func (s *Server) auth(scope string, h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		kind, tok, _ := strings.Cut(r.Header.Get("Authorization"), " ")
		s.mu.Lock()
		ok, scoped := false, false
		switch kind {
		case "SSWS":
			ok, scoped = s.tokens[tok], true
		case "Bearer":
			if it, found := s.issued[tok]; found && s.now().Before(it.expires) {
				ok = true
				manage := strings.TrimSuffix(scope, ".read") + ".manage"
				scoped = slices.Contains(it.scopes, scope) || slices.Contains(it.scopes, manage)
			}
		}
		s.mu.Unlock()
		if !ok {
			oktaError(w, http.StatusUnauthorized, "E0000011", "Invalid token provided")
			return
		}
		if !scoped {
			w.Header().Set("WWW-Authenticate", `Bearer authorization_uri="`+s.URL+`/oauth2/v1/authorize", realm="`+s.URL+`", scope="`+scope+`", error="insufficient_scope", error_description="The access token provided does not contain the required scopes.", resource="`+r.URL.Path+`"`)
			oktaError(w, http.StatusForbidden, "E0000006", "You do not have permission to perform the requested action")
			return
		}
		h(w, r)
	}
}

func (s *Server) userJSON(u *User) map[string]any {
	return map[string]any{
		"id": u.ID, "status": u.Status,
		"created": "2024-01-02T03:04:05.000Z", "lastUpdated": "2024-01-02T03:04:05.000Z",
		"type":    map[string]any{"id": "oty1234567890abcdef"},
		"profile": map[string]any{"login": u.Login, "email": u.Email, "firstName": "Test", "lastName": "User", "mobilePhone": nil},
		"_links":  map[string]any{"self": map[string]string{"href": s.URL + "/api/v1/users/" + u.ID}},
	}
}

func (s *Server) groupJSON(g *Group) map[string]any {
	return map[string]any{
		"id": g.ID, "type": g.Type, "objectClass": []string{"okta:user_group"},
		"created": "2024-01-02T03:04:05.000Z", "lastUpdated": "2024-01-02T03:04:05.000Z",
		"profile": map[string]any{"name": g.Name, "description": nil},
		"_links":  map[string]any{"users": map[string]string{"href": s.URL + "/api/v1/groups/" + g.ID + "/users"}},
	}
}

func (s *Server) getUser(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	s.mu.Lock()
	defer s.mu.Unlock()
	if u := s.users[id]; u != nil {
		writeJSON(w, s.userJSON(u))
		return
	}
	for _, u := range s.users {
		if strings.EqualFold(u.Login, id) {
			writeJSON(w, s.userJSON(u))
			return
		}
	}
	notFound(w, id, "User")
}

// parseSearch reads `profile.<attr> eq "<value>"` with backslash escapes.
func parseSearch(q string) (attr, value string, ok bool) {
	attr, rest, found := strings.Cut(strings.TrimSpace(q), " eq ")
	if !found || !strings.HasPrefix(attr, "profile.") {
		return "", "", false
	}
	rest = strings.TrimSpace(rest)
	if len(rest) < 2 || rest[0] != '"' || rest[len(rest)-1] != '"' {
		return "", "", false
	}
	var b strings.Builder
	in := rest[1 : len(rest)-1]
	for i := 0; i < len(in); i++ {
		c := in[i]
		if c == '\\' && i+1 < len(in) {
			i++
			c = in[i]
		} else if c == '"' {
			return "", "", false // unescaped quote
		}
		b.WriteByte(c)
	}
	return strings.TrimPrefix(attr, "profile."), b.String(), true
}

func (s *Server) searchUsers(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query().Get("search")
	attr, value, ok := parseSearch(q)
	if !ok || (attr != "email" && attr != "login") {
		oktaError(w, http.StatusBadRequest, "E0000031", "Invalid search.", "search: unsupported expression "+strconv.Quote(q))
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	out := []map[string]any{}
	ids := make([]string, 0, len(s.users))
	for id := range s.users {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	for _, id := range ids {
		u := s.users[id]
		v := u.Email
		if attr == "login" {
			v = u.Login
		}
		if strings.EqualFold(v, value) {
			out = append(out, s.userJSON(u))
		}
	}
	writeJSON(w, out)
}

func (s *Server) getGroup(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	g := s.groups[r.PathValue("gid")]
	if g == nil {
		notFound(w, r.PathValue("gid"), "Group")
		return
	}
	writeJSON(w, s.groupJSON(g))
}

func (s *Server) listGroups(w http.ResponseWriter, r *http.Request) {
	limit, ok := s.limitParam(w, r)
	if !ok {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	ids := make([]string, 0, len(s.groups))
	for id := range s.groups {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	out := []map[string]any{}
	for _, id := range ids[:min(limit, len(ids))] {
		out = append(out, s.groupJSON(s.groups[id]))
	}
	writeJSON(w, out)
}

func (s *Server) limitParam(w http.ResponseWriter, r *http.Request) (int, bool) {
	s.mu.Lock()
	limit := s.pageMax
	s.mu.Unlock()
	if v := r.URL.Query().Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			oktaError(w, http.StatusBadRequest, "E0000001", "Api validation failed: limit", "limit: must be a positive number")
			return 0, false
		}
		limit = min(limit, n)
	}
	return limit, true
}

func (s *Server) listMembers(w http.ResponseWriter, r *http.Request) {
	gid := r.PathValue("gid")
	limit, ok := s.limitParam(w, r)
	if !ok {
		return
	}
	after := r.URL.Query().Get("after")
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.groups[gid] == nil {
		notFound(w, gid, "Group")
		return
	}
	ids := s.memberIDsLocked(gid, strings.Compare)
	start := 0
	if after != "" {
		start, _ = slices.BinarySearch(ids, after)
		if start < len(ids) && ids[start] == after {
			start++
		}
	}
	end := min(start+limit, len(ids))
	out := []map[string]any{}
	for _, id := range ids[start:end] {
		out = append(out, s.userJSON(s.users[id]))
	}
	self := s.URL + r.URL.RequestURI()
	w.Header().Add("Link", "<"+self+">; rel=\"self\"")
	if end < len(ids) {
		next := url.Values{"limit": {strconv.Itoa(limit)}, "after": {ids[end-1]}}
		w.Header().Add("Link", "<"+s.URL+"/api/v1/groups/"+gid+"/users?"+next.Encode()+">; rel=\"next\"")
	}
	writeJSON(w, out)
}

func (s *Server) membership(w http.ResponseWriter, r *http.Request) {
	gid, uid := r.PathValue("gid"), r.PathValue("uid")
	s.mu.Lock()
	defer s.mu.Unlock()
	g := s.groups[gid]
	if g == nil {
		notFound(w, gid, "Group")
		return
	}
	if s.users[uid] == nil { // ids only: a login here is not found
		notFound(w, uid, "User")
		return
	}
	if g.Type != OktaGroup {
		oktaError(w, http.StatusForbidden, "E0000006", "You do not have permission to perform the requested action")
		return
	}
	if r.Method == http.MethodPut {
		if _, ok := s.members[gid][uid]; !ok {
			s.seq++
			s.members[gid][uid] = s.seq
		}
		w.WriteHeader(http.StatusNoContent)
		return
	}
	if _, ok := s.members[gid][uid]; !ok {
		notFound(w, uid, "User")
		return
	}
	delete(s.members[gid], uid)
	w.WriteHeader(http.StatusNoContent)
}

func oauthError(w http.ResponseWriter, status int, code, desc string) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]string{"error": code, "error_description": desc})
}

func (s *Server) token(w http.ResponseWriter, r *http.Request) {
	if ct := r.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/x-www-form-urlencoded") {
		oauthError(w, 400, "invalid_request", "Content-Type must be application/x-www-form-urlencoded")
		return
	}
	if err := r.ParseForm(); err != nil {
		oauthError(w, 400, "invalid_request", "cannot parse the form")
		return
	}
	f := r.PostForm
	if f.Get("grant_type") != "client_credentials" {
		oauthError(w, 400, "unsupported_grant_type", "The authorization grant type is not supported by the authorization server.")
		return
	}
	if f.Get("client_assertion_type") != "urn:ietf:params:oauth:client-assertion-type:jwt-bearer" {
		oauthError(w, 401, "invalid_client", "client_assertion_type is missing or not jwt-bearer.")
		return
	}
	claims, err := s.verifyAssertion(f.Get("client_assertion"))
	if err != nil {
		oauthError(w, 401, "invalid_client", err.Error())
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.clients[claims.Iss]
	scopes := strings.Fields(f.Get("scope"))
	if len(scopes) == 0 {
		oauthError(w, 400, "invalid_scope", "The authorization server resource does not have any configured default scopes, 'scope' must be provided.")
		return
	}
	for _, sc := range scopes {
		if !slices.Contains(c.scopes, sc) {
			oauthError(w, 400, "invalid_scope", "The following scopes are not allowed: "+sc)
			return
		}
	}
	var b [24]byte
	_, _ = rand.Read(b[:])
	tok := "eyJraWQiOiJmYWtlIn0." + base64.RawURLEncoding.EncodeToString(b[:])
	s.issued[tok] = issued{expires: s.now().Add(s.tokenTTL), scopes: scopes}
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(w, map[string]any{"token_type": "Bearer", "expires_in": int(s.tokenTTL / time.Second),
		"access_token": tok, "scope": strings.Join(scopes, " ")})
}

type assertionClaims struct {
	Iss string   `json:"iss"`
	Sub string   `json:"sub"`
	Aud audience `json:"aud"`
	Exp *int64   `json:"exp"`
	Iat *int64   `json:"iat"`
	Jti string   `json:"jti"`
}

// audience accepts a string or an array of strings.
type audience []string

func (a *audience) UnmarshalJSON(b []byte) error {
	var one string
	if json.Unmarshal(b, &one) == nil {
		*a = []string{one}
		return nil
	}
	var many []string
	err := json.Unmarshal(b, &many)
	*a = many
	return err
}

func (s *Server) verifyAssertion(jwt string) (*assertionClaims, error) {
	parts := strings.Split(jwt, ".")
	if len(parts) != 3 {
		return nil, fmt.Errorf("The client_assertion is not a JWT.")
	}
	var hdr struct {
		Alg string `json:"alg"`
	}
	var claims assertionClaims
	for i, v := range []any{&hdr, &claims} {
		raw, err := base64.RawURLEncoding.DecodeString(parts[i])
		if err != nil || json.Unmarshal(raw, v) != nil {
			return nil, fmt.Errorf("The client_assertion token is malformed.")
		}
	}
	sig, err := base64.RawURLEncoding.DecodeString(parts[2])
	if err != nil {
		return nil, fmt.Errorf("The client_assertion signature is malformed.")
	}
	s.mu.Lock()
	c := s.clients[claims.Iss]
	now := s.now()
	s.mu.Unlock()
	if c == nil {
		return nil, fmt.Errorf("The client_id is not found.")
	}
	if claims.Sub != claims.Iss {
		return nil, fmt.Errorf("The client_assertion sub claim must match the iss claim.")
	}
	if !slices.Contains(claims.Aud, s.URL+"/oauth2/v1/token") {
		return nil, fmt.Errorf("The audience claim for client_assertion must be the endpoint invoked for the request.")
	}
	if claims.Exp == nil || claims.Iat == nil || claims.Jti == "" {
		return nil, fmt.Errorf("The client_assertion must contain exp, iat and jti.")
	}
	exp := time.Unix(*claims.Exp, 0)
	if !exp.After(now) || exp.Sub(now) > time.Hour+time.Minute {
		return nil, fmt.Errorf("The client_assertion token has an expiration too far into the future or is expired.")
	}
	if !verify(hdr.Alg, c.key, []byte(parts[0]+"."+parts[1]), sig) {
		return nil, fmt.Errorf("The client_assertion signature is invalid.")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.jtis[claims.Jti] {
		return nil, fmt.Errorf("The client_assertion token has already been used.")
	}
	s.jtis[claims.Jti] = true
	return &claims, nil
}

func verify(alg string, key crypto.PublicKey, input, sig []byte) bool {
	var h hash.Hash
	var ch crypto.Hash
	switch alg {
	case "RS256", "ES256":
		h, ch = sha256.New(), crypto.SHA256
	case "RS384", "ES384":
		h, ch = sha512.New384(), crypto.SHA384
	case "RS512", "ES512":
		h, ch = sha512.New(), crypto.SHA512
	default:
		return false
	}
	h.Write(input)
	digest := h.Sum(nil)
	switch k := key.(type) {
	case *rsa.PublicKey:
		return alg[0] == 'R' && rsa.VerifyPKCS1v15(k, ch, digest, sig) == nil
	case *ecdsa.PublicKey:
		size := (k.Curve.Params().BitSize + 7) / 8
		if alg[0] != 'E' || len(sig) != 2*size {
			return false
		}
		r, s := new(big.Int).SetBytes(sig[:size]), new(big.Int).SetBytes(sig[size:])
		return ecdsa.Verify(k, digest, r, s)
	}
	return false
}

// userGroups serves GET /api/v1/users/{id}/groups: the groups the user
// (by id or login) is a member of, ordered by id, paged like the member
// lists (limit, after, separate Link headers with rel="next").
func (s *Server) userGroups(w http.ResponseWriter, r *http.Request) {
	limit, ok := s.limitParam(w, r)
	if !ok {
		return
	}
	after := r.URL.Query().Get("after")
	s.mu.Lock()
	defer s.mu.Unlock()
	id := r.PathValue("id")
	u := s.users[id]
	if u == nil {
		for _, x := range s.users {
			if strings.EqualFold(x.Login, id) {
				u = x
			}
		}
	}
	if u == nil {
		notFound(w, id, "User")
		return
	}
	var gids []string
	for gid, ms := range s.members {
		if _, ok := ms[u.ID]; ok {
			gids = append(gids, gid)
		}
	}
	slices.Sort(gids)
	start := 0
	if after != "" {
		start, _ = slices.BinarySearch(gids, after)
		if start < len(gids) && gids[start] == after {
			start++
		}
	}
	end := min(start+limit, len(gids))
	out := []map[string]any{}
	for _, gid := range gids[start:end] {
		out = append(out, s.groupJSON(s.groups[gid]))
	}
	w.Header().Add("Link", "<"+s.URL+r.URL.RequestURI()+">; rel=\"self\"")
	if end < len(gids) {
		next := url.Values{"limit": {strconv.Itoa(limit)}, "after": {gids[end-1]}}
		w.Header().Add("Link", "<"+s.URL+"/api/v1/users/"+u.ID+"/groups?"+next.Encode()+">; rel=\"next\"")
	}
	writeJSON(w, out)
}
