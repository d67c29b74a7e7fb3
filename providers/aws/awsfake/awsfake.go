// Package awsfake is a protocol-faithful fake of the AWS Identity Store and
// SSO Admin JSON APIs (awsJson1_1 over HTTP) for tests: the real
// aws-sdk-go-v2 clients talk to it over loopback.
//
// It speaks POST / with X-Amz-Target "AWSIdentityStore.<Op>" or
// "SWBExternalService.<Op>", answers with the field names of the SDK's
// serializers, reports errors with X-Amzn-ErrorType and a "__type" body,
// throttles each API with a token bucket (20 requests/second by default,
// answering HTTP 400 ThrottlingException "Rate exceeded") and requires a
// SigV4 Authorization header (signatures are not verified; the access key id
// may be). SSO Admin's APIs share one token bucket, as the service's 20 TPS
// is shared; permission sets, their inline policies and their provisioning
// are in ssoadmin.go.
package awsfake

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/time/rate"

	"github.com/accessbot/accessbot/internal/fakeswitch"
)

// DefaultIdentityStoreID is the identity store a new Server holds.
const DefaultIdentityStoreID = "d-1234567890"

// DefaultInstanceARN is the IAM Identity Center instance a new Server holds.
const DefaultInstanceARN = "arn:aws:sso:::instance/ssoins-1234567890abcdef"

// DefaultRate is the per-API request rate above which the fake throttles.
const DefaultRate = 20

// User is an Identity Store user.
type User struct {
	ID       string
	UserName string
	Email    string
	Disabled bool
}

// Group is an Identity Store group.
type Group struct {
	ID          string
	DisplayName string
}

// Assignment is an account assignment held by a principal.
type Assignment struct {
	AccountID        string
	PermissionSetArn string
}

type pair struct{ group, user string }

type membership struct {
	id, group, user string
	seq             int64
}

// Server is the fake. All methods are safe for concurrent use.
type Server struct {
	// URL is the base endpoint, e.g. http://127.0.0.1:41234.
	URL string

	srv *httptest.Server

	mu          sync.Mutex
	storeID     string
	instanceARN string
	users       map[string]*User
	groups      map[string]*Group
	groupOrder  []string
	members     map[string]*membership // by membership id
	byPair      map[pair]string
	seq         int64
	assignments map[string][]Assignment // by principal id
	accessKeys  map[string]bool         // empty: any key accepted
	denied      map[string]bool         // operations answered with AccessDeniedException
	calls       map[string]int
	changes     []Change // memberships created and deleted through the API
	failNext    int
	failStatus  int
	pageSize    int

	rps            float64
	burst          int
	throttleStatus int
	retryAfter     int
	limiters       map[string]*rate.Limiter
	throttled      atomic.Int64
	hang           fakeswitch.Blackhole // Hang
	delay          atomic.Int64         // SetDelay, in nanoseconds

	sso ssoState // permission sets, inline policies, provisioning (ssoadmin.go)
}

// New starts a fake on 127.0.0.1. Call Close when done.
func New() *Server {
	s := &Server{
		storeID:        DefaultIdentityStoreID,
		instanceARN:    DefaultInstanceARN,
		users:          map[string]*User{},
		groups:         map[string]*Group{},
		members:        map[string]*membership{},
		byPair:         map[pair]string{},
		assignments:    map[string][]Assignment{},
		accessKeys:     map[string]bool{},
		denied:         map[string]bool{},
		calls:          map[string]int{},
		rps:            DefaultRate,
		burst:          DefaultRate,
		throttleStatus: http.StatusBadRequest,
		limiters:       map[string]*rate.Limiter{},
		pageSize:       100,
	}
	s.srv = httptest.NewServer(http.HandlerFunc(s.serve))
	s.URL = s.srv.URL
	return s
}

// Close stops the server.
func (s *Server) Close() { s.srv.Close() }

// IdentityStoreID returns the id of the identity store the fake holds.
func (s *Server) IdentityStoreID() string { return s.storeID }

