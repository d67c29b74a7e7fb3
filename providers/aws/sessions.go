package aws

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	awssdk "github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ssoadmin"
	ssotypes "github.com/aws/aws-sdk-go-v2/service/ssoadmin/types"

	"github.com/accessbot/accessbot/access"
	"github.com/accessbot/accessbot/internal/sleep"
)

// Session revocation. Removing a user from the group ends no role session
// they already hold: Identity Center's credentials stay valid for the
// permission set's session duration (up to 12 h). With revoke_sessions,
// Revoke writes a deny-all statement for the user's sessions issued before
// the revocation into the inline policy of every permission set the group
// holds, provisions the permission set to its accounts, and the statement
// is removed again once the session duration has passed.
//
// The policy is the record: each statement's Sid carries a marker and the
// time it may go ("AccessbotRevoke<hash>Until<unix seconds>"), so expired
// statements are found and removed by whoever looks next (another
// revocation of the set, or SweepSessions) after any restart, with no
// state of accessbot's own. Statements without the marker are never
// touched.

var _ access.SessionEnder = (*Provider)(nil)

const (
	// sidPrefix marks the statements accessbot writes.
	sidPrefix = "AccessbotRevoke"
	// PolicyLimit is the most characters (white space not counted) the
	// inline policy of a permission set may hold: it becomes an inline
	// policy of a role in each account, which IAM bounds to 10,240.
	PolicyLimit = 10240
	// DefaultPollInterval is the pause between provisioning status reads
	// (and between tries while another provisioning of the set runs).
	DefaultPollInterval = 2 * time.Second
	maxConflicts        = 100
	policyVersion       = "2012-10-17"
)

// ErrPolicyTooLarge is returned when even one merged statement for every
// revoked user does not fit in the inline policy of a permission set.
var ErrPolicyTooLarge = errors.New("inline policy would exceed 10,240 characters")

// WithClock sets the clock that stamps revocations and decides when a
// deny statement has expired (default: the wall clock).
func WithClock(c access.Clock) Option { return func(s *settings) { s.clock = c } }

// WithPollInterval sets the pause between provisioning status reads.
func WithPollInterval(d time.Duration) Option { return func(s *settings) { s.pollInterval = d } }

type sessionState struct {
	all   bool
	roles map[string]bool
	clock access.Clock
	poll  time.Duration
	locks *sync.Map // permission set ARN -> *sync.Mutex: one writer per set in this process
	// revokedAt keeps the revocation time of a grant across the attempts
	// of its revocation in this process (grant key -> time.Time), so that
	// a retry writes the same policy and can wait for the provisioning an
	// earlier attempt started instead of starting another: provisioning
	// many accounts can take longer than one attempt.
	revokedAt *sync.Map
	// provisioned is the last provisioning this process started per
	// permission set (ARN -> provisioning): its request and the policy
	// text it provisions.
	provisioned *sync.Map
}

type provisioning struct{ requestID, policy string }

func newSessionState(cfg Config, s settings) sessionState {
	st := sessionState{all: cfg.RevokeSessions, roles: cfg.RoleSessions, clock: s.clock, poll: s.pollInterval,
		locks: &sync.Map{}, revokedAt: &sync.Map{}, provisioned: &sync.Map{}}
	if st.clock == nil {
		st.clock = access.SystemClock{}
	}
	if st.poll <= 0 {
		st.poll = DefaultPollInterval
	}
	return st
}

func (s *sessionState) on(role string) bool {
	if v, ok := s.roles[role]; ok {
		return v
	}
	return s.all
}

func (s *sessionState) lock(arn string) func() {
	m, _ := s.locks.LoadOrStore(arn, &sync.Mutex{})
	mu := m.(*sync.Mutex)
	mu.Lock()
	return mu.Unlock
}

// endsSessions reports whether any role may have its sessions denied.
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
	return "aws sessions issued before the revocation denied in the group's permission sets until their session duration has passed"
}

// permissionSet is a permission set the group holds.
type permissionSet struct {
	arn, name string
	duration  time.Duration
}

