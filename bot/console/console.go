// Package console is a terminal chat transport for trying accessbot and for
// end-to-end tests. Each input line is "<user>: <text>", for example
//
//	alice: /access prod-admin 2h fixing checkout
//	bob: approve r-7k3m9q2x
//	bob: approve            (the latest request waiting for a decision)
//	carol: deny r-7k3m9q2x not during the freeze
//	carol: deny             (denies at once; the reason may follow:)
//	carol: reason r-7k3m9q2x not during the freeze
//	erin: ack               (acknowledge the latest break-glass announcement)
//
// Lines starting with '#' are comments (echoed), and "wait 65s" pauses the
// script. It prints what every user would see: replies only they see,
// channel messages with their buttons, updates of those messages and DMs.
package console

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/accessbot/accessbot/access"
	"github.com/accessbot/accessbot/handlers"
)

var (
	_ handlers.Chat      = (*Console)(nil)
	_ handlers.Directory = (*Console)(nil)
)

// Handler is what the console needs from handlers.Handler.
type Handler interface {
	Command(ctx context.Context, c handlers.Command) handlers.Reply
	Action(ctx context.Context, a handlers.Action) handlers.Reply
}

// Config names the console's users and channels.
type Config struct {
	Users            map[string]string // user name -> identity (email)
	ApprovalsChannel string            // default "approvals"; "-" means DM approvers
	SecurityChannel  string            // default "security"
}

// Console is the terminal transport. It is safe for concurrent use.
type Console struct {
	users    map[string]string
	byEmail  map[string]string
	channels [2]string

	mu     sync.Mutex
	out    io.Writer
	h      Handler
	seq    int
	latest map[string]string // action -> latest request id offering it (per user for revoke)
	now    func() time.Time
}

// New returns a console writing to out.
func New(cfg Config, out io.Writer) *Console {
	c := &Console{users: map[string]string{}, byEmail: map[string]string{}, out: out,
		latest: map[string]string{}, now: time.Now}
	// Names and emails are folded the one way identities are everywhere
	// (ASCII case only): a look-alike such as the Kelvin sign (U+212A)
	// stays what it is instead of becoming a k. An email that is not plain
	// ASCII keeps its user name (the handlers refuse it, as for any chat)
	// but is never found by ChatUser.
	for name, email := range cfg.Users {
		name = access.NormalizeIdentity(name)
		email = access.NormalizeIdentity(email)
		c.users[name] = email
		if access.CheckIdentity(email) == nil {
			c.byEmail[email] = name
		}
	}
	c.channels = [2]string{cfg.ApprovalsChannel, cfg.SecurityChannel}
	if c.channels[0] == "" {
		c.channels[0] = "approvals"
	}
	if c.channels[0] == "-" {
		c.channels[0] = ""
	}
	if c.channels[1] == "" {
		c.channels[1] = "security"
	}
	return c
}

// SetHandler connects the command handler (built after the console, since
// the handler's notifier talks through the console).
func (c *Console) SetHandler(h Handler) {
	c.mu.Lock()
	c.h = h
	c.mu.Unlock()
}

// Platform implements handlers.Chat.
func (c *Console) Platform() string { return "console" }

// ApprovalsChannel implements handlers.Chat.
func (c *Console) ApprovalsChannel() string { return c.channels[0] }

// SecurityChannel implements handlers.Chat.
func (c *Console) SecurityChannel() string { return c.channels[1] }

// Identity implements handlers.Directory: a console user name's email.
func (c *Console) Identity(_ context.Context, chatUser string) (string, error) {
	if e, ok := c.users[access.NormalizeIdentity(chatUser)]; ok {
		return e, nil
	}
	return "", fmt.Errorf("console user %q: %w", chatUser, access.ErrNoIdentity)
}

// ChatUser implements handlers.Directory.
func (c *Console) ChatUser(_ context.Context, identity string) (string, error) {
	key := access.NormalizeIdentity(identity)
	if err := access.CheckIdentity(key); err != nil {
		return "", fmt.Errorf("no console user for %s: %w: %w", identity, err, access.ErrNoIdentity)
	}
	if n, ok := c.byEmail[key]; ok {
		return n, nil
	}
	return "", fmt.Errorf("no console user for %s: %w", identity, access.ErrNoIdentity)
}

