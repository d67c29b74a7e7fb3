package handlers_test

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/accessbot/accessbot/access"
	"github.com/accessbot/accessbot/handlers"
	"github.com/accessbot/accessbot/providers/dryrun"
	"github.com/accessbot/accessbot/store/bolt"
)

// setupRoles has prod-admin (bob's) and db-admin (dave's), cards in DMs
// when approvalsChannel is empty.
func setupRoles(t *testing.T, approvalsChannel string) (*handlers.Handler, *chat, *dryrun.Provider) {
	t.Helper()
	st, err := bolt.Open(filepath.Join(t.TempDir(), "h.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	pol := &access.Policy{Roles: map[string]access.Role{
		"prod-admin": {Name: "prod-admin", Description: "Production admin", Provider: "dryrun", Group: "g-admin",
			MaxDuration: 4 * time.Hour, DefaultDuration: time.Hour, ApproverUsers: []string{"bob@example.com"}, Approvals: 1, PendingTTL: time.Hour},
		"db-admin": {Name: "db-admin", Description: "Database admin", Provider: "dryrun", Group: "g-db",
			MaxDuration: 2 * time.Hour, DefaultDuration: time.Hour, ApproverUsers: []string{"dave@example.com"}, Approvals: 1, PendingTTL: time.Hour},
	}}
	prov := dryrun.New(nil)
	svc, err := access.NewService(access.Deps{Store: st, Policy: pol, Providers: map[string]access.Provisioner{"dryrun": prov}})
	if err != nil {
		t.Fatal(err)
	}
	c := &chat{dms: map[string][]handlers.Message{}, channel: approvalsChannel, security: "sec"}
	svc.SetNotifier(handlers.NewNotifier(c, nil))
	return handlers.New(svc, c, nil), c, prov
}

// "/access a,b …" and "/access a, b …" ask for both roles in one request;
// mistakes in the list are answered and send nothing.
func TestCommandSeveralRoles(t *testing.T) {
	for _, tc := range []struct {
		text     string
		form     string // the prefilled role field when a form opens
		contains string
	}{
		{"prod-admin,db-admin", "prod-admin,db-admin", ""},
		{"prod-admin , db-admin 2h", "prod-admin,db-admin", ""},
		{"prod-admin,nope 1h x", "", `There is no role "nope"`},
		{"prod-admin, db-admin 3h fixing", "", "db-admin may be held for at most 2h"},
		{"prod-admin,db-admin 2x fixing", "", `"2x" is not a duration`},
	} {
		h, c, _ := setupRoles(t, "approvals")
		r := cmd(h, "alice", tc.text)
		if tc.form != "" && (r.Form == nil || r.Form.Role != tc.form) || tc.form == "" && (r.Form != nil || !strings.Contains(r.Text, tc.contains)) {
			t.Errorf("%q: form=%+v text=%q", tc.text, r.Form, r.Text)
		}
		if len(c.posts) != 0 {
			t.Errorf("%q posted a card", tc.text)
		}
	}
	if r := cmd(rolesHandler(t), "alice", "help"); !strings.Contains(r.Text, "/access prod-admin,db-admin 2h") {
		t.Errorf("help does not show several roles: %q", r.Text)
	}

	h, c, prov := setupRoles(t, "")
	r := cmd(h, "alice", "prod-admin,  db-admin 1h fixing checkout")
	if !strings.Contains(r.Text, "Request b-") || !strings.Contains(r.Text, "*prod-admin*") || !strings.Contains(r.Text, "*db-admin*") {
		t.Fatalf("confirmation %q", r.Text)
	}
	bundle := strings.Fields(strings.TrimPrefix(r.Text, "Request "))[0]
	// One card, to the approvers of both roles, and one DM to alice.
	if len(c.dms["bob@example.com"]) != 1 || len(c.dms["dave@example.com"]) != 1 || len(c.dms["alice@example.com"]) != 1 {
		t.Fatalf("DMs: bob %d, dave %d, alice %d", len(c.dms["bob@example.com"]), len(c.dms["dave@example.com"]), len(c.dms["alice@example.com"]))
	}
	card := c.dms["bob@example.com"][0]
	if card.Buttons[0].Value != bundle || card.Title != "alice@example.com asks for prod-admin, db-admin" {
		t.Errorf("card %+v", card)
	}
	// bob approves what he may: prod-admin; db-admin is named as not his.
	r = h.Action(context.Background(), handlers.Action{User: "bob", Action: handlers.ActionApprove, RequestID: bundle})
	if !strings.Contains(r.Text, "You approved *prod-admin* (active until") || !strings.Contains(r.Text, "*db-admin*: you are not an approver of db-admin") {
		t.Errorf("bob sees %q", r.Text)
	}
	if !prov.IsMember("g-admin", "alice@example.com") || prov.IsMember("g-db", "alice@example.com") {
		t.Fatal("bob's approval granted the wrong roles")
	}
	last := c.updates[len(c.updates)-1]
	var states []string
	for _, f := range last.Fields {
		if f.Label == "prod-admin" || f.Label == "db-admin" {
			states = append(states, f.Label+": "+f.Value)
		}
	}
	if len(states) != 2 || !strings.HasPrefix(states[0], "prod-admin: active until") || !strings.HasPrefix(states[1], "db-admin: pending, 0 of 1") || len(last.Buttons) != 2 {
		t.Errorf("card after bob: %v, %d buttons", states, len(last.Buttons))
	}
	r = cmd(h, "alice", "list")
	if strings.Count(r.Text, "•") != 1 || !strings.Contains(r.Text, bundle) {
		t.Errorf("list %q", r.Text)
	}
	// dave denies: the rest of the request is denied.
	r = h.Action(context.Background(), handlers.Action{User: "dave", Action: handlers.ActionDeny, RequestID: bundle})
	if !strings.Contains(r.Text, "You denied request "+bundle+" (db-admin") {
		t.Errorf("dave sees %q", r.Text)
	}
	r = cmd(h, "alice", "extend "+bundle+" 30m more")
	if !strings.Contains(r.Text, "Extension request r-") {
		t.Errorf("extend of a request with one active role: %q", r.Text)
	}
	r = cmd(h, "alice", "revoke "+bundle)
	if !strings.Contains(r.Text, "*prod-admin* (ended") || prov.IsMember("g-admin", "alice@example.com") {
		t.Errorf("revoke all: %q", r.Text)
	}
}

