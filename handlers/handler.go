// Package handlers turns what a person typed or clicked in chat into calls
// on the access service, and renders the answers and the service's events
// as platform-neutral messages. Slack, Discord and the console share it.
package handlers

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/accessbot/accessbot/access"
)

// MaxCommandLen bounds what /access accepts; anything longer is refused
// before it is parsed (a reason may be at most access.MaxReasonLen).
const MaxCommandLen = 4 * access.MaxReasonLen

// Service is what the handlers ask of the access workflow;
// *access.Service implements it. Errors are the ones documented there
// (sentinels, *access.StateError, *access.Refusal), which the handlers word
// for people.
type Service interface {
	Policy() *access.Policy
	Throttle(ctx context.Context, identity string) error
	Submit(ctx context.Context, in access.SubmitInput) (*access.Request, error)
	BreakGlass(ctx context.Context, in access.SubmitInput) (*access.Request, error)
	Get(ctx context.Context, id string) (*access.Request, error)
	Mine(ctx context.Context, requester string) ([]*access.Request, error)
	Approvers(ctx context.Context, role access.Role, requester string) ([]string, error)
	Decide(ctx context.Context, id, approver string, approve bool, reason string) (*access.Request, error)
	AddDenyReason(ctx context.Context, id, by, reason string) (*access.Request, error)
	CanAddDenyReason(ctx context.Context, id, by string) error
	Cancel(ctx context.Context, id, by string) (*access.Request, error)
	Revoke(ctx context.Context, id, by, reason string) (*access.Request, error)
	Extend(ctx context.Context, id, by string, d time.Duration, reason string) (*access.Request, error)
	Acknowledge(ctx context.Context, id, by string) (*access.Request, error)
	Shifts(ctx context.Context, rotation string) (cur, next access.Shift, err error)

	// Home (home.go): the pending requests waiting for a person's decision.
	AwaitingDecision(ctx context.Context, approver string) ([]*access.Request, error)

	// Several roles in one request (bundle.go).
	SubmitRoles(ctx context.Context, in access.SubmitInput, roles []string) ([]*access.Request, error)
	Bundle(ctx context.Context, id string) ([]*access.Request, error)
	DecideBundle(ctx context.Context, bundle, approver string, approve bool, reason string) (*access.BundleOutcome, error)
	RevokeBundle(ctx context.Context, bundle, by, reason string) (*access.BundleOutcome, error)
	CancelBundle(ctx context.Context, bundle, by string) (*access.BundleOutcome, error)
	ExtendBundle(ctx context.Context, bundle, by string, d time.Duration, reason string) ([]*access.Request, error)
	RolesPerRequest() int
	// MayRequest: nil when the identity may request the role now (gate.go).
	MayRequest(ctx context.Context, role access.Role, identity string) error
}

var _ Service = (*access.Service)(nil)

// Handler serves /access commands, button presses and form submissions.
type Handler struct {
	svc Service
	dir Directory
	log *slog.Logger
}

// New returns a Handler for the service, resolving chat users through dir.
func New(svc Service, dir Directory, log *slog.Logger) *Handler {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Handler{svc: svc, dir: dir, log: log}
}

func text(format string, args ...any) Reply {
	return Reply{Message: Message{Text: fmt.Sprintf(format, args...)}}
}

func problem(format string, args ...any) Reply {
	r := text(format, args...)
	r.Color = "danger"
	return r
}

// identity resolves the chat user from the payload; never from text.
func (h *Handler) identity(ctx context.Context, chatUser string) (string, error) {
	id, err := h.dir.Identity(ctx, chatUser)
	if err != nil {
		if errors.Is(err, access.ErrNoIdentity) {
			return "", &userError{Msg: "your chat account has no email address that accessbot can use, so it cannot tell who you are; ask an admin to link your account", Err: access.ErrNoIdentity}
		}
		return "", err
	}
	if access.CheckIdentity(id) != nil {
		return "", &userError{Msg: "the email address of your chat account has characters other than plain ASCII letters, digits and punctuation, so accessbot cannot tell for sure who you are; ask an admin to change it", Err: access.ErrBadIdentity}
	}
	return access.NormalizeIdentity(id), nil
}

