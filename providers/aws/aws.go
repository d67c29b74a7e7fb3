// Package aws provisions access by managing group membership in the AWS IAM
// Identity Center identity store (aws-sdk-go-v2).
//
// A role maps to an Identity Store group that holds permission sets in
// accounts; Grant adds the requester to the group and Revoke removes them.
// Users are found by email (GetUserId on emails.value, or userName when the
// user names are emails). Requests are kept under the service's per-API rate
// (about 20 requests/second per identity store) by a client-side token
// bucket, and throttled or failed calls are retried with capped backoff that
// honours RetryAfterSeconds / Retry-After.
package aws

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"math/rand/v2"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	awssdk "github.com/aws/aws-sdk-go-v2/aws"
	awsmiddleware "github.com/aws/aws-sdk-go-v2/aws/middleware"
	"github.com/aws/aws-sdk-go-v2/aws/ratelimit"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/identitystore"
	"github.com/aws/aws-sdk-go-v2/service/identitystore/document"
	"github.com/aws/aws-sdk-go-v2/service/identitystore/types"
	"github.com/aws/aws-sdk-go-v2/service/ssoadmin"
	ssotypes "github.com/aws/aws-sdk-go-v2/service/ssoadmin/types"
	"github.com/aws/smithy-go"
	"github.com/aws/smithy-go/middleware"
	smithyhttp "github.com/aws/smithy-go/transport/http"
	"golang.org/x/time/rate"

	"github.com/accessbot/accessbot/access"
	"github.com/accessbot/accessbot/internal/ttlcache"
)

var (
	_ access.Provisioner  = (*Provider)(nil)
	_ access.MemberLister = (*Provider)(nil)
	_ access.UserChecker  = (*Provider)(nil)

	_ access.GroupMembership = (*Provider)(nil)
)

// Defaults. The service allows about 20 requests/second per API per identity
// store; staying just under leaves room for a second replica's retries.
const (
	DefaultRate        = 19
	DefaultMaxAttempts = 10
	DefaultMaxBackoff  = 20 * time.Second
	DefaultCacheTTL    = 5 * time.Minute
	cacheSize          = 20000
	maxRetryAfter      = 60 * time.Second
)

// Config selects the identity store.
type Config struct {
	IdentityStoreID string // d-1234567890
	Region          string // empty: from the environment (AWS_REGION, profile)
	// UserNameIsEmail lets users be found by userName when no user has the
	// email as an emails.value.
	UserNameIsEmail bool
	// InstanceARN (optional) lets Check list the account assignments each
	// group holds (ssoadmin).
	InstanceARN string

	// Session revocation (revoke_sessions, needs InstanceARN): Revoke also
	// denies the sessions the user already holds in the group's permission
	// sets (sessions.go).
	RevokeSessions bool
	RoleSessions   map[string]bool // per role name: overrides RevokeSessions
}

// Option adjusts New; mostly for tests.
type Option func(*settings)

type settings struct {
	awsConfig   *awssdk.Config
	endpoint    string
	httpClient  awssdk.HTTPClient
	maxAttempts int
	maxBackoff  time.Duration
	rate        float64
	cacheTTL    time.Duration

	clock        access.Clock  // session revocation: revocation and expiry times
	pollInterval time.Duration // session revocation: provisioning status reads
}

// WithAWSConfig uses cfg instead of config.LoadDefaultConfig.
func WithAWSConfig(cfg awssdk.Config) Option { return func(s *settings) { s.awsConfig = &cfg } }

// WithEndpoint sends Identity Store and SSO Admin requests to url (a fake, a
// VPC endpoint). AWS_ENDPOINT_URL_IDENTITYSTORE works as well.
func WithEndpoint(url string) Option { return func(s *settings) { s.endpoint = url } }

// WithHTTPClient sets the HTTP client of both API clients.
func WithHTTPClient(c awssdk.HTTPClient) Option { return func(s *settings) { s.httpClient = c } }

