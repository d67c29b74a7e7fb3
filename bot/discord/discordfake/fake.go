// Package discordfake is a fake Discord for tests: a gateway (HELLO,
// IDENTIFY, READY, heartbeats, dispatches with sequence numbers, op 7
// RECONNECT, op 9 INVALID_SESSION, RESUME/RESUMED with replay; a client
// close with 1000 or 1001 ends its session, as on Discord) and the REST
// routes accessbot uses (gateway, guild command bulk overwrite, interaction
// callbacks with the 3 s deadline and a single acknowledgement, webhook
// edits and follow-ups, channel messages and edits, DMs, users/@me,
// guilds, 429 answers with Discord's body and headers). The real discordgo
// client talks to it over loopback.
package discordfake

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"net"
	"net/http"
	"net/http/httptest"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/gorilla/websocket"
)

// Defaults of Options.
const (
	DefaultAppID     = "1500000000000000001"
	DefaultBotUserID = "1500000000000000002"
	DefaultToken     = "fake-bot-token"
)

// Options configures the fake.
type Options struct {
	Token             string        // bot token (without "Bot "); DefaultToken if empty
	AppID             string        // application id; DefaultAppID
	BotUserID         string        // the bot's user id; DefaultBotUserID
	Guilds            []string      // guilds the bot is in
	HeartbeatInterval time.Duration // sent in HELLO; default 41.25 s
	CallbackDeadline  time.Duration // interaction callback window; default 3 s
	// RateLimitEvery answers every n-th POST to a channel's messages with
	// a 429 (0: never), waiting RetryAfter (default 50 ms).
	RateLimitEvery int
	RetryAfter     time.Duration
	// Now tells the time of dispatches, callbacks and messages, which
	// decides whether a callback or a follow-up is late (default
	// time.Now; tests pass a test clock to step past a deadline).
	Now func() time.Time
}

// Server is the fake Discord. Its URL (APIBase) is what the bot's api_url
// points at.
type Server struct {
	opts Options
	srv  *httptest.Server
	up   websocket.Upgrader

	mu           sync.Mutex
	sessions     []*session
	nextSession  int
	rr           int
	ids          int64
	interactions map[string]*Interaction
	messages     map[string][]*Message // channel -> messages in order
	dms          map[string]string     // user -> dm channel
	commands     map[string][]map[string]any
	overwrites   int
	identifies   []Identify
	resumes      int
	posts        int
	rateLimited  int
	changed      chan struct{}
}

// Identify is what a client sent in an IDENTIFY.
type Identify struct {
	Intents int
	Token   string
}

type session struct {
	id     string
	seq    int64
	buffer []frame
	conn   *wsConn
	dead   bool
}

type frame struct {
	Op int             `json:"op"`
	D  json.RawMessage `json:"d"`
	S  *int64          `json:"s,omitempty"`
	T  string          `json:"t,omitempty"`
}

type wsConn struct {
	mu sync.Mutex
	c  *websocket.Conn
}

func (c *wsConn) write(v any) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	_ = c.c.SetWriteDeadline(time.Now().Add(5 * time.Second))
	return c.c.WriteJSON(v)
}

// New starts a fake on loopback; Close stops it.
func New(opts Options) *Server {
	if opts.Token == "" {
		opts.Token = DefaultToken
	}
	if opts.AppID == "" {
		opts.AppID = DefaultAppID
	}
	if opts.BotUserID == "" {
		opts.BotUserID = DefaultBotUserID
	}
	if opts.HeartbeatInterval == 0 {
		opts.HeartbeatInterval = 41250 * time.Millisecond
	}
	if opts.CallbackDeadline == 0 {
		opts.CallbackDeadline = 3 * time.Second
	}
	if opts.RetryAfter == 0 {
		opts.RetryAfter = 50 * time.Millisecond
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	s := &Server{opts: opts, interactions: map[string]*Interaction{}, messages: map[string][]*Message{},
		dms: map[string]string{}, commands: map[string][]map[string]any{}, changed: make(chan struct{}), ids: 1600000000000000000}
	s.srv = httptest.NewServer(http.HandlerFunc(s.route))
	return s
}

// Close stops the fake and drops every socket.
func (s *Server) Close() {
	s.mu.Lock()
	for _, se := range s.sessions {
		if se.conn != nil {
			_ = se.conn.c.Close()
		}
	}
	s.mu.Unlock()
	s.srv.CloseClientConnections()
	s.srv.Close()
}

// APIBase is the REST base the bot is configured with (ends in "/").
func (s *Server) APIBase() string { return s.srv.URL + "/api/v10/" }

// Token is the bot token the fake accepts.
func (s *Server) Token() string { return s.opts.Token }

// AppID is the application id.
func (s *Server) AppID() string { return s.opts.AppID }

func (s *Server) newID() string {
	s.ids++
	return strconv.FormatInt(s.ids, 10)
}

// notify wakes everyone waiting for a change; call with mu held.
func (s *Server) notify() {
	close(s.changed)
	s.changed = make(chan struct{})
}

// WaitFor waits until cond (called under no lock) holds or ctx ends.
func (s *Server) WaitFor(ctx context.Context, cond func() bool) error {
	for {
		s.mu.Lock()
		ch := s.changed
		s.mu.Unlock()
		if cond() {
			return nil
		}
		t := time.NewTimer(50 * time.Millisecond)
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-ch:
			t.Stop()
		case <-t.C:
		}
	}
}