// Command handles "/access <text>".
func (h *Handler) Command(ctx context.Context, c Command) Reply {
	if len(c.Text) > MaxCommandLen {
		return problem("That command is %d characters long; a reason may be at most %d characters. Nothing was sent.", len(c.Text), access.MaxReasonLen)
	}
	c.Text = foldRoleList(c.Text)
	words := strings.Fields(c.Text)
	if len(words) == 0 {
		return h.form(ctx, c.User, "", "", "")
	}
	sub := strings.ToLower(words[0])
	args := words[1:]
	rest := func(i int) string { return restAfter(c.Text, i+1) }
	if !unthrottled[sub] {
		if r, limited := h.throttle(ctx, c.User); limited {
			return r
		}
	}
	switch sub {
	case "help", "-h", "--help":
		return h.help()
	case "list", "ls":
		only := ""
		if len(args) > 0 {
			only = strings.ToLower(args[0])
		}
		return h.list(ctx, c.User, only)
	case "roles":
		return h.roles(ctx, c.User)
	case "oncall", "on-call":
		rot := ""
		if len(args) > 0 {
			rot = args[0]
		}
		return h.oncall(ctx, rot)
	case "revoke":
		if len(args) == 0 {
			return problem("Say what to revoke: `/access revoke <request-id|role> [reason]`.")
		}
		return h.revoke(ctx, c.User, args[0], rest(1))
	case "cancel":
		if len(args) == 0 {
			return problem("Say which request to cancel: `/access cancel <request-id>`.")
		}
		return h.act(ctx, Action{User: c.User, Team: c.Team, Action: ActionCancel, RequestID: args[0]})
	case "approve", "deny", "ack":
		if len(args) == 0 {
			return problem("Say which request: `/access %s <request-id>`.", sub)
		}
		return h.act(ctx, Action{User: c.User, Team: c.Team, Action: sub, RequestID: args[0], Reason: rest(1)})
	case "reason":
		if len(args) == 0 {
			return problem("Say which denial and why: `/access reason <request-id> <reason>`.")
		}
		return h.act(ctx, Action{User: c.User, Team: c.Team, Action: ActionAddReason, RequestID: args[0], Reason: rest(1)})
	case "extend":
		if len(args) < 3 {
			return problem("Usage: `/access extend <request-id> <duration> <reason>`, e.g. `/access extend r-7k3m9q2x 1h still fixing checkout`.")
		}
		if access.IsBundleID(args[0]) {
			return h.extendBundle(ctx, c.User, args[0], args[1], rest(2))
		}
		return h.extend(ctx, c.User, args[0], args[1], rest(2))
	case "breakglass", "break-glass":
		if len(args) < 3 {
			return problem("Usage: `/access breakglass <role> <duration> <reason>`; break-glass access is granted at once and announced to the security team.")
		}
		return h.breakGlass(ctx, c.User, args[0], args[1], rest(2))
	}
	// "/access <role>[,<role>...] [duration] [reason...]"
	if strings.Contains(sub, ",") {
		return h.roleList(ctx, c, sub, args, rest)
	}
	if _, ok := h.svc.Policy().Role(sub); !ok {
		return Reply{Message: Message{Color: "danger",
			Text: fmt.Sprintf("There is no role or command %q. Nothing was sent.\n\n%s", clipText(words[0], 40), helpText)}}
	}
	if len(args) == 0 {
		return h.form(ctx, c.User, sub, "", "")
	}
	if r, ok := h.scheduledCommand(ctx, c, sub, args); ok {
		return r // "… at 22:00 …": scheduled access
	}
	if !startsWithDigit(args[0]) && startsReason(args[0]) {
		// "/access prod-admin fixing checkout": no duration given.
		return h.form(ctx, c.User, sub, "", rest(0))
	}
	// The word where the duration goes was meant as one: say what is wrong
	// with it rather than open a form that hides the mistake.
	if _, err := parseDuration(args[0]); err != nil {
		return h.fail(ctx, err)
	}
	if len(args) == 1 {
		return h.form(ctx, c.User, sub, args[0], "")
	}
	return h.submit(ctx, c.User, sub, args[0], rest(1))
}