// InstanceARN returns the ARN of the Identity Center instance the fake holds.
func (s *Server) InstanceARN() string { return s.instanceARN }

// AllowAccessKeys restricts the accepted SigV4 access key ids; requests
// signed with any other key get UnrecognizedClientException. With no call,
// any key is accepted.
func (s *Server) AllowAccessKeys(ids ...string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, id := range ids {
		s.accessKeys[id] = true
	}
}

// Deny makes op (e.g. "ListAccountAssignmentsForPrincipal") answer with
// AccessDeniedException.
func (s *Server) Deny(op string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.denied[op] = true
}

// SetThrottle sets the token bucket of every API: rps requests per second
// with the given burst. rps <= 0 turns throttling off. status is the HTTP
// status of throttled answers (400 as the service mostly does, or 429);
// retryAfter, when positive, is sent as RetryAfterSeconds and Retry-After.
func (s *Server) SetThrottle(rps float64, burst, status, retryAfter int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.rps, s.burst, s.retryAfter = rps, max(burst, 1), retryAfter
	if status == 0 {
		status = http.StatusBadRequest
	}
	s.throttleStatus = status
	s.limiters = map[string]*rate.Limiter{}
}

// Hang makes the fake a blackhole, as a dropped network path or an
// overloaded endpoint is: every request is accepted and never answered
// until the client gives up (its deadline) or Hang(false) releases it,
// after which it is served normally. Counted in Calls.
func (s *Server) Hang(on bool) {
	s.hang.Set(on)
}

// SetDelay makes every request take d before it is served, like the
// round trip to a real AWS endpoint. A request whose client goes away
// meanwhile is still carried out (its effect lands, its answer is lost).
// Zero (the default) serves at once.
func (s *Server) SetDelay(d time.Duration) { s.delay.Store(int64(d)) }

// Hung returns how many requests the fake held while hanging.
func (s *Server) Hung() int64 { return s.hang.Held() }

// Throttled returns how many requests were answered with ThrottlingException.
func (s *Server) Throttled() int64 { return s.throttled.Load() }

// FailNext makes the next n requests fail with InternalServerException
// (status 500 unless another 5xx status is given; RetryAfterSeconds as set
// by SetThrottle).
func (s *Server) FailNext(n, status int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if status == 0 {
		status = http.StatusInternalServerError
	}
	s.failNext, s.failStatus = n, status
}

// SetPageSize caps the page size of list operations (default 100).
func (s *Server) SetPageSize(n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.pageSize = max(n, 1)
}

// Calls returns how many requests named op the fake received (throttled and
// failed ones included).
func (s *Server) Calls(op string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.calls[op]
}

// AddUser creates a user whose user name and primary email are email and
// returns its id.
func (s *Server) AddUser(email string) string {
	return s.AddUserFull(User{UserName: email, Email: email})
}

// AddUserFull creates u (ID generated when empty) and returns its id.
func (s *Server) AddUserFull(u User) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if u.ID == "" {
		u.ID = newID()
	}
	s.users[u.ID] = &u
	return u.ID
}

// SetDisabled sets a user's status.
func (s *Server) SetDisabled(userID string, disabled bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if u, ok := s.users[userID]; ok {
		u.Disabled = disabled
	}
}

// DeleteUser deletes a user and its group memberships, like DeleteUser
// does in the identity store.
func (s *Server) DeleteUser(userID string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.users, userID)
	for id, m := range s.members {
		if m.user == userID {
			delete(s.members, id)
			delete(s.byPair, pair{m.group, m.user})
		}
	}
}

// AddGroup creates a group and returns its id.
func (s *Server) AddGroup(name string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	id := newID()
	s.groups[id] = &Group{ID: id, DisplayName: name}
	s.groupOrder = append(s.groupOrder, id)
	return id
}

// AddAssignment records that a principal (group id) holds a permission set
// in an account.
func (s *Server) AddAssignment(principalID string, a Assignment) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.assignments[principalID] = append(s.assignments[principalID], a)
}