// ---- errors and REST routing ----

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}

func apiError(w http.ResponseWriter, status, code int, msg string) {
	writeJSON(w, status, map[string]any{"message": msg, "code": code})
}

var versionPrefix = regexp.MustCompile(`^/api/v[0-9]+/`)

func (s *Server) route(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path == "/gateway" || r.URL.Path == "/gateway/" {
		s.serveGateway(w, r)
		return
	}
	loc := versionPrefix.FindString(r.URL.Path)
	if loc == "" {
		apiError(w, http.StatusNotFound, 0, "404: Not Found")
		return
	}
	parts := strings.Split(strings.TrimPrefix(r.URL.Path, loc), "/")
	// Interaction callbacks and webhooks carry their token in the path.
	switch {
	case len(parts) == 4 && parts[0] == "interactions" && parts[3] == "callback" && r.Method == http.MethodPost:
		s.callback(w, r, parts[1], parts[2])
		return
	case len(parts) >= 3 && parts[0] == "webhooks":
		s.webhook(w, r, parts[1], parts[2], parts[3:])
		return
	}
	if r.Header.Get("Authorization") != "Bot "+s.opts.Token {
		apiError(w, http.StatusUnauthorized, 0, "401: Unauthorized")
		return
	}
	switch {
	case len(parts) == 1 && parts[0] == "gateway" && r.Method == http.MethodGet:
		writeJSON(w, 200, map[string]any{"url": s.wsURL()})
	case len(parts) == 2 && parts[0] == "gateway" && parts[1] == "bot" && r.Method == http.MethodGet:
		writeJSON(w, 200, map[string]any{"url": s.wsURL(), "shards": 1,
			"session_start_limit": map[string]any{"total": 1000, "remaining": 999, "reset_after": 14400000, "max_concurrency": 1}})
	case len(parts) == 2 && parts[0] == "users" && parts[1] == "@me" && r.Method == http.MethodGet:
		writeJSON(w, 200, map[string]any{"id": s.opts.BotUserID, "username": "accessbot", "discriminator": "0", "bot": true})
	case len(parts) == 3 && parts[0] == "users" && parts[1] == "@me" && parts[2] == "channels" && r.Method == http.MethodPost:
		s.openDM(w, r)
	case len(parts) == 2 && parts[0] == "guilds" && r.Method == http.MethodGet:
		s.guild(w, parts[1])
	case len(parts) == 5 && parts[0] == "applications" && parts[2] == "guilds" && parts[4] == "commands" && r.Method == http.MethodPut:
		s.bulkOverwrite(w, r, parts[1], parts[3])
	case len(parts) == 3 && parts[0] == "channels" && parts[2] == "messages" && r.Method == http.MethodPost:
		s.postMessage(w, r, parts[1])
	case len(parts) == 4 && parts[0] == "channels" && parts[2] == "messages" && r.Method == http.MethodPatch:
		s.editMessage(w, r, parts[1], parts[3])
	default:
		apiError(w, http.StatusNotFound, 0, "404: Not Found")
	}
}

func (s *Server) wsURL() string { return "ws" + strings.TrimPrefix(s.srv.URL, "http") + "/gateway" }

func (s *Server) guild(w http.ResponseWriter, id string) {
	for _, g := range s.opts.Guilds {
		if g == id {
			writeJSON(w, 200, map[string]any{"id": id, "name": "guild " + id})
			return
		}
	}
	apiError(w, http.StatusNotFound, 10004, "Unknown Guild")
}

