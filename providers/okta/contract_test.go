package okta_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/accessbot/accessbot/providers/okta"
	"github.com/accessbot/accessbot/providers/okta/oktafake"
	"github.com/accessbot/accessbot/providers/providertest"
)

const (
	apiToken   = "00-test-api-token-value"
	wrongToken = "00-wrong-token-must-not-leak"
	clientID   = "0oa1accessbottest"
)

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

func testLogger(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelWarn}))
}

var (
	keyOnce sync.Once
	rsaKey  *rsa.PrivateKey
	seq     atomic.Int64
)

// testRSAKey is generated once per test binary (2048-bit generation is slow
// under -race).
func testRSAKey(t *testing.T) *rsa.PrivateKey {
	keyOnce.Do(func() {
		k, err := rsa.GenerateKey(rand.Reader, 2048)
		if err != nil {
			panic(err)
		}
		rsaKey = k
	})
	return rsaKey
}

func writeKey(t *testing.T, key any, pemType string) string {
	t.Helper()
	var der []byte
	var err error
	switch pemType {
	case "PRIVATE KEY":
		der, err = x509.MarshalPKCS8PrivateKey(key)
	case "RSA PRIVATE KEY":
		der = x509.MarshalPKCS1PrivateKey(key.(*rsa.PrivateKey))
	case "EC PRIVATE KEY":
		der, err = x509.MarshalECPrivateKey(key.(*ecdsa.PrivateKey))
	}
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "key.pem")
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: pemType, Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func newFake(t *testing.T) *oktafake.Server {
	f := oktafake.New()
	t.Cleanup(f.Close)
	f.AddAPIToken(apiToken)
	return f
}

func newProvider(t *testing.T, cfg okta.Config, opts ...okta.Option) *okta.Provider {
	t.Helper()
	p, err := okta.New(cfg, testLogger(t), opts...)
	if err != nil {
		t.Fatalf("okta.New: %v", err)
	}
	return p
}

func closedURL(t *testing.T) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return "http://" + addr
}

func fakeEnv(oauth bool) func(t *testing.T) providertest.Env {
	return func(t *testing.T) providertest.Env {
		f := newFake(t)
		cfg := okta.Config{OrgURL: f.URL, APIToken: apiToken}
		bad := okta.Config{OrgURL: f.URL, APIToken: wrongToken}
		secret := wrongToken
		if oauth {
			key := testRSAKey(t)
			f.AddClient(clientID, &key.PublicKey, "okta.users.read", "okta.groups.manage")
			cfg = okta.Config{OrgURL: f.URL, ClientID: clientID, PrivateKeyFile: writeKey(t, key, "PRIVATE KEY")}
			other, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
			if err != nil {
				t.Fatal(err)
			}
			bad = okta.Config{OrgURL: f.URL, ClientID: clientID, PrivateKeyFile: writeKey(t, other, "EC PRIVATE KEY")}
			secret = ""
		}
		newUser := func(status string) string {
			email := fmt.Sprintf("user%d@example.com", seq.Add(1))
			f.AddUserFull(oktafake.User{Login: email, Email: email, Status: status})
			return email
		}
		return providertest.Env{
			Provider:        newProvider(t, cfg, okta.WithRetry(6, 100*time.Millisecond)),
			NewGroup:        func(t *testing.T) string { return f.AddGroup("jit-" + t.Name()) },
			MissingGroup:    "00g0000000000000000x",
			NotFoundCode:    "E0000007",
			NewUser:         func(*testing.T) string { return newUser("ACTIVE") },
			UnknownUser:     "nobody@example.com",
			NewDisabledUser: func(*testing.T) string { return newUser("SUSPENDED") },
			Fake:            true,
			ReadMembers:     func(_ *testing.T, group string) []string { return f.MemberEmails(group) },
			DeleteUser: func(t *testing.T, email string) {
				id, ok := f.UserID(email)
				if !ok {
					t.Fatalf("fake: no user %s", email)
				}
				f.DeleteUser(id)
			},
			AddMember: func(t *testing.T, group, email string) {
				id, ok := f.UserID(email)
				if !ok || !f.AddMember(group, id) {
					t.Fatalf("fake: cannot add %s to %s", email, group)
				}
			},
			BadCredentials: func(t *testing.T) providertest.Provider { return newProvider(t, bad) },
			Secret:         secret,
			Unreachable: func(t *testing.T) providertest.Provider {
				c := cfg
				c.OrgURL = closedURL(t)
				return newProvider(t, c, okta.WithRetry(2, 10*time.Millisecond))
			},
			Throttle: func(*testing.T) func() int64 {
				f.SetRateLimit(10, time.Second)
				return f.Throttled
			},
		}
	}
}

func TestContractFakeAPIToken(t *testing.T) { providertest.Run(t, fakeEnv(false)) }

func TestContractFakeOAuth(t *testing.T) { providertest.Run(t, fakeEnv(true)) }

// TestContractRealOrg runs the contract against a real Okta org when
// OKTA_ORG_URL, credentials (OKTA_API_TOKEN, or OKTA_CLIENT_ID with
// OKTA_PRIVATE_KEY_FILE), ACCESSBOT_OKTA_TEST_GROUP and
// ACCESSBOT_OKTA_TEST_USER are set (see package providertest).
func TestContractRealOrg(t *testing.T) {
	cfg := okta.Config{
		OrgURL: os.Getenv("OKTA_ORG_URL"), APIToken: os.Getenv("OKTA_API_TOKEN"),
		ClientID: os.Getenv("OKTA_CLIENT_ID"), PrivateKeyFile: os.Getenv("OKTA_PRIVATE_KEY_FILE"), KeyID: os.Getenv("OKTA_KEY_ID"),
	}
	group, user := os.Getenv("ACCESSBOT_OKTA_TEST_GROUP"), os.Getenv("ACCESSBOT_OKTA_TEST_USER")
	if cfg.OrgURL == "" || (cfg.APIToken == "" && cfg.ClientID == "") || group == "" || user == "" {
		t.Skip("real Okta org not configured: set OKTA_ORG_URL, OKTA_API_TOKEN (or OKTA_CLIENT_ID + OKTA_PRIVATE_KEY_FILE), ACCESSBOT_OKTA_TEST_GROUP and ACCESSBOT_OKTA_TEST_USER to run the contract against it")
	}
	p := newProvider(t, cfg)
	lines, problems := p.Check(context.Background(), map[string]string{"contract-test": group})
	for _, l := range lines {
		t.Log(l)
	}
	for _, e := range problems {
		t.Fatalf("check: %v", e)
	}
	disabled := os.Getenv("ACCESSBOT_OKTA_TEST_DISABLED_USER")
	providertest.Run(t, func(t *testing.T) providertest.Env {
		e := providertest.Env{
			Provider:     p,
			NewGroup:     func(*testing.T) string { return group },
			MissingGroup: "00g0000000000000000x",
			NotFoundCode: "E0000007",
			NewUser:      func(*testing.T) string { return user },
			UnknownUser:  "accessbot-contract-no-such-user@example.invalid",
		}
		if disabled != "" {
			e.NewDisabledUser = func(*testing.T) string { return disabled }
		}
		return e
	})
}