// Printf writes a line to the console (used for provider and audit lines).
func (c *Console) Printf(format string, args ...any) {
	c.mu.Lock()
	defer c.mu.Unlock()
	fmt.Fprintf(c.out, "%s %s\n", c.now().Format("15:04:05"), fmt.Sprintf(format, args...))
}

// Post implements handlers.Chat.
func (c *Console) Post(_ context.Context, channel string, m handlers.Message) (access.MessageRef, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.seq++
	ref := access.MessageRef{Platform: "console", Channel: channel, ID: fmt.Sprintf("m%d", c.seq)}
	c.print("[#"+channel+"] message "+ref.ID, "", m)
	return ref, nil
}

// Update implements handlers.Chat.
func (c *Console) Update(_ context.Context, ref access.MessageRef, m handlers.Message) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	where := "#" + ref.Channel
	if strings.HasPrefix(ref.Channel, "dm:") {
		where = "dm to " + strings.TrimPrefix(ref.Channel, "dm:")
	}
	c.print("["+where+"] message "+ref.ID+" updated", strings.TrimPrefix(ref.Channel, "dm:"), m)
	return nil
}

// DM implements handlers.Chat.
func (c *Console) DM(ctx context.Context, identity string, m handlers.Message) (access.MessageRef, error) {
	name, err := c.ChatUser(ctx, identity)
	if err != nil {
		return access.MessageRef{}, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.seq++
	ref := access.MessageRef{Platform: "console", Channel: "dm:" + name, ID: fmt.Sprintf("m%d", c.seq)}
	c.print("[dm to "+name+"] message "+ref.ID, name, m)
	return ref, nil
}

// print renders m; the caller holds c.mu.
func (c *Console) print(header, user string, m handlers.Message) {
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s", c.now().Format("15:04:05"), header)
	if m.Title != "" {
		fmt.Fprintf(&b, "\n    %s", plain(m.Title))
	}
	if m.Text != "" {
		for _, l := range strings.Split(plain(m.Text), "\n") {
			fmt.Fprintf(&b, "\n    %s", l)
		}
	}
	for _, f := range m.Fields {
		fmt.Fprintf(&b, "\n    %-10s %s", f.Label+":", plain(f.Value))
	}
	if m.Footer != "" {
		fmt.Fprintf(&b, "\n    (%s)", plain(m.Footer))
	}
	if len(m.Buttons) > 0 {
		b.WriteString("\n   ")
		for _, btn := range m.Buttons {
			fmt.Fprintf(&b, " [%s]", btn.Label)
			key := btn.Action
			if btn.Action == handlers.ActionRevoke || btn.Action == handlers.ActionCancel {
				key += ":" + user
			}
			c.latest[key] = btn.Value
		}
		var hints []string
		for _, btn := range m.Buttons {
			hints = append(hints, "<user>: "+btn.Action+" "+btn.Value)
		}
		fmt.Fprintf(&b, "   type: %s", strings.Join(hints, " | "))
	}
	fmt.Fprintln(c.out, b.String())
}

func plain(s string) string { return strings.ReplaceAll(strings.ReplaceAll(s, "*", ""), "`", "") }

func (c *Console) reply(user string, r handlers.Reply) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if r.Form != nil {
		var roles []string
		for _, o := range r.Form.Roles {
			roles = append(roles, fmt.Sprintf("%s (up to %s)", o.Name, o.MaxDuration))
		}
		sort.Strings(roles)
		missing := []string{}
		if r.Form.Role == "" {
			missing = append(missing, "role")
		}
		if r.Form.Duration == "" {
			missing = append(missing, "duration")
		}
		if r.Form.Reason == "" {
			missing = append(missing, "reason")
		}
		r.Message = handlers.Message{Title: "The request form would open here (missing: " + strings.Join(missing, ", ") + ")",
			Text: "On the console, type it in one line: /access <role> <duration> <reason>\nRoles: " + strings.Join(roles, ", ")}
	}
	if a := r.Ask; a != nil {
		verb := a.Action
		if verb == handlers.ActionAddReason {
			verb = "reason"
		}
		r.Message = handlers.Message{Title: a.Label, Text: "Type: " + user + ": " + verb + " " + a.RequestID + " <text>"}
	}
	c.print("[to "+user+", only you]", user, r.Message)
}

