package aws

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
)

// policyDoc is a permission set's inline policy, split into the statements
// accessbot wrote (ours, parsed) and all others (kept as they are; only
// white space outside strings is compacted).
type policyDoc struct {
	version string
	id      json.RawMessage
	foreign []json.RawMessage
	ours    []*denyStatement
}

// denyStatement denies everything to the sessions of users issued before
// issuedBefore; it may be removed at until.
type denyStatement struct {
	users        []string // Identity Store user names, sorted
	issuedBefore time.Time
	until        time.Time
}

type statementJSON struct {
	Sid       string        `json:"Sid"`
	Effect    string        `json:"Effect"`
	Action    string        `json:"Action"`
	Resource  string        `json:"Resource"`
	Condition conditionJSON `json:"Condition"`
}

type conditionJSON struct {
	StringLike   map[string]json.RawMessage `json:"StringLike"`
	DateLessThan map[string]string          `json:"DateLessThan"`
}

func parsePolicy(text string) (*policyDoc, error) {
	doc := &policyDoc{version: policyVersion}
	if strings.TrimSpace(text) == "" {
		return doc, nil
	}
	var top map[string]json.RawMessage
	if err := json.Unmarshal([]byte(text), &top); err != nil {
		return nil, fmt.Errorf("not a JSON policy document: %w", err)
	}
	for k := range top {
		if k != "Version" && k != "Id" && k != "Statement" {
			return nil, fmt.Errorf("unexpected top-level key %q", k)
		}
	}
	if v, ok := top["Version"]; ok {
		if err := json.Unmarshal(v, &doc.version); err != nil {
			return nil, fmt.Errorf("version: %w", err)
		}
	}
	doc.id = top["Id"]
	raw := bytes.TrimSpace(top["Statement"])
	var list []json.RawMessage
	switch {
	case len(raw) == 0:
	case raw[0] == '[':
		if err := json.Unmarshal(raw, &list); err != nil {
			return nil, fmt.Errorf("statements: %w", err)
		}
	default:
		list = []json.RawMessage{raw}
	}
	for _, st := range list {
		if d, ok := parseDeny(st); ok {
			doc.ours = append(doc.ours, d)
			continue
		}
		doc.foreign = append(doc.foreign, st)
	}
	return doc, nil
}

// parseDeny reads a statement accessbot wrote; false for any other (or one
// with the marker it cannot read, which is then left alone).
func parseDeny(raw json.RawMessage) (*denyStatement, bool) {
	var st statementJSON
	if json.Unmarshal(raw, &st) != nil || !strings.HasPrefix(st.Sid, sidPrefix) || st.Effect != "Deny" {
		return nil, false
	}
	until, ok := untilOf(st.Sid)
	if !ok {
		return nil, false
	}
	issued, err := time.Parse(time.RFC3339, st.Condition.DateLessThan["aws:TokenIssueTime"])
	if err != nil {
		return nil, false
	}
	var ids []string
	if v := st.Condition.StringLike["aws:userid"]; len(v) > 0 && v[0] == '[' {
		if json.Unmarshal(v, &ids) != nil {
			return nil, false
		}
	} else {
		var one string
		if json.Unmarshal(v, &one) != nil {
			return nil, false
		}
		ids = []string{one}
	}
	d := &denyStatement{issuedBefore: issued.UTC(), until: until}
	for _, id := range ids {
		name, ok := strings.CutPrefix(id, "*:")
		if !ok || name == "" {
			return nil, false
		}
		d.users = append(d.users, name)
	}
	slices.Sort(d.users)
	return d, true
}

// sweep drops our statements whose time has come; it returns how many.
func (d *policyDoc) sweep(now time.Time) int {
	n := len(d.ours)
	d.ours = slices.DeleteFunc(d.ours, func(s *denyStatement) bool { return !now.Before(s.until) })
	return n - len(d.ours)
}

// deny adds a statement for user (taking them out of any earlier one: the
// new statement reaches later in both times).
func (d *policyDoc) deny(user string, issuedBefore, until time.Time) {
	for _, s := range d.ours {
		s.users = slices.DeleteFunc(s.users, func(u string) bool { return u == user })
	}
	d.ours = slices.DeleteFunc(d.ours, func(s *denyStatement) bool { return len(s.users) == 0 })
	d.ours = append(d.ours, &denyStatement{users: []string{user}, issuedBefore: issuedBefore, until: until})
}

