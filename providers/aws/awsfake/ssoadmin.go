package awsfake

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"strings"
	"time"
)

// Limits of the inline policy of a permission set. The API takes up to
// MaxInlinePolicyRequest characters, but the policy becomes an inline
// policy of a role in every account, which IAM bounds to
// MaxInlinePolicySize characters not counting white space; the fake
// refuses a larger one with ValidationException at Put.
const (
	MaxInlinePolicyRequest = 32768
	MaxInlinePolicySize    = 10240
)

// Provisioning states.
const (
	InProgress = "IN_PROGRESS"
	Succeeded  = "SUCCEEDED"
	Failed     = "FAILED"
)

// PermissionSet is an IAM Identity Center permission set.
type PermissionSet struct {
	Arn             string
	Name            string
	SessionDuration string // ISO 8601, PT1H to PT12H
	InlinePolicy    string // "" when none
	// ProvisionedPolicy is the inline policy as of the last provisioning
	// that succeeded: what the roles in the accounts hold.
	ProvisionedPolicy string
	Provisioned       bool // a provisioning succeeded at least once
}

// Provisioning is one ProvisionPermissionSet request.
type Provisioning struct {
	RequestID        string
	PermissionSetArn string
	TargetType       string
	Status           string
	FailureReason    string
	Policy           string // the inline policy it provisions
	CreatedAt        time.Time
	polls            int
	fail             string
	outOfBand        int // StartProvisioning: conflicts it causes before it ends
}

type ssoState struct {
	sets          map[string]*PermissionSet
	provisionings []*Provisioning
	polls         int      // status reads an IN_PROGRESS provisioning answers before it ends
	failNext      []string // failure reasons of the next provisionings
	overwrite     []string // OverwriteAfterPut: policies that replace the next puts
}

// OverwriteAfterPut makes the fake replace the policy of the next
// PutInlinePolicyToPermissionSet, right after it was applied, with policy:
// another writer (a second replica, an administrator) that read the
// policy before that put and wrote after it, as the API allows (it has no
// compare-and-set).
func (s *Server) OverwriteAfterPut(policy string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.sso.overwrite = append(s.sso.overwrite, policy)
}

// AddPermissionSet creates a permission set with the session duration
// (ISO 8601, e.g. "PT12H") and returns its ARN.
func (s *Server) AddPermissionSet(name, sessionDuration string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var b [8]byte
	_, _ = rand.Read(b[:])
	arn := "arn:aws:sso:::permissionSet/" + s.instanceARN[strings.LastIndex(s.instanceARN, "/")+1:] + "/ps-" + hex.EncodeToString(b[:])
	if s.sso.sets == nil {
		s.sso.sets = map[string]*PermissionSet{}
	}
	s.sso.sets[arn] = &PermissionSet{Arn: arn, Name: name, SessionDuration: sessionDuration}
	return arn
}

// SetInlinePolicy sets a permission set's inline policy out of band (an
// administrator's), as if it had been provisioned.
func (s *Server) SetInlinePolicy(arn, policy string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if ps := s.sso.sets[arn]; ps != nil {
		ps.InlinePolicy, ps.ProvisionedPolicy = policy, policy
	}
}

// PermissionSet returns a copy of the permission set.
func (s *Server) PermissionSet(arn string) (PermissionSet, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	ps := s.sso.sets[arn]
	if ps == nil {
		return PermissionSet{}, false
	}
	return *ps, true
}

// Provisionings returns every ProvisionPermissionSet request, oldest first.
func (s *Server) Provisionings() []Provisioning {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Provisioning, len(s.sso.provisionings))
	for i, p := range s.sso.provisionings {
		out[i] = *p
	}
	return out
}

// SetProvisioningPolls sets how many DescribePermissionSetProvisioningStatus
// reads a provisioning answers IN_PROGRESS before it ends (default 0: the
// first read sees it ended; ProvisionPermissionSet itself always answers
// IN_PROGRESS).
func (s *Server) SetProvisioningPolls(n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.sso.polls = max(n, 0)
}

// FailNextProvisioning makes the next provisioning end FAILED with reason.
func (s *Server) FailNextProvisioning(reason string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.sso.failNext = append(s.sso.failNext, reason)
}

// StartProvisioning starts a provisioning of the permission set out of
// band (an administrator's): the next n ProvisionPermissionSet calls for
// the same set get ConflictException, and it succeeds with the last of
// them. It returns the request id.
func (s *Server) StartProvisioning(arn string, n int) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	p := s.startProvisioningLocked(s.sso.sets[arn], "ALL_PROVISIONED_ACCOUNTS")
	p.outOfBand = max(n, 1)
	return p.RequestID
}

func (s *Server) startProvisioningLocked(ps *PermissionSet, target string) *Provisioning {
	var b [16]byte
	_, _ = rand.Read(b[:])
	h := hex.EncodeToString(b[:])
	p := &Provisioning{RequestID: h[:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:],
		PermissionSetArn: ps.Arn, TargetType: target, Status: InProgress, Policy: ps.InlinePolicy, CreatedAt: time.Now()}
	if len(s.sso.failNext) > 0 {
		p.fail, s.sso.failNext = s.sso.failNext[0], s.sso.failNext[1:]
	}
	s.sso.provisionings = append(s.sso.provisionings, p)
	return p
}