// WithRetry sets the attempts per call (including the first) and the cap of
// the backoff between them.
func WithRetry(maxAttempts int, maxBackoff time.Duration) Option {
	return func(s *settings) { s.maxAttempts, s.maxBackoff = maxAttempts, maxBackoff }
}

// WithRateLimit sets the client-side rate per API in requests/second;
// 0 or less turns the limiter off.
func WithRateLimit(rps float64) Option { return func(s *settings) { s.rate = rps } }

// WithCacheTTL sets how long user lookups are cached; 0 turns caching off.
func WithCacheTTL(d time.Duration) Option { return func(s *settings) { s.cacheTTL = d } }

// Provider manages Identity Store group membership. It is safe for
// concurrent use.
type Provider struct {
	cfg    Config
	ids    *identitystore.Client
	sso    *ssoadmin.Client
	log    *slog.Logger
	userID *ttlcache.Cache[string]   // lowercased email -> user id
	users  *ttlcache.Cache[userInfo] // user id -> user

	sessions sessionState // session revocation (sessions.go)
}

type userInfo struct {
	email    string
	disabled bool
	name     string // Identity Store UserName: the session name of its role sessions
}

// New builds a Provider from the default AWS configuration chain
// (environment, shared profile, IRSA / web identity, instance role) unless
// WithAWSConfig is given. It makes no API call; Check does.
func New(ctx context.Context, cfg Config, log *slog.Logger, opts ...Option) (*Provider, error) {
	if errs := cfg.Validate(); len(errs) > 0 {
		fe := errs[0].(*FieldError)
		return nil, fmt.Errorf("aws: %s %s", strings.TrimPrefix(fe.Path, prefix), fe.Msg)
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s := settings{maxAttempts: DefaultMaxAttempts, maxBackoff: DefaultMaxBackoff, rate: DefaultRate, cacheTTL: DefaultCacheTTL}
	for _, o := range opts {
		o(&s)
	}
	if s.maxAttempts < 1 {
		s.maxAttempts = 1
	}
	var awsCfg awssdk.Config
	if s.awsConfig != nil {
		awsCfg = s.awsConfig.Copy()
		if cfg.Region != "" {
			awsCfg.Region = cfg.Region
		}
	} else {
		var loadOpts []func(*config.LoadOptions) error
		if cfg.Region != "" {
			loadOpts = append(loadOpts, config.WithRegion(cfg.Region))
		}
		var err error
		awsCfg, err = config.LoadDefaultConfig(ctx, loadOpts...)
		if err != nil {
			return nil, fmt.Errorf("aws: load configuration: %w", err)
		}
	}
	if awsCfg.Region == "" {
		return nil, errors.New("aws: no region: set providers.aws.region or AWS_REGION")
	}

	newRetryer := func() awssdk.Retryer {
		return deadlineRetryer{maxBackoff: s.maxBackoff, Standard: retry.NewStandard(func(o *retry.StandardOptions) {
			o.MaxAttempts = s.maxAttempts
			o.MaxBackoff = s.maxBackoff
			// The default retry quota gives up on retries after a burst of
			// throttling; the rate limiter below is what keeps the load fair.
			o.RateLimiter = ratelimit.None
			o.Backoff = retryAfterBackoff{inner: retry.NewExponentialJitterBackoff(s.maxBackoff)}
		})}
	}
	idLimits := newLimiters(s.rate, false)
	ssoLimits := newLimiters(s.rate, true) // ssoadmin: one budget shared by all APIs
	p := &Provider{
		cfg:    cfg,
		log:    log,
		userID: ttlcache.New[string](s.cacheTTL, cacheSize),
		users:  ttlcache.New[userInfo](s.cacheTTL, cacheSize),
	}
	p.sessions = newSessionState(cfg, s)
	p.ids = identitystore.NewFromConfig(awsCfg, func(o *identitystore.Options) {
		o.Retryer = newRetryer()
		o.RetryMaxAttempts = s.maxAttempts
		if s.endpoint != "" {
			o.BaseEndpoint = awssdk.String(s.endpoint)
		}
		if s.httpClient != nil {
			o.HTTPClient = s.httpClient
		}
		o.APIOptions = append(o.APIOptions, idLimits.addTo, countRetries)
	})
	p.sso = ssoadmin.NewFromConfig(awsCfg, func(o *ssoadmin.Options) {
		o.Retryer = newRetryer()
		o.RetryMaxAttempts = s.maxAttempts
		if s.endpoint != "" {
			o.BaseEndpoint = awssdk.String(s.endpoint)
		}
		if s.httpClient != nil {
			o.HTTPClient = s.httpClient
		}
		o.APIOptions = append(o.APIOptions, ssoLimits.addTo, countRetries)
	})
	return p, nil
}

// Grant adds the user to the group. An existing membership is success.
// Unknown or disabled users wrap access.ErrUnknownUser / ErrUserDisabled;
// an unknown group, bad credentials or a refused call are permanent.
func (p *Provider) Grant(ctx context.Context, g access.Grant) error {
	for attempt := 0; ; attempt++ {
		uid, err := p.activeUser(ctx, g.User, attempt > 0)
		if err != nil {
			return fmt.Errorf("aws: add %s to group %s: %w", g.User, g.Group, err)
		}
		_, err = p.ids.CreateGroupMembership(ctx, &identitystore.CreateGroupMembershipInput{
			IdentityStoreId: &p.cfg.IdentityStoreID,
			GroupId:         &g.Group,
			MemberId:        &types.MemberIdMemberUserId{Value: uid},
		})
		var conflict *types.ConflictException
		switch {
		case err == nil:
			p.log.InfoContext(ctx, "aws group membership added", "user", g.User, "group", g.Group, "request_id", g.RequestID)
			return nil
		case errors.As(err, &conflict) && conflict.Reason != types.ConflictExceptionReasonConcurrentModification:
			p.log.DebugContext(ctx, "aws user already in group", "user", g.User, "group", g.Group, "request_id", g.RequestID)
			return nil
		case isNotFound(err, types.ResourceTypeUser) && attempt == 0:
			p.forgetUser(g.User, uid) // deleted or re-created since it was cached
			continue
		}
		return fmt.Errorf("aws: add %s to group %s: %w", g.User, g.Group, p.classify(err))
	}
}

// Revoke removes the user from the group. A missing membership is success;
// a disabled user is removed like any other. An unknown user wraps
// access.ErrUnknownUser (the membership cannot be checked, so the caller
// must look), and an unknown group is permanent.
//
// Where session revocation is on for the role, it then denies the
// sessions the user already holds (denySessions); a failure there is
// returned like a failed removal, so the revocation is retried.
func (p *Provider) Revoke(ctx context.Context, g access.Grant) error {
	if err := p.removeMember(ctx, g); err != nil {
		return err
	}
	return p.denySessions(ctx, g)
}

// removeMember is Revoke's membership removal.
func (p *Provider) removeMember(ctx context.Context, g access.Grant) error {
	for attempt := 0; ; attempt++ {
		uid, err := p.resolve(ctx, g.User, attempt > 0)
		if err != nil {
			return fmt.Errorf("aws: remove %s from group %s: %w", g.User, g.Group, err)
		}
		out, err := p.ids.GetGroupMembershipId(ctx, &identitystore.GetGroupMembershipIdInput{
			IdentityStoreId: &p.cfg.IdentityStoreID,
			GroupId:         &g.Group,
			MemberId:        &types.MemberIdMemberUserId{Value: uid},
		})
		if err == nil {
			_, err = p.ids.DeleteGroupMembership(ctx, &identitystore.DeleteGroupMembershipInput{
				IdentityStoreId: &p.cfg.IdentityStoreID,
				MembershipId:    out.MembershipId,
			})
			if err == nil {
				p.log.InfoContext(ctx, "aws group membership removed", "user", g.User, "group", g.Group, "request_id", g.RequestID)
				return nil
			}
			if isNotFound(err, "") {
				return nil // removed by someone else in between
			}
			return fmt.Errorf("aws: remove %s from group %s: %w", g.User, g.Group, p.classify(err))
		}
		switch {
		case isNotFound(err, types.ResourceTypeUser) && attempt == 0:
			p.forgetUser(g.User, uid)
			continue
		case isNotFound(err, ""):
			// Not a member, unless the group itself is gone.
			if gerr := p.groupExists(ctx, g.Group); gerr != nil {
				return fmt.Errorf("aws: remove %s from group %s: %w", g.User, g.Group, gerr)
			}
			p.log.DebugContext(ctx, "aws user not in group", "user", g.User, "group", g.Group, "request_id", g.RequestID)
			return nil
		}
		return fmt.Errorf("aws: remove %s from group %s: %w", g.User, g.Group, p.classify(err))
	}
}

// CheckUser reports whether the email belongs to an enabled identity store
// user: nil, or an error wrapping access.ErrUnknownUser / ErrUserDisabled
// (or a transient or permanent lookup failure).
func (p *Provider) CheckUser(ctx context.Context, email string) error {
	if _, err := p.activeUser(ctx, email, false); err != nil {
		return fmt.Errorf("aws: check %s: %w", email, err)
	}
	return nil
}

// Members returns the lowercased emails of the group's members (the user
// name, then the user id, for users without an email).
func (p *Provider) Members(ctx context.Context, group string) ([]string, error) {
	pages := identitystore.NewListGroupMembershipsPaginator(p.ids, &identitystore.ListGroupMembershipsInput{
		IdentityStoreId: &p.cfg.IdentityStoreID,
		GroupId:         &group,
		MaxResults:      awssdk.Int32(100),
	})
	var out []string
	for pages.HasMorePages() {
		page, err := pages.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("aws: list members of group %s: %w", group, p.classify(err))
		}
		for _, m := range page.GroupMemberships {
			member, ok := m.MemberId.(*types.MemberIdMemberUserId)
			if !ok {
				continue
			}
			u, err := p.describe(ctx, member.Value, false)
			if isNotFound(err, "") {
				continue // deleted while listing
			}
			if err != nil {
				return nil, fmt.Errorf("aws: list members of group %s: describe user %s: %w", group, member.Value, err)
			}
			out = append(out, u.email)
		}
	}
	return out, nil
}