// unthrottled are the commands that are never rate-limited: those that
// take access away or answer a request, emergency access, and help.
var unthrottled = map[string]bool{"revoke": true, "cancel": true, "approve": true, "deny": true, "ack": true,
	"breakglass": true, "break-glass": true, "help": true, "-h": true, "--help": true}

// throttle counts a command of chatUser against the per-user limit and
// returns the refusal when it is over. A user whose identity cannot be
// resolved is not counted here; the command itself says what is wrong.
func (h *Handler) throttle(ctx context.Context, chatUser string) (Reply, bool) {
	who, err := h.identity(ctx, chatUser)
	if err != nil {
		return Reply{}, false
	}
	if err := h.svc.Throttle(ctx, who); err != nil {
		return h.fail(ctx, err), true
	}
	return Reply{}, false
}

func startsWithDigit(s string) bool { return s != "" && s[0] >= '0' && s[0] <= '9' }

// reasonOpeners are words a reason often starts with, besides verbs in
// -ing and -ed form.
var reasonOpeners = map[string]bool{
	"a": true, "an": true, "the": true, "to": true, "for": true, "because": true, "since": true,
	"re": true, "per": true, "need": true, "needs": true, "i": true, "we": true, "my": true, "our": true,
	"fix": true, "debug": true, "check": true, "deploy": true, "investigate": true, "help": true,
	"incident": true, "outage": true, "ticket": true, "hotfix": true, "rollback": true, "urgent": true,
}

// startsReason reports whether w, typed where the duration goes, reads as
// the first word of a reason (the duration was left out, the form asks for
// it) rather than as a mistyped duration ("banana", "2x", "two"), which is
// answered with what is wrong. Words with characters a duration never has
// ("INC-123", "#incident", "checkout's") start a reason.
func startsReason(w string) bool {
	lw := strings.ToLower(w)
	for _, r := range lw {
		if (r < 'a' || r > 'z') && (r < '0' || r > '9') && r != '.' {
			return true
		}
	}
	return reasonOpeners[lw] || (len(lw) > 4 && (strings.HasSuffix(lw, "ing") || strings.HasSuffix(lw, "ed")))
}

// restAfter returns text after its first n whitespace-separated words,
// keeping the spacing of the rest (reasons are shown as typed).
func restAfter(s string, n int) string {
	s = strings.TrimSpace(s)
	for i := 0; i < n && s != ""; i++ {
		j := strings.IndexFunc(s, isSpace)
		if j < 0 {
			return ""
		}
		s = strings.TrimLeftFunc(s[j:], isSpace)
	}
	return s
}

func isSpace(r rune) bool { return r == ' ' || r == '\t' || r == '\n' || r == '\r' }

func clipText(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n]) + "…"
}

const helpText = "*Usage*\n" +
	"`/access <role> <duration> <reason>` ask for a role, e.g. `/access prod-admin 2h fixing checkout`\n" +
	"`/access <role>,<role> <duration> <reason>` several roles in one request, e.g. `/access prod-admin,db-admin 2h fixing checkout`; " +
	"each role has its own approvers and all end together; act on all of them with the request's `b-…` id, on one with its `r-…` id\n" +
	"`/access` open the request form\n" +
	"`/access list [grants|pending|waiting]` your access, your pending requests, what waits for your decision, who is on call\n" +
	"`/access roles` what you may request, for how long, and who approves\n" +
	"`/access revoke <request-id|role> [reason]` end access early\n" +
	"`/access cancel <request-id>` withdraw a pending request\n" +
	"`/access reason <request-id> <reason>` say why you denied a request\n" +
	"`/access extend <request-id> <duration> <reason>` ask for more time\n" +
	"`/access breakglass <role> <duration> <reason>` emergency access, granted at once and announced\n" +
	"`/access oncall [rotation]` who is on call now and next\n" +
	"Durations: `30m`, `2h`, `1d`, `1h30m`.\n" +
	"Start later: `/access prod-admin 2h at 22:00 <reason>` (the next 22:00) or `at 2026-12-01T22:00` " +
	"(your Slack profile's time zone; UTC on Discord and the console) or `at 2026-12-01T22:00+01:00`; " +
	"approve any time before the start, revoke before it with `/access revoke <request-id>`."

