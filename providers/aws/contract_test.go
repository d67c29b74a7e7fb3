package aws_test

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	awssdk "github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"

	"github.com/accessbot/accessbot/providers/aws"
	"github.com/accessbot/accessbot/providers/aws/awsfake"
	"github.com/accessbot/accessbot/providers/providertest"
)

const (
	testKeyID  = "AKIDACCESSBOTTEST"
	testSecret = "test-secret-not-real"
	wrongKeyID = "AKIDWRONGWRONGWRONG"
	wrongSec   = "wrong-secret-must-not-leak"
)

func testLogger(t testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelWarn}))
}

type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

var userSeq atomic.Int64

func newFake(t testing.TB) *awsfake.Server {
	f := awsfake.New()
	t.Cleanup(f.Close)
	f.AllowAccessKeys(testKeyID)
	return f
}

func newProvider(t testing.TB, endpoint, keyID, secret string, opts ...aws.Option) *aws.Provider {
	t.Helper()
	opts = append([]aws.Option{aws.WithAWSConfig(awsCfg(keyID, secret)), aws.WithEndpoint(endpoint)}, opts...)
	p, err := aws.New(context.Background(), aws.Config{
		IdentityStoreID: awsfake.DefaultIdentityStoreID,
		InstanceARN:     awsfake.DefaultInstanceARN,
	}, testLogger(t), opts...)
	if err != nil {
		t.Fatalf("aws.New: %v", err)
	}
	return p
}

func awsCfg(keyID, secret string) awssdk.Config {
	return awssdk.Config{Region: "us-east-1", Credentials: credentials.NewStaticCredentialsProvider(keyID, secret, "")}
}

func closedEndpoint(t *testing.T) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return "http://" + addr
}

func fakeEnv(t *testing.T) providertest.Env {
	f := newFake(t)
	newUser := func(disabled bool) string {
		email := fmt.Sprintf("user%d@example.com", userSeq.Add(1))
		id := f.AddUser(email)
		f.SetDisabled(id, disabled)
		return email
	}
	return providertest.Env{
		Provider:     newProvider(t, f.URL, testKeyID, testSecret, aws.WithRetry(10, time.Second)),
		NewGroup:     func(t *testing.T) string { return f.AddGroup("jit-" + t.Name()) },
		MissingGroup: "906700000a-00000000-0000-0000-0000-000000000000",
		NotFoundCode: "ResourceNotFoundException",
		NewUser:      func(*testing.T) string { return newUser(false) },
		UnknownUser:  "nobody@example.com",
		NewDisabledUser: func(*testing.T) string {
			return newUser(true)
		},
		Fake:        true,
		ReadMembers: func(_ *testing.T, group string) []string { return f.MemberEmails(group) },
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
		BadCredentials: func(t *testing.T) providertest.Provider {
			return newProvider(t, f.URL, wrongKeyID, wrongSec)
		},
		Secret: wrongSec,
		Unreachable: func(t *testing.T) providertest.Provider {
			return newProvider(t, closedEndpoint(t), testKeyID, testSecret, aws.WithRetry(2, 10*time.Millisecond))
		},
		Throttle: func(*testing.T) func() int64 {
			f.SetThrottle(10, 2, 400, 1)
			return f.Throttled
		},
	}
}

func TestContractFake(t *testing.T) {
	providertest.Run(t, fakeEnv)
}

// TestContractRealOrg runs the contract against a real identity store when
// ACCESSBOT_AWS_IDENTITY_STORE_ID, ACCESSBOT_AWS_TEST_GROUP and
// ACCESSBOT_AWS_TEST_USER are set (see package providertest).
func TestContractRealOrg(t *testing.T) {
	store, group, user := os.Getenv("ACCESSBOT_AWS_IDENTITY_STORE_ID"), os.Getenv("ACCESSBOT_AWS_TEST_GROUP"), os.Getenv("ACCESSBOT_AWS_TEST_USER")
	if store == "" || group == "" || user == "" {
		t.Skip("real identity store not configured: set ACCESSBOT_AWS_IDENTITY_STORE_ID, ACCESSBOT_AWS_TEST_GROUP and ACCESSBOT_AWS_TEST_USER to run the contract against it")
	}
	cfg := aws.Config{IdentityStoreID: store, Region: os.Getenv("ACCESSBOT_AWS_REGION"), InstanceARN: os.Getenv("ACCESSBOT_AWS_INSTANCE_ARN")}
	p, err := aws.New(context.Background(), cfg, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	lines, problems := p.Check(context.Background(), map[string]string{"contract-test": group})
	for _, l := range lines {
		t.Log(l)
	}
	for _, e := range problems {
		t.Fatalf("check: %v", e)
	}
	disabled := os.Getenv("ACCESSBOT_AWS_TEST_DISABLED_USER")
	providertest.Run(t, func(t *testing.T) providertest.Env {
		e := providertest.Env{
			Provider:     p,
			NewGroup:     func(*testing.T) string { return group },
			MissingGroup: "00000000-0000-0000-0000-000000000000",
			NotFoundCode: "ResourceNotFoundException",
			NewUser:      func(*testing.T) string { return user },
			UnknownUser:  "accessbot-contract-no-such-user@example.invalid",
		}
		if disabled != "" {
			e.NewDisabledUser = func(*testing.T) string { return disabled }
		}
		return e
	})
}
