// Package slackfake is a protocol-faithful fake of Slack's Socket Mode and
// the Web API methods accessbot uses, for tests that drive the real
// slack-go client over loopback.
//
// What it models:
//
//   - apps.connections.open with the app-level token as Bearer; each answer
//     carries a single-use websocket ticket.
//   - The websocket: a hello frame first, envelopes (slash_commands,
//     interactive) with Slack's payload shapes, acks by envelope_id (from any
//     connection of the app; each ack's latency is recorded), server PINGs,
//     disconnect frames and abrupt drops. Each envelope goes to one of the
//     app's connections, round-robin (several replicas may connect),
//     skipping connections already told to disconnect.
//   - Redelivery: when a connection goes away, envelopes sent on it and not
//     yet acknowledged are sent again on the next connection with
//     retry_attempt incremented and retry_reason "timeout"; acknowledged
//     ones are not. Real Slack retries only events_api envelopes and not
//     interactions, so the fake is stricter than Slack: a transport that
//     survives it de-duplicates correctly. Redeliver sends an envelope again
//     on demand (what Slack does after an ack timeout).
//   - Web API: chat.postMessage, chat.update, chat.postEphemeral, users.info,
//     users.lookupByEmail, conversations.open (form-encoded, token in the
//     form or as Bearer), views.open and views.update (JSON with Bearer),
//     response_url posts. Method errors are HTTP 200 {"ok":false,"error"};
//     invalid tokens give invalid_auth, missing ones not_authed. Triggers
//     expire 3 s after they were issued and are single-use
//     (expired_trigger_id). RateLimit injects 429 answers with Retry-After;
//     Options.PostInterval paces chat.postMessage per channel as Slack does
//     (429 with Retry-After for a post that comes too soon).
//   - The App Home (home.go): views.publish validated as Slack does (type
//     home, at most 100 blocks, 250 kB, the block shapes and text limits),
//     the last published view kept per user; app_home_opened events and
//     block_actions from a Home tab (no channel, message or response_url).
//   - Channels must be known (AddChannel, or opened DMs): otherwise
//     channel_not_found, as for a bot that is not in the channel.
//
// Everything is recorded for assertions: messages per channel with their
// blocks and update history, ephemerals, opened views, acks, calls.
package slackfake

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/gorilla/websocket"
)

// Defaults of Options.
const (
	DefaultAppToken     = "xapp-1-A0FAKE-1-fake"
	DefaultBotToken     = "xoxb-fake-bot-token"
	DefaultTeam         = "T0FAKE"
	DefaultAppID        = "A0FAKE"
	DefaultPingInterval = 5 * time.Second
	DefaultTriggerTTL   = 3 * time.Second
	DefaultAckWait      = 10 * time.Second

	ackDeadline = 3 * time.Second // how long Slack waits for an ack
)

// Options configure a Server. Zero values take the defaults.
type Options struct {
	AppToken     string
	BotToken     string
	Team         string        // the workspace the app is installed in
	AppID        string        //
	PingInterval time.Duration // how often the server PINGs each connection
	TriggerTTL   time.Duration // how long a trigger_id may be used (Slack: 3 s)
	AckWait      time.Duration // how long Deliver waits for an ack at most
	// PostInterval, when set, is Slack's pace for chat.postMessage: a post
	// to a channel less than PostInterval after the previous one accepted
	// there is answered 429 with Retry-After (whole seconds, at least 1),
	// as Slack does beyond about one message per second per channel. Zero
	// leaves posting unpaced.
	PostInterval time.Duration
	// Now is the clock PostInterval and TriggerTTL are measured on; nil is
	// the wall clock.
	Now func() time.Time
	// HomeTabDisabled answers views.publish of a home view with
	// not_enabled, as Slack does for an app whose App Home has no Home tab.
	HomeTabDisabled bool
}