// advanceLocked moves a provisioning on by one status read.
func (s *Server) advanceLocked(p *Provisioning) {
	if p.Status != InProgress {
		return
	}
	p.polls++
	if p.polls <= s.sso.polls {
		return
	}
	if p.fail != "" {
		p.Status, p.FailureReason = Failed, p.fail
		return
	}
	p.Status = Succeeded
	if ps := s.sso.sets[p.PermissionSetArn]; ps != nil {
		ps.ProvisionedPolicy, ps.Provisioned = p.Policy, true
	}
}

func statusJSON(p *Provisioning) map[string]any {
	m := map[string]any{"RequestId": p.RequestID, "Status": p.Status, "PermissionSetArn": p.PermissionSetArn,
		"CreatedDate": float64(p.CreatedAt.UnixMilli()) / 1000}
	if p.FailureReason != "" {
		m["FailureReason"] = p.FailureReason
	}
	return m
}

// permissionSetOp serves the permission-set operations of SSO Admin.
func (s *Server) permissionSetOp(op string, in *request) (any, *apiErr) {
	switch op {
	case "DescribePermissionSet", "GetInlinePolicyForPermissionSet", "PutInlinePolicyToPermissionSet",
		"DeleteInlinePolicyFromPermissionSet", "ProvisionPermissionSet", "DescribePermissionSetProvisioningStatus":
	default:
		return nil, &apiErr{status: 400, code: "UnknownOperationException", msg: "operation " + op + " is not supported by the fake"}
	}
	if str(in.InstanceArn) != s.instanceARN {
		return nil, &apiErr{status: 400, code: "ResourceNotFoundException", msg: "Instance " + str(in.InstanceArn) + " not found"}
	}
	if op == "DescribePermissionSetProvisioningStatus" {
		id := str(in.ProvisionPermissionSetRequestId)
		for _, p := range s.sso.provisionings {
			if p.RequestID == id {
				s.advanceLocked(p)
				return map[string]any{"PermissionSetProvisioningStatus": statusJSON(p)}, nil
			}
		}
		return nil, &apiErr{status: 400, code: "ResourceNotFoundException", msg: "Provisioning request " + id + " not found"}
	}
	arn := str(in.PermissionSetArn)
	if !strings.HasPrefix(arn, "arn:aws:sso:::permissionSet/") {
		return nil, validation("1 validation error detected: Value '%s' at 'permissionSetArn' failed to satisfy constraint", arn)
	}
	ps := s.sso.sets[arn]
	if ps == nil {
		return nil, &apiErr{status: 400, code: "ResourceNotFoundException", msg: "Could not find PermissionSet with arn " + arn}
	}
	switch op {
	case "DescribePermissionSet":
		return map[string]any{"PermissionSet": map[string]any{"Name": ps.Name, "PermissionSetArn": ps.Arn,
			"SessionDuration": ps.SessionDuration, "CreatedDate": 1.7e9}}, nil
	case "GetInlinePolicyForPermissionSet":
		return map[string]any{"InlinePolicy": ps.InlinePolicy}, nil
	case "PutInlinePolicyToPermissionSet":
		pol := str(in.InlinePolicy)
		if n := len(pol); n < 1 || n > MaxInlinePolicyRequest {
			return nil, validation("1 validation error detected: Value at 'inlinePolicy' failed to satisfy constraint: Member must have length less than or equal to %d", MaxInlinePolicyRequest)
		}
		var compact bytes.Buffer
		if err := json.Compact(&compact, []byte(pol)); err != nil {
			return nil, validation("The policy is not valid JSON: %v", err)
		}
		if compact.Len() > MaxInlinePolicySize {
			return nil, validation("The inline policy exceeds the maximum size of %d characters (%d without white space)", MaxInlinePolicySize, compact.Len())
		}
		ps.InlinePolicy = pol
		if len(s.sso.overwrite) > 0 {
			ps.InlinePolicy, s.sso.overwrite = s.sso.overwrite[0], s.sso.overwrite[1:]
		}
		return map[string]any{}, nil
	case "DeleteInlinePolicyFromPermissionSet":
		ps.InlinePolicy = ""
		return map[string]any{}, nil
	}
	// ProvisionPermissionSet
	target := str(in.TargetType)
	switch target {
	case "ALL_PROVISIONED_ACCOUNTS":
	case "AWS_ACCOUNT":
		if in.TargetId == nil {
			return nil, validation("TargetId is required when TargetType is AWS_ACCOUNT")
		}
	default:
		return nil, validation("1 validation error detected: Value '%s' at 'targetType' failed to satisfy enum value set: [AWS_ACCOUNT, ALL_PROVISIONED_ACCOUNTS]", target)
	}
	for _, p := range s.sso.provisionings {
		if p.PermissionSetArn == arn && p.Status == InProgress {
			if p.outOfBand > 0 {
				if p.outOfBand--; p.outOfBand == 0 {
					p.polls = s.sso.polls
					defer s.advanceLocked(p)
				}
			}
			return nil, &apiErr{status: 400, code: "ConflictException",
				msg: "Could not provision permission set " + arn + ": another provisioning operation (" + p.RequestID + ") is in progress"}
		}
	}
	p := s.startProvisioningLocked(ps, target)
	return map[string]any{"PermissionSetProvisioningStatus": statusJSON(p)}, nil
}
