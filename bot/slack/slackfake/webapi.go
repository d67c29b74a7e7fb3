package slackfake

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"mime"
	"net/http"
	"net/url"
	"strings"
	"time"
	"unicode/utf8"
)

// Message is a message the bot posted, as it looks now.
type Message struct {
	Channel  string
	TS       string
	Text     string
	Blocks   []map[string]any
	PostedAt time.Time
	Updates  int       // chat.update calls on it
	History  []Version // earlier versions, oldest first
	// ThreadTS is the ts of the message this one replies to in its
	// thread (chat.postMessage with thread_ts); "" for a top-level message.
	ThreadTS string
}

// Version is an earlier state of an updated message.
type Version struct {
	Text   string
	Blocks []map[string]any
}

// Ephemeral is a message shown to one person only.
type Ephemeral struct {
	Channel string
	User    string
	Text    string
	Blocks  []map[string]any
	Via     string // "chat.postEphemeral" or "response_url"
	TS      string
}

// View is a modal the bot opened.
type View struct {
	ID              string
	TriggerID       string
	User            string // whose trigger opened it
	Team            string
	CallbackID      string
	PrivateMetadata string
	Title           string
	Blocks          []map[string]any
	Hash            string
	OpenedAt        time.Time
	SinceTrigger    time.Duration // from issuing the trigger to views.open
	Updates         int
}

type trigger struct {
	user, team string
	issued     time.Time
	used       bool
}

type responseTarget struct {
	channel, user string
}

// AddUser adds (or replaces) a workspace member.
func (s *Server) AddUser(u User) {
	if u.Team == "" {
		u.Team = s.opts.Team
	}
	if u.Name == "" {
		u.Name = strings.ToLower(u.ID)
	}
	s.mu.Lock()
	s.users[u.ID] = u
	s.mu.Unlock()
}

// AddChannel makes a channel known (the bot is a member).
func (s *Server) AddChannel(id string) {
	s.mu.Lock()
	s.channels[id] = true
	s.mu.Unlock()
}

// RateLimit makes the next times calls of method ("chat.postMessage",
// "apps.connections.open", …) answer 429 with Retry-After (whole seconds,
// at least 1, as Slack sends it).
func (s *Server) RateLimit(method string, times int, retryAfter time.Duration) {
	s.mu.Lock()
	for range times {
		s.rateLimits[method] = append(s.rateLimits[method], retryAfter)
	}
	s.mu.Unlock()
}

// Calls counts calls of a Web API method, 429 answers included.
func (s *Server) Calls(method string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.calls[method]
}

// RateLimited counts 429 answers given for method.
func (s *Server) RateLimited(method string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.rateLimited[method]
}

// Messages returns the messages posted to channel, oldest first.
func (s *Server) Messages(channel string) []Message {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []Message
	for _, m := range s.messages[channel] {
		out = append(out, copyMessage(m))
	}
	return out
}

// Replies returns the messages posted in the thread of message ts of
// channel (chat.postMessage with thread_ts), oldest first.
func (s *Server) Replies(channel, ts string) []Message {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []Message
	for _, m := range s.messages[channel] {
		if m.ThreadTS == ts && ts != "" {
			out = append(out, copyMessage(m))
		}
	}
	return out
}

// AllMessages returns every posted message, by channel.
func (s *Server) AllMessages() map[string][]Message {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := map[string][]Message{}
	for ch, ms := range s.messages {
		for _, m := range ms {
			out[ch] = append(out[ch], copyMessage(m))
		}
	}
	return out
}

// Message returns one posted message.
func (s *Server) Message(channel, ts string) (Message, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, m := range s.messages[channel] {
		if m.TS == ts {
			return copyMessage(m), true
		}
	}
	return Message{}, false
}

func copyMessage(m *Message) Message {
	c := *m
	c.History = append([]Version(nil), m.History...)
	return c
}

// DMChannel returns the DM channel of a user, "" when none was opened.
func (s *Server) DMChannel(user string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.ims[user]
}

