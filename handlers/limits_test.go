package handlers_test

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/accessbot/accessbot/access"
	"github.com/accessbot/accessbot/handlers"
	"github.com/accessbot/accessbot/internal/testclock"
	"github.com/accessbot/accessbot/providers/dryrun"
	"github.com/accessbot/accessbot/store/bolt"
)

// TestOverflowingDurationRefused: "213504d" used to parse as 25m26s and
// was sent for approval.
func TestOverflowingDurationRefused(t *testing.T) {
	h, c, _ := setup(t, "approvals")
	r := cmd(h, "alice", "prod-admin 213504d fixing checkout")
	if !strings.Contains(r.Text, `"213504d" is longer than 366d`) {
		t.Fatalf("reply %q", r.Text)
	}
	if len(c.posts) != 0 {
		t.Fatalf("%d approval cards posted", len(c.posts))
	}
}

// TestNonASCIIIdentityRefused: a chat account whose email is "ſam@..."
// (U+017F) is refused with a clear message before anything is sent.
func TestNonASCIIIdentityRefused(t *testing.T) {
	h, c, _ := setup(t, "approvals")
	for _, user := range []string{"\u017fam", "\u212aate"} {
		r := cmd(h, user, "prod-admin 1h fixing checkout")
		if !strings.Contains(r.Text, "plain ASCII") {
			t.Errorf("%s: reply %q", user, r.Text)
		}
	}
	if len(c.posts) != 0 {
		t.Fatalf("%d approval cards posted", len(c.posts))
	}
}

// TestCommandsPerMinuteLimit: past the per-minute limit, commands that
// ask for or look at things are refused with a clear message; revoke,
// cancel, decisions and break-glass still go through.
func TestCommandsPerMinuteLimit(t *testing.T) {
	st, err := bolt.Open(filepath.Join(t.TempDir(), "h.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	pol := &access.Policy{Roles: map[string]access.Role{
		"prod-admin": {Name: "prod-admin", Description: "Production admin", Provider: "dryrun", Group: "g",
			MaxDuration: 4 * time.Hour, DefaultDuration: time.Hour, ApproverUsers: []string{"bob@example.com", "dave@example.com"},
			Approvals: 1, PendingTTL: time.Hour, BreakGlass: true},
		"db-admin": {Name: "db-admin", Description: "DB admin", Provider: "dryrun", Group: "g-db",
			MaxDuration: 4 * time.Hour, DefaultDuration: time.Hour, ApproverUsers: []string{"dave@example.com"},
			Approvals: 1, PendingTTL: time.Hour},
	}, BreakGlass: []string{"alice@example.com"}}
	clock := testclock.New(time.Date(2026, 11, 18, 10, 0, 0, 0, time.UTC))
	svc, err := access.NewService(access.Deps{Store: st, Policy: pol, Clock: clock,
		Providers: map[string]access.Provisioner{"dryrun": dryrun.New(nil)}, Options: access.Options{CommandsPerMinute: 3}})
	if err != nil {
		t.Fatal(err)
	}
	c := &chat{dms: map[string][]handlers.Message{}, channel: "approvals", security: "sec"}
	svc.SetNotifier(handlers.NewNotifier(c, nil))
	h := handlers.New(svc, c, nil)

	pending := cmd(h, "alice", "prod-admin 1h fixing checkout")
	id := strings.Fields(pending.Text)[1]
	cmd(h, "alice", "list")
	cmd(h, "alice", "roles")
	if r := cmd(h, "alice", "db-admin 1h more"); !strings.Contains(r.Text, "more than 3 commands in a minute") {
		t.Fatalf("4th command: %q", r.Text)
	}
	if len(c.posts) != 1 {
		t.Fatalf("%d approval cards, want 1", len(c.posts))
	}
	if r := cmd(h, "alice", "cancel "+id); !strings.Contains(r.Text, "is cancelled") {
		t.Fatalf("cancel while limited: %q", r.Text)
	}
	if r := cmd(h, "alice", "breakglass prod-admin 1h outage"); !strings.Contains(r.Text, "Break-glass: you have") {
		t.Fatalf("break-glass while limited: %q", r.Text)
	}
	if r := cmd(h, "alice", "revoke prod-admin done"); !strings.Contains(r.Text, "access is removed") {
		t.Fatalf("revoke while limited: %q", r.Text)
	}
	if r := cmd(h, "bob", "list"); strings.Contains(r.Text, "commands in a minute") {
		t.Fatalf("another user limited: %q", r.Text)
	}
	clock.Advance(time.Minute)
	if r := cmd(h, "alice", "list"); strings.Contains(r.Text, "commands in a minute") {
		t.Fatalf("next minute still limited: %q", r.Text)
	}
}

