package handlers

import (
	"context"
	"fmt"
	"strings"

	"github.com/accessbot/accessbot/access"
)

// A person's view: what they hold, what they asked for, what waits for
// their decision and who is on call. The Slack App Home renders it as
// blocks with buttons; /access list renders the same content as text on
// every transport (Home.Text), so the two never disagree.

// Home is one person's view. Each list is newest first and complete: the
// renderer decides how many items fit and says how many more there are.
type Home struct {
	// Problem, when set, is why no view could be built for the person
	// (their chat account has no usable identity); the lists are empty.
	Problem string
	Grants  []HomeItem // live grants; the active ones carry a Revoke button
	Pending []HomeItem // the person's own pending requests, each with Cancel
	Waiting []HomeItem // pending requests waiting for the person's decision: Approve, Deny
	OnCall  []HomeItem // one per rotation: who is on call now; no buttons
}

// HomeItem is one line of a Home list. Text is user-visible (mrkdwn-lite
// like Message.Text; user-typed text in it went through userText);
// Buttons use the action ids of the cards, so a press comes back to
// Handler.Action like one on a card.
type HomeItem struct {
	RequestID string
	Text      string
	Buttons   []Button
}

// HomeLists are the keys of the lists /access list can show alone.
var HomeLists = []string{"grants", "pending", "waiting", "oncall"}

// HomeSection is one titled list of a Home.
type HomeSection struct {
	Key   string // "grants", "pending", "waiting", "oncall"
	Title string
	Empty string // what is shown when the list is empty
	More  string // where to see what did not fit, e.g. "/access list"
	Items []HomeItem
}

// Sections returns the lists of h in the order they are shown, with their
// titles.
func (h Home) Sections() []HomeSection {
	return []HomeSection{
		{Key: "grants", Title: "Your access", Empty: "You hold no access right now.", More: "/access list grants", Items: h.Grants},
		{Key: "pending", Title: "Your pending requests", Empty: "You have no pending requests.", More: "/access list pending", Items: h.Pending},
		{Key: "waiting", Title: "Waiting for your decision", Empty: "Nothing waits for your decision.", More: "/access list waiting", Items: h.Waiting},
		{Key: "oncall", Title: "On call now", Empty: "No rotations are configured.", More: "/access oncall", Items: h.OnCall},
	}
}

// HomeRefresher is the optional capability of a Chat that shows people a
// view of their own (the Slack App Home): the Notifier tells it, after
// each delivery of a request's event, whose view the change concerns. It
// must return at once (queue the work); refreshing an unchanged view is
// harmless.
type HomeRefresher interface {
	RefreshHome(identities ...string)
}

// homeConcerned returns the identities whose Home an event changes: the
// requester, everyone asked to approve and everyone who decided.
func homeConcerned(ev access.Event) []string {
	r := ev.Request
	if r == nil {
		return nil
	}
	seen := map[string]bool{}
	var out []string
	add := func(who string) {
		if who != "" && !seen[who] {
			seen[who] = true
			out = append(out, who)
		}
	}
	add(r.Requester)
	for _, a := range r.Approvers {
		add(a)
	}
	for _, a := range r.EscalatedTo { // asked too once it was escalated
		add(a)
	}
	for _, d := range r.Decisions {
		add(d.By)
	}
	return out
}

// refreshHomes tells the chat, when it shows personal views, whose view
// ev changes.
func (n *Notifier) refreshHomes(ev access.Event) {
	hr, ok := n.chat.(HomeRefresher)
	if !ok {
		return
	}
	if who := homeConcerned(ev); len(who) > 0 {
		hr.RefreshHome(who...)
	}
}