// Change is a membership the API created (CreateGroupMembership) or
// deleted (DeleteGroupMembership), with when the fake did it. Calls that
// changed nothing (a ConflictException, a missing membership) are not
// changes.
type Change struct {
	Op           string // "CreateGroupMembership" or "DeleteGroupMembership"
	Group, User  string // ids
	MembershipID string
	At           time.Time
}

// Changes returns every membership change made through the API, oldest
// first (out-of-band AddMember calls are not included).
func (s *Server) Changes() []Change {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Change(nil), s.changes...)
}

// AddMember adds a user to a group directly (out of band), like an
// administrator in the console would. It is a no-op for an existing
// membership and returns false when the group or user is unknown.
func (s *Server) AddMember(groupID, userID string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.groups[groupID] == nil || s.users[userID] == nil {
		return false
	}
	s.addMemberLocked(groupID, userID)
	return true
}

func (s *Server) addMemberLocked(groupID, userID string) string {
	if id, ok := s.byPair[pair{groupID, userID}]; ok {
		return id
	}
	s.seq++
	m := &membership{id: newID(), group: groupID, user: userID, seq: s.seq}
	s.members[m.id] = m
	s.byPair[pair{groupID, userID}] = m.id
	return m.id
}

// UserID returns the id of the user with that user name or email.
func (s *Server) UserID(nameOrEmail string) (string, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	u := s.findUserLocked("userName", nameOrEmail)
	if u == nil {
		u = s.findUserLocked("emails.value", nameOrEmail)
	}
	if u == nil {
		return "", false
	}
	return u.ID, true
}

// Members returns the user ids in a group, in the order they were added.
func (s *Server) Members(groupID string) []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.memberIDsLocked(groupID)
}

// MemberEmails returns the emails of a group's members, in the order they
// were added.
func (s *Server) MemberEmails(groupID string) []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	for _, id := range s.memberIDsLocked(groupID) {
		out = append(out, s.users[id].Email)
	}
	return out
}

func (s *Server) memberIDsLocked(groupID string) []string {
	ms := s.groupMembershipsLocked(groupID)
	out := make([]string, 0, len(ms))
	for _, m := range ms {
		out = append(out, m.user)
	}
	return out
}

func (s *Server) groupMembershipsLocked(groupID string) []*membership {
	var ms []*membership
	for _, m := range s.members {
		if m.group == groupID {
			ms = append(ms, m)
		}
	}
	slices.SortFunc(ms, func(a, b *membership) int { return int(a.seq - b.seq) })
	return ms
}

func (s *Server) findUserLocked(path, value string) *User {
	for _, u := range s.users {
		switch path {
		case "userName":
			if strings.EqualFold(u.UserName, value) {
				return u
			}
		case "emails.value":
			if u.Email != "" && strings.EqualFold(u.Email, value) {
				return u
			}
		}
	}
	return nil
}

func newID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	h := hex.EncodeToString(b[:])
	return "9067" + h[:6] + "-" + h[:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:32]
}

var (
	idPattern      = regexp.MustCompile(`^([0-9a-f]{10}-|)[A-Fa-f0-9]{8}-[A-Fa-f0-9]{4}-[A-Fa-f0-9]{4}-[A-Fa-f0-9]{4}-[A-Fa-f0-9]{12}$`)
	credentialAKID = regexp.MustCompile(`Credential=([^/,\s]+)/`)
)

// apiErr is an error answer.
type apiErr struct {
	status int
	code   string
	msg    string
	extra  map[string]any
}

func (e *apiErr) Error() string { return e.code + ": " + e.msg }

func notFound(kind, id string) *apiErr {
	return &apiErr{status: 400, code: "ResourceNotFoundException", msg: kind + " not found.",
		extra: map[string]any{"ResourceType": kind, "ResourceId": id}}
}