func (h *Handler) help() Reply { return Reply{Message: Message{Title: "accessbot", Text: helpText}} }

func (h *Handler) form(ctx context.Context, chatUser, role, duration, reason string) Reply {
	roles := h.RoleOptions(ctx, chatUser, "")
	return Reply{Form: &Form{Roles: roles, Role: role, Duration: duration, Reason: reason, ReasonHint: h.reasonHint(roles, role),
		MaxRoles: h.svc.RolesPerRequest()},
		Message: Message{Text: "Fill in the request form (role, duration and reason)."}}
}

// RoleOptions lists the roles whose name or description contains query
// (case-insensitive) and that chatUser may request, for the form's role
// picker.
func (h *Handler) RoleOptions(ctx context.Context, chatUser string, query string) []RoleOption {
	p := h.svc.Policy()
	q := strings.ToLower(strings.TrimSpace(query))
	var out []RoleOption
	may := h.mayRequest(ctx, chatUser)
	for _, name := range p.RoleNames() {
		r := p.Roles[name]
		if q != "" && !strings.Contains(name, q) && !strings.Contains(strings.ToLower(r.Description), q) {
			continue
		}
		if !may(r) {
			continue
		}
		out = append(out, RoleOption{Name: name, Description: r.Description, MaxDuration: access.FormatDuration(r.MaxDuration)})
	}
	return out
}

// whoAndDuration resolves who typed a command and the duration they typed
// in it; an error is for h.fail.
func (h *Handler) whoAndDuration(ctx context.Context, chatUser, dur string) (string, time.Duration, error) {
	who, err := h.identity(ctx, chatUser)
	if err != nil {
		return "", 0, err
	}
	d, err := parseDuration(dur)
	if err != nil {
		return "", 0, err
	}
	return who, d, nil
}

func parseDuration(s string) (time.Duration, error) {
	d, err := access.ParseDuration(s)
	if errors.Is(err, access.ErrTooLong) {
		return 0, &userError{Msg: fmt.Sprintf("%q is longer than %s, the longest duration accepted; ask for what you need, like 2h", clipText(s, 30), access.FormatDuration(access.MaxParsedDuration)), Err: access.ErrBadDuration}
	}
	if err != nil {
		return 0, &userError{Msg: fmt.Sprintf("%q is not a duration; use a number and a unit, like 30m, 2h, 1d or 1h30m", clipText(s, 30)), Err: access.ErrBadDuration}
	}
	return d, nil
}

func (h *Handler) submit(ctx context.Context, chatUser, roleName, dur, reason string) Reply {
	who, d, err := h.whoAndDuration(ctx, chatUser, dur)
	if err != nil {
		return h.fail(ctx, err)
	}
	r, err := h.svc.Submit(ctx, access.SubmitInput{Requester: who, Role: roleName, Duration: d, Reason: reason})
	if err != nil {
		return h.fail(ctx, err)
	}
	if r.AutoApproved != "" {
		return autoApprovedReply(r)
	}
	return text("Request %s for *%s* (%s) sent for approval to %s. You will hear back here.",
		r.ID, r.Role, access.FormatDuration(r.Duration), strings.Join(r.Approvers, ", "))
}

func (h *Handler) breakGlass(ctx context.Context, chatUser, roleName, dur, reason string) Reply {
	who, d, err := h.whoAndDuration(ctx, chatUser, dur)
	if err != nil {
		return h.fail(ctx, err)
	}
	r, err := h.svc.BreakGlass(ctx, access.SubmitInput{Requester: who, Role: roleName, Duration: d, Reason: reason})
	if err != nil {
		return h.fail(ctx, err)
	}
	switch r.State {
	case access.StateActive:
		return Reply{Message: Message{Color: "warning", Text: fmt.Sprintf("Break-glass: you have *%s* until %s (request %s). The security team has been told and will review it.",
			r.Role, stamp(r.EndsAt), r.ID)}}
	case access.StateFailed:
		return problem("Break-glass request %s could not be granted: %s", r.ID, r.Failure)
	}
	return text("Break-glass request %s is being provisioned; you will hear back when it is active.", r.ID)
}