func (s *Server) bulkOverwrite(w http.ResponseWriter, r *http.Request, app, guild string) {
	var cmds []map[string]any
	if err := json.NewDecoder(r.Body).Decode(&cmds); err != nil {
		apiError(w, http.StatusBadRequest, 50109, "The request body contains invalid JSON.")
		return
	}
	if app != s.opts.AppID {
		apiError(w, http.StatusForbidden, 50001, "Missing Access")
		return
	}
	known := false
	for _, g := range s.opts.Guilds {
		known = known || g == guild
	}
	if !known {
		apiError(w, http.StatusForbidden, 50001, "Missing Access")
		return
	}
	s.mu.Lock()
	for _, c := range cmds {
		c["id"] = s.newID()
		c["application_id"] = app
		c["guild_id"] = guild
		c["version"] = s.newID()
	}
	s.commands[guild] = cmds
	s.overwrites++
	s.notify()
	s.mu.Unlock()
	writeJSON(w, 200, cmds)
}

// Commands returns a copy of the commands registered in guild (as sent,
// plus ids).
func (s *Server) Commands(guild string) []map[string]any {
	s.mu.Lock()
	raw, _ := json.Marshal(s.commands[guild])
	s.mu.Unlock()
	var out []map[string]any
	_ = json.Unmarshal(raw, &out)
	return out
}

// Overwrites counts bulk-overwrite calls.
func (s *Server) Overwrites() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.overwrites
}

// ---- messages ----

// Message is a message in a channel as the fake keeps it.
type Message struct {
	ID              string
	ChannelID       string
	Content         string
	Embeds          []map[string]any
	Components      []map[string]any
	AllowedMentions map[string]any // as sent; nil when absent
	Flags           int
	Edits           int
	CreatedAt       time.Time
	// ReplyTo is the id of the message this one replies to
	// (message_reference on create; the message has type 19, REPLY).
	ReplyTo string
}

type messageBody struct {
	Content         *string           `json:"content"`
	Embeds          *[]map[string]any `json:"embeds"`
	Components      *[]map[string]any `json:"components"`
	AllowedMentions map[string]any    `json:"allowed_mentions"`
	Flags           int               `json:"flags"`
	// MessageReference makes a new message a reply (create only).
	MessageReference *messageReference `json:"message_reference"`
}

type messageReference struct {
	MessageID       string `json:"message_id"`
	ChannelID       string `json:"channel_id"`
	FailIfNotExists *bool  `json:"fail_if_not_exists"`
}

func (b messageBody) apply(m *Message) {
	if b.Content != nil {
		m.Content = *b.Content
	}
	if b.Embeds != nil {
		m.Embeds = *b.Embeds
	}
	if b.Components != nil {
		m.Components = *b.Components
	}
	if b.AllowedMentions != nil {
		m.AllowedMentions = b.AllowedMentions
	}
	if b.Flags != 0 {
		m.Flags = b.Flags
	}
}

func (m *Message) json() map[string]any {
	out := map[string]any{"id": m.ID, "channel_id": m.ChannelID, "content": m.Content, "embeds": m.Embeds,
		"components": m.Components, "flags": m.Flags, "type": 0, "timestamp": m.CreatedAt.Format(time.RFC3339Nano),
		"author": map[string]any{"id": DefaultBotUserID, "username": "accessbot", "bot": true}}
	if m.ReplyTo != "" {
		out["type"] = 19
		out["message_reference"] = map[string]any{"type": 0, "message_id": m.ReplyTo, "channel_id": m.ChannelID}
	}
	return out
}

func (s *Server) rateLimit(w http.ResponseWriter) bool {
	if s.opts.RateLimitEvery <= 0 {
		return false
	}
	s.mu.Lock()
	s.posts++
	limited := s.posts%s.opts.RateLimitEvery == 0
	if limited {
		s.rateLimited++
	}
	s.mu.Unlock()
	if !limited {
		return false
	}
	ra := s.opts.RetryAfter.Seconds()
	h := w.Header()
	h.Set("Retry-After", strconv.Itoa(int(math.Ceil(ra))))
	h.Set("X-RateLimit-Limit", "5")
	h.Set("X-RateLimit-Remaining", "0")
	h.Set("X-RateLimit-Reset-After", strconv.FormatFloat(ra, 'f', 3, 64))
	h.Set("X-RateLimit-Reset", strconv.FormatFloat(float64(time.Now().Add(s.opts.RetryAfter).UnixMilli())/1000, 'f', 3, 64))
	h.Set("X-RateLimit-Bucket", "fake-channel-messages")
	h.Set("X-RateLimit-Scope", "user")
	writeJSON(w, http.StatusTooManyRequests, map[string]any{"message": "You are being rate limited.", "retry_after": ra, "global": false})
	return true
}