func validation(format string, a ...any) *apiErr {
	return &apiErr{status: 400, code: "ValidationException", msg: fmt.Sprintf(format, a...)}
}

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	reqID := newID()[11:]
	w.Header().Set("X-Amzn-RequestId", reqID)
	ns := "com.amazonaws.identitystore"
	target := r.Header.Get("X-Amz-Target")
	service, op, _ := strings.Cut(target, ".")
	if service == "SWBExternalService" {
		ns = "com.amazonaws.swbexternalservice"
	}
	fail := func(e *apiErr) {
		body := map[string]any{"__type": ns + "#" + e.code, "Message": e.msg}
		for k, v := range e.extra {
			body[k] = v
		}
		w.Header().Set("Content-Type", "application/x-amz-json-1.1")
		w.Header().Set("X-Amzn-ErrorType", e.code+":http://internal.amazon.com/coral/"+ns+"/")
		w.WriteHeader(e.status)
		_ = json.NewEncoder(w).Encode(body)
	}
	if r.Method != http.MethodPost || r.URL.Path != "/" {
		fail(&apiErr{status: 404, code: "UnknownOperationException", msg: "unsupported " + r.Method + " " + r.URL.Path})
		return
	}
	authz := r.Header.Get("Authorization")
	if !strings.HasPrefix(authz, "AWS4-HMAC-SHA256 ") {
		fail(&apiErr{status: 403, code: "MissingAuthenticationTokenException", msg: "Missing Authentication Token"})
		return
	}
	if ct := r.Header.Get("Content-Type"); ct != "application/x-amz-json-1.1" {
		fail(validation("unexpected Content-Type %q", ct))
		return
	}
	if service != "AWSIdentityStore" && service != "SWBExternalService" {
		fail(&apiErr{status: 400, code: "UnknownOperationException", msg: "unknown target " + target})
		return
	}

	s.mu.Lock()
	s.calls[op]++
	s.mu.Unlock()
	if !s.hang.Hold(r.Context()) {
		return // the client gave up while the fake hung; nothing was done
	}
	if d := time.Duration(s.delay.Load()); d > 0 {
		// Served even if the client goes away meanwhile, as AWS does
		// with a request it has received.
		time.Sleep(d)
	}
	s.mu.Lock()
	if len(s.accessKeys) > 0 {
		m := credentialAKID.FindStringSubmatch(authz)
		if m == nil || !s.accessKeys[m[1]] {
			s.mu.Unlock()
			fail(&apiErr{status: 400, code: "UnrecognizedClientException", msg: "The security token included in the request is invalid."})
			return
		}
	}
	if s.failNext > 0 {
		s.failNext--
		status, ra := s.failStatus, s.retryAfter
		s.mu.Unlock()
		e := &apiErr{status: status, code: "InternalServerException", msg: "An internal error occurred."}
		if ra > 0 {
			e.extra = map[string]any{"RetryAfterSeconds": ra}
		}
		fail(e)
		return
	}
	if s.rps > 0 {
		key := op
		if service == "SWBExternalService" {
			key = service // SSO Admin: one budget shared by all its APIs
		}
		lim := s.limiters[key]
		if lim == nil {
			lim = rate.NewLimiter(rate.Limit(s.rps), s.burst)
			s.limiters[key] = lim
		}
		if !lim.Allow() {
			status, ra := s.throttleStatus, s.retryAfter
			s.mu.Unlock()
			s.throttled.Add(1)
			e := &apiErr{status: status, code: "ThrottlingException", msg: "Rate exceeded"}
			if ra > 0 {
				e.extra = map[string]any{"RetryAfterSeconds": ra}
				w.Header().Set("Retry-After", strconv.Itoa(ra))
			}
			fail(e)
			return
		}
	}
	if s.denied[op] {
		s.mu.Unlock()
		fail(&apiErr{status: 400, code: "AccessDeniedException", msg: "User: arn:aws:sts::111122223333:assumed-role/accessbot/session is not authorized to perform: sso:" + op})
		return
	}
	s.mu.Unlock()

	var in request
	if err := json.NewDecoder(r.Body).Decode(&in); err != nil {
		fail(&apiErr{status: 400, code: "SerializationException", msg: "cannot decode request body: " + err.Error()})
		return
	}
	var out any
	var e *apiErr
	s.mu.Lock()
	if service == "SWBExternalService" {
		out, e = s.ssoAdmin(op, &in)
	} else {
		out, e = s.identityStore(op, &in)
	}
	s.mu.Unlock()
	if e != nil {
		fail(e)
		return
	}
	w.Header().Set("Content-Type", "application/x-amz-json-1.1")
	_ = json.NewEncoder(w).Encode(out)
}