// Server is the fake. Create it with New; Close it when done.
type Server struct {
	opts Options
	srv  *httptest.Server
	wg   sync.WaitGroup
	stop chan struct{}

	mu      sync.Mutex
	changed chan struct{} // closed (and replaced) whenever state changes
	closed  bool
	seq     int

	tickets      map[string]bool
	conns        map[int]*conn
	connSeq      int
	opens        int // successful apps.connections.open calls
	dropNext     bool
	rr           int
	pending      map[string]*pendingEnv
	sent         map[string]envelope
	acks         []Ack
	strayAcks    int
	calls        map[string]int
	rateLimits   map[string][]time.Duration
	rateLimited  map[string]int
	users        map[string]User
	channels     map[string]bool
	ims          map[string]string // user -> DM channel
	messages     map[string][]*Message
	lastPost     map[string]time.Time // channel -> when its last post was accepted (PostInterval)
	ephemerals   []Ephemeral
	views        map[string]*View
	viewOrder    []string
	triggers     map[string]*trigger
	responseURLs map[string]responseTarget
	homes        map[string]*HomeView // user -> last published Home tab (home.go)
}

// User is a workspace member.
type User struct {
	ID      string
	Team    string // default: the server's team
	Name    string
	Email   string
	Deleted bool
	IsBot   bool
	// TZ is the profile's time zone (IANA name; "" is America/Los_Angeles,
	// Slack's default for a new account).
	TZ string
}

type conn struct {
	id       int
	ws       *websocket.Conn
	wmu      sync.Mutex
	retiring bool // sent a disconnect frame: gets no new envelopes
}

func (c *conn) writeJSON(v any) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	_ = c.ws.SetWriteDeadline(time.Now().Add(5 * time.Second))
	return c.ws.WriteJSON(v)
}

type pendingEnv struct {
	env    envelope
	conn   int
	sentAt time.Time
	waiter chan Ack
}

type envelope struct {
	EnvelopeID             string          `json:"envelope_id"`
	Type                   string          `json:"type"`
	AcceptsResponsePayload bool            `json:"accepts_response_payload"`
	RetryAttempt           int             `json:"retry_attempt"`
	RetryReason            string          `json:"retry_reason"`
	Payload                json.RawMessage `json:"payload"`
}

// Ack is an acknowledgement received for an envelope.
type Ack struct {
	EnvelopeID   string
	Type         string          // envelope type
	RetryAttempt int             // of the delivery that was acknowledged
	Payload      json.RawMessage // the ack's payload, nil when there was none
	Latency      time.Duration   // from writing the envelope to reading the ack
	Conn         int             // connection the ack came on
	// Late is set when the ack took longer than Slack waits (3 s): Slack
	// would have shown the person an error and ignored the ack's payload.
	Late bool
}

// ResponseAction returns the ack payload's response_action ("" when none).
func (a Ack) ResponseAction() string {
	var p struct {
		ResponseAction string `json:"response_action"`
	}
	_ = json.Unmarshal(a.Payload, &p)
	return p.ResponseAction
}

// Errors returns the ack payload's errors map (view_submission).
func (a Ack) Errors() map[string]string {
	var p struct {
		Errors map[string]string `json:"errors"`
	}
	_ = json.Unmarshal(a.Payload, &p)
	return p.Errors
}