// RateLimited counts the 429 answers given.
func (s *Server) RateLimited() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.rateLimited
}

func (s *Server) postMessage(w http.ResponseWriter, r *http.Request, channel string) {
	var b messageBody
	if err := json.NewDecoder(r.Body).Decode(&b); err != nil {
		apiError(w, http.StatusBadRequest, 50109, "The request body contains invalid JSON.")
		return
	}
	if s.rateLimit(w) {
		return
	}
	if (b.Content == nil || *b.Content == "") && (b.Embeds == nil || len(*b.Embeds) == 0) {
		apiError(w, http.StatusBadRequest, 50006, "Cannot send an empty message")
		return
	}
	s.mu.Lock()
	m := &Message{ID: s.newID(), ChannelID: channel, CreatedAt: s.opts.Now()}
	if ref := b.MessageReference; ref != nil {
		// A reply: the referenced message must be in this channel, unless
		// fail_if_not_exists is false, when it is sent as a plain message.
		found := ref.ChannelID == "" || ref.ChannelID == channel
		if found {
			found = slices.ContainsFunc(s.messages[channel], func(o *Message) bool { return o.ID == ref.MessageID })
		}
		switch {
		case found:
			m.ReplyTo = ref.MessageID
		case ref.FailIfNotExists == nil || *ref.FailIfNotExists:
			s.mu.Unlock()
			apiError(w, http.StatusBadRequest, 50035, "Invalid Form Body")
			return
		}
	}
	b.apply(m)
	m.AllowedMentions = b.AllowedMentions
	s.messages[channel] = append(s.messages[channel], m)
	out := m.json()
	s.notify()
	s.mu.Unlock()
	writeJSON(w, 200, out)
}

func (s *Server) editMessage(w http.ResponseWriter, r *http.Request, channel, id string) {
	var b messageBody
	if err := json.NewDecoder(r.Body).Decode(&b); err != nil {
		apiError(w, http.StatusBadRequest, 50109, "The request body contains invalid JSON.")
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, m := range s.messages[channel] {
		if m.ID == id {
			b.apply(m)
			m.Edits++
			s.notify()
			writeJSON(w, 200, m.json())
			return
		}
	}
	apiError(w, http.StatusNotFound, 10008, "Unknown Message")
}

func (s *Server) openDM(w http.ResponseWriter, r *http.Request) {
	var b struct {
		RecipientID string `json:"recipient_id"`
	}
	if err := json.NewDecoder(r.Body).Decode(&b); err != nil || b.RecipientID == "" {
		apiError(w, http.StatusBadRequest, 50035, "Invalid Form Body")
		return
	}
	s.mu.Lock()
	ch, ok := s.dms[b.RecipientID]
	if !ok {
		ch = s.newID()
		s.dms[b.RecipientID] = ch
	}
	s.mu.Unlock()
	writeJSON(w, 200, map[string]any{"id": ch, "type": 1, "recipients": []map[string]any{{"id": b.RecipientID, "username": "user" + b.RecipientID}}})
}

// Messages returns copies of the messages in channel, oldest first.
func (s *Server) Messages(channel string) []Message {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Message, 0, len(s.messages[channel]))
	for _, m := range s.messages[channel] {
		out = append(out, *m)
	}
	return out
}

// Message returns a copy of one message.
func (s *Server) Message(channel, id string) (Message, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, m := range s.messages[channel] {
		if m.ID == id {
			return *m, true
		}
	}
	return Message{}, false
}

// DMs returns the messages the bot sent user by DM.
func (s *Server) DMs(user string) []Message {
	s.mu.Lock()
	ch := s.dms[user]
	s.mu.Unlock()
	if ch == "" {
		return nil
	}
	return s.Messages(ch)
}

// Text is everything a person reads in m: content, embed titles,
// descriptions, fields and footers, one per line.
func Text(m Message) string {
	var b strings.Builder
	if m.Content != "" {
		b.WriteString(m.Content + "\n")
	}
	for _, e := range m.Embeds {
		for _, k := range []string{"title", "description"} {
			if v, _ := e[k].(string); v != "" {
				b.WriteString(v + "\n")
			}
		}
		fs, _ := e["fields"].([]any)
		for _, f := range fs {
			fm, _ := f.(map[string]any)
			fmt.Fprintf(&b, "%v: %v\n", fm["name"], fm["value"])
		}
		if f, ok := e["footer"].(map[string]any); ok {
			fmt.Fprintf(&b, "%v\n", f["text"])
		}
	}
	return b.String()
}

