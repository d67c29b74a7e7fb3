package slackfake

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"
)

// HomeView is the Home tab last published for a user.
type HomeView struct {
	ID              string
	User            string
	CallbackID      string
	PrivateMetadata string
	Blocks          []map[string]any
	Hash            string
	Size            int       // bytes of the view JSON as received
	Publishes       int       // accepted views.publish calls for the user
	PublishedAt     time.Time // of the last one
}

// Limits views.publish enforces on a home view.
const (
	maxHomeBlocks   = 100
	maxViewBytes    = 250 * 1000
	maxSectionText  = 3000
	maxFieldText    = 2000
	maxFields       = 10
	maxHeaderText   = 150
	maxButtonText   = 75
	maxButtonValue  = 2000
	maxActionID     = 255
	maxActionsElems = 25
	maxContextElems = 10
	maxBlockID      = 255
)

// Home returns the Home tab last published for user.
func (s *Server) Home(user string) (HomeView, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	h, ok := s.homes[user]
	if !ok {
		return HomeView{}, false
	}
	c := *h
	return c, true
}

// HomePublishes counts the accepted views.publish calls for user.
func (s *Server) HomePublishes(user string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	if h, ok := s.homes[user]; ok {
		return h.Publishes
	}
	return 0
}

// viewsPublish checks a views.publish call as Slack does and keeps the
// view. A view Slack refuses gets invalid_arguments with Slack's
// "[ERROR] … [json-pointer:…]" lines in response_metadata.messages,
// view_too_large beyond 250 kB, not_enabled when the app has no Home tab.
func (s *Server) viewsPublish(body map[string]any) (any, apiError, []string) {
	user, _ := body["user_id"].(string)
	v, isObj := body["view"].(map[string]any)
	if user == "" {
		return nil, "invalid_arguments", []string{"[ERROR] missing required field: user_id"}
	}
	if !isObj {
		return nil, "invalid_arguments", []string{"[ERROR] must provide an object [json-pointer:/view]"}
	}
	raw, _ := json.Marshal(v)
	if len(raw) > maxViewBytes {
		return nil, "view_too_large", nil
	}
	if v["type"] != "home" {
		return nil, "invalid_arguments", []string{"[ERROR] must be one of the allowed values: home [json-pointer:/view/type]"}
	}
	if msgs := checkHomeView(v); len(msgs) > 0 {
		return nil, "invalid_arguments", msgs
	}
	if s.opts.HomeTabDisabled {
		return nil, "not_enabled", nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	u, ok := s.users[user]
	if !ok || u.Deleted {
		return nil, "invalid_arguments", []string{"[ERROR] invalid user_id [json-pointer:/user_id]"}
	}
	h, ok := s.homes[user]
	if !ok {
		h = &HomeView{ID: s.nextID("V"), User: user}
		s.homes[user] = h
	}
	if hash, _ := body["hash"].(string); hash != "" && hash != h.Hash {
		return nil, "hash_conflict", nil
	}
	h.Blocks = viewBlocks(v)
	h.CallbackID, _ = v["callback_id"].(string)
	h.PrivateMetadata, _ = v["private_metadata"].(string)
	h.Hash = s.nextID("h")
	h.Size = len(raw)
	h.Publishes++
	h.PublishedAt = s.now()
	s.notifyLocked()
	return map[string]any{"ok": true, "view": s.homeJSON(h)}, "", nil
}

func (s *Server) homeJSON(h *HomeView) map[string]any {
	return map[string]any{
		"id": h.ID, "team_id": s.opts.Team, "type": "home", "blocks": h.Blocks,
		"private_metadata": h.PrivateMetadata, "callback_id": h.CallbackID, "hash": h.Hash,
		"state": map[string]any{"values": map[string]any{}}, "clear_on_close": false, "notify_on_close": false,
		"root_view_id": h.ID, "previous_view_id": nil, "app_id": s.opts.AppID, "external_id": "",
		"app_installed_team_id": s.opts.Team, "bot_id": "B0FAKE",
	}
}

// checkHomeView returns Slack's complaints about a home view: the view's
// fields, the number of blocks and each block's shape and limits.
func checkHomeView(v map[string]any) []string {
	var msgs []string
	bad := func(ptr, format string, args ...any) {
		msgs = append(msgs, fmt.Sprintf("[ERROR] "+format+" [json-pointer:"+ptr+"]", args...))
	}
	if cb, ok := v["callback_id"]; ok {
		if s, isStr := cb.(string); !isStr || len(s) > 255 {
			bad("/view/callback_id", "must be a string of at most 255 characters")
		}
	}
	if pm, ok := v["private_metadata"]; ok {
		if s, isStr := pm.(string); !isStr || len(s) > 3000 {
			bad("/view/private_metadata", "must be a string of at most 3000 characters")
		}
	}
	blocks, ok := v["blocks"].([]any)
	if !ok {
		bad("/view", "missing required field: blocks")
		return msgs
	}
	if len(blocks) > maxHomeBlocks {
		bad("/view/blocks", "no more than %d items allowed", maxHomeBlocks)
		return msgs
	}
	ids := map[string]bool{}
	for i, raw := range blocks {
		ptr := fmt.Sprintf("/view/blocks/%d", i)
		b, ok := raw.(map[string]any)
		if !ok {
			bad(ptr, "must provide an object")
			continue
		}
		if id, present := b["block_id"]; present {
			sid, isStr := id.(string)
			switch {
			case !isStr || sid == "" || len(sid) > maxBlockID:
				bad(ptr+"/block_id", "must be a string of 1 to %d characters", maxBlockID)
			case ids[sid]:
				bad(ptr+"/block_id", "duplicate block_id %q", sid)
			}
			ids[sid] = true
		}
		switch b["type"] {
		case "section":
			text, hasText := b["text"]
			fields, hasFields := b["fields"].([]any)
			if !hasText && !hasFields {
				bad(ptr, "must provide either text or fields")
			}
			if hasText {
				checkText(text, ptr+"/text", maxSectionText, false, bad)
			}
			if hasFields {
				if len(fields) == 0 || len(fields) > maxFields {
					bad(ptr+"/fields", "must provide 1 to %d items", maxFields)
				}
				for j, f := range fields {
					checkText(f, fmt.Sprintf("%s/fields/%d", ptr, j), maxFieldText, false, bad)
				}
			}
			if acc, ok := b["accessory"]; ok {
				checkElement(acc, ptr+"/accessory", bad)
			}
		case "actions":
			els, _ := b["elements"].([]any)
			if len(els) == 0 {
				bad(ptr+"/elements", "must provide at least 1 item")
			}
			if len(els) > maxActionsElems {
				bad(ptr+"/elements", "no more than %d items allowed", maxActionsElems)
			}
			actionIDs := map[string]bool{}
			for j, e := range els {
				checkElement(e, fmt.Sprintf("%s/elements/%d", ptr, j), bad)
				if em, ok := e.(map[string]any); ok {
					if id, _ := em["action_id"].(string); id != "" {
						if actionIDs[id] {
							bad(fmt.Sprintf("%s/elements/%d/action_id", ptr, j), "duplicate action_id %q", id)
						}
						actionIDs[id] = true
					}
				}
			}
		case "context":
			els, _ := b["elements"].([]any)
			if len(els) == 0 || len(els) > maxContextElems {
				bad(ptr+"/elements", "must provide 1 to %d items", maxContextElems)
			}
			for j, e := range els {
				checkText(e, fmt.Sprintf("%s/elements/%d", ptr, j), maxSectionText, false, bad)
			}
		case "header":
			checkText(b["text"], ptr+"/text", maxHeaderText, true, bad)
		case "divider":
		case "image", "input", "rich_text", "video", "file", "markdown":
			// Shapes accessbot does not send; accepted as they are.
		default:
			bad(ptr+"/type", "unknown block type %v", b["type"])
		}
	}
	return msgs
}

// checkText checks a text object: plain_text or mrkdwn (plainOnly: only
// plain_text), 1 to limit characters.
func checkText(v any, ptr string, limit int, plainOnly bool, bad func(ptr, format string, args ...any)) {
	t, ok := v.(map[string]any)
	if !ok {
		bad(ptr, "must provide an object")
		return
	}
	switch t["type"] {
	case "plain_text":
	case "mrkdwn":
		if plainOnly {
			bad(ptr+"/type", "must be plain_text")
		}
	default:
		bad(ptr+"/type", "must be one of plain_text, mrkdwn")
	}
	s, _ := t["text"].(string)
	switch n := utf8.RuneCountInString(s); {
	case n == 0:
		bad(ptr+"/text", "must be more than 0 characters")
	case n > limit:
		bad(ptr+"/text", "must be less than %d characters", limit+1)
	}
}

// checkElement checks an interactive element; buttons in detail.
func checkElement(v any, ptr string, bad func(ptr, format string, args ...any)) {
	e, ok := v.(map[string]any)
	if !ok {
		bad(ptr, "must provide an object")
		return
	}
	if id, present := e["action_id"]; present {
		if s, isStr := id.(string); !isStr || s == "" || len(s) > maxActionID {
			bad(ptr+"/action_id", "must be a string of 1 to %d characters", maxActionID)
		}
	}
	if e["type"] != "button" {
		return
	}
	checkText(e["text"], ptr+"/text", maxButtonText, true, bad)
	if val, present := e["value"]; present {
		if s, isStr := val.(string); !isStr || len(s) > maxButtonValue {
			bad(ptr+"/value", "must be less than %d characters", maxButtonValue+1)
		}
	}
	if st, present := e["style"]; present && st != "primary" && st != "danger" {
		bad(ptr+"/style", "must be one of primary, danger")
	}
}

// AppHomeOpened delivers the app_home_opened event of user opening tab
// ("home" or "messages") of the app, as an events_api envelope, with the
// Home view last published for them when there is one.
func (s *Server) AppHomeOpened(ctx context.Context, user, team, tab string) (Result, error) {
	team = s.teamOr(team)
	s.mu.Lock()
	ch := s.ims[user]
	if ch == "" {
		ch = "D" + user
	}
	event := map[string]any{"type": "app_home_opened", "user": user, "channel": ch, "tab": tab, "event_ts": s.actionTSLocked()}
	if h, ok := s.homes[user]; ok && tab == "home" {
		event["view"] = s.homeJSON(h)
	}
	eventID := s.nextID("Ev")
	s.mu.Unlock()
	payload := map[string]any{
		"token": "fake-verification-token", "team_id": team, "api_app_id": s.opts.AppID,
		"event": event, "type": "event_callback", "event_id": eventID, "event_time": time.Now().Unix(),
		"authorizations":        []any{map[string]any{"team_id": team, "user_id": "UBOTFAKE", "is_bot": true}},
		"is_ext_shared_channel": false,
	}
	ack, err := s.Deliver(ctx, "events_api", payload)
	return Result{Ack: ack, EnvelopeID: ack.EnvelopeID}, err
}

func (s *Server) actionTSLocked() string {
	s.seq++
	return fmt.Sprintf("%d.%06d", time.Now().Unix(), s.seq%1000000)
}

// HomeClick is a button press in a user's Home tab.
type HomeClick struct {
	User     string
	Team     string // default: the server's team
	ActionID string
	Value    string
}

// ClickHome finds the button with the action_id and value in the Home tab
// last published for c.User (in an actions block or as a section's
// accessory) and delivers the block_actions envelope Slack sends for it:
// a view container, the view, no channel, message or response_url.
func (s *Server) ClickHome(ctx context.Context, c HomeClick) (Result, error) {
	team := s.teamOr(c.Team)
	s.mu.Lock()
	h, ok := s.homes[c.User]
	var (
		button map[string]any
		block  string
		view   map[string]any
	)
	if ok {
		view = s.homeJSON(h)
		for _, b := range h.Blocks {
			var els []any
			if acc, ok := b["accessory"].(map[string]any); ok {
				els = append(els, acc)
			}
			if list, ok := b["elements"].([]any); ok && b["type"] == "actions" {
				els = append(els, list...)
			}
			for _, e := range els {
				em, _ := e.(map[string]any)
				if em["action_id"] == c.ActionID && em["value"] == c.Value {
					button = em
					block, _ = b["block_id"].(string)
				}
			}
		}
	}
	s.mu.Unlock()
	if !ok {
		return Result{}, fmt.Errorf("slackfake: no Home published for %s", c.User)
	}
	if button == nil {
		return Result{}, fmt.Errorf("slackfake: the Home of %s shows no button %s=%s", c.User, c.ActionID, c.Value)
	}
	trig := s.issueTrigger(c.User, team)
	action := map[string]any{
		"type": "button", "block_id": block, "action_id": c.ActionID, "value": c.Value,
		"text": button["text"], "action_ts": s.actionTS(),
	}
	if st, ok := button["style"]; ok {
		action["style"] = st
	}
	payload := map[string]any{
		"type":                  "block_actions",
		"user":                  map[string]any{"id": c.User, "username": s.userName(c.User), "name": s.userName(c.User), "team_id": team},
		"api_app_id":            s.opts.AppID,
		"token":                 "fake-verification-token",
		"container":             map[string]any{"type": "view", "view_id": view["id"]},
		"trigger_id":            trig,
		"team":                  map[string]any{"id": team, "domain": strings.ToLower(team)},
		"enterprise":            nil,
		"is_enterprise_install": false,
		"view":                  view,
		"actions":               []any{action},
	}
	ack, err := s.Deliver(ctx, "interactive", payload)
	return Result{Ack: ack, TriggerID: trig, EnvelopeID: ack.EnvelopeID}, err
}
