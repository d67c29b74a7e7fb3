package handlers_test

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/accessbot/accessbot/access"
	"github.com/accessbot/accessbot/handlers"
	"github.com/accessbot/accessbot/providers/dryrun"
	"github.com/accessbot/accessbot/store/bolt"
)

// chat is a recording Chat and Directory: users "alice", "bob", "dave";
// "ghost" has no identity.
type chat struct {
	mu       sync.Mutex
	posts    []handlers.Message
	updates  []handlers.Message
	dms      map[string][]handlers.Message
	channel  string
	security string
	replies  []reply
}

// reply is a message posted as a reply under another.
type reply struct {
	under access.MessageRef
	msg   handlers.Message
}

func (c *chat) Platform() string         { return "test" }
func (c *chat) ApprovalsChannel() string { return c.channel }
func (c *chat) SecurityChannel() string  { return c.security }
func (c *chat) Post(_ context.Context, ch string, m handlers.Message) (access.MessageRef, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.posts = append(c.posts, m)
	return access.MessageRef{Channel: ch, ID: fmt.Sprint(len(c.posts))}, nil
}
func (c *chat) Update(_ context.Context, ref access.MessageRef, m handlers.Message) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.updates = append(c.updates, m)
	return nil
}
func (c *chat) DM(_ context.Context, who string, m handlers.Message) (access.MessageRef, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.dms[who] = append(c.dms[who], m)
	return access.MessageRef{Channel: "dm:" + who, ID: "d"}, nil
}
func (c *chat) Reply(_ context.Context, ref access.MessageRef, m handlers.Message) (access.MessageRef, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.replies = append(c.replies, reply{under: ref, msg: m})
	return access.MessageRef{Channel: ref.Channel, ID: fmt.Sprintf("%s.r%d", ref.ID, len(c.replies))}, nil
}
func (c *chat) Identity(_ context.Context, u string) (string, error) {
	if u == "ghost" {
		return "", access.ErrNoIdentity
	}
	return u + "@example.com", nil
}
func (c *chat) ChatUser(_ context.Context, id string) (string, error) {
	return strings.TrimSuffix(id, "@example.com"), nil
}

func setup(t *testing.T, approvalsChannel string) (*handlers.Handler, *chat, *dryrun.Provider) {
	t.Helper()
	st, err := bolt.Open(filepath.Join(t.TempDir(), "h.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	pol := &access.Policy{Roles: map[string]access.Role{
		"prod-admin": {Name: "prod-admin", Description: "Production admin", Provider: "dryrun", Group: "g",
			MaxDuration: 4 * time.Hour, DefaultDuration: time.Hour, ApproverUsers: []string{"bob@example.com", "dave@example.com"},
			Approvals: 1, PendingTTL: time.Hour, BreakGlass: true},
	}, BreakGlass: []string{"erin@example.com"}}
	prov := dryrun.New(nil)
	svc, err := access.NewService(access.Deps{Store: st, Policy: pol, Providers: map[string]access.Provisioner{"dryrun": prov}})
	if err != nil {
		t.Fatal(err)
	}
	c := &chat{dms: map[string][]handlers.Message{}, channel: approvalsChannel, security: "sec"}
	svc.SetNotifier(handlers.NewNotifier(c, nil))
	return handlers.New(svc, c, nil), c, prov
}

func cmd(h *handlers.Handler, user, text string) handlers.Reply {
	return h.Command(context.Background(), handlers.Command{User: user, Text: text})
}

func TestCommandParsing(t *testing.T) {
	h, c, _ := setup(t, "approvals")
	cases := []struct {
		text     string
		form     bool
		contains string
	}{
		{"", true, ""},
		{"prod-admin", true, ""},
		{"prod-admin 2h", true, ""},
		{"prod-admin fixing checkout", true, ""},
		{"help", false, "/access <role> <duration> <reason>"},
		{"frobnicate now", false, `There is no role or command "frobnicate"`},
		{"prod-admin 2x broken", false, `"2x" is not a duration`},
		{"prod-admin 5h too long", false, "at most 4h"},
		{"prod-admin 1h " + strings.Repeat("r", 1001), false, "1001 characters"},
		{"prod-admin 1h " + strings.Repeat("r", 10000), false, "a reason may be at most 1000 characters"},
		{"revoke", false, "Say what to revoke"},
		{"extend r-x 1h", false, "Usage: `/access extend"},
		{"breakglass prod-admin 1h", false, "Usage: `/access breakglass"},
		{"oncall", false, "No rotations are configured"},
		{"list", false, "no pending or active requests"},
		{"roles", false, "prod-admin"},
	}
	for _, tc := range cases {
		r := cmd(h, "alice", tc.text)
		if (r.Form != nil) != tc.form || !strings.Contains(r.Text, tc.contains) {
			t.Errorf("%.40q: form=%v text=%q", tc.text, r.Form != nil, r.Text)
		}
	}
	if len(c.posts) != 0 {
		t.Fatalf("bad input posted %d approval cards", len(c.posts))
	}
	// The form is prefilled with what was typed.
	r := cmd(h, "alice", "prod-admin fixing  the checkout")
	if r.Form.Role != "prod-admin" || r.Form.Duration != "" || r.Form.Reason != "fixing  the checkout" {
		t.Fatalf("prefill %+v", r.Form)
	}
	if r := cmd(h, "ghost", "prod-admin 1h x"); !strings.Contains(r.Text, "no email address") {
		t.Fatalf("no identity: %q", r.Text)
	}
}