// Button is a button of a message.
type Button struct {
	Label    string
	CustomID string
	Style    int
}

// Buttons lists the buttons of a message's components.
func Buttons(components []map[string]any) []Button {
	var out []Button
	for _, row := range components {
		cs, _ := row["components"].([]any)
		for _, c := range cs {
			cm, _ := c.(map[string]any)
			if t, _ := cm["type"].(float64); t != 2 {
				continue
			}
			st, _ := cm["style"].(float64)
			l, _ := cm["label"].(string)
			id, _ := cm["custom_id"].(string)
			out = append(out, Button{Label: l, CustomID: id, Style: int(st)})
		}
	}
	return out
}

// ---- gateway ----

func (s *Server) serveGateway(w http.ResponseWriter, r *http.Request) {
	c, err := s.up.Upgrade(w, r, nil)
	if err != nil {
		return
	}
	conn := &wsConn{c: c}
	hello, _ := json.Marshal(map[string]any{"heartbeat_interval": s.opts.HeartbeatInterval.Milliseconds()})
	if conn.write(frame{Op: 10, D: hello}) != nil {
		_ = c.Close()
		return
	}
	var se *session
	closed := false // the client closed with 1000 or 1001, which ends its session
	defer func() {
		s.mu.Lock()
		if se != nil && se.conn == conn {
			se.conn = nil
			if closed {
				se.dead = true
			}
		}
		s.notify()
		s.mu.Unlock()
		_ = c.Close()
	}()
	for {
		_, data, err := c.ReadMessage()
		if err != nil {
			closed = websocket.IsCloseError(err, websocket.CloseNormalClosure, websocket.CloseGoingAway)
			return
		}
		var f frame
		if json.Unmarshal(data, &f) != nil {
			_ = c.WriteMessage(websocket.CloseMessage, websocket.FormatCloseMessage(4002, "Decode error"))
			return
		}
		switch f.Op {
		case 1:
			_ = conn.write(map[string]any{"op": 11, "d": nil})
		case 2:
			var id struct {
				Token   string `json:"token"`
				Intents int    `json:"intents"`
			}
			_ = json.Unmarshal(f.D, &id)
			if strings.TrimPrefix(id.Token, "Bot ") != s.opts.Token {
				_ = c.WriteMessage(websocket.CloseMessage, websocket.FormatCloseMessage(4004, "Authentication failed."))
				return
			}
			s.mu.Lock()
			s.identifies = append(s.identifies, Identify{Intents: id.Intents, Token: id.Token})
			if se != nil {
				se.dead = true
				se.conn = nil
			}
			s.nextSession++
			se = &session{id: fmt.Sprintf("fake-session-%d", s.nextSession), conn: conn}
			s.sessions = append(s.sessions, se)
			guilds := []map[string]any{}
			for _, g := range s.opts.Guilds {
				guilds = append(guilds, map[string]any{"id": g, "unavailable": true})
			}
			ready, _ := json.Marshal(map[string]any{"v": 10, "session_id": se.id, "resume_gateway_url": s.wsURL(),
				"user":        map[string]any{"id": s.opts.BotUserID, "username": "accessbot", "discriminator": "0", "bot": true},
				"application": map[string]any{"id": s.opts.AppID, "flags": 0}, "guilds": guilds, "private_channels": []any{}})
			s.dispatchLocked(se, "READY", ready)
			s.notify()
			s.mu.Unlock()
		case 6:
			var rs struct {
				SessionID string `json:"session_id"`
				Seq       int64  `json:"seq"`
				Token     string `json:"token"`
			}
			_ = json.Unmarshal(f.D, &rs)
			s.mu.Lock()
			var found *session
			for _, x := range s.sessions {
				if x.id == rs.SessionID && !x.dead {
					found = x
				}
			}
			if found == nil || strings.TrimPrefix(rs.Token, "Bot ") != s.opts.Token {
				s.mu.Unlock()
				_ = conn.write(map[string]any{"op": 9, "d": false})
				continue
			}
			if found.conn != nil && found.conn != conn {
				_ = found.conn.c.Close()
			}
			se = found
			se.conn = conn
			s.resumes++
			for _, fr := range se.buffer {
				if *fr.S > rs.Seq {
					_ = conn.write(fr)
				}
			}
			s.dispatchLocked(se, "RESUMED", json.RawMessage(`{}`))
			s.notify()
			s.mu.Unlock()
		}
	}
}