func (h *Handler) extend(ctx context.Context, chatUser, id, dur, reason string) Reply {
	who, d, err := h.whoAndDuration(ctx, chatUser, dur)
	if err != nil {
		return h.fail(ctx, err)
	}
	r, err := h.svc.Extend(ctx, id, who, d, reason)
	if err != nil {
		return h.fail(ctx, err)
	}
	return text("Extension request %s (+%s on %s) sent for approval to %s.", r.ID, access.FormatDuration(r.Duration), r.Target, strings.Join(r.Approvers, ", "))
}

// revoke ends a grant early; target is a request id or a role name the
// user holds.
func (h *Handler) revoke(ctx context.Context, chatUser, target, reason string) Reply {
	who, err := h.identity(ctx, chatUser)
	if err != nil {
		return h.fail(ctx, err)
	}
	if access.IsBundleID(target) {
		return h.revokeBundle(ctx, who, target, reason)
	}
	id := target
	if _, isRole := h.svc.Policy().Role(target); isRole {
		mine, err := h.svc.Mine(ctx, who)
		if err != nil {
			return h.fail(ctx, err)
		}
		id = ""
		for _, r := range mine {
			if r.Role == strings.ToLower(target) && (r.State == access.StateActive || r.Scheduled()) && r.Kind != access.KindExtension {
				id = r.ID
				break
			}
		}
		if id == "" {
			return problem("You hold no active %s grant; nothing was revoked.", strings.ToLower(target))
		}
	}
	r, err := h.svc.Revoke(ctx, id, who, reason)
	if err != nil {
		return h.fail(ctx, err)
	}
	if r.State == access.StateEnded && r.GrantedAt.IsZero() && !r.StartsAt.IsZero() {
		return text("Scheduled request %s (%s of %s) is revoked before its start; nothing was granted.", r.ID, r.Role, r.Requester)
	}
	if r.State == access.StateEnded {
		return text("Request %s (%s of %s) has ended; the access is removed.", r.ID, r.Role, r.Requester)
	}
	return text("Request %s (%s of %s) is being revoked; removal is retried until the provider confirms it.", r.ID, r.Role, r.Requester)
}

// list shows the person's Home as text: grants, pending requests, what
// waits for their decision and who is on call (the Slack App Home shows
// the same, see home.go).
// With only ("grants", "pending", "waiting", "oncall") it shows that list
// alone, as much of it as fits.
func (h *Handler) list(ctx context.Context, chatUser, only string) Reply {
	if only != "" && !slices.Contains(HomeLists, only) {
		return problem("There is no list %q; use `/access list` or one of: %s.", clipText(only, 20), strings.Join(HomeLists, ", "))
	}
	home, err := h.Home(ctx, chatUser)
	if err != nil {
		return h.fail(ctx, err)
	}
	if home.Problem != "" {
		return problem("%s", home.Problem)
	}
	if only != "" {
		return Reply{Message: Message{Title: "Your requests", Text: home.TextOf(only, ListBudget)}}
	}
	text := home.Text(ListBudget)
	if len(home.Grants) == 0 && len(home.Pending) == 0 {
		text = "You have no pending or active requests.\n\n" + text
	}
	return Reply{Message: Message{Title: "Your requests", Text: text}}
}

func (h *Handler) roles(ctx context.Context, chatUser string) Reply {
	who, _ := h.identity(ctx, chatUser)
	p := h.svc.Policy()
	var b strings.Builder
	may := h.mayRequest(ctx, chatUser)
	for _, name := range p.RoleNames() {
		role := p.Roles[name]
		if !may(role) {
			continue
		}
		approvers, err := h.svc.Approvers(ctx, role, who)
		ap := listOr(approvers, "nobody right now")
		if err != nil {
			ap += " (on-call unavailable: named approvers only)"
		}
		fmt.Fprintf(&b, "• *%s* — %s. Up to %s; approved by %s", name, role.Description, access.FormatDuration(role.MaxDuration), ap)
		if role.Approvals > 1 {
			fmt.Fprintf(&b, " (%d approvals needed)", role.Approvals)
		}
		if role.BreakGlass && p.MayBreakGlass(who) {
			b.WriteString("; break-glass allowed for you")
		}
		b.WriteString(gateNotes(role))
		b.WriteString("\n")
	}
	if b.Len() == 0 && len(p.Roles) > 0 {
		return text("There is no role you may request.")
	}
	if b.Len() == 0 {
		return text("No roles are configured.")
	}
	return Reply{Message: Message{Title: "Roles you may request", Text: strings.TrimRight(b.String(), "\n")}}
}