// denies reports whether user's sessions issued before t are denied.
func (d *policyDoc) denies(user string, t time.Time) bool {
	for _, s := range d.ours {
		if slices.Contains(s.users, user) && !s.issuedBefore.Before(t) {
			return true
		}
	}
	return false
}

// text is the policy to write: "" when no statement is left (the policy
// is then deleted), else render's.
func (d *policyDoc) text(limit int) (string, error) {
	if len(d.foreign) == 0 && len(d.ours) == 0 {
		return "", nil
	}
	return d.render(limit)
}

// render writes the policy. When it does not fit in limit characters
// (white space not counted), our statements are merged into one for all
// their users, with the latest issue time and expiry (stricter for the
// users revoked earlier: their sessions issued up to the latest revocation
// are denied too); ErrPolicyTooLarge when even that does not fit.
func (d *policyDoc) render(limit int) (string, error) {
	text, size, err := d.build(d.ours)
	if err != nil || size <= limit || len(d.ours) < 2 {
		if err == nil && size > limit {
			err = fmt.Errorf("%w (%d characters)", ErrPolicyTooLarge, size)
		}
		return text, err
	}
	merged := &denyStatement{}
	for _, s := range d.ours {
		for _, u := range s.users {
			if !slices.Contains(merged.users, u) {
				merged.users = append(merged.users, u)
			}
		}
		if s.issuedBefore.After(merged.issuedBefore) {
			merged.issuedBefore = s.issuedBefore
		}
		if s.until.After(merged.until) {
			merged.until = s.until
		}
	}
	slices.Sort(merged.users)
	text, size, err = d.build([]*denyStatement{merged})
	if err != nil {
		return "", err
	}
	if size > limit {
		return "", fmt.Errorf("%w: even one deny statement for the %d users revoked (%d characters with the other statements) does not fit; it fits again when earlier statements expire",
			ErrPolicyTooLarge, len(merged.users), size)
	}
	d.ours = []*denyStatement{merged}
	return text, nil
}

// build renders the document with ours and returns it with its size
// without white space.
func (d *policyDoc) build(ours []*denyStatement) (string, int, error) {
	stmts := slices.Clone(d.foreign)
	ours = slices.Clone(ours)
	// A canonical order: the same statements always make the same text, so
	// a retry can tell that the policy already says what it would write.
	slices.SortFunc(ours, func(a, b *denyStatement) int {
		if c := a.until.Compare(b.until); c != 0 {
			return c
		}
		return strings.Compare(strings.Join(a.users, "\n"), strings.Join(b.users, "\n"))
	})
	for _, s := range ours {
		users := slices.Clone(s.users)
		slices.Sort(users)
		var ids json.RawMessage
		var err error
		if len(users) == 1 {
			ids, err = json.Marshal("*:" + users[0])
		} else {
			list := make([]string, len(users))
			for i, u := range users {
				list[i] = "*:" + u
			}
			ids, err = json.Marshal(list)
		}
		if err != nil {
			return "", 0, err
		}
		b, err := marshal(statementJSON{Sid: sidFor(users, s.until), Effect: "Deny", Action: "*", Resource: "*",
			Condition: conditionJSON{
				StringLike:   map[string]json.RawMessage{"aws:userid": ids},
				DateLessThan: map[string]string{"aws:TokenIssueTime": s.issuedBefore.UTC().Format(time.RFC3339)},
			}})
		if err != nil {
			return "", 0, err
		}
		stmts = append(stmts, b)
	}
	top := struct {
		Version   string            `json:"Version"`
		ID        json.RawMessage   `json:"Id,omitempty"`
		Statement []json.RawMessage `json:"Statement"`
	}{d.version, d.id, stmts}
	b, err := marshal(top)
	if err != nil {
		return "", 0, err
	}
	var compact bytes.Buffer
	if err := json.Compact(&compact, b); err != nil {
		return "", 0, errors.New("policy is not valid JSON")
	}
	return string(b), compact.Len(), nil
}

// marshal is json.Marshal without HTML escaping, so that the other
// statements' strings come back as they were written.
func marshal(v any) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}