// IsMember reports whether the user (email) is a member of the group,
// from the user's memberships (ListGroupMembershipsForMember, every page
// until the group is found). A user the identity store does not know is
// no member.
func (p *Provider) IsMember(ctx context.Context, email, group string) (bool, error) {
	uid, err := p.resolve(ctx, email, false)
	if errors.Is(err, access.ErrUnknownUser) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("aws: groups of %s: %w", email, err)
	}
	pages := identitystore.NewListGroupMembershipsForMemberPaginator(p.ids, &identitystore.ListGroupMembershipsForMemberInput{
		IdentityStoreId: &p.cfg.IdentityStoreID,
		MemberId:        &types.MemberIdMemberUserId{Value: uid},
		MaxResults:      awssdk.Int32(100),
	})
	for pages.HasMorePages() {
		page, err := pages.NextPage(ctx)
		if isNotFound(err, "") {
			p.forgetUser(email, uid)
			return false, nil // deleted since it was looked up: no member
		}
		if err != nil {
			return false, fmt.Errorf("aws: groups of %s: %w", email, p.classify(err))
		}
		for _, m := range page.GroupMemberships {
			if awssdk.ToString(m.GroupId) == group {
				return true, nil
			}
		}
	}
	return false, nil
}

// activeUser resolves email and refuses disabled users. The status is read
// fresh (grants are rare; a just-disabled user must not get access).
func (p *Provider) activeUser(ctx context.Context, email string, fresh bool) (string, error) {
	uid, err := p.resolve(ctx, email, fresh)
	if err != nil {
		return "", err
	}
	u, err := p.describe(ctx, uid, true)
	if isNotFound(err, "") {
		p.forgetUser(email, uid)
		return "", fmt.Errorf("user %s (id %s) no longer exists in identity store %s: %w", email, uid, p.cfg.IdentityStoreID, access.ErrUnknownUser)
	}
	if err != nil {
		return "", fmt.Errorf("describe user %s: %w", uid, err)
	}
	if u.disabled {
		return "", fmt.Errorf("user %s (id %s) is DISABLED in identity store %s: %w", email, uid, p.cfg.IdentityStoreID, access.ErrUserDisabled)
	}
	return uid, nil
}