// Ephemerals returns every ephemeral message, oldest first.
func (s *Server) Ephemerals() []Ephemeral {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Ephemeral(nil), s.ephemerals...)
}

// EphemeralsFor returns the ephemerals shown to user.
func (s *Server) EphemeralsFor(user string) []Ephemeral {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []Ephemeral
	for _, e := range s.ephemerals {
		if e.User == user {
			out = append(out, e)
		}
	}
	return out
}

// Views returns the opened modals, oldest first.
func (s *Server) Views() []View {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []View
	for _, id := range s.viewOrder {
		out = append(out, *s.views[id])
	}
	return out
}

// HasButtons reports whether blocks contain an actions block.
func HasButtons(blocks []map[string]any) bool {
	for _, b := range blocks {
		if b["type"] == "actions" {
			return true
		}
	}
	return false
}

// BlockText joins every text of blocks (section text and fields, context
// elements, button labels), one per line, as Slack received them (mrkdwn,
// escaped).
func BlockText(blocks []map[string]any) string {
	var out []string
	var walk func(v any)
	walk = func(v any) {
		switch x := v.(type) {
		case map[string]any:
			if t, ok := x["text"].(string); ok {
				out = append(out, t)
			}
			for k, vv := range x {
				if k != "text" {
					walk(vv)
				} else if _, isStr := vv.(string); !isStr {
					walk(vv)
				}
			}
		case []any:
			for _, vv := range x {
				walk(vv)
			}
		}
	}
	for _, b := range blocks {
		walk(b)
	}
	return strings.Join(out, "\n")
}

