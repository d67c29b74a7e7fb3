package slackfake

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"
)

// Command is a slash command typed by User of Team in Channel.
type Command struct {
	User    string
	Team    string // default: the server's team
	Channel string
	Command string // default "/access"
	Text    string
}

// Result is what a helper returns: the ack and the ids the envelope
// carried.
type Result struct {
	Ack         Ack
	TriggerID   string
	ResponseURL string
	EnvelopeID  string
}

func (s *Server) teamOr(t string) string {
	if t == "" {
		return s.opts.Team
	}
	return t
}

func (s *Server) userName(id string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if u, ok := s.users[id]; ok {
		return u.Name
	}
	return strings.ToLower(id)
}

// SlashCommand delivers a slash_commands envelope and returns its ack.
func (s *Server) SlashCommand(ctx context.Context, c Command) (Result, error) {
	team := s.teamOr(c.Team)
	if c.Command == "" {
		c.Command = "/access"
	}
	trig := s.issueTrigger(c.User, team)
	rurl := s.newResponseURL(c.Channel, c.User)
	payload := map[string]string{
		"token":                 "fake-verification-token",
		"team_id":               team,
		"team_domain":           strings.ToLower(team),
		"channel_id":            c.Channel,
		"channel_name":          strings.ToLower(c.Channel),
		"user_id":               c.User,
		"user_name":             s.userName(c.User),
		"command":               c.Command,
		"text":                  c.Text,
		"api_app_id":            s.opts.AppID,
		"is_enterprise_install": "false",
		"response_url":          rurl,
		"trigger_id":            trig,
	}
	ack, err := s.Deliver(ctx, "slash_commands", payload)
	return Result{Ack: ack, TriggerID: trig, ResponseURL: rurl, EnvelopeID: ack.EnvelopeID}, err
}

// Click is a button press on a posted message.
type Click struct {
	User     string
	Team     string // default: the server's team
	Channel  string // optional: only look in this channel
	TS       string // optional: only this message
	ActionID string
	Value    string
	// Stale also finds buttons on earlier versions of a message: what a
	// client still shows for a moment after an update (concurrent clicks).
	Stale bool
}

// Click finds the newest posted message that has a button with the
// action_id and value (as a person can only press buttons that are shown)
// and delivers the block_actions envelope.
func (s *Server) Click(ctx context.Context, c Click) (Result, error) {
	team := s.teamOr(c.Team)
	s.mu.Lock()
	var (
		msg    *Message
		button map[string]any
		block  string
	)
	for ch, ms := range s.messages {
		if c.Channel != "" && ch != c.Channel {
			continue
		}
		for _, m := range ms {
			if c.TS != "" && m.TS != c.TS {
				continue
			}
			versions := [][]map[string]any{m.Blocks}
			if c.Stale {
				for _, v := range m.History {
					versions = append(versions, v.Blocks)
				}
			}
			for _, b := range slices.Concat(versions...) {
				if b["type"] != "actions" {
					continue
				}
				els, _ := b["elements"].([]any)
				for _, e := range els {
					em, _ := e.(map[string]any)
					if em["action_id"] == c.ActionID && em["value"] == c.Value {
						if msg == nil || m.TS > msg.TS {
							msg, button = m, em
							block, _ = b["block_id"].(string)
						}
					}
				}
			}
		}
	}
	var msgCopy Message
	if msg != nil {
		msgCopy = copyMessage(msg)
	}
	s.mu.Unlock()
	if msg == nil {
		return Result{}, fmt.Errorf("slackfake: no message shows a button %s=%s", c.ActionID, c.Value)
	}
	trig := s.issueTrigger(c.User, team)
	rurl := s.newResponseURL(msgCopy.Channel, c.User)
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
		"container":             map[string]any{"type": "message", "message_ts": msgCopy.TS, "channel_id": msgCopy.Channel, "is_ephemeral": false},
		"trigger_id":            trig,
		"team":                  map[string]any{"id": team, "domain": strings.ToLower(team)},
		"enterprise":            nil,
		"is_enterprise_install": false,
		"channel":               map[string]any{"id": msgCopy.Channel, "name": strings.ToLower(msgCopy.Channel)},
		"message":               map[string]any{"type": "message", "bot_id": "B0FAKE", "text": msgCopy.Text, "ts": msgCopy.TS, "blocks": msgCopy.Blocks},
		"state":                 map[string]any{"values": map[string]any{}},
		"response_url":          rurl,
		"actions":               []any{action},
	}
	ack, err := s.Deliver(ctx, "interactive", payload)
	return Result{Ack: ack, TriggerID: trig, ResponseURL: rurl, EnvelopeID: ack.EnvelopeID}, err
}