func TestSubmitKeepsReasonAsTyped(t *testing.T) {
	h, c, _ := setup(t, "approvals")
	r := cmd(h, "alice", "prod-admin 1h30m fixing   <!channel> checkout")
	if !strings.Contains(r.Text, "sent for approval to bob@example.com, dave@example.com") {
		t.Fatalf("reply %q", r.Text)
	}
	if len(c.posts) != 1 {
		t.Fatalf("%d cards", len(c.posts))
	}
	card := c.posts[0]
	if len(card.Buttons) != 2 || card.Buttons[0].Action != handlers.ActionApprove || card.Buttons[1].Action != handlers.ActionDeny {
		t.Fatalf("buttons %+v", card.Buttons)
	}
	var reason, dur string
	for _, f := range card.Fields {
		switch f.Label {
		case "Reason":
			reason = f.Value
		case "Duration":
			dur = f.Value
		}
	}
	// One quoted line; <!channel> is left for the transport to escape.
	if reason != "“fixing <!channel> checkout”" || dur != "1h30m" {
		t.Fatalf("reason %q duration %q", reason, dur)
	}
}

func TestApprovalCardFollowsTheRequest(t *testing.T) {
	h, c, prov := setup(t, "")
	cmd(h, "alice", "prod-admin 1h fixing checkout")
	// No approvals channel: each approver gets the card by DM.
	if len(c.dms["bob@example.com"]) != 1 || len(c.dms["dave@example.com"]) != 1 {
		t.Fatalf("approver DMs: %v", c.dms)
	}
	id := c.dms["bob@example.com"][0].Buttons[0].Value
	r := h.Action(context.Background(), handlers.Action{User: "alice", Action: handlers.ActionApprove, RequestID: id})
	if !strings.Contains(r.Text, "cannot approve or deny your own request") {
		t.Fatalf("self approval: %q", r.Text)
	}
	r = h.Action(context.Background(), handlers.Action{User: "bob", Action: handlers.ActionApprove, RequestID: id})
	if !strings.Contains(r.Text, "You approved") || !prov.IsMember("g", "alice@example.com") {
		t.Fatalf("approve: %q", r.Text)
	}
	// Both approvers' cards were updated and lost their buttons.
	if len(c.updates) < 2 {
		t.Fatalf("%d updates", len(c.updates))
	}
	last := c.updates[len(c.updates)-1]
	if len(last.Buttons) != 0 {
		t.Fatalf("buttons left on a decided card: %+v", last.Buttons)
	}
	r = h.Action(context.Background(), handlers.Action{User: "dave", Action: handlers.ActionDeny, RequestID: id})
	if !strings.Contains(r.Text, "is already active until") {
		t.Fatalf("stale click: %q", r.Text)
	}
	// The requester got a Revoke button; pressing it ends the grant.
	var revoke *handlers.Button
	for _, m := range c.dms["alice@example.com"] {
		for i := range m.Buttons {
			if m.Buttons[i].Action == handlers.ActionRevoke {
				revoke = &m.Buttons[i]
			}
		}
	}
	if revoke == nil {
		t.Fatal("no revoke button")
	}
	r = h.Action(context.Background(), handlers.Action{User: "alice", Action: revoke.Action, RequestID: revoke.Value})
	if !strings.Contains(r.Text, "has ended") || prov.IsMember("g", "alice@example.com") {
		t.Fatalf("revoke: %q", r.Text)
	}
	// Someone else's request id.
	r = cmd(h, "bob", "extend "+id+" 1h more")
	if !strings.Contains(r.Text, "only alice@example.com can extend") {
		t.Fatalf("foreign extend: %q", r.Text)
	}
}

func TestSubmitForm(t *testing.T) {
	h, c, _ := setup(t, "approvals")
	_, errs := h.SubmitForm(context.Background(), handlers.FormInput{User: "alice", Role: "nope", Duration: "2x", Reason: ""})
	if errs[handlers.FieldRole] == "" || errs[handlers.FieldDuration] == "" || errs[handlers.FieldReason] == "" {
		t.Fatalf("errors %v", errs)
	}
	_, errs = h.SubmitForm(context.Background(), handlers.FormInput{User: "alice", Role: "prod-admin", Duration: "9h", Reason: "x"})
	if !strings.Contains(errs[handlers.FieldDuration], "at most 4h") {
		t.Fatalf("errors %v", errs)
	}
	if len(c.posts) != 0 {
		t.Fatal("invalid form submitted")
	}
	r, errs := h.SubmitForm(context.Background(), handlers.FormInput{User: "alice", Role: "prod-admin", Duration: "2h", Reason: "fixing"})
	if len(errs) != 0 || !strings.Contains(r.Text, "sent for approval") || len(c.posts) != 1 {
		t.Fatalf("valid form: %v %q", errs, r.Text)
	}
	_, errs = h.SubmitForm(context.Background(), handlers.FormInput{User: "alice", Role: "prod-admin", Duration: "2h", Reason: "again"})
	if !strings.Contains(errs[handlers.FieldRole], "already asked for prod-admin") {
		t.Fatalf("duplicate: %v", errs)
	}
}

func TestBreakGlassAnnounced(t *testing.T) {
	h, c, prov := setup(t, "approvals")
	if r := cmd(h, "alice", "breakglass prod-admin 1h outage"); !strings.Contains(r.Text, "not on the break-glass list") {
		t.Fatalf("not allowed: %q", r.Text)
	}
	r := cmd(h, "erin", "breakglass prod-admin 1h database down")
	if !strings.Contains(r.Text, "Break-glass: you have") || !prov.IsMember("g", "erin@example.com") {
		t.Fatalf("break-glass: %q", r.Text)
	}
	if len(c.posts) != 1 || !strings.Contains(c.posts[0].Title, "Break-glass: erin@example.com took prod-admin") ||
		c.posts[0].Buttons[0].Action != handlers.ActionAck {
		t.Fatalf("announcement %+v", c.posts)
	}
}