// apiError is a Slack method error: HTTP 200 {"ok":false,"error":code}.
type apiError string

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func (s *Server) serveAPI(w http.ResponseWriter, r *http.Request) {
	method := strings.TrimPrefix(r.URL.Path, "/api/")
	if r.Method != http.MethodPost && r.Method != http.MethodGet {
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	s.mu.Lock()
	s.calls[method]++
	var retry time.Duration
	limited := false
	if q := s.rateLimits[method]; len(q) > 0 {
		retry, limited = q[0], true
		s.rateLimits[method] = q[1:]
		s.rateLimited[method]++
	}
	s.notifyLocked()
	s.mu.Unlock()
	if limited {
		writeRateLimited(w, retry)
		return
	}

	var (
		resp any
		err  apiError
	)
	switch method {
	case "apps.connections.open":
		resp, err = s.connectionsOpen(r)
	case "chat.postMessage", "chat.update", "chat.postEphemeral", "users.info", "users.lookupByEmail", "conversations.open":
		form, e := s.formAuth(r)
		if e != "" {
			err = e
			break
		}
		switch method {
		case "chat.postMessage":
			var tooSoon time.Duration
			resp, err, tooSoon = s.postMessage(form)
			if tooSoon > 0 {
				writeRateLimited(w, tooSoon)
				return
			}
		case "chat.update":
			resp, err = s.update(form)
		case "chat.postEphemeral":
			resp, err = s.postEphemeral(form)
		case "users.info":
			resp, err = s.usersInfo(form)
		case "users.lookupByEmail":
			resp, err = s.lookupByEmail(form)
		case "conversations.open":
			resp, err = s.conversationsOpen(form)
		}
	case "views.publish":
		body, e := s.jsonAuth(r)
		if e != "" {
			err = e
			break
		}
		var msgs []string
		resp, err, msgs = s.viewsPublish(body)
		if err != "" {
			out := map[string]any{"ok": false, "error": string(err)}
			if len(msgs) > 0 {
				out["response_metadata"] = map[string]any{"messages": msgs}
			}
			writeJSON(w, http.StatusOK, out)
			return
		}
	case "views.open", "views.update":
		body, e := s.jsonAuth(r)
		if e != "" {
			err = e
			break
		}
		if method == "views.open" {
			resp, err = s.viewsOpen(body)
		} else {
			resp, err = s.viewsUpdate(body)
		}
	default:
		err = "unknown_method"
	}
	if err != "" {
		writeJSON(w, http.StatusOK, map[string]any{"ok": false, "error": string(err)})
		return
	}
	writeJSON(w, http.StatusOK, resp)
}

// writeRateLimited answers 429 as Slack does: Retry-After in whole
// seconds, at least 1.
func writeRateLimited(w http.ResponseWriter, retry time.Duration) {
	w.Header().Set("Retry-After", fmt.Sprint(max(1, int(math.Ceil(retry.Seconds())))))
	writeJSON(w, http.StatusTooManyRequests, map[string]any{"ok": false, "error": "ratelimited"})
}

func bearer(r *http.Request) string {
	h := r.Header.Get("Authorization")
	if after, ok := strings.CutPrefix(h, "Bearer "); ok {
		return strings.TrimSpace(after)
	}
	return ""
}

func (s *Server) connectionsOpen(r *http.Request) (any, apiError) {
	tok := bearer(r)
	switch {
	case tok == "":
		return nil, "not_authed"
	case !strings.HasPrefix(tok, "xapp-") || tok != s.opts.AppToken:
		return nil, "invalid_auth"
	}
	ticket := s.nextID("")
	s.mu.Lock()
	s.tickets[ticket] = true
	s.opens++
	s.notifyLocked()
	s.mu.Unlock()
	u := "ws" + strings.TrimPrefix(s.srv.URL, "http") + "/link?ticket=" + ticket + "&app_id=" + s.opts.AppID
	return map[string]any{"ok": true, "url": u}, ""
}

// formAuth parses a form-encoded call and checks the bot token (form field
// `token`, or a Bearer header, as Slack accepts both).
func (s *Server) formAuth(r *http.Request) (url.Values, apiError) {
	ct, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if r.Method == http.MethodPost && ct != "application/x-www-form-urlencoded" && ct != "" {
		return nil, "invalid_form_data"
	}
	if err := r.ParseForm(); err != nil {
		return nil, "invalid_form_data"
	}
	tok := r.Form.Get("token")
	if tok == "" {
		tok = bearer(r)
	}
	switch {
	case tok == "":
		return nil, "not_authed"
	case tok != s.opts.BotToken:
		return nil, "invalid_auth"
	}
	return r.Form, ""
}

// jsonAuth reads a JSON call; the bot token must be a Bearer header.
func (s *Server) jsonAuth(r *http.Request) (map[string]any, apiError) {
	tok := bearer(r)
	switch {
	case tok == "":
		return nil, "not_authed"
	case tok != s.opts.BotToken:
		return nil, "invalid_auth"
	}
	ct, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if ct != "application/json" {
		return nil, "invalid_json"
	}
	data, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	if err != nil {
		return nil, "invalid_json"
	}
	var body map[string]any
	if err := json.Unmarshal(data, &body); err != nil {
		return nil, "invalid_json"
	}
	return body, ""
}

func (s *Server) nextTS() string {
	s.seq++
	return fmt.Sprintf("%d.%06d", 1700000000+s.seq/1000000, s.seq%1000000)
}

// parseBlocks validates a blocks JSON array the way Slack does for what
// matters here: an array of objects with a type, string block_ids, unique,
// at most 50.
func parseBlocks(raw string) ([]map[string]any, apiError) {
	if raw == "" {
		return nil, ""
	}
	var blocks []map[string]any
	if err := json.Unmarshal([]byte(raw), &blocks); err != nil {
		return nil, "invalid_blocks_format"
	}
	if len(blocks) > 50 {
		return nil, "invalid_blocks"
	}
	seen := map[string]bool{}
	for _, b := range blocks {
		if _, ok := b["type"].(string); !ok {
			return nil, "invalid_blocks"
		}
		if id, present := b["block_id"]; present {
			sid, ok := id.(string)
			if !ok || sid == "" || len(sid) > 255 || seen[sid] {
				return nil, "invalid_blocks"
			}
			seen[sid] = true
		}
	}
	return blocks, ""
}

// postMessage records a post. With Options.PostInterval it refuses a post
// that comes too soon after the previous one in the same channel: tooSoon
// is then how long until the channel takes posts again (answered 429).
func (s *Server) postMessage(f url.Values) (_ any, _ apiError, tooSoon time.Duration) {
	ch := f.Get("channel")
	blocks, e := parseBlocks(f.Get("blocks"))
	if e != "" {
		return nil, e, 0
	}
	text := f.Get("text")
	if text == "" && len(blocks) == 0 {
		return nil, "no_text", 0
	}
	if utf8.RuneCountInString(text) > 40000 {
		return nil, "msg_too_long", 0
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.channels[ch] {
		return nil, "channel_not_found", 0
	}
	if s.opts.PostInterval > 0 {
		now := s.now()
		if last, ok := s.lastPost[ch]; ok {
			if wait := last.Add(s.opts.PostInterval).Sub(now); wait > 0 {
				s.rateLimited["chat.postMessage"]++
				s.notifyLocked()
				return nil, "", wait
			}
		}
		s.lastPost[ch] = now
	}
	m := &Message{Channel: ch, TS: s.nextTS(), Text: text, Blocks: blocks, PostedAt: time.Now(), ThreadTS: f.Get("thread_ts")}
	s.messages[ch] = append(s.messages[ch], m)
	s.notifyLocked()
	msg := map[string]any{"type": "message", "text": text, "ts": m.TS, "bot_id": "B0FAKE", "blocks": blocks}
	if m.ThreadTS != "" {
		msg["thread_ts"] = m.ThreadTS
	}
	return map[string]any{"ok": true, "channel": ch, "ts": m.TS, "message": msg}, "", 0
}

func (s *Server) update(f url.Values) (any, apiError) {
	ch, ts := f.Get("channel"), f.Get("ts")
	blocks, e := parseBlocks(f.Get("blocks"))
	if e != "" {
		return nil, e
	}
	text := f.Get("text")
	if text == "" && len(blocks) == 0 {
		return nil, "no_text"
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.channels[ch] {
		return nil, "channel_not_found"
	}
	for _, m := range s.messages[ch] {
		if m.TS == ts {
			m.History = append(m.History, Version{Text: m.Text, Blocks: m.Blocks})
			m.Text, m.Blocks = text, blocks
			m.Updates++
			s.notifyLocked()
			return map[string]any{"ok": true, "channel": ch, "ts": ts, "text": text}, ""
		}
	}
	return nil, "message_not_found"
}

func (s *Server) postEphemeral(f url.Values) (any, apiError) {
	ch, user := f.Get("channel"), f.Get("user")
	blocks, e := parseBlocks(f.Get("blocks"))
	if e != "" {
		return nil, e
	}
	text := f.Get("text")
	if text == "" && len(blocks) == 0 {
		return nil, "no_text"
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.channels[ch] {
		return nil, "channel_not_found"
	}
	if _, ok := s.users[user]; !ok {
		return nil, "user_not_in_channel"
	}
	ts := s.nextTS()
	s.ephemerals = append(s.ephemerals, Ephemeral{Channel: ch, User: user, Text: text, Blocks: blocks, Via: "chat.postEphemeral", TS: ts})
	s.notifyLocked()
	return map[string]any{"ok": true, "message_ts": ts}, ""
}

func (s *Server) userJSON(u User) map[string]any {
	tz := u.TZ
	if tz == "" {
		tz = "America/Los_Angeles"
	}
	label, offset := tz, 0
	if loc, err := time.LoadLocation(tz); err == nil {
		label, offset = s.now().In(loc).Zone()
	}
	return map[string]any{
		"id": u.ID, "team_id": u.Team, "name": u.Name, "deleted": u.Deleted, "is_bot": u.IsBot,
		"real_name": u.Name,
		"profile":   map[string]any{"email": u.Email, "real_name": u.Name, "display_name": u.Name},
		// As Slack sends them: the zone name, its label and the offset
		// in seconds now.
		"tz": tz, "tz_label": label, "tz_offset": offset,
	}
}

func (s *Server) usersInfo(f url.Values) (any, apiError) {
	s.mu.Lock()
	defer s.mu.Unlock()
	u, ok := s.users[f.Get("user")]
	if !ok {
		return nil, "user_not_found"
	}
	return map[string]any{"ok": true, "user": s.userJSON(u)}, ""
}

func (s *Server) lookupByEmail(f url.Values) (any, apiError) {
	email := strings.ToLower(f.Get("email"))
	if email == "" {
		return nil, "invalid_arguments"
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, u := range s.users {
		if strings.ToLower(u.Email) == email && !u.Deleted {
			return map[string]any{"ok": true, "user": s.userJSON(u)}, ""
		}
	}
	return nil, "users_not_found"
}

func (s *Server) conversationsOpen(f url.Values) (any, apiError) {
	users := strings.Split(f.Get("users"), ",")
	if len(users) != 1 || users[0] == "" {
		return nil, "invalid_arguments" // the bot only opens 1:1 DMs
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	u, ok := s.users[users[0]]
	if !ok {
		return nil, "user_not_found"
	}
	if u.Deleted {
		return nil, "user_disabled"
	}
	already := true
	ch, ok := s.ims[u.ID]
	if !ok {
		already = false
		ch = "D" + u.ID
		s.ims[u.ID] = ch
		s.channels[ch] = true
		s.notifyLocked()
	}
	return map[string]any{"ok": true, "already_open": already, "channel": map[string]any{"id": ch, "is_im": true, "user": u.ID}}, ""
}

// now reads Options.Now, or the wall clock.
func (s *Server) now() time.Time {
	if s.opts.Now != nil {
		return s.opts.Now()
	}
	return time.Now()
}

// issueTrigger creates a trigger_id for user, valid for TriggerTTL, once.
func (s *Server) issueTrigger(user, team string) string {
	id := s.nextID("trig-")
	s.mu.Lock()
	s.triggers[id] = &trigger{user: user, team: team, issued: s.now()}
	s.mu.Unlock()
	return id
}

func (s *Server) checkView(v map[string]any) apiError {
	if v == nil || v["type"] != "modal" {
		return "invalid_arguments"
	}
	title, _ := v["title"].(map[string]any)
	if t, _ := title["text"].(string); t == "" || utf8.RuneCountInString(t) > 24 {
		return "invalid_arguments"
	}
	if cb, _ := v["callback_id"].(string); len(cb) > 255 {
		return "invalid_arguments"
	}
	if pm, _ := v["private_metadata"].(string); len(pm) > 3000 {
		return "invalid_arguments"
	}
	raw, _ := json.Marshal(v["blocks"])
	blocks, e := parseBlocks(string(raw))
	if e != "" || len(blocks) > 100 {
		return "invalid_arguments"
	}
	for _, b := range blocks {
		// An input block's hint is plain_text of at most 2,000 characters.
		if h, ok := b["hint"].(map[string]any); ok {
			if t, _ := h["text"].(string); h["type"] != "plain_text" || t == "" || utf8.RuneCountInString(t) > 2000 {
				return "invalid_arguments"
			}
		}
		el, _ := b["element"].(map[string]any)
		if el["type"] == "static_select" || el["type"] == "multi_static_select" {
			opts, _ := el["options"].([]any)
			if len(opts) == 0 || len(opts) > 100 {
				return "invalid_arguments"
			}
		}
		if ios, ok := el["initial_options"].([]any); ok && el["type"] == "multi_static_select" {
			opts, _ := el["options"].([]any)
			for _, io := range ios { // every initial option must be one of the options
				iv, _ := io.(map[string]any)["value"]
				found := false
				for _, o := range opts {
					if o.(map[string]any)["value"] == iv {
						found = true
					}
				}
				if !found {
					return "invalid_arguments"
				}
			}
		}
	}
	return ""
}

func viewBlocks(v map[string]any) []map[string]any {
	raw, _ := json.Marshal(v["blocks"])
	var blocks []map[string]any
	_ = json.Unmarshal(raw, &blocks)
	return blocks
}

func (s *Server) viewsOpen(body map[string]any) (any, apiError) {
	tid, _ := body["trigger_id"].(string)
	v, _ := body["view"].(map[string]any)
	if tid == "" {
		return nil, "invalid_arguments"
	}
	if e := s.checkView(v); e != "" {
		return nil, e
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	t, ok := s.triggers[tid]
	if !ok {
		return nil, "invalid_trigger_id"
	}
	since := s.now().Sub(t.issued)
	if t.used || since > s.opts.TriggerTTL {
		return nil, "expired_trigger_id"
	}
	t.used = true
	title, _ := v["title"].(map[string]any)
	view := &View{
		ID: s.nextID("V"), TriggerID: tid, User: t.user, Team: t.team,
		Blocks: viewBlocks(v), Hash: s.nextID("h"), OpenedAt: s.now(), SinceTrigger: since,
	}
	view.CallbackID, _ = v["callback_id"].(string)
	view.PrivateMetadata, _ = v["private_metadata"].(string)
	view.Title, _ = title["text"].(string)
	s.views[view.ID] = view
	s.viewOrder = append(s.viewOrder, view.ID)
	s.notifyLocked()
	return map[string]any{"ok": true, "view": s.viewJSON(view)}, ""
}

func (s *Server) viewsUpdate(body map[string]any) (any, apiError) {
	id, _ := body["view_id"].(string)
	v, _ := body["view"].(map[string]any)
	if e := s.checkView(v); e != "" {
		return nil, e
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	view, ok := s.views[id]
	if !ok {
		return nil, "not_found"
	}
	if h, _ := body["hash"].(string); h != "" && h != view.Hash {
		return nil, "hash_conflict"
	}
	view.Blocks = viewBlocks(v)
	view.CallbackID, _ = v["callback_id"].(string)
	view.PrivateMetadata, _ = v["private_metadata"].(string)
	view.Hash = s.nextID("h")
	view.Updates++
	s.notifyLocked()
	return map[string]any{"ok": true, "view": s.viewJSON(view)}, ""
}

func (s *Server) viewJSON(v *View) map[string]any {
	return map[string]any{
		"id": v.ID, "team_id": v.Team, "type": "modal", "blocks": v.Blocks,
		"private_metadata": v.PrivateMetadata, "callback_id": v.CallbackID, "hash": v.Hash,
		"title":        map[string]any{"type": "plain_text", "text": v.Title},
		"state":        map[string]any{"values": map[string]any{}},
		"app_id":       s.opts.AppID,
		"bot_id":       "B0FAKE",
		"root_view_id": v.ID,
	}
}

// newResponseURL creates a response_url answering into channel for user.
func (s *Server) newResponseURL(channel, user string) string {
	id := s.nextID("")
	s.mu.Lock()
	s.responseURLs[id] = responseTarget{channel: channel, user: user}
	s.mu.Unlock()
	return s.srv.URL + "/response/" + id
}

func (s *Server) serveResponseURL(w http.ResponseWriter, r *http.Request) {
	id := strings.TrimPrefix(r.URL.Path, "/response/")
	s.mu.Lock()
	t, ok := s.responseURLs[id]
	s.mu.Unlock()
	if !ok || r.Method != http.MethodPost {
		http.Error(w, "not found", http.StatusNotFound)
		return
	}
	var body struct {
		Text            string           `json:"text"`
		Blocks          []map[string]any `json:"blocks"`
		ResponseType    string           `json:"response_type"`
		ReplaceOriginal bool             `json:"replace_original"`
	}
	if err := json.NewDecoder(io.LimitReader(r.Body, 1<<20)).Decode(&body); err != nil {
		writeJSON(w, http.StatusOK, map[string]any{"ok": false, "error": "invalid_payload"})
		return
	}
	s.mu.Lock()
	s.ephemerals = append(s.ephemerals, Ephemeral{Channel: t.channel, User: t.user, Text: body.Text, Blocks: body.Blocks, Via: "response_url", TS: s.nextTS()})
	s.notifyLocked()
	s.mu.Unlock()
	writeJSON(w, http.StatusOK, map[string]any{"ok": true})
}