// New starts a fake on 127.0.0.1.
func New(opts Options) *Server {
	if opts.AppToken == "" {
		opts.AppToken = DefaultAppToken
	}
	if opts.BotToken == "" {
		opts.BotToken = DefaultBotToken
	}
	if opts.Team == "" {
		opts.Team = DefaultTeam
	}
	if opts.AppID == "" {
		opts.AppID = DefaultAppID
	}
	if opts.PingInterval <= 0 {
		opts.PingInterval = DefaultPingInterval
	}
	if opts.TriggerTTL <= 0 {
		opts.TriggerTTL = DefaultTriggerTTL
	}
	if opts.AckWait <= 0 {
		opts.AckWait = DefaultAckWait
	}
	s := &Server{
		opts:         opts,
		stop:         make(chan struct{}),
		changed:      make(chan struct{}),
		tickets:      map[string]bool{},
		conns:        map[int]*conn{},
		pending:      map[string]*pendingEnv{},
		sent:         map[string]envelope{},
		calls:        map[string]int{},
		rateLimits:   map[string][]time.Duration{},
		rateLimited:  map[string]int{},
		users:        map[string]User{},
		channels:     map[string]bool{},
		ims:          map[string]string{},
		messages:     map[string][]*Message{},
		lastPost:     map[string]time.Time{},
		views:        map[string]*View{},
		triggers:     map[string]*trigger{},
		responseURLs: map[string]responseTarget{},
		homes:        map[string]*HomeView{},
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/api/", s.serveAPI)
	mux.HandleFunc("/link", s.serveLink)
	mux.HandleFunc("/response/", s.serveResponseURL)
	s.srv = httptest.NewServer(mux)
	return s
}

// APIURL is the Web API base to configure clients with (ends in "/").
func (s *Server) APIURL() string { return s.srv.URL + "/api/" }

// AppToken and BotToken return the tokens the fake accepts.
func (s *Server) AppToken() string { return s.opts.AppToken }

// BotToken returns the bot token the fake accepts.
func (s *Server) BotToken() string { return s.opts.BotToken }

// Team returns the workspace id the app is installed in.
func (s *Server) Team() string { return s.opts.Team }

// Close drops every connection and stops the server.
func (s *Server) Close() {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return
	}
	s.closed = true
	close(s.stop)
	for _, c := range s.conns {
		_ = c.ws.UnderlyingConn().Close()
	}
	s.notifyLocked()
	s.mu.Unlock()
	s.wg.Wait()
	s.srv.Close()
}

func (s *Server) notifyLocked() {
	close(s.changed)
	s.changed = make(chan struct{})
}

// Wait blocks until cond (evaluated under no lock; it may call the
// accessors) is true or ctx ends. It re-checks whenever the fake records
// something.
func (s *Server) Wait(ctx context.Context, cond func() bool) error {
	for {
		s.mu.Lock()
		ch := s.changed
		s.mu.Unlock()
		if cond() {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("slackfake: condition not met: %w", ctx.Err())
		case <-ch:
		case <-time.After(100 * time.Millisecond): // cond may depend on state outside the fake
		}
	}
}

func (s *Server) nextID(prefix string) string {
	var b [6]byte
	_, _ = rand.Read(b[:])
	return prefix + strings.ToUpper(hex.EncodeToString(b[:]))
}

// serveLink is the Socket Mode websocket.
func (s *Server) serveLink(w http.ResponseWriter, r *http.Request) {
	ticket := r.URL.Query().Get("ticket")
	s.mu.Lock()
	valid := s.tickets[ticket]
	delete(s.tickets, ticket) // single use
	s.mu.Unlock()
	if !valid {
		http.Error(w, "invalid or used ticket", http.StatusUnauthorized)
		return
	}
	up := websocket.Upgrader{CheckOrigin: func(r *http.Request) bool {
		o := r.Header.Get("Origin")
		return o == "" || o == "https://api.slack.com"
	}}
	ws, err := up.Upgrade(w, r, nil)
	if err != nil {
		return // Upgrade has answered
	}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		_ = ws.Close()
		return
	}
	s.connSeq++
	c := &conn{id: s.connSeq, ws: ws}
	s.conns[c.id] = c
	n := len(s.conns)
	s.wg.Add(1)
	s.mu.Unlock()
	defer s.wg.Done()

	hello := map[string]any{
		"type":            "hello",
		"num_connections": n,
		"debug_info":      map[string]any{"host": "slackfake", "build_number": 1, "approximate_connection_time": 18060},
		"connection_info": map[string]any{"app_id": s.opts.AppID},
	}
	if err := c.writeJSON(hello); err != nil {
		s.dropConn(c)
		return
	}
	s.mu.Lock()
	s.notifyLocked() // a connection is ready for envelopes
	s.mu.Unlock()

	done := make(chan struct{})
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		t := time.NewTicker(s.opts.PingInterval)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-s.stop:
				return
			case <-t.C:
				if err := ws.WriteControl(websocket.PingMessage, []byte("ping"), time.Now().Add(5*time.Second)); err != nil {
					return
				}
			}
		}
	}()
	defer close(done)

	for {
		_, data, err := ws.ReadMessage()
		if err != nil {
			s.dropConn(c)
			return
		}
		s.onAck(c, data)
	}
}