func (s *Server) actionTS() string {
	now := time.Now()
	s.mu.Lock()
	s.seq++
	n := s.seq
	s.mu.Unlock()
	return fmt.Sprintf("%d.%06d", now.Unix(), n%1000000)
}

// View returns an opened view by id.
func (s *Server) View(id string) (View, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	v, ok := s.views[id]
	if !ok {
		return View{}, false
	}
	return *v, true
}

// SubmitView submits an opened modal as user of team with values by
// block_id: the text of a plain_text_input, the value of a select's
// option, or the values of a multi-select's options separated by commas
// ("prod-admin,db-admin"). Like the Slack client, it refuses to submit a
// required input that is empty, or a static_select or multi_static_select
// value that is not among the options.
func (s *Server) SubmitView(ctx context.Context, viewID, user, team string, values map[string]string) (Result, error) {
	team = s.teamOr(team)
	v, ok := s.View(viewID)
	if !ok {
		return Result{}, fmt.Errorf("slackfake: no view %s", viewID)
	}
	state := map[string]any{}
	for _, b := range v.Blocks {
		if b["type"] != "input" {
			continue
		}
		blockID, _ := b["block_id"].(string)
		el, _ := b["element"].(map[string]any)
		actionID, _ := el["action_id"].(string)
		typ, _ := el["type"].(string)
		optional, _ := b["optional"].(bool)
		val, given := values[blockID]
		if !given {
			if iv, ok := el["initial_value"].(string); ok {
				val = iv
			}
			if io, ok := el["initial_option"].(map[string]any); ok {
				val, _ = io["value"].(string)
			}
			if ios, ok := el["initial_options"].([]any); ok {
				var vals []string
				for _, o := range ios {
					om, _ := o.(map[string]any)
					v, _ := om["value"].(string)
					vals = append(vals, v)
				}
				val = strings.Join(vals, ",")
			}
		}
		if val == "" && !optional {
			return Result{}, fmt.Errorf("slackfake: input %q is required; the Slack client would not submit", blockID)
		}
		entry := map[string]any{"type": typ}
		switch typ {
		case "static_select", "external_select":
			if val == "" {
				entry["selected_option"] = nil
				break
			}
			opt := map[string]any{"text": map[string]any{"type": "plain_text", "text": val, "emoji": true}, "value": val}
			if typ == "static_select" {
				found := false
				opts, _ := el["options"].([]any)
				for _, o := range opts {
					om, _ := o.(map[string]any)
					if om["value"] == val {
						opt, found = om, true
					}
				}
				if !found {
					return Result{}, fmt.Errorf("slackfake: %q is not an option of %q", val, blockID)
				}
			}
			entry["selected_option"] = opt
		case "multi_static_select", "multi_external_select":
			sel := []any{}
			for _, v := range strings.Split(val, ",") {
				if v == "" {
					continue
				}
				opt := map[string]any{"text": map[string]any{"type": "plain_text", "text": v, "emoji": true}, "value": v}
				if typ == "multi_static_select" {
					found := false
					opts, _ := el["options"].([]any)
					for _, o := range opts {
						om, _ := o.(map[string]any)
						if om["value"] == v {
							opt, found = om, true
						}
					}
					if !found {
						return Result{}, fmt.Errorf("slackfake: %q is not an option of %q", v, blockID)
					}
				}
				sel = append(sel, opt)
			}
			if max, ok := el["max_selected_items"].(float64); ok && float64(len(sel)) > max {
				return Result{}, fmt.Errorf("slackfake: %d options chosen in %q, at most %v; the Slack client would not allow it", len(sel), blockID, max)
			}
			entry["selected_options"] = sel
		default:
			if val == "" {
				entry["value"] = nil
			} else {
				entry["value"] = val
			}
		}
		state[blockID] = map[string]any{actionID: entry}
	}
	view := s.viewJSON(&v)
	view["state"] = map[string]any{"values": state}
	trig := s.issueTrigger(user, team)
	payload := map[string]any{
		"type":                  "view_submission",
		"team":                  map[string]any{"id": team, "domain": strings.ToLower(team)},
		"user":                  map[string]any{"id": user, "username": s.userName(user), "name": s.userName(user), "team_id": team},
		"api_app_id":            s.opts.AppID,
		"token":                 "fake-verification-token",
		"trigger_id":            trig,
		"view":                  view,
		"response_urls":         []any{},
		"is_enterprise_install": false,
		"enterprise":            nil,
	}
	ack, err := s.Deliver(ctx, "interactive", payload)
	return Result{Ack: ack, TriggerID: trig, EnvelopeID: ack.EnvelopeID}, err
}