// request is the union of the input fields of the supported operations.
type request struct {
	IdentityStoreId     *string
	AlternateIdentifier *struct {
		UniqueAttribute *struct {
			AttributePath  *string
			AttributeValue any
		}
		ExternalId any
	}
	UserId        *string
	GroupId       *string
	GroupIds      []string
	MemberId      *struct{ UserId *string }
	MembershipId  *string
	MaxResults    *int
	NextToken     *string
	InstanceArn   *string
	PrincipalId   *string
	PrincipalType *string
	Filter        *struct{ AccountId *string }
	// SSO Admin permission sets (ssoadmin.go)
	PermissionSetArn                *string
	InlinePolicy                    *string
	TargetType                      *string
	TargetId                        *string
	ProvisionPermissionSetRequestId *string
}

func str(p *string) string {
	if p == nil {
		return ""
	}
	return *p
}

func (s *Server) identityStore(op string, in *request) (any, *apiErr) {
	if in.IdentityStoreId == nil {
		return nil, validation("1 validation error detected: Value null at 'identityStoreId' failed to satisfy constraint: Member must not be null")
	}
	if *in.IdentityStoreId != s.storeID {
		return nil, notFound("IDENTITY_STORE", *in.IdentityStoreId)
	}
	base := map[string]any{"IdentityStoreId": s.storeID}
	with := func(kv ...any) map[string]any {
		m := map[string]any{}
		for k, v := range base {
			m[k] = v
		}
		for i := 0; i+1 < len(kv); i += 2 {
			m[kv[i].(string)] = kv[i+1]
		}
		return m
	}
	switch op {
	case "GetUserId":
		if in.AlternateIdentifier == nil || in.AlternateIdentifier.UniqueAttribute == nil {
			return nil, validation("only UniqueAttribute alternate identifiers are supported by the fake")
		}
		ua := in.AlternateIdentifier.UniqueAttribute
		path := str(ua.AttributePath)
		value, ok := ua.AttributeValue.(string)
		if !ok {
			return nil, validation("AttributeValue must be a string")
		}
		if path != "userName" && path != "emails.value" {
			return nil, validation("Invalid attribute path %q", path)
		}
		u := s.findUserLocked(path, value)
		if u == nil {
			return nil, notFound("USER", "")
		}
		return with("UserId", u.ID), nil

	case "DescribeUser":
		u, e := s.userLocked(str(in.UserId))
		if e != nil {
			return nil, e
		}
		status := "ENABLED"
		if u.Disabled {
			status = "DISABLED"
		}
		out := with("UserId", u.ID, "UserName", u.UserName, "DisplayName", u.UserName, "UserStatus", status)
		if u.Email != "" {
			out["Emails"] = []map[string]any{{"Value": u.Email, "Type": "work", "Primary": true}}
		}
		return out, nil

	case "DescribeGroup":
		g, e := s.groupLocked(str(in.GroupId))
		if e != nil {
			return nil, e
		}
		return with("GroupId", g.ID, "DisplayName", g.DisplayName), nil

	case "ListGroups":
		start, size, e := s.page(in)
		if e != nil {
			return nil, e
		}
		var groups []map[string]any
		end := min(start+size, len(s.groupOrder))
		for _, id := range s.groupOrder[min(start, end):end] {
			g := s.groups[id]
			groups = append(groups, map[string]any{"GroupId": g.ID, "DisplayName": g.DisplayName, "IdentityStoreId": s.storeID})
		}
		out := map[string]any{"Groups": orEmpty(groups)}
		if end < len(s.groupOrder) {
			out["NextToken"] = token(end)
		}
		return out, nil

	case "CreateGroupMembership", "GetGroupMembershipId":
		g, e := s.groupLocked(str(in.GroupId))
		if e != nil {
			return nil, e
		}
		if in.MemberId == nil || in.MemberId.UserId == nil {
			return nil, validation("MemberId.UserId is required")
		}
		u, e := s.userLocked(*in.MemberId.UserId)
		if e != nil {
			return nil, e
		}
		id, exists := s.byPair[pair{g.ID, u.ID}]
		if op == "GetGroupMembershipId" {
			if !exists {
				return nil, notFound("GROUP_MEMBERSHIP", "")
			}
			return with("MembershipId", id), nil
		}
		if exists {
			return nil, &apiErr{status: 400, code: "ConflictException", msg: "Member and Group relationship already exists",
				extra: map[string]any{"Reason": "UNIQUENESS_CONSTRAINT_VIOLATION"}}
		}
		mid := s.addMemberLocked(g.ID, u.ID)
		s.changes = append(s.changes, Change{Op: op, Group: g.ID, User: u.ID, MembershipID: mid, At: time.Now()})
		return with("MembershipId", mid), nil

	case "DeleteGroupMembership":
		id := str(in.MembershipId)
		if !idPattern.MatchString(id) {
			return nil, validation("Invalid MembershipId %q", id)
		}
		m, ok := s.members[id]
		if !ok {
			return nil, notFound("GROUP_MEMBERSHIP", id)
		}
		delete(s.members, id)
		delete(s.byPair, pair{m.group, m.user})
		s.changes = append(s.changes, Change{Op: op, Group: m.group, User: m.user, MembershipID: id, At: time.Now()})
		return map[string]any{}, nil

	case "ListGroupMemberships":
		g, e := s.groupLocked(str(in.GroupId))
		if e != nil {
			return nil, e
		}
		start, size, e := s.page(in)
		if e != nil {
			return nil, e
		}
		ms := s.groupMembershipsLocked(g.ID)
		end := min(start+size, len(ms))
		var list []map[string]any
		for _, m := range ms[min(start, end):end] {
			list = append(list, map[string]any{"IdentityStoreId": s.storeID, "MembershipId": m.id,
				"GroupId": m.group, "MemberId": map[string]any{"UserId": m.user}})
		}
		out := map[string]any{"GroupMemberships": orEmpty(list)}
		if end < len(ms) {
			out["NextToken"] = token(end)
		}
		return out, nil

	case "ListGroupMembershipsForMember":
		if in.MemberId == nil || in.MemberId.UserId == nil {
			return nil, validation("MemberId.UserId is required")
		}
		u, e := s.userLocked(*in.MemberId.UserId)
		if e != nil {
			return nil, e
		}
		start, size, e := s.page(in)
		if e != nil {
			return nil, e
		}
		var ms []*membership
		for _, m := range s.members {
			if m.user == u.ID {
				ms = append(ms, m)
			}
		}
		slices.SortFunc(ms, func(a, b *membership) int { return int(a.seq - b.seq) })
		end := min(start+size, len(ms))
		var list []map[string]any
		for _, m := range ms[min(start, end):end] {
			list = append(list, map[string]any{"IdentityStoreId": s.storeID, "MembershipId": m.id,
				"GroupId": m.group, "MemberId": map[string]any{"UserId": m.user}})
		}
		out := map[string]any{"GroupMemberships": orEmpty(list)}
		if end < len(ms) {
			out["NextToken"] = token(end)
		}
		return out, nil

	case "IsMemberInGroups":
		if in.MemberId == nil || in.MemberId.UserId == nil {
			return nil, validation("MemberId.UserId is required")
		}
		if n := len(in.GroupIds); n < 1 || n > 100 {
			return nil, validation("GroupIds must hold 1 to 100 ids, not %d", n)
		}
		u, e := s.userLocked(*in.MemberId.UserId)
		if e != nil {
			return nil, e
		}
		var results []map[string]any
		for _, gid := range in.GroupIds {
			_, ok := s.byPair[pair{gid, u.ID}]
			results = append(results, map[string]any{"GroupId": gid, "MemberId": map[string]any{"UserId": u.ID}, "MembershipExists": ok})
		}
		return map[string]any{"Results": results}, nil
	}
	return nil, &apiErr{status: 400, code: "UnknownOperationException", msg: "operation " + op + " is not supported by the fake"}
}