// Home builds the view of chatUser (identity from the platform's user id).
// An error is an internal failure (the store); a person without a usable
// identity gets a Home with Problem set instead.
func (h *Handler) Home(ctx context.Context, chatUser string) (Home, error) {
	who, err := h.identity(ctx, chatUser)
	if err != nil {
		if msg, ok := shownText(err); ok {
			return Home{Problem: msg}, nil
		}
		return Home{}, err
	}
	mine, err := h.svc.Mine(ctx, who)
	if err != nil {
		return Home{}, err
	}
	waiting, err := h.svc.AwaitingDecision(ctx, who)
	if err != nil {
		return Home{}, err
	}
	var home Home
	bundles := map[string]bool{}
	for _, r := range mine {
		if r.Bundle != "" {
			// Several roles in one request: one entry for all of them.
			if !bundles[r.Bundle] {
				bundles[r.Bundle] = true
				it, pending := h.bundleHomeItem(ctx, r, mine)
				if pending {
					home.Pending = append(home.Pending, it)
				} else {
					home.Grants = append(home.Grants, it)
				}
			}
			continue
		}
		if r.State == access.StatePending {
			home.Pending = append(home.Pending, pendingItem(r))
		} else {
			home.Grants = append(home.Grants, grantItem(r))
		}
	}
	for _, r := range waiting {
		home.Waiting = append(home.Waiting, waitingItem(r))
	}
	home.OnCall = h.onCallItems(ctx)
	return home, nil
}

// homeReason is how much of a request's reason a Home line shows.
const homeReason = 200

func grantItem(r *access.Request) HomeItem {
	it := HomeItem{RequestID: r.ID, Text: fmt.Sprintf("%s *%s* — %s", r.ID, r.Role, statusLine(r))}
	if r.State == access.StateActive {
		it.Text += " (" + approvedLine(r) + ")"
		if r.Kind != access.KindExtension {
			it.Buttons = []Button{{Label: "Revoke", Action: ActionRevoke, Value: r.ID, Style: "danger"}}
		}
	}
	if r.Scheduled() {
		// Approved, waiting for its start: it can be revoked before it begins.
		it.Buttons = []Button{{Label: "Revoke", Action: ActionRevoke, Value: r.ID, Style: "danger"}}
	}
	return it
}

func pendingItem(r *access.Request) HomeItem {
	what := fmt.Sprintf("*%s* for %s", r.Role, access.FormatDuration(r.Duration))
	if r.Kind == access.KindExtension {
		what = fmt.Sprintf("*%s* +%s (extends %s)", r.Role, access.FormatDuration(r.Duration), r.Target)
	}
	if !r.StartsAt.IsZero() {
		what += ", starts at " + startText(r)
	}
	return HomeItem{RequestID: r.ID,
		Text:    fmt.Sprintf("%s %s — %s; asked %s", r.ID, what, statusLine(r), listOr(r.Approvers, "nobody")),
		Buttons: []Button{{Label: "Cancel", Action: ActionCancel, Value: r.ID}}}
}

func waitingItem(r *access.Request) HomeItem {
	what := fmt.Sprintf("asks for *%s* for %s", r.Role, access.FormatDuration(r.Duration))
	if r.Kind == access.KindExtension {
		what = fmt.Sprintf("asks to extend *%s* (%s) by %s", r.Role, r.Target, access.FormatDuration(r.Duration))
	}
	if !r.StartsAt.IsZero() {
		what += ", starts at " + startText(r)
	}
	text := fmt.Sprintf("%s %s %s: %s — %s", r.ID, r.Requester, what, userText(clipText(r.Reason, homeReason)), statusLine(r))
	return HomeItem{RequestID: r.ID, Text: text, Buttons: []Button{
		{Label: "Approve", Action: ActionApprove, Value: r.ID, Style: "primary"},
		{Label: "Deny", Action: ActionDeny, Value: r.ID, Style: "danger"},
	}}
}

// onCallItems says who is on call now in each rotation.
func (h *Handler) onCallItems(ctx context.Context) []HomeItem {
	var out []HomeItem
	for _, n := range sortedKeys(h.svc.Policy().Rotations) {
		cur, _, err := h.svc.Shifts(ctx, n)
		if err != nil {
			h.log.WarnContext(ctx, "on-call lookup", "rotation", n, "err", err)
			out = append(out, HomeItem{Text: fmt.Sprintf("*%s*: the on-call source cannot be reached right now", n)})
			continue
		}
		line := fmt.Sprintf("*%s*: %s", n, listOr(cur.People, "nobody"))
		if !cur.End.IsZero() {
			line += " until " + stamp(cur.End)
		}
		out = append(out, HomeItem{Text: line})
	}
	return out
}

