package handlers_test

import (
	"context"
	"errors"
	"fmt"
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

// A retried delivery skips every part that already went out: a card is
// posted once per approver whichever entry posted it, and the requester's
// DM once per entry, as the stored references say.
func TestNotifierSkipsWhatAlreadyWentOut(t *testing.T) {
	c := &chat{dms: map[string][]handlers.Message{}}
	n := handlers.NewNotifier(c, nil)
	r := &access.Request{ID: "r-1", Requester: "alice@example.com", Role: "prod-admin", State: access.StatePending,
		Duration: time.Hour, Approvers: []string{"dave@example.com", "bob@example.com"}, Needed: 1,
		Messages: []access.MessageRef{
			{Platform: "test", Purpose: handlers.PurposeApproval, For: "dave@example.com", Channel: "dm:dave", ID: "d", Announcement: "submitted@1"},
			{Platform: "test", Purpose: handlers.PurposeNotice, For: "alice@example.com", Channel: "dm:alice", ID: "d", Announcement: "submitted@1"},
		}}
	refs, err := n.Notify(context.Background(), access.Event{Type: access.EvSubmitted, Request: r, ID: "submitted@1"})
	if err != nil {
		t.Fatal(err)
	}
	if len(c.dms["dave@example.com"]) != 0 || len(c.dms["alice@example.com"]) != 0 || len(c.dms["bob@example.com"]) != 1 {
		t.Fatalf("sent again what had gone out: dms %v", dmCounts(c))
	}
	if len(refs) != 1 || refs[0].For != "bob@example.com" || refs[0].Purpose != handlers.PurposeApproval || refs[0].Announcement != "submitted@1" {
		t.Fatalf("refs %+v, want bob's card of submitted@1", refs)
	}
	// Another entry's DM is another message; the card is still never posted again.
	r.Messages = append(r.Messages, refs...)
	if _, err := n.Notify(context.Background(), access.Event{Type: access.EvSubmitted, Request: r, ID: "submitted@9"}); err != nil {
		t.Fatal(err)
	}
	if len(c.dms["dave@example.com"]) != 0 || len(c.dms["bob@example.com"]) != 1 || len(c.dms["alice@example.com"]) != 1 {
		t.Fatalf("dms %v, want no card again and one DM for the other entry", dmCounts(c))
	}
}

func dmCounts(c *chat) map[string]int {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := map[string]int{}
	for who, ms := range c.dms {
		out[who] = len(ms)
	}
	return out
}

// flakyDM fails the DMs named in fail (once each) and the DMs to nobody.
type flakyDM struct {
	*chat
	fail map[string]int // identity -> DMs left to fail
}

func (f *flakyDM) DM(ctx context.Context, who string, m handlers.Message) (access.MessageRef, error) {
	if who == "nobody@example.com" {
		return access.MessageRef{}, fmt.Errorf("slack: chat user of %s: not in the workspace: %w", who, access.ErrNoIdentity)
	}
	f.chat.mu.Lock()
	left := f.fail[who]
	if left > 0 {
		f.fail[who] = left - 1
	}
	f.chat.mu.Unlock()
	if left > 0 {
		return access.MessageRef{}, errors.New("slack: chat.postMessage: ratelimited")
	}
	ref, err := f.chat.DM(ctx, who, m)
	f.chat.mu.Lock()
	ref.ID = fmt.Sprintf("%s-%d", who, len(f.chat.dms[who]))
	f.chat.mu.Unlock()
	return ref, err
}

// Through the service: the card to the first approver goes out, the one
// to the second fails; the sweep's retry posts the second card only, and
// the requester's DM stays sent once.
func TestPartialDeliveryRetriesOnlyTheMissingCard(t *testing.T) {
	st, err := bolt.Open(filepath.Join(t.TempDir(), "h.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	pol := &access.Policy{Roles: map[string]access.Role{
		"prod-admin": {Name: "prod-admin", Description: "Production admin", Provider: "dryrun", Group: "g",
			MaxDuration: 4 * time.Hour, DefaultDuration: time.Hour, ApproverUsers: []string{"dave@example.com", "bob@example.com", "nobody@example.com"},
			Approvals: 1, PendingTTL: time.Hour},
	}}
	clock := testclock.New(time.Date(2026, 11, 18, 10, 0, 0, 0, time.UTC))
	svc, err := access.NewService(access.Deps{Store: st, Policy: pol, Providers: map[string]access.Provisioner{"dryrun": dryrun.New(nil)}, Clock: clock})
	if err != nil {
		t.Fatal(err)
	}
	c := &flakyDM{chat: &chat{dms: map[string][]handlers.Message{}, security: "sec"}, fail: map[string]int{"bob@example.com": 1}}
	svc.SetNotifier(handlers.NewNotifier(c, nil))
	ctx := context.Background()
	r, err := svc.Submit(ctx, access.SubmitInput{Requester: "alice@example.com", Role: "prod-admin", Duration: time.Hour, Reason: "x"})
	if err != nil {
		t.Fatal(err)
	}
	if got := dmCounts(c.chat); got["dave@example.com"] != 1 || got["bob@example.com"] != 0 || got["alice@example.com"] != 1 || len(r.Outbox) != 1 {
		t.Fatalf("first try: dms %v, outbox %+v", got, r.Outbox)
	}
	for range 5 {
		at, ok := r.DueAt()
		if len(r.Outbox) == 0 || !ok {
			break
		}
		clock.Set(at)
		if err := svc.Process(ctx, r.ID); err != nil {
			t.Fatal(err)
		}
		if r, err = svc.Get(ctx, r.ID); err != nil {
			t.Fatal(err)
		}
	}
	got := dmCounts(c.chat)
	if got["dave@example.com"] != 1 || got["bob@example.com"] != 1 || got["alice@example.com"] != 1 || len(r.Outbox) != 0 {
		t.Fatalf("after the retry: dms %v (want one card to each approver, one DM to alice), outbox %+v", got, r.Outbox)
	}
	if !strings.Contains(c.chat.dms["bob@example.com"][0].Title, "asks for prod-admin") {
		t.Fatalf("bob got %+v, want the approval card", c.chat.dms["bob@example.com"][0])
	}
	// The approver without a chat account is a permanent failure: it did
	// not keep the entry owed. A decision now updates the three cards.
	if _, err := svc.Decide(ctx, r.ID, "bob@example.com", false, ""); err != nil {
		t.Fatal(err)
	}
	cur, err := svc.Get(ctx, r.ID)
	if err != nil {
		t.Fatal(err)
	}
	if len(cur.Outbox) != 0 {
		t.Fatalf("owed after the decision: %+v", cur.Outbox)
	}
	c.chat.mu.Lock()
	updates := len(c.chat.updates)
	c.chat.mu.Unlock()
	if updates != 2 {
		t.Fatalf("%d card updates after the decision, want 2 (dave's and bob's cards)", updates)
	}
}