func (s *Server) ssoAdmin(op string, in *request) (any, *apiErr) {
	if op != "ListAccountAssignmentsForPrincipal" {
		return s.permissionSetOp(op, in)
	}
	if str(in.InstanceArn) != s.instanceARN {
		return nil, &apiErr{status: 400, code: "ResourceNotFoundException", msg: "Instance " + str(in.InstanceArn) + " not found"}
	}
	pt := str(in.PrincipalType)
	if pt != "GROUP" && pt != "USER" {
		return nil, validation("Invalid PrincipalType %q", pt)
	}
	pid := str(in.PrincipalId)
	if !idPattern.MatchString(pid) {
		return nil, validation("Invalid PrincipalId %q", pid)
	}
	var all []Assignment
	for _, a := range s.assignments[pid] {
		if in.Filter != nil && in.Filter.AccountId != nil && *in.Filter.AccountId != a.AccountID {
			continue
		}
		all = append(all, a)
	}
	start, size, e := s.page(in)
	if e != nil {
		return nil, e
	}
	end := min(start+size, len(all))
	var list []map[string]any
	for _, a := range all[min(start, end):end] {
		list = append(list, map[string]any{"AccountId": a.AccountID, "PermissionSetArn": a.PermissionSetArn,
			"PrincipalId": pid, "PrincipalType": pt})
	}
	out := map[string]any{"AccountAssignments": orEmpty(list)}
	if end < len(all) {
		out["NextToken"] = token(end)
	}
	return out, nil
}

