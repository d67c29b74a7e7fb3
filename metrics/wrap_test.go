package metrics_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/smithy-go"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/accessbot/accessbot/access"
	"github.com/accessbot/accessbot/metrics"
	"github.com/accessbot/accessbot/providers/okta"
	"github.com/accessbot/accessbot/store/bolt"
)

type fencer struct{}

func (fencer) ClaimFenced(context.Context, string, string, time.Duration) (access.Lease, bool, error) {
	return access.Lease{Token: 7}, true, nil
}
func (fencer) ReleaseFenced(context.Context, string, string) (bool, error) { return true, nil }

type counter struct{}

func (counter) Incr(context.Context, string, time.Duration) (int64, error) { return 42, nil }

type inbox struct{}

func (inbox) InboxPut(context.Context, access.InboxEntry, string, time.Duration) (bool, error) {
	return true, nil
}
func (inbox) InboxTake(context.Context, string, int, time.Duration) ([]access.InboxEntry, error) {
	return []access.InboxEntry{{ID: "e1"}}, nil
}
func (inbox) InboxRenew(context.Context, string, string, time.Duration) error { return nil }
func (inbox) InboxDone(context.Context, string, string, time.Duration) error  { return nil }

// storeWith builds a store with the chosen optional capabilities on a real
// bolt store.
func storeWith(t *testing.T, f, c, i bool) access.Store {
	st, err := bolt.Open(filepath.Join(t.TempDir(), "caps.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	type base struct{ access.Store }
	b := base{st}
	switch {
	case f && c && i:
		return struct {
			base
			fencer
			counter
			inbox
		}{b, fencer{}, counter{}, inbox{}}
	case f && c:
		return struct {
			base
			fencer
			counter
		}{b, fencer{}, counter{}}
	case f && i:
		return struct {
			base
			fencer
			inbox
		}{b, fencer{}, inbox{}}
	case c && i:
		return struct {
			base
			counter
			inbox
		}{b, counter{}, inbox{}}
	case f:
		return struct {
			base
			fencer
		}{b, fencer{}}
	case c:
		return struct {
			base
			counter
		}{b, counter{}}
	case i:
		return struct {
			base
			inbox
		}{b, inbox{}}
	}
	return b
}

// The decorator has exactly the optional capabilities of the store it
// wraps, and they reach the wrapped store.
func TestWrapStoreKeepsCapabilities(t *testing.T) {
	ctx := context.Background()
	for mask := range 8 {
		f, c, i := mask&1 != 0, mask&2 != 0, mask&4 != 0
		t.Run(fmt.Sprintf("fencer=%v,counter=%v,inbox=%v", f, c, i), func(t *testing.T) {
			w := metrics.New(metrics.Options{}).WrapStore(storeWith(t, f, c, i))
			if _, ok := w.(*metrics.Store); !ok && mask == 0 {
				t.Errorf("a plain store is wrapped as %T, want *metrics.Store", w)
			}
			wf, okF := w.(access.Fencer)
			wc, okC := w.(access.Counter)
			wi, okI := w.(access.Inbox)
			if okF != f || okC != c || okI != i {
				t.Fatalf("wrapped store is Fencer %v Counter %v Inbox %v, want %v %v %v", okF, okC, okI, f, c, i)
			}
			if f {
				if l, _, _ := wf.ClaimFenced(ctx, "k", "o", time.Second); l.Token != 7 {
					t.Errorf("ClaimFenced did not reach the wrapped store: token %d", l.Token)
				}
			}
			if c {
				if n, _ := wc.Incr(ctx, "k", time.Second); n != 42 {
					t.Errorf("Incr did not reach the wrapped store: %d", n)
				}
			}
			if i {
				if es, _ := wi.InboxTake(ctx, "o", 1, time.Second); len(es) != 1 {
					t.Errorf("InboxTake did not reach the wrapped store: %v", es)
				}
			}
			// The Store methods work through every shape.
			if _, ok, err := w.NextDue(ctx); err != nil || ok {
				t.Errorf("NextDue = %v, %v on an empty store", ok, err)
			}
		})
	}
	// The real stores keep theirs.
	st, err := bolt.Open(filepath.Join(t.TempDir(), "real.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	w := metrics.New(metrics.Options{}).WrapStore(st)
	_, f := w.(access.Fencer)
	_, c := w.(access.Counter)
	_, i := w.(access.Inbox)
	if !f || !c || !i {
		t.Errorf("wrapped bolt store: Fencer %v Counter %v Inbox %v, want all", f, c, i)
	}
}

type plainProv struct{ err error }

func (p plainProv) Grant(context.Context, access.Grant) error  { return p.err }
func (p plainProv) Revoke(context.Context, access.Grant) error { return p.err }

type lister struct{}

func (lister) Members(context.Context, string) ([]string, error) {
	return []string{"a@example.com"}, nil
}

type checker struct{}

func (checker) CheckUser(context.Context, string) error { return access.ErrUserDisabled }

func TestWrapProvisionerKeepsCapabilities(t *testing.T) {
	ctx := context.Background()
	m := metrics.New(metrics.Options{})
	provs := map[string]access.Provisioner{
		"plain": plainProv{},
		"lists": struct {
			plainProv
			lister
		}{},
		"checks": struct {
			plainProv
			checker
		}{},
		"both": struct {
			plainProv
			lister
			checker
		}{},
	}
	for name, p := range m.WrapProviders(provs) {
		ml, okM := p.(access.MemberLister)
		uc, okU := p.(access.UserChecker)
		wantM := name == "lists" || name == "both"
		wantU := name == "checks" || name == "both"
		if okM != wantM || okU != wantU {
			t.Errorf("%s: MemberLister %v UserChecker %v, want %v %v", name, okM, okU, wantM, wantU)
		}
		if okM {
			if got, _ := ml.Members(ctx, "g"); len(got) != 1 {
				t.Errorf("%s: Members did not reach the wrapped provider: %v", name, got)
			}
		}
		if okU {
			if err := uc.CheckUser(ctx, "x"); !errors.Is(err, access.ErrUserDisabled) {
				t.Errorf("%s: CheckUser = %v, want the wrapped provider's answer", name, err)
			}
		}
	}
}

// Provider errors are counted by the API's own code when the error
// carries one (AWS smithy errors, Okta's APIError), else by a fixed class.
func TestProviderErrorCodes(t *testing.T) {
	ctx := context.Background()
	m := metrics.New(metrics.Options{})
	cases := []struct {
		name string
		err  error
		code string
	}{
		{"aws", fmt.Errorf("aws: add: %w", &smithy.GenericAPIError{Code: "ThrottlingException", Message: "slow down"}), "ThrottlingException"},
		{"okta", access.Permanent(fmt.Errorf("okta: add: %w", &okta.APIError{Status: 404, Code: "E0000007"})), "E0000007"},
		{"timeout", fmt.Errorf("x: %w", context.DeadlineExceeded), "timeout"},
		{"gone", fmt.Errorf("x: %w", access.ErrUnknownUser), "unknown_user"},
		{"perm", access.Permanent(errors.New("bad group")), "permanent"},
		{"weird", &smithy.GenericAPIError{Code: "has spaces {and braces}"}, "other"},
		{"other", errors.New("boom"), "other"},
	}
	for _, tc := range cases {
		p := m.WrapProvisioner(tc.name, plainProv{err: tc.err})
		if err := p.Grant(ctx, access.Grant{}); err != tc.err {
			t.Errorf("%s: Grant = %v, want the wrapped error as it is", tc.name, err)
		}
	}
	fams := scrapeHandler(t, m)
	for _, tc := range cases {
		if v, ok := value(fams, "accessbot_provider_errors_total", "provider", tc.name, "op", "grant", "code", tc.code); !ok || v != 1 {
			t.Errorf("%s: accessbot_provider_errors_total{code=%q} = %v (%v), want 1", tc.name, tc.code, v, ok)
		}
	}
}

// countingStore counts the reads the gauges make.
type countingStore struct {
	access.Store
	lists atomic.Int32
}

func (c *countingStore) List(ctx context.Context, f access.Filter) ([]*access.Request, error) {
	c.lists.Add(1)
	return c.Store.List(ctx, f)
}

// However often Prometheus scrapes, the store is read once per GaugeTTL.
func TestGaugesAreCached(t *testing.T) {
	st, err := bolt.Open(filepath.Join(t.TempDir(), "cache.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	cs := &countingStore{Store: st}
	m := metrics.New(metrics.Options{GaugeTTL: time.Hour})
	m.WrapStore(cs)
	for range 20 {
		fams := scrapeHandler(t, m)
		if _, ok := value(fams, "accessbot_revocations_failing"); !ok {
			t.Fatal("no accessbot_revocations_failing")
		}
	}
	if n := cs.lists.Load(); n != 1 {
		t.Errorf("20 scrapes read the store %d times, want 1", n)
	}
}

func scrapeHandler(t *testing.T, m *metrics.Metrics) map[string]*dto.MetricFamily {
	t.Helper()
	rec := httptest.NewRecorder()
	req := httptest.NewRequest("GET", "/metrics", nil)
	m.Handler().ServeHTTP(rec, req)
	if rec.Code != http.StatusOK {
		t.Fatalf("/metrics: %d", rec.Code)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(rec.Body)
	if err != nil {
		t.Fatal(err)
	}
	return fams
}