// resolve maps an email to a user id (cached unless fresh).
func (p *Provider) resolve(ctx context.Context, email string, fresh bool) (string, error) {
	key := access.NormalizeIdentity(email)
	if key == "" {
		return "", access.Permanent(errors.New("empty user identity"))
	}
	if err := access.CheckIdentity(key); err != nil {
		// Never look up a look-alike (ſ, the Kelvin sign): the store may
		// fold it onto another person's address.
		return "", access.Permanent(err)
	}
	if !fresh {
		if id, ok := p.userID.Get(key); ok {
			return id, nil
		}
	}
	paths := []string{"emails.value"}
	if p.cfg.UserNameIsEmail {
		paths = append(paths, "userName")
	}
	for _, path := range paths {
		out, err := p.ids.GetUserId(ctx, &identitystore.GetUserIdInput{
			IdentityStoreId: &p.cfg.IdentityStoreID,
			AlternateIdentifier: &types.AlternateIdentifierMemberUniqueAttribute{Value: types.UniqueAttribute{
				AttributePath:  awssdk.String(path),
				AttributeValue: document.NewLazyDocument(email),
			}},
		})
		if isNotFound(err, "") {
			continue
		}
		if err != nil {
			return "", fmt.Errorf("look up user %s: %w", email, p.classify(err))
		}
		id := awssdk.ToString(out.UserId)
		p.userID.Put(key, id)
		return id, nil
	}
	return "", fmt.Errorf("no user with %s %s in identity store %s (ResourceNotFoundException): %w",
		strings.Join(paths, " or "), email, p.cfg.IdentityStoreID, access.ErrUnknownUser)
}