// permissionSets returns the distinct permission sets the group holds in
// any account, with their session durations.
func (p *Provider) permissionSets(ctx context.Context, group string) ([]permissionSet, error) {
	pages := ssoadmin.NewListAccountAssignmentsForPrincipalPaginator(p.sso, &ssoadmin.ListAccountAssignmentsForPrincipalInput{
		InstanceArn:   &p.cfg.InstanceARN,
		PrincipalId:   &group,
		PrincipalType: ssotypes.PrincipalTypeGroup,
	})
	var arns []string
	for pages.HasMorePages() {
		page, err := pages.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("list account assignments of group %s: %w", group, p.classify(err))
		}
		for _, a := range page.AccountAssignments {
			if arn := awssdk.ToString(a.PermissionSetArn); !slices.Contains(arns, arn) {
				arns = append(arns, arn)
			}
		}
	}
	sets := make([]permissionSet, 0, len(arns))
	for _, arn := range arns {
		out, err := p.sso.DescribePermissionSet(ctx, &ssoadmin.DescribePermissionSetInput{InstanceArn: &p.cfg.InstanceARN, PermissionSetArn: &arn})
		if err != nil {
			return nil, fmt.Errorf("describe permission set %s: %w", arn, p.classify(err))
		}
		ps := permissionSet{arn: arn, name: arn, duration: time.Hour} // PT1H is the service's default
		if out.PermissionSet != nil {
			if n := awssdk.ToString(out.PermissionSet.Name); n != "" {
				ps.name = n
			}
			if sd := awssdk.ToString(out.PermissionSet.SessionDuration); sd != "" {
				d, err := parseISODuration(sd)
				if err != nil {
					return nil, access.Permanent(fmt.Errorf("permission set %s: session duration %q: %w", ps.name, sd, err))
				}
				ps.duration = d
			}
		}
		sets = append(sets, ps)
	}
	return sets, nil
}

// denySessions denies, in every permission set the group holds, the
// sessions of the user issued before the revocation, until the set's
// session duration has passed, and provisions each set. The revocation
// time is the first attempt's for the retries of one grant in this
// process (so that a retry can reuse what the attempt before it did);
// otherwise now. Repeating it is harmless: the user's statement is
// replaced, never duplicated.
func (p *Provider) denySessions(ctx context.Context, g access.Grant) error {
	if !p.sessions.on(g.Role) {
		return nil
	}
	fail := func(err error) error {
		return fmt.Errorf("aws: deny sessions of %s in group %s: %w", g.User, g.Group, err)
	}
	uid, err := p.resolve(ctx, g.User, false)
	if err != nil {
		return fail(err)
	}
	u, err := p.describe(ctx, uid, false)
	if err == nil && u.name == "" {
		u, err = p.describe(ctx, uid, true) // cached before the name was kept
	}
	if err != nil {
		return fail(fmt.Errorf("describe user %s: %w", uid, p.classify(err)))
	}
	sets, err := p.permissionSets(ctx, g.Group)
	if err != nil {
		return fail(err)
	}
	at := p.sessions.clock.Now().UTC().Truncate(time.Second)
	key := g.RequestID + "\x00" + g.Group + "\x00" + access.NormalizeIdentity(g.User)
	if g.RequestID != "" {
		v, _ := p.sessions.revokedAt.LoadOrStore(key, at)
		at = v.(time.Time)
	}
	for _, ps := range sets {
		if err := p.denyIn(ctx, ps, u.name, at); err != nil {
			return fail(err)
		}
		p.log.InfoContext(ctx, "aws sessions denied", "user", g.User, "user_name", u.name, "permission_set", ps.name,
			"issued_before", at, "until", at.Add(ps.duration), "request_id", g.RequestID)
	}
	p.sessions.revokedAt.Delete(key)
	return nil
}

// denyIn writes the user's deny statement for sessions issued before at
// into the permission set (and drops expired ones), makes sure it stuck
// (another replica may have written the policy in between), and
// provisions the set. A policy that already says so is not written again.
func (p *Provider) denyIn(ctx context.Context, ps permissionSet, userName string, at time.Time) error {
	defer p.sessions.lock(ps.arn)()
	for try := 0; ; try++ {
		cur, doc, err := p.readPolicy(ctx, ps)
		if err != nil {
			return err
		}
		doc.sweep(p.sessions.clock.Now())
		doc.deny(userName, at, at.Add(ps.duration))
		text, err := doc.text(PolicyLimit)
		if err != nil {
			return fmt.Errorf("permission set %s: %w", ps.name, err)
		}
		if text != cur {
			if err := p.writePolicy(ctx, ps, text); err != nil {
				return err
			}
		}
		// SSO Admin has no compare-and-set: another replica may have
		// written a policy it read before ours. Look again before and
		// after provisioning; what is provisioned last must hold ours.
		_, check, err := p.readPolicy(ctx, ps)
		if err != nil {
			return err
		}
		if check.denies(userName, at) {
			if err := p.provision(ctx, ps, text); err != nil {
				return err
			}
			if _, check, err = p.readPolicy(ctx, ps); err != nil {
				return err
			}
			if check.denies(userName, at) {
				return nil
			}
		}
		if try == 2 {
			return fmt.Errorf("permission set %s: the deny statement for %s was overwritten three times by concurrent writers", ps.name, userName)
		}
	}
}