// dispatchLocked sends an op 0 event on se (buffered for a resume).
func (s *Server) dispatchLocked(se *session, t string, d json.RawMessage) {
	se.seq++
	seq := se.seq
	fr := frame{Op: 0, T: t, S: &seq, D: d}
	se.buffer = append(se.buffer, fr)
	if len(se.buffer) > 2000 {
		se.buffer = se.buffer[len(se.buffer)-2000:]
	}
	if se.conn != nil {
		if err := se.conn.write(fr); err != nil {
			_ = se.conn.c.Close()
			se.conn = nil
		}
	}
}

// Identifies returns the IDENTIFY payloads received so far.
func (s *Server) Identifies() []Identify {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Identify(nil), s.identifies...)
}

// Resumes counts successful RESUMEs.
func (s *Server) Resumes() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.resumes
}

// LiveSessions counts sessions with a connected socket.
func (s *Server) LiveSessions() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, se := range s.sessions {
		if se.conn != nil && !se.dead {
			n++
		}
	}
	return n
}

func (s *Server) liveLocked() []*session {
	var out []*session
	for _, se := range s.sessions {
		if !se.dead {
			out = append(out, se)
		}
	}
	return out
}

// Reconnect sends op 7 RECONNECT on every connected session.
func (s *Server) Reconnect() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, se := range s.liveLocked() {
		if se.conn != nil {
			_ = se.conn.write(map[string]any{"op": 7, "d": nil})
		}
	}
}

// Drop closes every socket without a close frame; the sessions stay
// resumable and buffer what is dispatched meanwhile.
func (s *Server) Drop() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, se := range s.liveLocked() {
		if se.conn != nil {
			if nc := se.conn.c.NetConn(); nc != nil {
				_ = nc.(net.Conn).Close()
			}
			se.conn = nil
		}
	}
	s.notify()
}

// InvalidateSessions sends op 9 (d: false) on every connected session and
// forgets the sessions: the client must IDENTIFY again.
func (s *Server) InvalidateSessions() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, se := range s.liveLocked() {
		if se.conn != nil {
			_ = se.conn.write(map[string]any{"op": 9, "d": false})
		}
		se.dead = true
	}
}

// ---- interactions ----

// Interaction is one interaction the fake dispatched and what the bot did
// with it.
type Interaction struct {
	ID, Token, Type string
	Dispatched      time.Time
	Callbacks       int            // callback POSTs (the second and later are refused)
	ResponseType    int            // type of the accepted callback (4, 5, 6, 7, 8, 9)
	Response        map[string]any // data of the accepted callback
	Latency         time.Duration  // dispatch -> accepted callback
	Late            bool           // a callback came after the deadline
	Original        *Message       // the response message (type 4 or 5, then edits)
	Followups       []*Message
	acked           chan struct{}
}

// Flags of the response message (64: ephemeral).
func (i *Interaction) Flags() int {
	if f, ok := i.Response["flags"].(float64); ok {
		return int(f)
	}
	return 0
}

// Option is a command option as dispatched.
type Option struct {
	Name  string
	Value string
}

// Source is who interacts and where: Guild "" is a DM.
type Source struct {
	User    string
	Guild   string
	Channel string
}

func (src Source) payload(s *Server, id, token string, typ int, data any) map[string]any {
	p := map[string]any{"id": id, "application_id": s.opts.AppID, "type": typ, "token": token, "version": 1,
		"channel_id": src.Channel, "data": data, "app_permissions": "2248473465835073", "locale": "en-US"}
	user := map[string]any{"id": src.User, "username": "user" + src.User, "discriminator": "0", "global_name": nil}
	if src.Guild != "" {
		p["guild_id"] = src.Guild
		p["member"] = map[string]any{"user": user, "roles": []string{}, "permissions": "2248473465835073",
			"joined_at": "2030-01-01T00:00:00.000000+00:00", "deaf": false, "mute": false}
	} else {
		p["user"] = user
	}
	return p
}