func (p *Provider) forgetUser(email, uid string) {
	p.userID.Forget(access.NormalizeIdentity(email))
	p.users.Forget(uid)
}

// describe returns a user's email and status (cached unless fresh). A
// ResourceNotFoundException is returned as it is (see isNotFound).
func (p *Provider) describe(ctx context.Context, uid string, fresh bool) (userInfo, error) {
	if !fresh {
		if u, ok := p.users.Get(uid); ok {
			return u, nil
		}
	}
	out, err := p.ids.DescribeUser(ctx, &identitystore.DescribeUserInput{IdentityStoreId: &p.cfg.IdentityStoreID, UserId: &uid})
	if isNotFound(err, "") {
		return userInfo{}, err
	}
	if err != nil {
		return userInfo{}, p.classify(err)
	}
	u := userInfo{email: access.NormalizeIdentity(awssdk.ToString(out.UserName)), disabled: out.UserStatus == types.UserStatusDisabled,
		name: awssdk.ToString(out.UserName)}
	for i, e := range out.Emails {
		if e.Value != nil && (i == 0 || awssdk.ToBool(&e.Primary)) {
			u.email = access.NormalizeIdentity(*e.Value)
		}
	}
	if u.email == "" {
		u.email = uid
	}
	p.users.Put(uid, u)
	return u, nil
}

