package handlers_test

import (
	"context"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/accessbot/accessbot/access"
	"github.com/accessbot/accessbot/handlers"
	"github.com/accessbot/accessbot/providers/dryrun"
	"github.com/accessbot/accessbot/providers/static"
	"github.com/accessbot/accessbot/store/bolt"
)

// channelChat records which channel each card was posted to.
type channelChat struct {
	*chat
	channels []string
}

func (c *channelChat) Post(ctx context.Context, ch string, m handlers.Message) (access.MessageRef, error) {
	c.mu.Lock()
	c.channels = append(c.channels, ch)
	c.mu.Unlock()
	return c.chat.Post(ctx, ch, m)
}

func gateSetup(t *testing.T) (*handlers.Handler, *channelChat, *access.Service) {
	t.Helper()
	st, err := bolt.Open(filepath.Join(t.TempDir(), "g.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	base := access.Role{Description: "d", Provider: "dryrun", MaxDuration: 4 * time.Hour, DefaultDuration: time.Hour,
		ApproverUsers: []string{"bob@example.com", "dave@example.com"}, Approvals: 1, PendingTTL: time.Hour}
	open, gated, auto := base, base, base
	open.Name, open.Group = "open", "g-open"
	gated.Name, gated.Group = "gated", "g-gated"
	gated.Requesters = &access.Requesters{Users: []string{"alice@example.com"}, Rotations: []string{"platform"}}
	gated.ReasonPattern = regexp.MustCompile(`^INC-[0-9]+ `)
	gated.ReasonHint = "start with the incident id, e.g. INC-1234 checkout down"
	gated.ApprovalsChannel = "C-DB"
	gated.Notify = []string{"sec@example.com"}
	auto.Name, auto.Group = "auto", "g-auto"
	auto.AutoApprove = &access.AutoApprove{Users: []string{"bob@example.com"}}
	auto.Notify = []string{"sec@example.com"}
	pol := &access.Policy{Roles: map[string]access.Role{"open": open, "gated": gated, "auto": auto}}
	rot, errs := static.New(static.Config{Name: "platform", Timezone: "UTC", Handoff: "monday 09:00", Start: "2026-11-16",
		Members: []string{"carol@example.com"}})
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	svc, err := access.NewService(access.Deps{Store: st, Policy: pol, Providers: map[string]access.Provisioner{"dryrun": dryrun.New(nil)},
		OnCall: access.OnCallRouter{"platform": rot}})
	if err != nil {
		t.Fatal(err)
	}
	c := &channelChat{chat: &chat{dms: map[string][]handlers.Message{}, channel: "approvals", security: "sec"}}
	svc.SetNotifier(handlers.NewNotifier(c, nil))
	return handlers.New(svc, c.chat, nil), c, svc
}

func names(opts []handlers.RoleOption) string {
	var out []string
	for _, o := range opts {
		out = append(out, o.Name)
	}
	return strings.Join(out, ",")
}

func titleList(ms []handlers.Message) string {
	var out []string
	for _, m := range ms {
		out = append(out, m.Title)
	}
	return strings.Join(out, " | ")
}

func TestGateRefusalsAndRoleLists(t *testing.T) {
	h, c, _ := gateSetup(t)
	ctx := context.Background()
	for _, tc := range []struct{ user, text, want string }{
		{"zed", "gated 1h INC-1 checkout", "you may not request gated; who may: alice@example.com, whoever is on call for platform. Nothing was sent"},
		{"alice", "gated 1h checkout down", "the reason for gated must match `^INC-[0-9]+ `: start with the incident id, e.g. INC-1234 checkout down. Nothing was sent"},
	} {
		if r := cmd(h, tc.user, tc.text); !strings.Contains(r.Text, tc.want) || r.Color != "danger" {
			t.Errorf("%s %q: %q, want %q", tc.user, tc.text, r.Text, tc.want)
		}
	}
	if len(c.posts) != 0 || len(c.dms) != 0 {
		t.Fatalf("refusals told someone: %d posts, %d DMs", len(c.posts), len(c.dms))
	}
	// The form and /access roles list only what the person may request.
	if got := names(h.RoleOptions(ctx, "zed", "")); got != "auto,open" {
		t.Fatalf("zed's roles %q", got)
	}
	if got := names(h.RoleOptions(ctx, "alice", "")); got != "auto,gated,open" {
		t.Fatalf("alice's roles %q", got)
	}
	if got := names(h.RoleOptions(ctx, "ghost", "")); got != "auto,open" {
		t.Fatalf("no identity: %q", got)
	}
	if r := cmd(h, "zed", "roles"); strings.Contains(r.Text, "gated") || !strings.Contains(r.Text, "*open*") {
		t.Fatalf("zed's /access roles: %q", r.Text)
	}
	r := cmd(h, "alice", "roles")
	if !strings.Contains(r.Text, "*gated*") || !strings.Contains(r.Text, "reason: start with the incident id") ||
		!strings.Contains(r.Text, "auto-approved for bob@example.com") {
		t.Fatalf("alice's /access roles: %q", r.Text)
	}
	// The form shows the reason hint; a reason that does not match goes
	// on the reason field.
	if f := cmd(h, "alice", "gated").Form; f == nil || f.ReasonHint != "start with the incident id, e.g. INC-1234 checkout down" {
		t.Fatalf("form %+v", f)
	}
	if f := cmd(h, "alice", "").Form; f == nil || f.ReasonHint != "gated: start with the incident id, e.g. INC-1234 checkout down" {
		t.Fatalf("form %+v", f)
	}
	_, fe := h.SubmitForm(ctx, handlers.FormInput{User: "alice", Role: "gated", Duration: "1h", Reason: "checkout down"})
	if !strings.Contains(fe[handlers.FieldReason], "start with the incident id") || len(fe) != 1 {
		t.Fatalf("form errors %v", fe)
	}
	_, fe = h.SubmitForm(ctx, handlers.FormInput{User: "zed", Role: "gated", Duration: "1h", Reason: "INC-1 x"})
	if !strings.Contains(fe[handlers.FieldRole], "you may not request gated") {
		t.Fatalf("form errors %v", fe)
	}
	if len(c.posts) != 0 {
		t.Fatal("a refused form posted a card")
	}
}

func TestCardRoutingAndNotifyList(t *testing.T) {
	h, c, _ := gateSetup(t)
	ctx := context.Background()
	// The gated role's card goes to its own channel, the open role's to the default.
	r1 := cmd(h, "alice", "gated 1h INC-7 checkout down")
	r2 := cmd(h, "alice", "open 1h fixing")
	if !strings.Contains(r1.Text, "sent for approval") || !strings.Contains(r2.Text, "sent for approval") {
		t.Fatalf("replies %q / %q", r1.Text, r2.Text)
	}
	if strings.Join(c.channels, ",") != "C-DB,approvals" {
		t.Fatalf("cards posted to %v", c.channels)
	}
	if len(c.dms["sec@example.com"]) != 0 {
		t.Fatalf("the notify list was told of a submission: %s", titleList(c.dms["sec@example.com"]))
	}
	var gatedID string
	for _, m := range c.posts {
		if strings.Contains(m.Title, "gated") {
			gatedID = strings.TrimPrefix(m.Footer, "Request ")
		}
	}
	if r := h.Action(ctx, handlers.Action{User: "bob", Action: handlers.ActionApprove, RequestID: gatedID}); r.Color == "danger" {
		t.Fatalf("approve: %q", r.Text)
	}
	got := c.dms["sec@example.com"]
	want := "alice@example.com's request " + gatedID + " for gated was approved | alice@example.com's request " + gatedID + " for gated is active"
	if titleList(got) != want {
		t.Fatalf("notify DMs %q, want %q", titleList(got), want)
	}
	for _, m := range got {
		if len(m.Buttons) != 0 {
			t.Fatalf("a notify DM has buttons: %+v", m)
		}
	}
	// sec is no approver.
	if r := h.Action(ctx, handlers.Action{User: "sec", Action: handlers.ActionDeny, RequestID: gatedID, Reason: "no"}); r.Color != "danger" {
		t.Fatalf("sec decided: %q", r.Text)
	}
	// A denial is told too.
	cmd(h, "alice", "revoke "+gatedID)
	cmd(h, "alice", "gated 1h INC-8 again")
	var second string
	for _, m := range c.posts {
		if strings.Contains(m.Text+m.Title, "gated") && !strings.Contains(m.Footer, gatedID) {
			second = strings.TrimPrefix(m.Footer, "Request ")
		}
	}
	h.Action(ctx, handlers.Action{User: "dave", Action: handlers.ActionDeny, RequestID: second, Reason: "not now"})
	got = c.dms["sec@example.com"]
	if last := got[len(got)-1]; last.Title != "alice@example.com's request "+second+" for gated was denied" || !strings.Contains(last.Text, "Denied by dave@example.com: “not now”") {
		t.Fatalf("last notify DM %+v (all: %s)", last, titleList(got))
	}
	if titleList(got[2:3]) != "alice@example.com's request "+gatedID+" for gated has ended" {
		t.Fatalf("notify DMs %s", titleList(got))
	}
}

func TestAutoApprovedCardAndReply(t *testing.T) {
	h, c, _ := gateSetup(t)
	r := cmd(h, "bob", "auto 1h deploy")
	if !strings.Contains(r.Text, "was auto-approved (listed for auto-approval): you have it until") {
		t.Fatalf("reply %q", r.Text)
	}
	if len(c.posts) != 1 {
		t.Fatalf("%d cards", len(c.posts))
	}
	card := c.updates[len(c.updates)-1]
	if len(card.Buttons) != 0 || !strings.Contains(card.Text, "Auto-approved by accessbot: listed for auto-approval") {
		t.Fatalf("card %+v", card)
	}
	found := false
	for _, f := range card.Fields {
		if f.Label == "Auto-approved" && f.Value == "listed for auto-approval" {
			found = true
		}
		if f.Label == "Status" && !strings.Contains(f.Value, "auto-approved: listed for auto-approval") {
			t.Fatalf("status %q", f.Value)
		}
		if f.Label == "Approvers" && f.Value != "none needed (auto-approved)" {
			t.Fatalf("approvers %q", f.Value)
		}
	}
	if !found {
		t.Fatalf("card fields %+v", card.Fields)
	}
	if got := titleList(c.dms["bob@example.com"]); !strings.Contains(got, "was auto-approved") || strings.Contains(got, "waiting for approval") {
		t.Fatalf("bob's DMs %q", got)
	}
	if got := titleList(c.dms["sec@example.com"]); !strings.Contains(got, "for auto was auto-approved") || !strings.Contains(got, "for auto is active") {
		t.Fatalf("notify DMs %q", got)
	}
}

func TestRequesterUncheckedWording(t *testing.T) {
	err := &access.Refusal{Code: access.RefuseRequesterUnchecked, Err: access.ErrRequesterUnchecked, Role: "prod-admin",
		Provider: "okta", Groups: []string{"sre"}}
	want := "accessbot could not check whether you may request prod-admin (the okta membership of sre could not be looked up right now), so the request was not sent; try again in a minute"
	if got := handlers.RefusalText(err); got != want {
		t.Fatalf("%q", got)
	}
}

// Every outcome reaches the notify list once, without buttons; other
// events (a submission waiting for approval, one approval of two, a
// shift grant) do not.
func TestNotifyListOutcomes(t *testing.T) {
	ctx := context.Background()
	role := access.Role{Name: "db", Notify: []string{"Sec@example.com", "alice@example.com"}}
	base := access.Request{ID: "r-1", Kind: access.KindRequest, Requester: "alice@example.com", Role: "db", Duration: time.Hour,
		Reason: "x", Needed: 2, EndsAt: time.Date(2031, 1, 1, 12, 0, 0, 0, time.UTC)}
	two := []access.Decision{{By: "bob@example.com", Approve: true}, {By: "dave@example.com", Approve: true}}
	for _, tc := range []struct {
		name  string
		ev    access.EventType
		actor string
		mod   func(r *access.Request)
		title string // "": no DM
	}{
		{"pending", access.EvSubmitted, "alice@example.com", nil, ""},
		{"first of two approvals", access.EvApproval, "bob@example.com", func(r *access.Request) { r.Decisions = two }, ""},
		{"second approval", access.EvApproval, "dave@example.com", func(r *access.Request) { r.Decisions = two }, "was approved"},
		{"denied", access.EvDenied, "bob@example.com", nil, "was denied"},
		{"timed out", access.EvTimedOut, access.SystemActor, nil, "timed out"},
		{"active", access.EvActive, access.SystemActor, nil, "is active"},
		{"failed", access.EvFailed, access.SystemActor, func(r *access.Request) { r.Failure = "boom" }, "failed"},
		{"ended", access.EvEnded, access.SystemActor, func(r *access.Request) { r.State = access.StateEnded }, "has ended"},
		{"shift grant", access.EvActive, access.SystemActor, func(r *access.Request) { r.Kind = access.KindRotation }, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := &chat{dms: map[string][]handlers.Message{}}
			r := base
			if tc.mod != nil {
				tc.mod(&r)
			}
			refs, err := handlers.NewNotifier(c, nil).Notify(ctx, access.Event{Type: tc.ev, Request: &r, Actor: tc.actor, Role: role, ID: "e@1"})
			if err != nil {
				t.Fatal(err)
			}
			got := c.dms["sec@example.com"]
			if tc.title == "" {
				if len(got) != 0 {
					t.Fatalf("told: %s", titleList(got))
				}
				return
			}
			if len(got) != 1 || got[0].Title != "alice@example.com's request r-1 for db "+tc.title || len(got[0].Buttons) != 0 {
				t.Fatalf("DMs %+v", got)
			}
			// A retry of the same entry sends nothing again.
			r.Messages = refs
			if _, err := handlers.NewNotifier(c, nil).Notify(ctx, access.Event{Type: tc.ev, Request: &r, Actor: tc.actor, Role: role, ID: "e@1"}); err != nil {
				t.Fatal(err)
			}
			if len(c.dms["sec@example.com"]) != 1 {
				t.Fatalf("a retry told sec again: %s", titleList(c.dms["sec@example.com"]))
			}
		})
	}
}