// dispatch sends an INTERACTION_CREATE to one session (round robin) and
// returns its record.
func (s *Server) dispatch(src Source, typ int, kind string, data any, extra map[string]any) (*Interaction, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	live := s.liveLocked()
	if len(live) == 0 {
		return nil, fmt.Errorf("discordfake: no session to dispatch to")
	}
	id := s.newID()
	in := &Interaction{ID: id, Token: "tok-" + id + "-aW50ZXJhY3Rpb24", Type: kind, acked: make(chan struct{})}
	p := src.payload(s, id, in.Token, typ, data)
	for k, v := range extra {
		p[k] = v
	}
	raw, _ := json.Marshal(p)
	s.interactions[id] = in
	se := live[s.rr%len(live)]
	s.rr++
	in.Dispatched = s.opts.Now()
	s.dispatchLocked(se, "INTERACTION_CREATE", raw)
	return in, nil
}

// Redispatch sends the same interaction payload again (as a redelivery
// would), to the next session.
func (s *Server) Redispatch(in *Interaction, src Source, typ int, data any) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	live := s.liveLocked()
	if len(live) == 0 {
		return fmt.Errorf("discordfake: no session to dispatch to")
	}
	raw, _ := json.Marshal(src.payload(s, in.ID, in.Token, typ, data))
	se := live[s.rr%len(live)]
	s.rr++
	s.dispatchLocked(se, "INTERACTION_CREATE", raw)
	return nil
}

// CommandData builds /access <sub> with options.
func CommandData(sub string, opts ...Option) map[string]any {
	var os []map[string]any
	for _, o := range opts {
		os = append(os, map[string]any{"name": o.Name, "type": 3, "value": o.Value})
	}
	return map[string]any{"id": "1700000000000000001", "name": "access", "type": 1,
		"options": []map[string]any{{"name": sub, "type": 1, "options": os}}}
}

// Command dispatches /access <sub> and waits for the initial response.
func (s *Server) Command(ctx context.Context, src Source, sub string, opts ...Option) (*Interaction, error) {
	in, err := s.dispatch(src, 2, "command", CommandData(sub, opts...), nil)
	if err != nil {
		return nil, err
	}
	return s.waitAck(ctx, in)
}

// DispatchCommand dispatches /access <sub> without waiting.
func (s *Server) DispatchCommand(src Source, sub string, opts ...Option) (*Interaction, error) {
	return s.dispatch(src, 2, "command", CommandData(sub, opts...), nil)
}

// Autocomplete dispatches an autocomplete of the focused option.
func (s *Server) Autocomplete(ctx context.Context, src Source, sub, option, typed string) (*Interaction, error) {
	data := map[string]any{"id": "1700000000000000001", "name": "access", "type": 1,
		"options": []map[string]any{{"name": sub, "type": 1, "options": []map[string]any{{"name": option, "type": 3, "value": typed, "focused": true}}}}}
	in, err := s.dispatch(src, 4, "autocomplete", data, nil)
	if err != nil {
		return nil, err
	}
	return s.waitAck(ctx, in)
}

// ClickData builds a button press.
func ClickData(customID string) map[string]any {
	return map[string]any{"custom_id": customID, "component_type": 2}
}

// Click presses the button customID on message m and waits for the
// initial response.
func (s *Server) Click(ctx context.Context, src Source, m Message, customID string) (*Interaction, error) {
	in, err := s.DispatchClick(src, m, customID)
	if err != nil {
		return nil, err
	}
	return s.waitAck(ctx, in)
}

// DispatchClick presses a button without waiting.
func (s *Server) DispatchClick(src Source, m Message, customID string) (*Interaction, error) {
	extra := map[string]any{"message": m.json()}
	return s.dispatch(src, 3, "click", ClickData(customID), extra)
}

// SubmitModal submits a modal with text inputs (custom id -> value) and
// waits for the initial response.
func (s *Server) SubmitModal(ctx context.Context, src Source, customID string, values []Option) (*Interaction, error) {
	var rows []map[string]any
	for _, v := range values {
		rows = append(rows, map[string]any{"type": 1, "components": []map[string]any{{"type": 4, "custom_id": v.Name, "value": v.Value}}})
	}
	in, err := s.dispatch(src, 5, "modal", map[string]any{"custom_id": customID, "components": rows}, nil)
	if err != nil {
		return nil, err
	}
	return s.waitAck(ctx, in)
}

func (s *Server) waitAck(ctx context.Context, in *Interaction) (*Interaction, error) {
	select {
	case <-in.acked:
		return s.Interaction(in.ID), nil
	case <-ctx.Done():
		return s.Interaction(in.ID), fmt.Errorf("discordfake: interaction %s (%s) not acknowledged: %w", in.ID, in.Type, ctx.Err())
	}
}