// Run reads lines from in until it ends or ctx is done. It returns nil at
// the end of input.
func (c *Console) Run(ctx context.Context, in io.Reader) error {
	lines := make(chan string)
	errc := make(chan error, 1)
	go func() {
		sc := bufio.NewScanner(in)
		sc.Buffer(make([]byte, 64*1024), 1024*1024)
		for sc.Scan() {
			select {
			case lines <- sc.Text():
			case <-ctx.Done():
				return
			}
		}
		errc <- sc.Err()
		close(lines)
	}()
	for {
		select {
		case <-ctx.Done():
			return nil
		case line, ok := <-lines:
			if !ok {
				return <-errc
			}
			if err := c.Line(ctx, line); err != nil {
				return err
			}
		}
	}
}

// Line handles one input line.
func (c *Console) Line(ctx context.Context, line string) error {
	line = strings.TrimSpace(line)
	switch {
	case line == "":
		return nil
	case strings.HasPrefix(line, "#"):
		c.Printf("%s", line)
		return nil
	case strings.HasPrefix(line, "wait "):
		d, err := time.ParseDuration(strings.TrimSpace(strings.TrimPrefix(line, "wait ")))
		if err != nil || d < 0 {
			c.Printf("console: %q is not a wait (use e.g. wait 65s)", line)
			return nil
		}
		c.Printf("(waiting %s)", d)
		select {
		case <-time.After(d):
		case <-ctx.Done():
		}
		return nil
	}
	user, text, ok := strings.Cut(line, ":")
	user = access.NormalizeIdentity(user)
	text = strings.TrimSpace(text)
	if !ok || user == "" || strings.ContainsAny(user, " \t") {
		c.Printf("console: lines are \"<user>: <text>\", e.g. \"alice: /access prod-admin 1h fixing checkout\"")
		return nil
	}
	c.mu.Lock()
	h := c.h
	c.mu.Unlock()
	if h == nil {
		return fmt.Errorf("console: no handler connected")
	}
	c.Printf("%s> %s", user, text)
	if rest, isCmd := cutCommand(text); isCmd {
		c.reply(user, h.Command(ctx, handlers.Command{User: user, Text: rest}))
		return nil
	}
	verb, args, _ := strings.Cut(text, " ")
	verb = strings.ToLower(verb)
	args = strings.TrimSpace(args)
	if verb == "reason" {
		verb = handlers.ActionAddReason
	}
	switch verb {
	case handlers.ActionApprove, handlers.ActionDeny, handlers.ActionRevoke, handlers.ActionCancel, handlers.ActionAck,
		handlers.ActionAddReason:
	default:
		c.reply(user, handlers.Reply{Message: handlers.Message{Text: "Type /access ... or press a button: approve, deny, reason, revoke, cancel or ack, followed by a request id."}})
		return nil
	}
	id, reason, _ := strings.Cut(args, " ")
	if id == "" || !strings.HasPrefix(id, "r-") {
		// No id: the latest message offering this button; the rest is the reason.
		reason = args
		c.mu.Lock()
		key := verb
		if verb == handlers.ActionRevoke || verb == handlers.ActionCancel {
			key += ":" + user
		}
		id = c.latest[key]
		c.mu.Unlock()
		if id == "" {
			c.reply(user, handlers.Reply{Message: handlers.Message{Text: "There is no message with a " + verb + " button yet; name the request id."}})
			return nil
		}
	}
	c.reply(user, h.Action(ctx, handlers.Action{User: user, Action: verb, RequestID: id, Reason: strings.TrimSpace(reason)}))
	return nil
}

func cutCommand(text string) (string, bool) {
	if text == "/access" {
		return "", true
	}
	if rest, ok := strings.CutPrefix(text, "/access "); ok {
		return rest, true
	}
	return "", false
}