// groupExists returns nil when the group exists, a permanent error when it
// does not, and a classified error when the question cannot be answered.
func (p *Provider) groupExists(ctx context.Context, group string) error {
	_, err := p.ids.DescribeGroup(ctx, &identitystore.DescribeGroupInput{IdentityStoreId: &p.cfg.IdentityStoreID, GroupId: &group})
	if err == nil {
		return nil
	}
	return p.classify(err)
}

// Check verifies that the identity store answers and every group exists,
// and lists the account assignments of each group when an InstanceARN is
// configured (an AccessDenied there is a note, not a problem). lines are
// human-readable findings, problems the failures; it backs
// `accessbot check --online`.
func (p *Provider) Check(ctx context.Context, groups map[string]string) (lines []string, problems []error) {
	return p.check(ctx, groups, nil)
}

// check is Check; with roles it also compares each permission set's
// session duration with the role's max_duration (sessionLines).
func (p *Provider) check(ctx context.Context, groups map[string]string, roles map[string]access.Role) (lines []string, problems []error) {
	_, err := p.ids.ListGroups(ctx, &identitystore.ListGroupsInput{IdentityStoreId: &p.cfg.IdentityStoreID, MaxResults: awssdk.Int32(1)})
	if err != nil {
		return nil, []error{fmt.Errorf("aws: identity store %s: %w", p.cfg.IdentityStoreID, p.classify(err))}
	}
	lines = append(lines, fmt.Sprintf("aws: identity store %s answers", p.cfg.IdentityStoreID))
	assignments := p.cfg.InstanceARN != ""
	if !assignments {
		lines = append(lines, "aws: no instance_arn configured; account assignments not checked")
	}
	for _, role := range slices.Sorted(maps.Keys(groups)) {
		group := groups[role]
		out, err := p.ids.DescribeGroup(ctx, &identitystore.DescribeGroupInput{IdentityStoreId: &p.cfg.IdentityStoreID, GroupId: &group})
		if err != nil {
			problems = append(problems, fmt.Errorf("aws: role %s: group %s: %w", role, group, p.classify(err)))
			continue
		}
		lines = append(lines, fmt.Sprintf("aws: role %s: group %s (%s) exists", role, group, awssdk.ToString(out.DisplayName)))
		if !assignments {
			continue
		}
		held, err := p.assignments(ctx, group)
		var denied *ssotypes.AccessDeniedException
		switch {
		case errors.As(err, &denied):
			lines = append(lines, fmt.Sprintf("aws: note: account assignments not checked: the credentials may not call sso:ListAccountAssignmentsForPrincipal (%s)", denied.ErrorMessage()))
			assignments = false
		case err != nil:
			problems = append(problems, fmt.Errorf("aws: role %s: list account assignments of group %s: %w", role, group, p.classify(err)))
		case len(held) == 0:
			lines = append(lines, fmt.Sprintf("aws: note: role %s: group %s holds no account assignments, so membership grants nothing", role, group))
		default:
			lines = append(lines, fmt.Sprintf("aws: role %s: group %s holds %s", role, group, strings.Join(held, ", ")))
			if r, ok := roles[role]; ok {
				l, ps := p.sessionLines(ctx, r)
				lines, problems = append(lines, l...), append(problems, ps...)
			}
		}
	}
	return lines, problems
}

func (p *Provider) assignments(ctx context.Context, group string) ([]string, error) {
	pages := ssoadmin.NewListAccountAssignmentsForPrincipalPaginator(p.sso, &ssoadmin.ListAccountAssignmentsForPrincipalInput{
		InstanceArn:   &p.cfg.InstanceARN,
		PrincipalId:   &group,
		PrincipalType: ssotypes.PrincipalTypeGroup,
	})
	var held []string
	for pages.HasMorePages() {
		page, err := pages.NextPage(ctx)
		if err != nil {
			return nil, err
		}
		for _, a := range page.AccountAssignments {
			ps := awssdk.ToString(a.PermissionSetArn)
			if i := strings.LastIndex(ps, "/"); i >= 0 {
				ps = ps[i+1:]
			}
			held = append(held, awssdk.ToString(a.AccountId)+":"+ps)
		}
	}
	return held, nil
}