func (s *Server) userLocked(id string) (*User, *apiErr) {
	if !idPattern.MatchString(id) {
		return nil, validation("1 validation error detected: Value '%s' at 'userId' failed to satisfy constraint", id)
	}
	u, ok := s.users[id]
	if !ok {
		return nil, notFound("USER", id)
	}
	return u, nil
}

func (s *Server) groupLocked(id string) (*Group, *apiErr) {
	if !idPattern.MatchString(id) {
		return nil, validation("1 validation error detected: Value '%s' at 'groupId' failed to satisfy constraint", id)
	}
	g, ok := s.groups[id]
	if !ok {
		return nil, notFound("GROUP", id)
	}
	return g, nil
}

func (s *Server) page(in *request) (start, size int, e *apiErr) {
	size = s.pageSize
	if in.MaxResults != nil {
		if *in.MaxResults < 1 || *in.MaxResults > 100 {
			return 0, 0, validation("MaxResults must be between 1 and 100")
		}
		size = min(size, *in.MaxResults)
	}
	if in.NextToken != nil {
		b, err := base64.RawURLEncoding.DecodeString(*in.NextToken)
		if err != nil {
			return 0, 0, validation("Invalid NextToken")
		}
		start, err = strconv.Atoi(strings.TrimPrefix(string(b), "offset:"))
		if err != nil || start < 0 {
			return 0, 0, validation("Invalid NextToken")
		}
	}
	return start, size, nil
}

func token(offset int) string {
	return base64.RawURLEncoding.EncodeToString([]byte("offset:" + strconv.Itoa(offset)))
}

func orEmpty(l []map[string]any) []map[string]any {
	if l == nil {
		return []map[string]any{}
	}
	return l
}