// SweepSessions removes, from the permission sets held by the groups of
// roles with session revocation, the deny statements whose session
// duration has passed, and provisions each set it changed. groups maps
// role names to groups. It is safe to run at any time from any replica.
func (p *Provider) SweepSessions(ctx context.Context, groups map[string]string) error {
	now := p.sessions.clock.Now()
	seen := map[string]bool{}
	var errs []error
	for _, role := range slices.Sorted(maps.Keys(groups)) {
		if !p.sessions.on(role) || seen[groups[role]] {
			continue
		}
		seen[groups[role]] = true
		sets, err := p.permissionSets(ctx, groups[role])
		if err != nil {
			errs = append(errs, fmt.Errorf("aws: sweep deny statements of role %s: %w", role, err))
			continue
		}
		for _, ps := range sets {
			if seen[ps.arn] {
				continue
			}
			seen[ps.arn] = true
			if err := p.sweepSet(ctx, ps, now); err != nil {
				errs = append(errs, fmt.Errorf("aws: sweep deny statements of permission set %s: %w", ps.name, err))
			}
		}
	}
	return errors.Join(errs...)
}

func (p *Provider) sweepSet(ctx context.Context, ps permissionSet, now time.Time) error {
	defer p.sessions.lock(ps.arn)()
	_, doc, err := p.readPolicy(ctx, ps)
	if err != nil {
		return err
	}
	n := doc.sweep(now)
	if n == 0 {
		return nil
	}
	p.log.InfoContext(ctx, "aws expired deny statements removed", "permission_set", ps.name, "statements", n)
	text, err := doc.text(PolicyLimit)
	if err != nil {
		return fmt.Errorf("permission set %s: %w", ps.name, err)
	}
	if err := p.writePolicy(ctx, ps, text); err != nil {
		return err
	}
	return p.provision(ctx, ps, text)
}

// readPolicy returns the permission set's inline policy as text and parsed.
func (p *Provider) readPolicy(ctx context.Context, ps permissionSet) (string, *policyDoc, error) {
	out, err := p.sso.GetInlinePolicyForPermissionSet(ctx, &ssoadmin.GetInlinePolicyForPermissionSetInput{
		InstanceArn: &p.cfg.InstanceARN, PermissionSetArn: &ps.arn})
	if err != nil {
		return "", nil, fmt.Errorf("get inline policy of permission set %s: %w", ps.name, p.classify(err))
	}
	text := awssdk.ToString(out.InlinePolicy)
	doc, err := parsePolicy(text)
	if err != nil {
		return "", nil, access.Permanent(fmt.Errorf("inline policy of permission set %s: %w", ps.name, err))
	}
	return text, doc, nil
}

// writePolicy puts the policy text, or deletes the policy when text is ""
// (no statement left).
func (p *Provider) writePolicy(ctx context.Context, ps permissionSet, text string) error {
	if text == "" {
		_, err := p.sso.DeleteInlinePolicyFromPermissionSet(ctx, &ssoadmin.DeleteInlinePolicyFromPermissionSetInput{
			InstanceArn: &p.cfg.InstanceARN, PermissionSetArn: &ps.arn})
		if err != nil {
			return fmt.Errorf("delete inline policy of permission set %s: %w", ps.name, p.classify(err))
		}
		return nil
	}
	_, err := p.sso.PutInlinePolicyToPermissionSet(ctx, &ssoadmin.PutInlinePolicyToPermissionSetInput{
		InstanceArn: &p.cfg.InstanceARN, PermissionSetArn: &ps.arn, InlinePolicy: &text})
	if err != nil {
		return fmt.Errorf("put inline policy of permission set %s: %w", ps.name, p.classify(err))
	}
	return nil
}