// isNotFound reports a ResourceNotFoundException, of the given resource type
// unless kind is empty.
func isNotFound(err error, kind types.ResourceType) bool {
	var nf *types.ResourceNotFoundException
	if !errors.As(err, &nf) {
		return false
	}
	return kind == "" || nf.ResourceType == kind
}

// apiError shortens the SDK's long operation error to "Code: message" while
// keeping it reachable with errors.As / errors.Is.
type apiError struct {
	code, msg string
	err       error
}

func (e *apiError) Error() string {
	if e.msg == "" {
		return e.code
	}
	return e.code + ": " + e.msg
}
func (e *apiError) Unwrap() error { return e.err }

// permanentCodes are error codes that retrying cannot fix.
var permanentCodes = map[string]bool{
	"ResourceNotFoundException":           true,
	"ValidationException":                 true,
	"AccessDeniedException":               true,
	"UnrecognizedClientException":         true,
	"InvalidSignatureException":           true,
	"InvalidClientTokenId":                true,
	"IncompleteSignature":                 true,
	"MissingAuthenticationTokenException": true,
	"ExpiredTokenException":               true,
	"ServiceQuotaExceededException":       true,
	"UnknownOperationException":           true,
	"SerializationException":              true,
}

// classify turns an SDK error into "Code: message" (permanent when retrying
// cannot help) or a clear transient network error.
func (p *Provider) classify(err error) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	var ae smithy.APIError
	if errors.As(err, &ae) {
		e := &apiError{code: ae.ErrorCode(), msg: ae.ErrorMessage(), err: err}
		if permanentCodes[e.code] {
			return access.Permanent(e)
		}
		return e
	}
	var ne net.Error
	var oe *net.OpError
	if errors.As(err, &oe) || errors.As(err, &ne) {
		var inner error = ne
		if oe != nil {
			inner = oe
		}
		attempts := ""
		var me *retry.MaxAttemptsError
		if errors.As(err, &me) {
			attempts = " after " + strconv.Itoa(me.Attempt) + " attempts"
		}
		return fmt.Errorf("identity store endpoint unreachable%s: %w", attempts, inner)
	}
	return err
}

// deadlineRetryer keeps the SDK's retries inside the caller's deadline
// (the service gives each provider call one): it refuses another attempt
// when the longest backoff before it would not leave time for the
// attempt. Without it the SDK sleeps into the deadline and reports only
// "canceled", losing the service's own error and the time the caller
// needs to record the failure; the caller retries later anyway.
type deadlineRetryer struct {
	*retry.Standard
	maxBackoff time.Duration
}

// attemptTime is the least time worth starting another attempt with.
const attemptTime = time.Second

var errNoTimeLeft = errors.New("no time left for another attempt before the deadline")

func (r deadlineRetryer) GetRetryToken(ctx context.Context, opErr error) (func(error) error, error) {
	if deadline, ok := ctx.Deadline(); ok {
		n := 1
		if c, ok := ctx.Value(retriesKey{}).(*retryCount); ok {
			n = int(c.n.Add(1))
		}
		// The jitter backoff waits at most 2^n seconds, capped; a
		// Retry-After stretches it (retryAfterBackoff).
		worst := r.maxBackoff
		if n < 30 && time.Duration(1<<n)*time.Second < worst {
			worst = time.Duration(1<<n) * time.Second
		}
		if ra := retryAfter(opErr); ra > 0 {
			worst = max(worst, min(ra, maxRetryAfter)+ra/4)
		}
		if time.Until(deadline) < worst+attemptTime {
			return nil, errNoTimeLeft
		}
	}
	return r.Standard.GetRetryToken(ctx, opErr)
}

