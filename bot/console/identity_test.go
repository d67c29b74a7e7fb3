package console_test

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/accessbot/accessbot/access"
	"github.com/accessbot/accessbot/bot/console"
	"github.com/accessbot/accessbot/handlers"
	"github.com/accessbot/accessbot/providers/dryrun"
	"github.com/accessbot/accessbot/store/bolt"
)

// The console folds user names and emails the one way identities are
// folded everywhere (access.NormalizeIdentity: ASCII case only), so a
// look-alike such as the Kelvin sign (U+212A, which strings.ToLower turns
// into a k) never stands in for another person.
func TestConsoleIdentitiesFoldedOneWay(t *testing.T) {
	const kelvin = "\u212A"
	ctx := context.Background()
	con := console.New(console.Config{Users: map[string]string{
		"Kate":   "Kate@Example.com",
		"kimono": kelvin + "im@example.com", // not plain ASCII: kept as it is, never kim's
	}}, &buffer{})

	if got, err := con.Identity(ctx, "KATE"); err != nil || got != "kate@example.com" {
		t.Errorf("Identity(KATE) = %q, %v; want kate@example.com (ASCII case folds)", got, err)
	}
	if got, err := con.ChatUser(ctx, " KATE@example.COM "); err != nil || got != "kate" {
		t.Errorf("ChatUser(KATE@example.COM) = %q, %v; want kate", got, err)
	}
	if got, err := con.Identity(ctx, kelvin+"ate"); !errors.Is(err, access.ErrNoIdentity) {
		t.Errorf("Identity(Kelvin-sign ate) = %q, %v; want no identity, not kate's", got, err)
	}
	if got, err := con.ChatUser(ctx, kelvin+"ate@example.com"); !errors.Is(err, access.ErrNoIdentity) {
		t.Errorf("ChatUser(Kelvin-sign ate@example.com) = %q, %v; want no chat user, not kate", got, err)
	}
	if got, err := con.Identity(ctx, "kimono"); err != nil || got != kelvin+"im@example.com" {
		t.Errorf("Identity(kimono) = %q, %v; want the configured look-alike as it is", got, err)
	}
	if got, err := con.ChatUser(ctx, "kim@example.com"); !errors.Is(err, access.ErrNoIdentity) {
		t.Errorf("ChatUser(kim@example.com) = %q, %v; want no chat user, not kimono", got, err)
	}
	if got, err := con.ChatUser(ctx, kelvin+"im@example.com"); !errors.Is(err, access.ErrBadIdentity) {
		t.Errorf("ChatUser(Kelvin-sign im@example.com) = %q, %v; want refused as not plain ASCII", got, err)
	}

	// Through the handler: a line typed as the look-alike of kate does not
	// act as kate, and the user with the look-alike email is refused.
	st, err := bolt.Open(filepath.Join(t.TempDir(), "c.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	out := &buffer{}
	con = console.New(console.Config{Users: map[string]string{"kate": "kate@example.com", "bob": "bob@example.com",
		"kimono": kelvin + "im@example.com"}}, out)
	pol := &access.Policy{Roles: map[string]access.Role{
		"prod-admin": {Name: "prod-admin", Description: "admin", Provider: "dryrun", Group: "g", MaxDuration: 4 * time.Hour,
			DefaultDuration: time.Hour, ApproverUsers: []string{"bob@example.com"}, Approvals: 1, PendingTTL: time.Hour},
	}}
	svc, err := access.NewService(access.Deps{Store: st, Policy: pol, Providers: map[string]access.Provisioner{"dryrun": dryrun.New(nil)}})
	if err != nil {
		t.Fatal(err)
	}
	con.SetHandler(handlers.New(svc, con, nil))
	svc.SetNotifier(handlers.NewNotifier(con, nil))
	for _, l := range []string{kelvin + "ate: /access prod-admin 1h fixing checkout", "kimono: /access prod-admin 1h fixing checkout"} {
		if err := con.Line(ctx, l); err != nil {
			t.Fatal(err)
		}
	}
	all, err := st.List(ctx, access.Filter{})
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range all {
		t.Errorf("request %s stored for %s from a look-alike console user", r.ID, r.Requester)
	}
	if o := out.String(); !strings.Contains(o, "plain ASCII") {
		t.Errorf("the look-alike email was not refused as such:\n%s", o)
	}
}
