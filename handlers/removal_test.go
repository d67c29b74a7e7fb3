package handlers_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/accessbot/accessbot/access"
	"github.com/accessbot/accessbot/handlers"
)

func messageText(m handlers.Message) string {
	var b strings.Builder
	b.WriteString(m.Title + "\n" + m.Text + "\n")
	for _, f := range m.Fields {
		b.WriteString(f.Label + ": " + f.Value + "\n")
	}
	return b.String() + m.Footer
}

// The security channel hears who, which group, since when, how many
// attempts and the last error of a failing revocation, and again when it
// succeeds; a user gone from the provider is said plainly.
func TestRemovalAnnouncements(t *testing.T) {
	since := time.Date(2026, 11, 18, 11, 0, 0, 0, time.UTC)
	r := &access.Request{ID: "r-abc", Requester: "alice@example.com", Role: "prod-admin", Provider: "aws",
		Group: "90677f8d", State: access.StateRevoking, FailingSince: since, Attempts: 7,
		LastError: "aws: remove alice@example.com from group 90677f8d: ThrottlingException: Rate exceeded",
		UpdatedAt: since.Add(3 * time.Minute)}
	c := &chat{dms: map[string][]handlers.Message{}, security: "C0SECURITY"}
	n := handlers.NewNotifier(c, nil)
	cases := []struct {
		ev   access.EventType
		want []string
	}{
		{access.EvRevokeAlert, []string{"Revocation keeps failing: alice@example.com still has prod-admin", "aws group 90677f8d",
			"2026-11-18 11:00 UTC", "7 attempts", "ThrottlingException: Rate exceeded", "Request r-abc"}},
		{access.EvRevokeRecovered, []string{"Revocation succeeded: alice@example.com no longer has prod-admin", "aws group 90677f8d",
			"failing since 2026-11-18 11:00 UTC", "7 failed attempts", "Removed: 2026-11-18 11:03 UTC"}},
		{access.EvUserGone, []string{"alice@example.com no longer exists in aws", "no membership of aws group 90677f8d",
			"recorded as ended", "check the group by hand"}},
	}
	for i, tc := range cases {
		refs, err := n.Notify(context.Background(), access.Event{Type: tc.ev, Request: r, Actor: access.SystemActor, Reason: r.LastError})
		if err != nil || len(refs) != 1 || refs[0].Channel != "C0SECURITY" {
			t.Fatalf("%s: %v %+v", tc.ev, err, refs)
		}
		got := messageText(c.posts[i])
		for _, w := range tc.want {
			if !strings.Contains(got, w) {
				t.Errorf("%s: missing %q in\n%s", tc.ev, w, got)
			}
		}
	}
	// Without a security channel the post fails, so the service retries it.
	c.security = ""
	if _, err := n.Notify(context.Background(), access.Event{Type: access.EvRevokeAlert, Request: r}); err == nil {
		t.Fatal("an undeliverable alert reported success")
	}
}