// provision pushes the permission set, whose inline policy is now policy,
// to every account it is provisioned to and waits until that has
// SUCCEEDED or FAILED. A provisioning of the set already running
// (ConflictException) is waited out. When this process already started a
// provisioning of the same policy (an earlier attempt that ran out of
// time), that one is waited for, or taken as done when it SUCCEEDED.
func (p *Provider) provision(ctx context.Context, ps permissionSet, policy string) error {
	st, err := p.earlierProvisioning(ctx, ps, policy)
	if err != nil {
		return err
	}
	for conflicts := 0; st == nil; conflicts++ {
		out, err := p.sso.ProvisionPermissionSet(ctx, &ssoadmin.ProvisionPermissionSetInput{
			InstanceArn: &p.cfg.InstanceARN, PermissionSetArn: &ps.arn, TargetType: ssotypes.ProvisionTargetTypeAllProvisionedAccounts})
		var conflict *ssotypes.ConflictException
		if errors.As(err, &conflict) && conflicts < maxConflicts {
			if err := p.pollPause(ctx, conflicts, fmt.Errorf("provision permission set %s: %w", ps.name, p.classify(err))); err != nil {
				return err
			}
			continue
		}
		if err != nil {
			return fmt.Errorf("provision permission set %s: %w", ps.name, p.classify(err))
		}
		st = out.PermissionSetProvisioningStatus
		if st == nil || st.RequestId == nil {
			return fmt.Errorf("provision permission set %s: answer without a request id", ps.name)
		}
		p.sessions.provisioned.Store(ps.arn, provisioning{requestID: *st.RequestId, policy: policy})
	}
	for polls := 0; st.Status == ssotypes.StatusValuesInProgress; polls++ {
		if err := p.pollPause(ctx, polls, fmt.Errorf("provisioning of permission set %s (request %s) still in progress", ps.name, *st.RequestId)); err != nil {
			return err
		}
		out, err := p.sso.DescribePermissionSetProvisioningStatus(ctx, &ssoadmin.DescribePermissionSetProvisioningStatusInput{
			InstanceArn: &p.cfg.InstanceARN, ProvisionPermissionSetRequestId: st.RequestId})
		if err != nil {
			return fmt.Errorf("provisioning status of permission set %s: %w", ps.name, p.classify(err))
		}
		if out.PermissionSetProvisioningStatus == nil {
			return fmt.Errorf("provisioning status of permission set %s: empty answer", ps.name)
		}
		st = out.PermissionSetProvisioningStatus
	}
	if st.Status != ssotypes.StatusValuesSucceeded {
		p.sessions.provisioned.Delete(ps.arn)
		return fmt.Errorf("provisioning of permission set %s %s: %s", ps.name, st.Status, awssdk.ToString(st.FailureReason))
	}
	return nil
}

// earlierProvisioning returns the status of the provisioning this process
// last started for the set when it provisions policy and has not FAILED;
// nil when a new one is needed.
func (p *Provider) earlierProvisioning(ctx context.Context, ps permissionSet, policy string) (*ssotypes.PermissionSetProvisioningStatus, error) {
	v, ok := p.sessions.provisioned.Load(ps.arn)
	if !ok || v.(provisioning).policy != policy {
		return nil, nil
	}
	id := v.(provisioning).requestID
	out, err := p.sso.DescribePermissionSetProvisioningStatus(ctx, &ssoadmin.DescribePermissionSetProvisioningStatusInput{
		InstanceArn: &p.cfg.InstanceARN, ProvisionPermissionSetRequestId: &id})
	if err != nil {
		return nil, fmt.Errorf("provisioning status of permission set %s: %w", ps.name, p.classify(err))
	}
	st := out.PermissionSetProvisioningStatus
	if st == nil || st.Status == ssotypes.StatusValuesFailed {
		p.sessions.provisioned.Delete(ps.arn)
		return nil, nil
	}
	return st, nil
}

// pollPause waits before the n-th status read (or retry): 100 ms, doubling
// up to the poll interval (provisioning often ends within a second),
// unless that would not leave time for another call before ctx's
// deadline: then it returns last at once.
func (p *Provider) pollPause(ctx context.Context, n int, last error) error {
	d := min(p.sessions.poll, 100*time.Millisecond<<min(n, 10))
	if deadline, ok := ctx.Deadline(); ok && time.Until(deadline) < d+attemptTime {
		return last
	}
	return sleep.For(ctx, d)
}