func (s *Server) onAck(c *conn, data []byte) {
	var a struct {
		EnvelopeID string          `json:"envelope_id"`
		Payload    json.RawMessage `json:"payload"`
	}
	if err := json.Unmarshal(data, &a); err != nil || a.EnvelopeID == "" {
		s.mu.Lock()
		s.strayAcks++
		s.notifyLocked()
		s.mu.Unlock()
		return
	}
	if len(data) > 20*1024 {
		// Slack silently drops oversized acks.
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	p, ok := s.pending[a.EnvelopeID]
	if !ok {
		s.strayAcks++ // a second ack for an envelope (e.g. after a redelivery)
		s.notifyLocked()
		return
	}
	delete(s.pending, a.EnvelopeID)
	if string(a.Payload) == "null" {
		a.Payload = nil
	}
	ack := Ack{EnvelopeID: a.EnvelopeID, Type: p.env.Type, RetryAttempt: p.env.RetryAttempt, Payload: a.Payload, Latency: time.Since(p.sentAt), Conn: c.id}
	ack.Late = ack.Latency > ackDeadline
	s.acks = append(s.acks, ack)
	select {
	case p.waiter <- ack:
	default:
	}
	s.notifyLocked()
}

// dropConn forgets a connection and redelivers what it left unacknowledged.
func (s *Server) dropConn(c *conn) {
	_ = c.ws.Close()
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.conns[c.id]; !ok {
		return
	}
	delete(s.conns, c.id)
	s.notifyLocked()
	if s.closed {
		return
	}
	for _, p := range s.pending {
		if p.conn != c.id {
			continue
		}
		p.conn = 0
		p.env.RetryAttempt++
		p.env.RetryReason = "timeout"
		s.wg.Add(1)
		go func(p *pendingEnv) {
			defer s.wg.Done()
			_ = s.send(context.Background(), p)
		}(p)
	}
}

// send writes an envelope to a live connection, waiting for one.
func (s *Server) send(ctx context.Context, p *pendingEnv) error {
	for {
		s.mu.Lock()
		if s.closed {
			s.mu.Unlock()
			return errors.New("slackfake: server closed")
		}
		if cur := s.pending[p.env.EnvelopeID]; cur != p {
			s.mu.Unlock()
			return nil // acknowledged meanwhile
		}
		c := s.pickConn()
		ch := s.changed
		if c != nil {
			p.conn = c.id
			p.sentAt = time.Now()
			env := p.env
			drop := s.dropNext
			s.dropNext = false
			s.mu.Unlock()
			if err := c.writeJSON(env); err != nil {
				s.dropConn(c) // redelivers p
				return nil
			}
			if drop {
				_ = c.ws.UnderlyingConn().Close()
			}
			return nil
		}
		s.mu.Unlock()
		select {
		case <-ch:
		case <-s.stop:
			return errors.New("slackfake: server closed")
		case <-ctx.Done():
			return fmt.Errorf("slackfake: no connection to deliver on: %w", ctx.Err())
		}
	}
}

// pickConn chooses the connection for the next envelope: round-robin over
// the app's connections (Slack sends each event to one of them), skipping
// those told to disconnect while there are others. Called with s.mu held.
func (s *Server) pickConn() *conn {
	var live, retiring []*conn
	for _, c := range s.conns {
		if c.retiring {
			retiring = append(retiring, c)
		} else {
			live = append(live, c)
		}
	}
	if len(live) == 0 {
		live = retiring
	}
	if len(live) == 0 {
		return nil
	}
	slices.SortFunc(live, func(a, b *conn) int { return a.id - b.id })
	s.rr++
	return live[s.rr%len(live)]
}

// Deliver sends an envelope of typ ("slash_commands", "interactive",
// "events_api") with payload and waits for its ack (at most AckWait, or
// until ctx ends). Redeliveries after drops are covered: whichever delivery
// is acknowledged first answers.
func (s *Server) Deliver(ctx context.Context, typ string, payload any) (Ack, error) {
	raw, err := json.Marshal(payload)
	if err != nil {
		return Ack{}, fmt.Errorf("slackfake: payload: %w", err)
	}
	p := &pendingEnv{
		env: envelope{
			EnvelopeID:             s.nextID("env-"),
			Type:                   typ,
			AcceptsResponsePayload: typ == "interactive" || typ == "slash_commands",
			Payload:                raw,
		},
		waiter: make(chan Ack, 1),
	}
	s.mu.Lock()
	s.pending[p.env.EnvelopeID] = p
	s.sent[p.env.EnvelopeID] = p.env
	s.mu.Unlock()
	return s.deliver(ctx, p)
}

func (s *Server) deliver(ctx context.Context, p *pendingEnv) (Ack, error) {
	ctx, cancel := context.WithTimeout(ctx, s.opts.AckWait)
	defer cancel()
	if err := s.send(ctx, p); err != nil {
		return Ack{}, err
	}
	select {
	case a := <-p.waiter:
		return a, nil
	case <-ctx.Done():
		return Ack{}, fmt.Errorf("slackfake: no ack for %s: %w", p.env.EnvelopeID, ctx.Err())
	case <-s.stop:
		return Ack{}, errors.New("slackfake: server closed")
	}
}

// Redeliver sends an already acknowledged envelope again, with
// retry_attempt incremented, as Slack does when an ack did not reach it in
// time, and waits for the new ack.
func (s *Server) Redeliver(ctx context.Context, envelopeID string) (Ack, error) {
	s.mu.Lock()
	var orig *Ack
	for i := range s.acks {
		if s.acks[i].EnvelopeID == envelopeID {
			orig = &s.acks[i]
		}
	}
	if orig == nil {
		s.mu.Unlock()
		return Ack{}, fmt.Errorf("slackfake: no acknowledged envelope %s", envelopeID)
	}
	env, ok := s.sent[envelopeID]
	if !ok {
		s.mu.Unlock()
		return Ack{}, fmt.Errorf("slackfake: envelope %s unknown", envelopeID)
	}
	env.RetryAttempt = orig.RetryAttempt + 1
	env.RetryReason = "timeout"
	p := &pendingEnv{env: env, waiter: make(chan Ack, 1)}
	s.pending[envelopeID] = p
	s.mu.Unlock()
	return s.deliver(ctx, p)
}

// DropNextDelivery makes the next envelope write be followed at once by an
// abrupt close of that connection, before its ack can come back.
func (s *Server) DropNextDelivery() {
	s.mu.Lock()
	s.dropNext = true
	s.mu.Unlock()
}

// Drop closes every live connection abruptly (no close frame), like a
// network failure.
func (s *Server) Drop() {
	s.mu.Lock()
	var cs []*conn
	for _, c := range s.conns {
		cs = append(cs, c)
	}
	s.mu.Unlock()
	for _, c := range cs {
		_ = c.ws.UnderlyingConn().Close()
	}
}

// Disconnect sends {"type":"disconnect","reason":reason} on every live
// connection ("warning", "refresh_requested", "link_disabled").
func (s *Server) Disconnect(reason string) {
	s.mu.Lock()
	var cs []*conn
	for _, c := range s.conns {
		c.retiring = true
		cs = append(cs, c)
	}
	s.mu.Unlock()
	for _, c := range cs {
		_ = c.writeJSON(map[string]any{
			"type":       "disconnect",
			"reason":     reason,
			"debug_info": map[string]any{"host": "slackfake"},
		})
	}
}

// ConnectionsOpened counts successful apps.connections.open calls.
func (s *Server) ConnectionsOpened() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.opens
}

// LiveConnections counts open websockets.
func (s *Server) LiveConnections() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.conns)
}

// Acks returns every ack received, in order.
func (s *Server) Acks() []Ack {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Ack(nil), s.acks...)
}

// StrayAcks counts acks for envelopes that were not pending (second acks
// of redelivered envelopes) or that could not be parsed.
func (s *Server) StrayAcks() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.strayAcks
}

// Unacked counts envelopes sent and not acknowledged yet.
func (s *Server) Unacked() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.pending)
}