type retriesKey struct{}

// retryCount counts the retries of one operation call.
type retryCount struct{ n atomic.Int32 }

// countRetries gives each operation call its own retry count (read by
// deadlineRetryer), before the retry loop runs.
func countRetries(stack *middleware.Stack) error {
	return stack.Initialize.Add(middleware.InitializeMiddlewareFunc("AccessbotRetryCount",
		func(ctx context.Context, in middleware.InitializeInput, next middleware.InitializeHandler) (middleware.InitializeOutput, middleware.Metadata, error) {
			return next.HandleInitialize(context.WithValue(ctx, retriesKey{}, &retryCount{}), in)
		}), middleware.Before)
}

// retryAfterBackoff waits at least as long as the service asks
// (RetryAfterSeconds in the error body, or a Retry-After header), with a
// little jitter so that many waiting callers do not return in step.
type retryAfterBackoff struct{ inner retry.BackoffDelayer }

func (b retryAfterBackoff) BackoffDelay(attempt int, err error) (time.Duration, error) {
	d, derr := b.inner.BackoffDelay(attempt, err)
	if derr != nil {
		return d, derr
	}
	if ra := retryAfter(err); ra > d {
		d = min(ra, maxRetryAfter) + time.Duration(rand.Int64N(int64(ra/4)+1))
	}
	return d, nil
}

func retryAfter(err error) time.Duration {
	var te *types.ThrottlingException
	if errors.As(err, &te) && te.RetryAfterSeconds > 0 {
		return time.Duration(te.RetryAfterSeconds) * time.Second
	}
	var ie *types.InternalServerException
	if errors.As(err, &ie) && ie.RetryAfterSeconds > 0 {
		return time.Duration(ie.RetryAfterSeconds) * time.Second
	}
	var re *smithyhttp.ResponseError
	if errors.As(err, &re) && re.Response != nil {
		if v := re.Response.Header.Get("Retry-After"); v != "" {
			if n, perr := strconv.Atoi(v); perr == nil && n > 0 {
				return time.Duration(n) * time.Second
			}
			if t, perr := http.ParseTime(v); perr == nil {
				return time.Until(t)
			}
		}
	}
	return 0
}

// limiters is a client-side token bucket per API (or one shared by all).
type limiters struct {
	rate   float64
	shared bool
	mu     sync.Mutex
	byOp   map[string]*rate.Limiter
}

func newLimiters(rps float64, shared bool) *limiters {
	return &limiters{rate: rps, shared: shared, byOp: map[string]*rate.Limiter{}}
}

func (l *limiters) get(op string) *rate.Limiter {
	if l.shared {
		op = ""
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	lim := l.byOp[op]
	if lim == nil {
		lim = rate.NewLimiter(rate.Limit(l.rate), 1)
		l.byOp[op] = lim
	}
	return lim
}

// addTo installs the limiter in a client's middleware stack before signing,
// so that every attempt (retries included) waits for a token and is signed
// only when it is about to be sent.
func (l *limiters) addTo(stack *middleware.Stack) error {
	if l.rate <= 0 {
		return nil
	}
	return stack.Finalize.Insert(middleware.FinalizeMiddlewareFunc("AccessbotRateLimit",
		func(ctx context.Context, in middleware.FinalizeInput, next middleware.FinalizeHandler) (middleware.FinalizeOutput, middleware.Metadata, error) {
			if err := l.get(awsmiddleware.GetOperationName(ctx)).Wait(ctx); err != nil {
				return middleware.FinalizeOutput{}, middleware.Metadata{}, fmt.Errorf("wait for rate limit: %w", err)
			}
			return next.HandleFinalize(ctx, in)
		}), "Signing", middleware.Before)
}