// Option is one choice served for an external_select.
type Option struct {
	Text  string
	Value string
}

// Suggest types query into an external_select (by block_id) of an opened
// modal and returns the options the app answered in its ack.
func (s *Server) Suggest(ctx context.Context, viewID, user, team, blockID, query string) ([]Option, Result, error) {
	team = s.teamOr(team)
	v, ok := s.View(viewID)
	if !ok {
		return nil, Result{}, fmt.Errorf("slackfake: no view %s", viewID)
	}
	actionID := ""
	for _, b := range v.Blocks {
		if b["block_id"] == blockID {
			el, _ := b["element"].(map[string]any)
			if el["type"] != "external_select" && el["type"] != "multi_external_select" {
				return nil, Result{}, fmt.Errorf("slackfake: block %q is not an external_select or multi_external_select", blockID)
			}
			actionID, _ = el["action_id"].(string)
		}
	}
	if actionID == "" {
		return nil, Result{}, fmt.Errorf("slackfake: no block %q in view %s", blockID, viewID)
	}
	payload := map[string]any{
		"type":       "block_suggestion",
		"user":       map[string]any{"id": user, "username": s.userName(user), "name": s.userName(user), "team_id": team},
		"container":  map[string]any{"type": "view", "view_id": viewID},
		"api_app_id": s.opts.AppID,
		"token":      "fake-verification-token",
		"action_id":  actionID,
		"block_id":   blockID,
		"value":      query,
		"team":       map[string]any{"id": team, "domain": strings.ToLower(team)},
		"view":       s.viewJSON(&v),
	}
	ack, err := s.Deliver(ctx, "interactive", payload)
	res := Result{Ack: ack, EnvelopeID: ack.EnvelopeID}
	if err != nil {
		return nil, res, err
	}
	var body struct {
		Options []struct {
			Text struct {
				Text string `json:"text"`
			} `json:"text"`
			Value string `json:"value"`
		} `json:"options"`
	}
	if len(ack.Payload) > 0 {
		if err := json.Unmarshal(ack.Payload, &body); err != nil {
			return nil, res, fmt.Errorf("slackfake: options ack: %w", err)
		}
	}
	var out []Option
	for _, o := range body.Options {
		out = append(out, Option{Text: o.Text.Text, Value: o.Value})
	}
	return out, res, nil
}