// sessionLines compares the session duration of each permission set the
// role's group holds with the role's max_duration: a longer session
// outlives the grant unless revoke_sessions denies it.
func (p *Provider) sessionLines(ctx context.Context, role access.Role) (lines []string, problems []error) {
	sets, err := p.permissionSets(ctx, role.Group)
	var denied *ssotypes.AccessDeniedException
	if errors.As(err, &denied) && !p.sessions.on(role.Name) {
		return []string{fmt.Sprintf("aws: note: role %s: session durations not checked: the credentials may not call sso:DescribePermissionSet (%s)", role.Name, denied.ErrorMessage())}, nil
	}
	if err != nil {
		return nil, []error{fmt.Errorf("aws: role %s: %w", role.Name, err)}
	}
	for _, ps := range sets {
		if p.sessions.on(role.Name) {
			// A policy accessbot cannot read would stop every revocation.
			if _, _, err := p.readPolicy(ctx, ps); err != nil {
				problems = append(problems, fmt.Errorf("aws: role %s: revoke_sessions: %w", role.Name, err))
			}
		}
		if role.MaxDuration <= 0 || ps.duration <= role.MaxDuration {
			continue
		}
		if p.sessions.on(role.Name) {
			lines = append(lines, fmt.Sprintf("aws: role %s: permission set %s sessions last %s, longer than max_duration %s; revoke_sessions denies them at revocation",
				role.Name, ps.name, access.FormatDuration(ps.duration), access.FormatDuration(role.MaxDuration)))
			continue
		}
		lines = append(lines, fmt.Sprintf("aws: warning: role %s: permission set %s (%s) has a session duration of %s, longer than the role's max_duration %s, so sessions would outlive the grant; lower the permission set's session duration to %s or less, or set providers.aws.revoke_sessions (or roles.%s.revoke_sessions)",
			role.Name, ps.name, ps.arn, access.FormatDuration(ps.duration), access.FormatDuration(role.MaxDuration), access.FormatDuration(role.MaxDuration), role.Name))
	}
	return lines, problems
}

// CheckRoles is Check with the roles themselves (role name -> role): it
// also warns where a permission set's session duration exceeds the role's
// max_duration. It backs `accessbot check --online`.
func (p *Provider) CheckRoles(ctx context.Context, roles map[string]access.Role) (lines []string, problems []error) {
	groups := make(map[string]string, len(roles))
	for name, r := range roles {
		groups[name] = r.Group
	}
	return p.check(ctx, groups, roles)
}

// parseISODuration parses the ISO 8601 durations SSO Admin uses (PT1H,
// PT12H, PT1H30M, PT3600S, P1D).
func parseISODuration(s string) (time.Duration, error) {
	rest, ok := strings.CutPrefix(s, "P")
	if !ok || rest == "" || strings.HasSuffix(rest, "T") {
		return 0, errors.New("not an ISO 8601 duration")
	}
	var d time.Duration
	inTime := false
	for rest != "" {
		if rest[0] == 'T' {
			if inTime {
				return 0, errors.New("not an ISO 8601 duration")
			}
			inTime, rest = true, rest[1:]
			continue
		}
		i := strings.IndexFunc(rest, func(r rune) bool { return (r < '0' || r > '9') && r != '.' })
		if i <= 0 {
			return 0, errors.New("not an ISO 8601 duration")
		}
		n, err := strconv.ParseFloat(rest[:i], 64)
		if err != nil {
			return 0, errors.New("not an ISO 8601 duration")
		}
		var unit time.Duration
		switch {
		case rest[i] == 'D' && !inTime:
			unit = 24 * time.Hour
		case rest[i] == 'W' && !inTime:
			unit = 7 * 24 * time.Hour
		case rest[i] == 'H' && inTime:
			unit = time.Hour
		case rest[i] == 'M' && inTime:
			unit = time.Minute
		case rest[i] == 'S' && inTime:
			unit = time.Second
		default:
			return 0, errors.New("not an ISO 8601 duration (years and months are not supported)")
		}
		d += time.Duration(n * float64(unit))
		rest = rest[i+1:]
	}
	return d, nil
}

// sidFor is the marker Sid of a statement for users until t.
func sidFor(users []string, until time.Time) string {
	h := sha256.Sum256([]byte(strings.Join(users, "\n")))
	return sidPrefix + hex.EncodeToString(h[:4]) + "Until" + strconv.FormatInt(until.Unix(), 10)
}

// untilOf reads the expiry from a marker Sid.
func untilOf(sid string) (time.Time, bool) {
	rest, ok := strings.CutPrefix(sid, sidPrefix)
	if !ok {
		return time.Time{}, false
	}
	_, secs, ok := strings.Cut(rest, "Until")
	if !ok {
		return time.Time{}, false
	}
	n, err := strconv.ParseInt(secs, 10, 64)
	if err != nil {
		return time.Time{}, false
	}
	return time.Unix(n, 0).UTC(), true
}
