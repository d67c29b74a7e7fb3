package handlers

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/accessbot/accessbot/access"
)

// Reminders and escalation of undecided requests: what the approvers, the
// escalation people and the requester are told (access/remind.go decides
// when).

// nudgeSend is what Notify's bookkeeping offers nudge: keep a reference
// (or a failure), tell whether this entry already sent a message of a
// purpose to someone, whether a card exists for someone, and DM once.
type nudgeSend struct {
	keep   func(ref access.MessageRef, purpose, who string, err error)
	sent   func(purpose, who string) bool
	posted func(purpose, who string) bool
	send   func(purpose, who string, m Message)
}

// nudge delivers an EvReminder or EvEscalated entry.
//
// A reminder goes as a reply under the approval card in the approvals
// channel, and to each approver who has not decided: as a reply under
// their own card when the cards are DMs (that reply is their DM), else as
// a DM.
//
// An escalation gives each person it added the approval card by DM
// (which later events update like every card), says so under the channel
// card, and tells the requester. The cards themselves were updated by
// Notify (they show "escalated to ...").
//
// An entry delivered (or retried) after the request stopped waiting sends
// nothing: a decided, cancelled or timed-out request is nobody's to chase.
func (n *Notifier) nudge(ctx context.Context, ev access.Event, s nudgeSend) {
	r := ev.Request
	if r.State != access.StatePending {
		return
	}
	channelCard, hasChannelCard := access.MessageRef{}, false
	dmCards := map[string]access.MessageRef{}
	for _, m := range r.Messages {
		if m.Purpose != PurposeApproval {
			continue
		}
		if m.For == "" {
			channelCard, hasChannelCard = m, true
		} else {
			dmCards[access.NormalizeIdentity(m.For)] = m
		}
	}
	reply := func(under access.MessageRef, who string, m Message) {
		if s.sent(PurposeReminder, who) {
			return
		}
		ref, err := n.chat.Reply(ctx, under, m)
		if err != nil {
			err = fmt.Errorf("reply under %s: %w", under.ID, err)
			if errors.Is(err, access.ErrNoIdentity) {
				err = access.Permanent(err)
			}
		}
		s.keep(ref, PurposeReminder, who, err)
	}
	since := ev.Reason // how long the request has been waiting
	switch ev.Type {
	case access.EvReminder:
		who := r.Undecided()
		if len(who) == 0 {
			return
		}
		if hasChannelCard {
			reply(channelCard, "", Message{Title: "Reminder: still waiting for a decision",
				Text: fmt.Sprintf("%s asked for *%s* %s ago. Waiting for: %s.", r.Requester, r.Role, since, strings.Join(who, ", "))})
		}
		for _, p := range who {
			m := reminderDM(r, since, hasChannelCard)
			if card, ok := dmCards[p]; ok && !hasChannelCard {
				reply(card, p, m)
				continue
			}
			s.send(PurposeReminder, p, m)
		}
	case access.EvEscalated:
		if len(r.EscalatedTo) == 0 {
			return
		}
		to := strings.Join(r.EscalatedTo, ", ")
		card := Card(r, ev.Role)
		for _, p := range r.EscalatedTo {
			if !s.posted(PurposeApproval, p) {
				s.send(PurposeApproval, p, card)
			}
		}
		if hasChannelCard {
			reply(channelCard, "", Message{Title: "Escalated to " + to, Color: "warning",
				Text: fmt.Sprintf("Nobody decided on %s's request for *%s* in %s; %s may decide it now.", r.Requester, r.Role, since, to)})
		}
		s.send(PurposeNotice, r.Requester, Message{Title: "Request " + r.ID + " was escalated", Color: "warning",
			Text: fmt.Sprintf("Nobody decided on *%s* in %s, so it was also sent to %s.", r.Role, since, to)})
	}
}

// reminderDM is the reminder an approver gets.
func reminderDM(r *access.Request, since string, channelCard bool) Message {
	where := "on the card above"
	if channelCard {
		where = "on the card in the approvals channel"
	}
	return Message{Title: "Reminder: request " + r.ID + " waits for your decision", Color: "warning",
		Text: fmt.Sprintf("%s asked for *%s* (%s) %s ago: %s\nApprove or deny %s, or type `/access approve %s` or `/access deny %s`.",
			r.Requester, r.Role, access.FormatDuration(r.Duration), since, userText(r.Reason), where, r.ID, r.ID),
		Footer: "Request " + r.ID}
}

// escalatedField is the card's line about an escalation, when there was
// one that asked anybody.
func escalatedField(r *access.Request) (Field, bool) {
	if !r.Escalated() || len(r.EscalatedTo) == 0 {
		return Field{}, false
	}
	return Field{"Escalated", "escalated to " + strings.Join(r.EscalatedTo, ", ") + " at " + stamp(r.EscalatedAt)}, true
}