// TestRefusalsToStrangersLeakNothing: someone unrelated to a request who
// types its id learns neither who asked, nor why it was denied, nor that
// it exists: the refusal reads like the one for an unknown id. The people
// involved still get the specific text.
func TestRefusalsToStrangersLeakNothing(t *testing.T) {
	h, _, _ := setup(t, "approvals")
	denied := cmd(h, "alice", "prod-admin 1h secret project falcon")
	deniedID := strings.Fields(denied.Text)[1]
	if r := cmd(h, "bob", "deny "+deniedID+" falcon is cancelled"); !strings.Contains(r.Text, "You denied") {
		t.Fatalf("deny: %q", r.Text)
	}
	active := cmd(h, "carol", "prod-admin 1h other work")
	activeID := strings.Fields(active.Text)[1]
	if r := cmd(h, "dave", "approve "+activeID); !strings.Contains(r.Text, "You approved") {
		t.Fatalf("approve: %q", r.Text)
	}
	pending := cmd(h, "alice", "prod-admin 2h third try")
	if strings.Contains(pending.Text, "already") {
		t.Fatalf("submit: %q", pending.Text)
	}
	pendingID := strings.Fields(pending.Text)[1]

	unknown := cmd(h, "mallory", "cancel r-zzzzzzzz").Text
	if !strings.Contains(unknown, "there is no request r-zzzzzzzz that you can act on") {
		t.Fatalf("unknown id: %q", unknown)
	}
	for _, c := range []struct{ text, id string }{
		{"cancel " + pendingID, pendingID},
		{"extend " + activeID + " 1h more", activeID},
		{"revoke " + activeID + " because", activeID},
		{"approve " + deniedID, deniedID},
		{"deny " + deniedID, deniedID},
	} {
		r := cmd(h, "mallory", c.text).Text
		for _, secret := range []string{"alice", "carol", "falcon", "bob@", "denied by"} {
			if strings.Contains(r, secret) {
				t.Errorf("%q told mallory %q: %q", c.text, secret, r)
			}
		}
		if strings.HasPrefix(c.text, "approve") || strings.HasPrefix(c.text, "deny") {
			if !strings.Contains(r, "you are not an approver of prod-admin right now") {
				t.Errorf("%q: %q", c.text, r)
			}
			continue
		}
		if want := "there is no request " + c.id + " that you can act on"; !strings.Contains(r, want) {
			t.Errorf("%q: %q, want %q", c.text, r, want)
		}
	}
	// The involved keep the specific text.
	if r := cmd(h, "bob", "approve "+deniedID).Text; !strings.Contains(r, "denied by bob@example.com: “falcon is cancelled”") {
		t.Errorf("approver on a denied request: %q", r)
	}
	if r := cmd(h, "bob", "cancel "+pendingID).Text; !strings.Contains(r, "only alice@example.com can cancel") {
		t.Errorf("approver cancelling: %q", r)
	}
}