func rolesHandler(t *testing.T) *handlers.Handler {
	h, _, _ := setupRoles(t, "approvals")
	return h
}

// The form's role field may hold several roles ("prod-admin,db-admin").
func TestSubmitFormSeveralRoles(t *testing.T) {
	h, c, _ := setupRoles(t, "approvals")
	_, errs := h.SubmitForm(context.Background(), handlers.FormInput{User: "alice", Role: "prod-admin,db-admin", Duration: "3h", Reason: "x"})
	if !strings.Contains(errs[handlers.FieldRole], "db-admin may be held for at most 2h") {
		t.Errorf("errors %v", errs)
	}
	_, errs = h.SubmitForm(context.Background(), handlers.FormInput{User: "alice", Role: "prod-admin,zzz", Duration: "1h", Reason: "x"})
	if !strings.Contains(errs[handlers.FieldRole], `"zzz"`) {
		t.Errorf("errors %v", errs)
	}
	r, errs := h.SubmitForm(context.Background(), handlers.FormInput{User: "alice", Role: "prod-admin,db-admin", Duration: "1h", Reason: "x"})
	if len(errs) > 0 || !strings.Contains(r.Text, "Request b-") || len(c.posts) != 1 {
		t.Fatalf("form: %v %q, %d cards", errs, r.Text, len(c.posts))
	}
}

// The refusals of several roles in one request, word for word.
func TestRefusalTextsSeveralRoles(t *testing.T) {
	for _, c := range []struct {
		r    access.Refusal
		want string
	}{
		{access.Refusal{Code: access.RefuseTooManyRoles, Count: 7, Limit: 5}, "that names 7 roles; one request may name at most 5, so nothing was sent. Ask for the rest in another request"},
		{access.Refusal{Code: access.RefuseBundleNoneOpen, Err: access.ErrNotActive, ID: "b-1"}, "no role of request b-1 is active, so there is nothing to end or extend; see `/access list`"},
		{access.Refusal{Code: access.RefuseBundleNoneOpen, Err: access.ErrAlreadyDecided, ID: "b-1"}, "no role of request b-1 is waiting for a decision any more; nothing was changed"},
	} {
		r := c.r
		if got := handlers.RefusalText(&r); got != c.want {
			t.Errorf("%s:\n got %q\nwant %q", c.r.Code, got, c.want)
		}
	}
}
