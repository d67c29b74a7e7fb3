package oktafake_test

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/accessbot/accessbot/providers/okta/oktafake"
)

func get(t *testing.T, f *oktafake.Server, method, path, authz string) (*http.Response, map[string]any) {
	t.Helper()
	req, _ := http.NewRequest(method, f.URL+path, nil)
	if authz != "" {
		req.Header.Set("Authorization", authz)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var m map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&m)
	return resp, m
}

func TestHeadersErrorsAndRateLimit(t *testing.T) {
	f := oktafake.New()
	defer f.Close()
	f.AddAPIToken("tok")
	resp, body := get(t, f, "GET", "/api/v1/users/nobody", "SSWS wrong")
	if resp.StatusCode != 401 || body["errorCode"] != "E0000011" || body["errorSummary"] != "Invalid token provided" {
		t.Errorf("bad token: %d %v", resp.StatusCode, body)
	}
	for _, h := range []string{"Date", "X-Rate-Limit-Limit", "X-Rate-Limit-Remaining", "X-Rate-Limit-Reset"} {
		if resp.Header.Get(h) == "" {
			t.Errorf("missing %s", h)
		}
	}
	g := f.AddGroup("g")
	uid := f.AddUser("a@example.com")
	if resp, _ := get(t, f, "PUT", "/api/v1/groups/"+g+"/users/a@example.com", "SSWS tok"); resp.StatusCode != 404 {
		t.Errorf("PUT with a login instead of an id: %d, want 404", resp.StatusCode)
	}
	if resp, _ := get(t, f, "DELETE", "/api/v1/groups/"+g+"/users/"+uid, "SSWS tok"); resp.StatusCode != 404 {
		t.Errorf("DELETE of a non-member: %d, want 404", resp.StatusCode)
	}
	if resp, _ := get(t, f, "PUT", "/api/v1/groups/"+g+"/users/"+uid, "SSWS tok"); resp.StatusCode != 204 {
		t.Errorf("PUT: %d", resp.StatusCode)
	}
	q := url.Values{"search": {`profile.email eq "A@example.com"`}}
	req, _ := http.NewRequest("GET", f.URL+"/api/v1/users?"+q.Encode(), nil)
	req.Header.Set("Authorization", "SSWS tok")
	r, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var list []map[string]any
	json.NewDecoder(r.Body).Decode(&list)
	r.Body.Close()
	if len(list) != 1 || list[0]["id"] != uid {
		t.Errorf("search: %v", list)
	}
	f.SetRateLimit(1, time.Minute)
	get(t, f, "GET", "/api/v1/groups/"+g, "SSWS tok")
	resp, body = get(t, f, "GET", "/api/v1/groups/"+g, "SSWS tok")
	if resp.StatusCode != 429 || body["errorCode"] != "E0000047" || resp.Header.Get("X-Rate-Limit-Remaining") != "0" || f.Throttled() != 1 {
		t.Errorf("over budget: %d %v %v", resp.StatusCode, body, resp.Header)
	}
}

func TestTokenEndpointVerifiesAssertion(t *testing.T) {
	f := oktafake.New()
	defer f.Close()
	key, _ := rsa.GenerateKey(rand.Reader, 2048)
	f.AddClient("cid", &key.PublicKey, "okta.groups.manage")
	mk := func(aud string, exp time.Duration, signer *rsa.PrivateKey) string {
		enc := func(v any) string { b, _ := json.Marshal(v); return base64.RawURLEncoding.EncodeToString(b) }
		in := enc(map[string]string{"alg": "RS256"}) + "." + enc(map[string]any{"iss": "cid", "sub": "cid", "aud": aud,
			"iat": time.Now().Unix(), "exp": time.Now().Add(exp).Unix(), "jti": base64.RawURLEncoding.EncodeToString([]byte(time.Now().String()))})
		sum := sha256.Sum256([]byte(in))
		sig, _ := rsa.SignPKCS1v15(rand.Reader, signer, 5, sum[:]) // 5 = crypto.SHA256
		return in + "." + base64.RawURLEncoding.EncodeToString(sig)
	}
	other, _ := rsa.GenerateKey(rand.Reader, 2048)
	aud := f.URL + "/oauth2/v1/token"
	for name, c := range map[string]struct {
		assertion, scope string
		status           int
		want             string
	}{
		"ok":          {mk(aud, 5*time.Minute, key), "okta.groups.manage", 200, "Bearer"},
		"wrong key":   {mk(aud, 5*time.Minute, other), "okta.groups.manage", 401, "signature is invalid"},
		"wrong aud":   {mk("https://elsewhere/oauth2/v1/token", 5*time.Minute, key), "okta.groups.manage", 401, "audience"},
		"expired":     {mk(aud, -time.Minute, key), "okta.groups.manage", 401, "expiration"},
		"too long":    {mk(aud, 3*time.Hour, key), "okta.groups.manage", 401, "expiration"},
		"bad scope":   {mk(aud, 5*time.Minute, key), "okta.users.manage", 400, "invalid_scope"},
		"not a token": {"abc", "okta.groups.manage", 401, "not a JWT"},
	} {
		form := url.Values{"grant_type": {"client_credentials"}, "scope": {c.scope},
			"client_assertion_type": {"urn:ietf:params:oauth:client-assertion-type:jwt-bearer"}, "client_assertion": {c.assertion}}
		resp, err := http.Post(aud, "application/x-www-form-urlencoded", strings.NewReader(form.Encode()))
		if err != nil {
			t.Fatal(err)
		}
		var m map[string]any
		json.NewDecoder(resp.Body).Decode(&m)
		resp.Body.Close()
		if resp.StatusCode != c.status || !strings.Contains(strings.Join([]string{str(m["token_type"]), str(m["error"]), str(m["error_description"])}, " "), c.want) {
			t.Errorf("%s: %d %v, want %d %q", name, resp.StatusCode, m, c.status, c.want)
		}
	}
}

func str(v any) string { s, _ := v.(string); return s }

// While hanging the fake answers no API request: the client's deadline is
// all that ends the call. Released, held requests are served.
func TestHang(t *testing.T) {
	f := oktafake.New()
	defer f.Close()
	f.AddAPIToken("tok")
	uid := f.AddUser("a@example.com")
	f.Hang(true)
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", f.URL+"/api/v1/users/"+uid, nil)
	req.Header.Set("Authorization", "SSWS tok")
	if resp, err := http.DefaultClient.Do(req); !errors.Is(err, context.DeadlineExceeded) {
		if resp != nil {
			resp.Body.Close()
		}
		t.Fatalf("hanging fake answered: %v", err)
	}
	done := make(chan int, 1)
	go func() {
		req, _ := http.NewRequest("GET", f.URL+"/api/v1/users/"+uid, nil)
		req.Header.Set("Authorization", "SSWS tok")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			done <- 0
			return
		}
		resp.Body.Close()
		done <- resp.StatusCode
	}()
	for f.Hung() < 2 {
		time.Sleep(time.Millisecond)
	}
	f.Hang(false)
	if code := <-done; code != 200 {
		t.Fatalf("released request: %d", code)
	}
}
