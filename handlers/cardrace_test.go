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

// slowPost is a chat whose Post of the approval card blocks until the test
// lets it go, so that a decision lands while the card is being posted.
type slowPost struct {
	*chat
	posted  chan string // the request id of the card being posted
	release chan struct{}
	refs    map[string]handlers.Message // the last rendering of each message
	failing bool                        // posts fail at once (the bot is not in the channel)
}

func (c *slowPost) setFailing(on bool) {
	c.mu.Lock()
	c.failing = on
	c.mu.Unlock()
}

func (c *slowPost) Post(ctx context.Context, ch string, m handlers.Message) (access.MessageRef, error) {
	c.mu.Lock()
	failing := c.failing
	c.mu.Unlock()
	if failing {
		return access.MessageRef{}, errors.New("not_in_channel")
	}
	ref, err := c.chat.Post(ctx, ch, m)
	c.mu.Lock()
	c.refs[ref.ID] = m
	c.mu.Unlock()
	c.posted <- strings.TrimPrefix(m.Footer, "Request ")
	<-c.release
	return ref, err
}

func (c *slowPost) Update(ctx context.Context, ref access.MessageRef, m handlers.Message) error {
	c.mu.Lock()
	c.refs[ref.ID] = m
	c.mu.Unlock()
	return c.chat.Update(ctx, ref, m)
}

// A decision that lands while the approval card is still being posted
// read the request before the card's reference was kept: the card must
// still end up showing the decision, without Approve/Deny buttons.
func TestCardShowsDecisionMadeWhilePosting(t *testing.T) {
	for _, approve := range []bool{false, true} {
		st, err := bolt.Open(filepath.Join(t.TempDir(), "h.db"))
		if err != nil {
			t.Fatal(err)
		}
		pol := &access.Policy{Roles: map[string]access.Role{
			"prod-admin": {Name: "prod-admin", Description: "Production admin", Provider: "dryrun", Group: "g",
				MaxDuration: 4 * time.Hour, DefaultDuration: time.Hour, ApproverUsers: []string{"bob@example.com"},
				Approvals: 1, PendingTTL: time.Hour},
		}}
		svc, err := access.NewService(access.Deps{Store: st, Policy: pol, Providers: map[string]access.Provisioner{"dryrun": dryrun.New(nil)}})
		if err != nil {
			t.Fatal(err)
		}
		c := &slowPost{chat: &chat{dms: map[string][]handlers.Message{}, channel: "approvals", security: "sec"},
			posted: make(chan string, 1), release: make(chan struct{}), refs: map[string]handlers.Message{}}
		svc.SetNotifier(handlers.NewNotifier(c, nil))
		h := handlers.New(svc, c, nil)

		done := make(chan handlers.Reply)
		go func() { done <- cmd(h, "alice", "prod-admin 1h fixing checkout") }()
		id := <-c.posted
		r, err := svc.Decide(context.Background(), id, "bob@example.com", approve, "")
		if err != nil {
			t.Fatalf("decide: %v", err)
		}
		close(c.release)
		<-done

		card := c.refs["1"]
		t.Logf("approve=%v: request %s %s; card status %q, buttons %+v", approve, id, r.State, card.Fields[5].Value, card.Buttons)
		for _, b := range card.Buttons {
			if b.Action == handlers.ActionApprove || b.Action == handlers.ActionDeny {
				t.Errorf("approve=%v: the card still offers %q after the request was %s", approve, b.Label, r.State)
			}
		}
		if card.Fields[5].Value == "pending" || strings.Contains(card.Fields[5].Value, "waiting") {
			t.Errorf("approve=%v: the card still reads %q", approve, card.Fields[5].Value)
		}
		st.Close()
	}
}

// The same for the break-glass announcement, posted from its outbox by the
// sweep after a first post failed: acknowledged while it was being posted,
// it must end up saying so, without the Acknowledge button.
func TestBreakGlassCardShowsAckMadeWhilePosting(t *testing.T) {
	st, err := bolt.Open(filepath.Join(t.TempDir(), "h.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	pol := &access.Policy{Roles: map[string]access.Role{
		"prod-admin": {Name: "prod-admin", Description: "Production admin", Provider: "dryrun", Group: "g",
			MaxDuration: 4 * time.Hour, DefaultDuration: time.Hour, ApproverUsers: []string{"bob@example.com"},
			Approvals: 1, PendingTTL: time.Hour, BreakGlass: true},
	}, BreakGlass: []string{"erin@example.com"}, Acknowledgers: []string{"dave@example.com"}}
	clock := testclock.New(time.Date(2026, 11, 18, 10, 0, 0, 0, time.UTC))
	svc, err := access.NewService(access.Deps{Store: st, Policy: pol, Providers: map[string]access.Provisioner{"dryrun": dryrun.New(nil)},
		Clock: clock})
	if err != nil {
		t.Fatal(err)
	}
	c := &slowPost{chat: &chat{dms: map[string][]handlers.Message{}, channel: "approvals", security: "sec"},
		posted: make(chan string, 1), release: make(chan struct{}), refs: map[string]handlers.Message{}, failing: true}
	svc.SetNotifier(handlers.NewNotifier(c, nil))
	r, err := svc.BreakGlass(context.Background(), access.SubmitInput{Requester: "erin@example.com", Role: "prod-admin",
		Duration: time.Hour, Reason: "checkout down"})
	if err != nil || r.State != access.StateActive || len(r.Outbox) != 1 {
		t.Fatalf("setup: %+v, %v; want active with the announcement owed", r, err)
	}
	c.setFailing(false)
	clock.Advance(time.Minute)

	done := make(chan error)
	go func() { done <- svc.Process(context.Background(), r.ID) }()
	id := <-c.posted
	if _, err := svc.Acknowledge(context.Background(), id, "dave@example.com"); err != nil {
		t.Fatalf("acknowledge: %v", err)
	}
	close(c.release)
	if err := <-done; err != nil {
		t.Fatalf("process: %v", err)
	}
	card := c.refs["1"]
	t.Logf("announcement of %s: %q, buttons %+v", id, card.Text, card.Buttons)
	if len(card.Buttons) != 0 || !strings.Contains(card.Text, "Acknowledged by dave@example.com") {
		t.Errorf("the announcement still asks for an acknowledgement already given: %q, buttons %+v", card.Text, card.Buttons)
	}
}