// Limits of the text form of a Home (/access list): it goes into one
// message on every transport, and Slack shows at most 3000 characters of
// a section.
const (
	// ListBudget is the most characters Home.Text writes.
	ListBudget = 2800
	// listMaxItems is the most items of one list shown in text.
	listMaxItems = 10
	// listLineMax clips one item's line.
	listLineMax = 300
)

// Text renders h as text of at most budget characters (bytes): each list
// under its title, newest first; what does not fit is counted on an
// "…and K more" line that says how to see one list alone (TextOf). Lists
// that are empty say so in one line.
func (h Home) Text(budget int) string { return h.TextOf("", budget) }

// TextOf renders the list of h with key ("grants", "pending", "waiting",
// "oncall") alone, as many items as budget allows, or every list (at most
// a few items each) when key is "".
func (h Home) TextOf(key string, budget int) string {
	if h.Problem != "" {
		return h.Problem
	}
	var secs []HomeSection
	for _, s := range h.Sections() {
		if key == "" || s.Key == key {
			secs = append(secs, s)
		}
	}
	shown := make([]int, len(secs))
	for i, s := range secs {
		shown[i] = len(s.Items)
		if key == "" {
			shown[i] = min(shown[i], listMaxItems)
		}
	}
	render := func() string {
		var b strings.Builder
		for i, s := range secs {
			if i > 0 {
				b.WriteString("\n")
			}
			b.WriteString("*" + s.Title + "*\n")
			if len(s.Items) == 0 {
				b.WriteString(s.Empty + "\n")
				continue
			}
			for _, it := range s.Items[:shown[i]] {
				b.WriteString("• " + clipText(it.Text, listLineMax) + "\n")
			}
			if more := len(s.Items) - shown[i]; more > 0 {
				if key == "" {
					fmt.Fprintf(&b, "…and %d more: `%s`\n", more, s.More)
				} else {
					fmt.Fprintf(&b, "…and %d more (older)\n", more)
				}
			}
		}
		return strings.TrimRight(b.String(), "\n")
	}
	for {
		out := render()
		if len(out) <= budget {
			return out
		}
		// Take one item from the list that shows the most.
		big := -1
		for i := range secs {
			if shown[i] > 0 && (big < 0 || shown[i] > shown[big]) {
				big = i
			}
		}
		if big < 0 {
			return clipText(out, budget)
		}
		shown[big]--
	}
}

// bundleHomeItem is the one entry of a request of several roles: each role
// with its state, Cancel (the whole request) while any role waits for
// approval, else Revoke (every role) while any role is live. pending says
// it belongs with the pending requests.
func (h *Handler) bundleHomeItem(ctx context.Context, r *access.Request, mine []*access.Request) (HomeItem, bool) {
	ms, err := h.svc.Bundle(ctx, r.Bundle)
	if err != nil {
		ms = nil
		for _, m := range mine {
			if m.Bundle == r.Bundle {
				ms = append(ms, m)
			}
		}
	}
	text := strings.TrimSuffix(strings.TrimPrefix(h.bundleListEntry(ctx, r, ms), "• "), "\n")
	it := HomeItem{RequestID: r.Bundle, Text: text}
	pending, live := false, false
	for _, m := range ms {
		pending = pending || m.State == access.StatePending
		live = live || m.State.Live()
	}
	switch {
	case pending:
		it.Buttons = []Button{{Label: "Cancel", Action: ActionCancel, Value: r.Bundle}}
	case live && r.Kind != access.KindExtension:
		it.Buttons = []Button{{Label: "Revoke", Action: ActionRevoke, Value: r.Bundle, Style: "danger"}}
	}
	return it, pending
}
