package metrics_test

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/accessbot/accessbot/access"
	"github.com/accessbot/accessbot/metrics"
	"github.com/accessbot/accessbot/store/bolt"
)

// Several roles in one request: CreateMany through the wrapped store
// counts each member's submission under its own role.
func TestCreateManyCounted(t *testing.T) {
	st, err := bolt.Open(filepath.Join(t.TempDir(), "m.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	m := metrics.New(metrics.Options{Roles: []string{"prod-admin", "db-admin"}})
	w := m.WrapStore(st)
	at := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	var rs []*access.Request
	var evs []access.AuditEvent
	for _, role := range []string{"prod-admin", "db-admin"} {
		r := &access.Request{ID: "r-" + role, Kind: access.KindRequest, Requester: "alice@example.com", Role: role,
			State: access.StatePending, CreatedAt: at, UpdatedAt: at, Bundle: "b-prod-admin", Members: []string{"r-prod-admin", "r-db-admin"}}
		rs = append(rs, r)
		evs = append(evs, access.AuditEvent{At: at, RequestID: r.ID, Action: access.ActSubmitted, Actor: r.Requester, Role: role})
	}
	if err := w.CreateMany(context.Background(), rs, evs...); err != nil {
		t.Fatal(err)
	}
	fams := scrapeHandler(t, m)
	for _, role := range []string{"prod-admin", "db-admin"} {
		if v, ok := value(fams, "accessbot_requests_submitted_total", "role", role, "kind", "request"); !ok || v != 1 {
			t.Errorf("submitted{role=%s} = %v (%v), want 1", role, v, ok)
		}
	}
}