func listOr(l []string, none string) string {
	if len(l) == 0 {
		return none
	}
	return strings.Join(l, ", ")
}

func (h *Handler) oncall(ctx context.Context, rotation string) Reply {
	p := h.svc.Policy()
	var names []string
	if rotation != "" {
		if _, ok := p.Rotations[strings.ToLower(rotation)]; !ok {
			return problem("There is no rotation %q; rotations: %s.", clipText(rotation, 40), listOr(sortedKeys(p.Rotations), "none"))
		}
		names = []string{strings.ToLower(rotation)}
	} else {
		names = sortedKeys(p.Rotations)
	}
	if len(names) == 0 {
		return text("No rotations are configured.")
	}
	var b strings.Builder
	for _, n := range names {
		cur, next, err := h.svc.Shifts(ctx, n)
		if err != nil {
			h.log.WarnContext(ctx, "on-call lookup", "rotation", n, "err", err)
			fmt.Fprintf(&b, "• *%s*: the on-call source cannot be reached right now\n", n)
			continue
		}
		fmt.Fprintf(&b, "• *%s*: %s", n, listOr(cur.People, "nobody"))
		if !cur.End.IsZero() {
			fmt.Fprintf(&b, " until %s", stamp(cur.End))
			if len(next.People) > 0 {
				fmt.Fprintf(&b, "; next %s", strings.Join(next.People, ", "))
				if !next.End.IsZero() {
					fmt.Fprintf(&b, " until %s", stamp(next.End))
				}
			}
		}
		b.WriteString("\n")
	}
	return Reply{Message: Message{Title: "On call", Text: strings.TrimRight(b.String(), "\n")}}
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// Action handles a button press (or its typed equivalent).
func (h *Handler) Action(ctx context.Context, a Action) Reply { return h.act(ctx, a) }

func (h *Handler) act(ctx context.Context, a Action) Reply {
	who, err := h.identity(ctx, a.User)
	if err != nil {
		return h.fail(ctx, err)
	}
	id := strings.TrimSpace(a.RequestID)
	if id == "" {
		return problem("Say which request, e.g. `approve r-7k3m9q2x`.")
	}
	if access.IsBundleID(id) {
		return h.actBundle(ctx, who, a, id)
	}
	switch a.Action {
	case ActionApprove, ActionDeny:
		r, err := h.svc.Decide(ctx, id, who, a.Action == ActionApprove, a.Reason)
		if err != nil {
			return h.fail(ctx, err)
		}
		if a.Action == ActionDeny {
			if strings.TrimSpace(a.Reason) == "" {
				return text("You denied request %s (%s for %s); %s has been told. Add a reason with the button on the card, or `/access reason %s <reason>`.",
					r.ID, r.Role, r.Requester, r.Requester, r.ID)
			}
			return text("You denied request %s (%s for %s); %s has been told.", r.ID, r.Role, r.Requester, r.Requester)
		}
		if r.Scheduled() {
			return text("You approved %s: %s gets %s at %s for %s.", r.ID, r.Requester, r.Role, startText(r), access.FormatDuration(r.Duration))
		}
		switch r.State {
		case access.StatePending:
			return text("Your approval of %s is recorded: %d of %d.", r.ID, r.Approvals(), r.Needed)
		case access.StateActive:
			return text("You approved %s: %s has %s until %s.", r.ID, r.Requester, r.Role, stamp(r.EndsAt))
		case access.StateFailed:
			return problem("You approved %s, but the grant failed: %s", r.ID, r.Failure)
		case access.StateEnded:
			if r.Kind == access.KindExtension {
				return text("You approved extension %s: %s now ends at %s.", r.ID, r.Target, stamp(r.EndsAt))
			}
		}
		return text("You approved %s; it is %s.", r.ID, r.State)
	case ActionCancel:
		r, err := h.svc.Cancel(ctx, id, who)
		if err != nil {
			return h.fail(ctx, err)
		}
		return text("Request %s is cancelled.", r.ID)
	case ActionRevoke:
		r, err := h.svc.Get(ctx, id)
		if err != nil {
			return h.fail(ctx, err)
		}
		return h.revoke(ctx, a.User, r.ID, a.Reason)
	case ActionAddReason:
		if strings.TrimSpace(a.Reason) == "" {
			if err := h.svc.CanAddDenyReason(ctx, id, who); err != nil {
				return h.fail(ctx, err)
			}
			return Reply{Ask: &Ask{Action: ActionAddReason, RequestID: id, Title: "Add a reason",
				Label: "Why did you deny request " + id + "?", Submit: "Add"},
				Message: Message{Text: fmt.Sprintf("Say why you denied request %s: `/access reason %s <reason>`.", id, id)}}
		}
		r, err := h.svc.AddDenyReason(ctx, id, who, a.Reason)
		if err != nil {
			return h.fail(ctx, err)
		}
		return text("Your reason is on request %s and in the audit log; %s has been told.", r.ID, r.Requester)
	case ActionAck:
		r, err := h.svc.Acknowledge(ctx, id, who)
		if err != nil {
			return h.fail(ctx, err)
		}
		return text("You acknowledged break-glass request %s (%s by %s).", r.ID, r.Role, r.Requester)
	}
	return problem("Unknown action %q.", clipText(a.Action, 20))
}

// SubmitForm handles the request form. Field problems come back in
// FormErrors (and nothing is submitted); other outcomes in the Reply.
func (h *Handler) SubmitForm(ctx context.Context, in FormInput) (Reply, FormErrors) {
	if strings.Contains(in.Role, ",") {
		return h.submitFormRoles(ctx, in)
	}
	errs := FormErrors{}
	role, ok := h.svc.Policy().Role(in.Role)
	if !ok {
		errs[FieldRole] = "Choose one of the roles in the list."
	}
	d, err := access.ParseDuration(in.Duration)
	switch {
	case errors.Is(err, access.ErrTooLong):
		errs[FieldDuration] = "That is longer than " + access.FormatDuration(access.MaxParsedDuration) + ", the longest duration accepted."
	case err != nil:
		errs[FieldDuration] = "Use a number and a unit, like 30m, 2h, 1d or 1h30m."
	case d < access.MinDuration:
		errs[FieldDuration] = "The minimum is " + access.FormatDuration(access.MinDuration) + "."
	case ok && d > role.MaxDuration:
		errs[FieldDuration] = fmt.Sprintf("%s may be held for at most %s.", role.Name, access.FormatDuration(role.MaxDuration))
	}
	reason := strings.TrimSpace(in.Reason)
	switch n := len([]rune(reason)); {
	case n == 0:
		errs[FieldReason] = "Say why you need the access."
	case n > access.MaxReasonLen:
		errs[FieldReason] = fmt.Sprintf("At most %d characters (this is %d).", access.MaxReasonLen, n)
	}
	if len(errs) > 0 {
		return Reply{}, errs
	}
	who, err := h.identity(ctx, in.User)
	if err != nil {
		return h.fail(ctx, err), nil
	}
	if err := h.svc.Throttle(ctx, who); err != nil {
		return h.fail(ctx, err), nil
	}
	r, err := h.svc.Submit(ctx, access.SubmitInput{Requester: who, Role: role.Name, Duration: d, Reason: reason,
		Start: in.Start, Zone: h.zone(ctx, in.User)})
	if err != nil {
		if msg, ok := shownText(err); ok {
			switch {
			case errors.Is(err, access.ErrBadStart):
				return Reply{}, FormErrors{FieldStart: msg}
			case errors.Is(err, access.ErrBadDuration), errors.Is(err, access.ErrTooLong):
				return Reply{}, FormErrors{FieldDuration: msg}
			case errors.Is(err, access.ErrNoReason), errors.Is(err, access.ErrReasonTooLong), errors.Is(err, access.ErrReasonPattern):
				return Reply{}, FormErrors{FieldReason: msg}
			case errors.Is(err, access.ErrNoIdentity), errors.Is(err, access.ErrRateLimited), errors.Is(err, access.ErrConflict):
				return h.fail(ctx, err), nil
			default:
				return Reply{}, FormErrors{FieldRole: msg}
			}
		}
		return h.fail(ctx, err), nil
	}
	if r.AutoApproved != "" {
		return autoApprovedReply(r), nil
	}
	if !r.StartsAt.IsZero() {
		return scheduledSubmitted(r), nil
	}
	return text("Request %s for *%s* (%s) sent for approval to %s. You will hear back here.",
		r.ID, r.Role, access.FormatDuration(r.Duration), strings.Join(r.Approvers, ", ")), nil
}

// fail maps an error to fixed user text; raw internal errors are logged,
// never shown.
func (h *Handler) fail(ctx context.Context, err error) Reply {
	if msg, ok := shownText(err); ok {
		return problem("%s", msg)
	}
	var se *access.StateError
	if errors.As(err, &se) {
		return problem("%s", h.stateText(ctx, se))
	}
	if errors.Is(err, access.ErrNotFound) {
		return problem("There is no such request.")
	}
	h.log.ErrorContext(ctx, "command failed", "err", err)
	return problem("Something went wrong inside accessbot and your action may not have completed; it has been logged. Check `/access list` and try again in a minute.")
}

// stateText says what happened to a request that can no longer be acted on.
func (h *Handler) stateText(ctx context.Context, se *access.StateError) string {
	r, err := h.svc.Get(ctx, se.ID)
	if err != nil {
		return fmt.Sprintf("Request %s is %s; nothing was changed.", se.ID, se.State)
	}
	if se.State == access.StateTimedOut {
		return fmt.Sprintf("Request %s timed out waiting for approval; nothing was decided. The requester can ask again.", r.ID)
	}
	return fmt.Sprintf("Request %s is already %s; nothing was changed.", r.ID, statusLine(r))
}

// statusLine describes a request's state in a few words.
func statusLine(r *access.Request) string {
	if s := scheduledStatus(r); s != "" {
		return s
	}
	switch r.State {
	case access.StatePending:
		s := "waiting for approval"
		if r.Needed > 1 {
			s += fmt.Sprintf(" (%d of %d)", r.Approvals(), r.Needed)
		}
		return s + " until " + stamp(r.PendingUntil)
	case access.StateApproved:
		return "approved by " + approvedBy(r) + ", being provisioned"
	case access.StateActive:
		return "active until " + stamp(r.EndsAt)
	case access.StateRevoking:
		return "ending (" + string(r.EndReason) + "), removal in progress"
	case access.StateEnded:
		switch r.EndReason {
		case access.EndRevoked:
			return "ended at " + stamp(r.EndedAt) + ", revoked by " + r.EndedBy
		case access.EndApplied:
			return "applied: the grant now ends at " + stamp(r.EndsAt)
		}
		return "ended at " + stamp(r.EndedAt) + " (" + string(r.EndReason) + ")"
	case access.StateDenied:
		for _, d := range r.Decisions {
			if !d.Approve {
				if d.Reason != "" {
					return "denied by " + d.By + ": " + userText(d.Reason)
				}
				return "denied by " + d.By
			}
		}
		return "denied"
	case access.StateCancelled:
		return "cancelled by the requester"
	case access.StateTimedOut:
		return "timed out without a decision"
	case access.StateFailed:
		return "failed: " + r.Failure
	}
	return string(r.State)
}

func approvedBy(r *access.Request) string {
	var by []string
	for _, d := range r.Decisions {
		if d.Approve {
			by = append(by, d.By)
		}
	}
	if r.Kind == access.KindBreakGlass {
		return "break-glass"
	}
	if r.Kind == access.KindRotation {
		return "on-call rotation " + r.Rotation
	}
	if r.AutoApproved != "" {
		return "accessbot (auto-approved: " + r.AutoApproved + ")"
	}
	return listOr(by, "nobody")
}

// stamp renders a time for chat: UTC, minute precision.
func stamp(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.UTC().Format("2006-01-02 15:04 UTC")
}