func refusalService(t *testing.T, opt access.Options) (*access.Service, *testclock.Clock) {
	t.Helper()
	st, err := bolt.Open(filepath.Join(t.TempDir(), "r.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	role := func(name string) access.Role {
		return access.Role{Name: name, Provider: "dryrun", Group: "g-" + name, MaxDuration: 4 * time.Hour, DefaultDuration: time.Hour,
			ApproverUsers: []string{"bob@example.com", "dave@example.com"}, Approvals: 1, PendingTTL: time.Hour, BreakGlass: true}
	}
	pol := &access.Policy{Roles: map[string]access.Role{"prod-admin": role("prod-admin"), "db-admin": role("db-admin"), "read": role("read")},
		BreakGlass: []string{"erin@example.com"}, Acknowledgers: []string{"dave@example.com"}}
	clock := testclock.New(time.Date(2026, 3, 2, 10, 0, 30, 0, time.UTC))
	svc, err := access.NewService(access.Deps{Store: st, Policy: pol, Clock: clock,
		Providers: map[string]access.Provisioner{"dryrun": dryrun.New(nil)}, Options: opt})
	if err != nil {
		t.Fatal(err)
	}
	return svc, clock
}

// TestRefusalWording: the refusals of the workflow read as they always
// did. (These checks stood in the access tests while access worded its
// refusals; the access tests now check what the refusals carry.)
func TestRefusalWording(t *testing.T) {
	ctx := context.Background()
	svc, clock := refusalService(t, access.Options{MaxPendingPerUser: 2})
	long := strings.Repeat("x", access.MaxReasonLen+1)
	for _, c := range []struct {
		name string
		in   access.SubmitInput
		want error
		text string
	}{
		{"unknown role", access.SubmitInput{Requester: "alice@example.com", Role: "prod-god", Duration: time.Hour, Reason: "x"}, access.ErrUnknownRole, `no role "prod-god"`},
		{"too long", access.SubmitInput{Requester: "alice@example.com", Role: "prod-admin", Duration: 5 * time.Hour, Reason: "x"}, access.ErrTooLong, "at most 4h"},
		{"too short", access.SubmitInput{Requester: "alice@example.com", Role: "prod-admin", Duration: time.Second, Reason: "x"}, access.ErrBadDuration, "minimum is 1m"},
		{"no reason", access.SubmitInput{Requester: "alice@example.com", Role: "prod-admin", Duration: time.Hour, Reason: "  "}, access.ErrNoReason, "give a reason"},
		{"reason too long", access.SubmitInput{Requester: "alice@example.com", Role: "prod-admin", Duration: time.Hour, Reason: long}, access.ErrReasonTooLong, "1001 characters"},
		{"no identity", access.SubmitInput{Requester: "", Role: "prod-admin", Duration: time.Hour, Reason: "x"}, access.ErrNoIdentity, "no email"},
		{"non-ASCII identity", access.SubmitInput{Requester: "ſam@example.com", Role: "prod-admin", Duration: time.Hour, Reason: "x"}, access.ErrBadIdentity, "plain ASCII"},
	} {
		_, err := svc.Submit(ctx, c.in)
		if !errors.Is(err, c.want) || !strings.Contains(handlers.RefusalText(err), c.text) {
			t.Errorf("%s: %v reads %q, want %v containing %q", c.name, err, handlers.RefusalText(err), c.want, c.text)
		}
	}

	// A request while the role is held suggests extending it.
	r, err := svc.Submit(ctx, access.SubmitInput{Requester: "alice@example.com", Role: "prod-admin", Duration: time.Hour, Reason: "x"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := svc.Decide(ctx, r.ID, "bob@example.com", true, ""); err != nil {
		t.Fatal(err)
	}
	_, err = svc.Submit(ctx, access.SubmitInput{Requester: "alice@example.com", Role: "prod-admin", Duration: time.Hour, Reason: "x"})
	if !errors.Is(err, access.ErrDuplicate) || !strings.Contains(handlers.RefusalText(err), "`/access extend "+r.ID) {
		t.Errorf("request while active: %v reads %q", err, handlers.RefusalText(err))
	}

	// The pending limit.
	for _, role := range []string{"db-admin", "read"} {
		if _, err := svc.Submit(ctx, access.SubmitInput{Requester: "carol@example.com", Role: role, Duration: time.Hour, Reason: "x"}); err != nil {
			t.Fatal(err)
		}
	}
	_, err = svc.Submit(ctx, access.SubmitInput{Requester: "carol@example.com", Role: "prod-admin", Duration: time.Hour, Reason: "x"})
	if !errors.Is(err, access.ErrRateLimited) || !strings.Contains(handlers.RefusalText(err), "2 requests waiting") {
		t.Errorf("third pending request: %v reads %q", err, handlers.RefusalText(err))
	}

	// The command limit.
	clock.Set(clock.Now().Truncate(time.Minute))
	for i := 0; i < 20; i++ {
		if err := svc.Throttle(ctx, "frank@example.com"); err != nil {
			t.Fatalf("command %d: %v", i+1, err)
		}
	}
	err = svc.Throttle(ctx, "Frank@example.com")
	if !errors.Is(err, access.ErrRateLimited) || !strings.Contains(handlers.RefusalText(err), "more than 20 commands in a minute") {
		t.Errorf("21st command: %v reads %q", err, handlers.RefusalText(err))
	}

	// A stranger's refusal reads like the one for an unknown id.
	bg, err := svc.BreakGlass(ctx, access.SubmitInput{Requester: "erin@example.com", Role: "prod-admin", Duration: time.Hour, Reason: "fire"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := svc.Acknowledge(ctx, bg.ID, "dave@example.com"); err != nil {
		t.Fatal(err)
	}
	_, err = svc.Acknowledge(ctx, bg.ID, "mallory@example.com")
	_, unknown := svc.Acknowledge(ctx, "r-zzzzzzzz", "mallory@example.com")
	ue, uu := handlers.RefusalText(err), handlers.RefusalText(unknown)
	if ue == "" || uu == "" || strings.ReplaceAll(ue, bg.ID, "ID") != strings.ReplaceAll(uu, "r-zzzzzzzz", "ID") {
		t.Errorf("stranger: %q; unknown id: %q", ue, uu)
	}
	if strings.Contains(ue, "dave") || strings.Contains(ue, "erin") {
		t.Errorf("refusal leaks: %q", ue)
	}
}

// TestRefusalTexts pins the sentence of every refusal, word for word as
// the workflow wrote them before the wording moved here.
func TestRefusalTexts(t *testing.T) {
	at := time.Date(2026, 3, 2, 14, 30, 15, 0, time.UTC)
	for _, c := range []struct {
		r    access.Refusal
		want string
	}{
		{access.Refusal{Code: access.RefuseNoIdentity}, "your chat account has no email address mapped, so accessbot cannot tell who you are; ask an admin to link it"},
		{access.Refusal{Code: access.RefuseDecideNoIdentity}, "your chat account has no email address mapped, so accessbot cannot tell who you are"},
		{access.Refusal{Code: access.RefuseBadIdentity}, "the email address of your chat account has characters other than plain ASCII, so accessbot cannot tell who you are; ask an admin to change it"},
		{access.Refusal{Code: access.RefuseNoRole}, "name a role; try `/access roles` to see what you may request"},
		{access.Refusal{Code: access.RefuseUnknownRole, Role: strings.Repeat("r", 70)}, `there is no role "` + strings.Repeat("r", 60) + `…"; try ` + "`/access roles` to see what you may request"},
		{access.Refusal{Code: access.RefuseRoleGone, Role: "old", ID: "r-1"}, "role old is no longer configured; nobody can decide request r-1"},
		{access.Refusal{Code: access.RefuseTooShort, Duration: time.Second, Max: time.Minute}, "the duration 1s is too short; the minimum is 1m"},
		{access.Refusal{Code: access.RefuseTooLong, Role: "db", Max: 4 * time.Hour, Duration: 5 * time.Hour}, "db may be held for at most 4h; you asked for 5h"},
		{access.Refusal{Code: access.RefuseNoReason, Role: "db", Duration: 2 * time.Hour}, "give a reason, e.g. `/access db 2h fixing the checkout outage`"},
		{access.Refusal{Code: access.RefuseReasonTooLong, Count: 1001, Limit: 1000}, "the reason is 1001 characters long; the limit is 1000"},
		{access.Refusal{Code: access.RefuseReasonTooLong, Limit: 1000}, "the reason is too long; the limit is 1000 characters"},
		{access.Refusal{Code: access.RefuseUnknownUser, User: "a@x", Provider: "okta", Role: "db"}, "a@x has no account in okta, so db cannot be granted; ask an admin to create it"},
		{access.Refusal{Code: access.RefuseUserDisabled, User: "a@x", Provider: "okta", Role: "db"}, "the okta account of a@x is disabled, so db cannot be granted"},
		{access.Refusal{Code: access.RefuseAlreadyPending, Role: "db", ID: "r-1"}, "you already asked for db (request r-1 is waiting for approval); cancel it with `/access cancel r-1` first"},
		{access.Refusal{Code: access.RefuseAlreadyHeld, Role: "db", ID: "r-1", At: at}, "you already hold db until 14:30 UTC (request r-1); ask for more time with `/access extend r-1 <duration> <reason>`"},
		{access.Refusal{Code: access.RefuseExtensionPending, Other: "r-1", ID: "r-2"}, "an extension of r-1 is already waiting for approval (request r-2)"},
		{access.Refusal{Code: access.RefuseNoApprovers, Role: "db"}, "nobody can approve db right now (no named approver and nobody on call), so the request was not sent; ask an admin"},
		{access.Refusal{Code: access.RefuseTooFewApprovers, Role: "db", Limit: 2, Count: 1}, "db needs 2 approvals but only 1 approver(s) are available right now, so the request was not sent"},
		{access.Refusal{Code: access.RefuseBusy}, "another request of yours is being stored right now; nothing was sent, try again in a moment"},
		{access.Refusal{Code: access.RefuseTooManyPending, Count: 5, Limit: 5}, "you already have 5 requests waiting for approval, the most one person may have; wait for a decision or cancel one with `/access cancel <request-id>` (see `/access list`)"},
		{access.Refusal{Code: access.RefuseThrottled, Limit: 20, At: at}, "you gave more than 20 commands in a minute; nothing was done, try again after 14:30:15 UTC"},
		{access.Refusal{Code: access.RefuseNoRequest, ID: strings.Repeat("i", 50)}, "there is no request " + strings.Repeat("i", 40) + "… that you can act on"},
		{access.Refusal{Code: access.RefuseNoSuchRequest, ID: "r-9"}, "there is no request r-9"},
		{access.Refusal{Code: access.RefuseNotApprover, Role: "db", ID: "r-1"}, "you are not an approver of db right now, so you cannot decide request r-1"},
		{access.Refusal{Code: access.RefuseNotApproverNow, Role: "db", People: []string{"b@x", "d@x"}}, "you are not an approver of db right now; who may decide: b@x, d@x"},
		{access.Refusal{Code: access.RefuseNotApproverNow, Role: "db"}, "you are not an approver of db right now; who may decide: nobody"},
		{access.Refusal{Code: access.RefuseSelfDecide, Role: "db"}, "you cannot approve or deny your own request for db; it needs another approver"},
		{access.Refusal{Code: access.RefuseApprovedAlready, ID: "r-1", Limit: 2, Count: 1}, "you already approved request r-1; it needs 2 approval(s), 1 so far"},
		{access.Refusal{Code: access.RefuseCancelNotYours, User: "a@x", ID: "r-1"}, "only a@x can cancel request r-1"},
		{access.Refusal{Code: access.RefuseRevokeNotYours, User: "a@x", Role: "db", ID: "r-1"}, "only a@x, an approver of db or an admin can revoke request r-1"},
		{access.Refusal{Code: access.RefuseExtendNotYours, User: "a@x", ID: "r-1"}, "only a@x can extend request r-1"},
		{access.Refusal{Code: access.RefuseNothingToExtend, ID: "r-1", State: access.StateEnded}, "request r-1 is ended, not active, so there is nothing to extend"},
		{access.Refusal{Code: access.RefuseShiftGrant, ID: "r-1"}, "request r-1 is an on-call shift grant; it ends at the handoff and cannot be extended"},
		{access.Refusal{Code: access.RefuseExtendTooLong, Duration: 3 * time.Hour, Role: "db", At: at, Max: 4 * time.Hour, Left: 90 * time.Minute},
			"extending by 3h would give db until 14:30 UTC, more than the maximum of 4h from now; ask for at most 1h30m"},
		{access.Refusal{Code: access.RefuseNotBreakGlassUser, Role: "db"}, "you are not on the break-glass list; ask for db with `/access db <duration> <reason>` instead"},
		{access.Refusal{Code: access.RefuseNoBreakGlass, Role: "db"}, "db does not allow break-glass access; ask for it with `/access db <duration> <reason>`"},
		{access.Refusal{Code: access.RefuseSelfAcknowledge}, "you cannot acknowledge your own break-glass access"},
		{access.Refusal{Code: access.RefuseNotAcknowledger, People: []string{"s@x", "t@x"}}, "only the security team (s@x, t@x) can acknowledge break-glass access"},
		{access.Refusal{Code: access.RefuseNotBreakGlass, ID: "r-1"}, "request r-1 is not a break-glass grant; there is nothing to acknowledge"},
		{access.Refusal{Code: access.RefuseAcknowledged, User: "s@x", ID: "r-1"}, "s@x already acknowledged request r-1"},
		{access.Refusal{Code: access.RefuseDenyNoReason, ID: "r-1"}, "say why you denied request r-1"},
		{access.Refusal{Code: access.RefuseNotDenied, ID: "r-1"}, "request r-1 was not denied; there is no denial to give a reason for"},
		{access.Refusal{Code: access.RefuseNotDenier, ID: "r-1"}, "only the approver who denied request r-1 can give the reason"},
		{access.Refusal{Code: access.RefuseDenyReasonRecorded, ID: "r-1"}, "the reason for denying request r-1 is already recorded"},
		{access.Refusal{Code: access.RefuseNoDenyDecision, ID: "r-1"}, "request r-1 has no deny decision to give a reason for"},
	} {
		r := c.r
		if got := handlers.RefusalText(&r); got != c.want {
			t.Errorf("%s:\n got %q\nwant %q", c.r.Code, got, c.want)
		}
	}
}