// WaitAck waits for the initial response of in.
func (s *Server) WaitAck(ctx context.Context, in *Interaction) (*Interaction, error) {
	return s.waitAck(ctx, in)
}

// Interaction returns a copy of the record of interaction id.
func (s *Server) Interaction(id string) *Interaction {
	s.mu.Lock()
	defer s.mu.Unlock()
	in, ok := s.interactions[id]
	if !ok {
		return nil
	}
	c := *in
	if in.Original != nil {
		o := *in.Original
		c.Original = &o
	}
	return &c
}

// Interactions returns copies of every interaction record.
func (s *Server) Interactions() []*Interaction {
	s.mu.Lock()
	ids := make([]string, 0, len(s.interactions))
	for id := range s.interactions {
		ids = append(ids, id)
	}
	s.mu.Unlock()
	out := make([]*Interaction, 0, len(ids))
	for _, id := range ids {
		out = append(out, s.Interaction(id))
	}
	return out
}

func (s *Server) callback(w http.ResponseWriter, r *http.Request, id, token string) {
	var b struct {
		Type int            `json:"type"`
		Data map[string]any `json:"data"`
	}
	if err := json.NewDecoder(r.Body).Decode(&b); err != nil {
		apiError(w, http.StatusBadRequest, 50109, "The request body contains invalid JSON.")
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	in, ok := s.interactions[id]
	if !ok || in.Token != token {
		apiError(w, http.StatusNotFound, 10062, "Unknown interaction")
		return
	}
	in.Callbacks++
	if in.ResponseType != 0 {
		apiError(w, http.StatusBadRequest, 40060, "Interaction has already been acknowledged.")
		return
	}
	if s.opts.Now().Sub(in.Dispatched) > s.opts.CallbackDeadline {
		in.Late = true
		apiError(w, http.StatusNotFound, 10062, "Unknown interaction")
		return
	}
	switch b.Type {
	case 4, 5, 6, 7, 8, 9:
	default:
		apiError(w, http.StatusBadRequest, 50035, "Invalid Form Body")
		return
	}
	if b.Type == 9 {
		if t, _ := b.Data["title"].(string); t == "" || len(t) > 45 {
			apiError(w, http.StatusBadRequest, 50035, "Invalid Form Body (title)")
			return
		}
	}
	in.ResponseType = b.Type
	in.Response = b.Data
	in.Latency = s.opts.Now().Sub(in.Dispatched)
	if b.Type == 4 || b.Type == 5 {
		m := &Message{ID: s.newID(), ChannelID: "interaction:" + id, CreatedAt: s.opts.Now()}
		if b.Data != nil {
			raw, _ := json.Marshal(b.Data)
			var mb messageBody
			_ = json.Unmarshal(raw, &mb)
			mb.apply(m)
		}
		in.Original = m
	}
	close(in.acked)
	s.notify()
	w.WriteHeader(http.StatusNoContent)
}

func (s *Server) webhook(w http.ResponseWriter, r *http.Request, app, token string, rest []string) {
	var b messageBody
	if r.Method != http.MethodGet {
		if err := json.NewDecoder(r.Body).Decode(&b); err != nil {
			apiError(w, http.StatusBadRequest, 50109, "The request body contains invalid JSON.")
			return
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	var in *Interaction
	for _, x := range s.interactions {
		if x.Token == token {
			in = x
		}
	}
	if in == nil || app != s.opts.AppID || s.opts.Now().Sub(in.Dispatched) > 15*time.Minute {
		apiError(w, http.StatusUnauthorized, 50027, "Invalid Webhook Token")
		return
	}
	if in.ResponseType == 0 {
		apiError(w, http.StatusNotFound, 10015, "Unknown Webhook")
		return
	}
	switch {
	case len(rest) == 0 && r.Method == http.MethodPost:
		m := &Message{ID: s.newID(), ChannelID: "interaction:" + in.ID, CreatedAt: s.opts.Now()}
		b.apply(m)
		in.Followups = append(in.Followups, m)
		s.notify()
		writeJSON(w, 200, m.json())
	case len(rest) == 2 && rest[0] == "messages" && rest[1] == "@original" && r.Method == http.MethodPatch:
		if in.Original == nil {
			apiError(w, http.StatusNotFound, 10008, "Unknown Message")
			return
		}
		b.apply(in.Original)
		in.Original.Edits++
		s.notify()
		writeJSON(w, 200, in.Original.json())
	default:
		apiError(w, http.StatusNotFound, 0, "404: Not Found")
	}
}
