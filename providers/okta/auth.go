package okta

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/accessbot/accessbot/access"
)

// authenticator yields the Authorization header value for API calls.
type authenticator interface {
	header(ctx context.Context) (string, error)
	// invalidate drops a rejected credential; it reports whether a retry
	// with a new one can help.
	invalidate(value string) bool
}

type sswsAuth struct{ value string }

func (a sswsAuth) header(context.Context) (string, error) { return a.value, nil }
func (sswsAuth) invalidate(string) bool                   { return false }

// oauthAuth gets access tokens with the client-credentials grant, the
// client authenticated by a JWT signed with its private key
// (private_key_jwt), and caches each until shortly before it expires.
type oauthAuth struct {
	tokenURL string
	clientID string
	keyID    string
	key      crypto.Signer
	alg      string
	scopes   []string
	hc       *http.Client
	attempts int
	backoff  func(failures int) time.Duration

	mu      sync.Mutex
	token   string
	expires time.Time
}

func (a *oauthAuth) header(ctx context.Context) (string, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.token != "" && time.Now().Before(a.expires) {
		return "Bearer " + a.token, nil
	}
	var err error
	for attempt := 1; attempt <= a.attempts; attempt++ {
		var tok string
		var ttl time.Duration
		tok, ttl, err = a.fetch(ctx)
		if err == nil {
			// Renew a minute early (a fifth of the lifetime for short ones).
			a.token, a.expires = tok, time.Now().Add(ttl-min(time.Minute, ttl/5))
			return "Bearer " + tok, nil
		}
		if access.IsPermanent(err) || ctx.Err() != nil {
			break
		}
		select {
		case <-ctx.Done():
			return "", ctx.Err()
		case <-time.After(a.backoff(attempt)):
		}
	}
	return "", err
}

func (a *oauthAuth) invalidate(value string) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	if "Bearer "+a.token == value {
		a.token = ""
	}
	return true
}

func (a *oauthAuth) fetch(ctx context.Context) (string, time.Duration, error) {
	assertion, err := a.assertion()
	if err != nil {
		return "", 0, access.Permanent(fmt.Errorf("sign client assertion: %w", err))
	}
	form := url.Values{
		"grant_type":            {"client_credentials"},
		"scope":                 {strings.Join(a.scopes, " ")},
		"client_assertion_type": {"urn:ietf:params:oauth:client-assertion-type:jwt-bearer"},
		"client_assertion":      {assertion},
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, a.tokenURL, strings.NewReader(form.Encode()))
	if err != nil {
		return "", 0, access.Permanent(fmt.Errorf("get access token: %w", err))
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", userAgent)
	resp, err := a.hc.Do(req)
	if err != nil {
		return "", 0, fmt.Errorf("get access token: okta endpoint unreachable: %w", err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	var out struct {
		AccessToken string `json:"access_token"`
		TokenType   string `json:"token_type"`
		ExpiresIn   int    `json:"expires_in"`
		Error       string `json:"error"`
		Description string `json:"error_description"`
	}
	_ = json.Unmarshal(body, &out)
	if resp.StatusCode != http.StatusOK || out.AccessToken == "" {
		msg := out.Error
		if out.Description != "" {
			msg += ": " + out.Description
		}
		if msg == "" {
			msg = http.StatusText(resp.StatusCode)
		}
		err := fmt.Errorf("get access token for client %s: HTTP %d %s", a.clientID, resp.StatusCode, msg)
		if resp.StatusCode >= 400 && resp.StatusCode < 500 && resp.StatusCode != http.StatusTooManyRequests {
			return "", 0, access.Permanent(err)
		}
		return "", 0, err
	}
	if !strings.EqualFold(out.TokenType, "Bearer") {
		return "", 0, access.Permanent(fmt.Errorf("get access token: token type %q, want Bearer (DPoP-bound tokens are not supported: turn off \"Require DPoP\" for the service app)", out.TokenType))
	}
	ttl := time.Duration(out.ExpiresIn) * time.Second
	if ttl <= 0 {
		ttl = 5 * time.Minute
	}
	return out.AccessToken, ttl, nil
}

// assertion builds the client's JWT: iss = sub = client id, aud = the token
// endpoint, a 5-minute lifetime and a random jti.
func (a *oauthAuth) assertion() (string, error) {
	now := time.Now()
	var jti [16]byte
	if _, err := rand.Read(jti[:]); err != nil {
		return "", err
	}
	hdr := map[string]string{"alg": a.alg, "typ": "JWT"}
	if a.keyID != "" {
		hdr["kid"] = a.keyID
	}
	claims := map[string]any{
		"iss": a.clientID, "sub": a.clientID, "aud": a.tokenURL,
		"iat": now.Unix(), "exp": now.Add(5 * time.Minute).Unix(), "jti": hex.EncodeToString(jti[:]),
	}
	h, err := json.Marshal(hdr)
	if err != nil {
		return "", err
	}
	c, err := json.Marshal(claims)
	if err != nil {
		return "", err
	}
	input := base64.RawURLEncoding.EncodeToString(h) + "." + base64.RawURLEncoding.EncodeToString(c)
	sig, err := sign(a.key, a.alg, []byte(input))
	if err != nil {
		return "", err
	}
	return input + "." + base64.RawURLEncoding.EncodeToString(sig), nil
}

func sign(key crypto.Signer, alg string, input []byte) ([]byte, error) {
	var digest []byte
	var h crypto.Hash
	switch alg {
	case "RS256", "ES256":
		sum := sha256.Sum256(input)
		digest, h = sum[:], crypto.SHA256
	case "ES384":
		sum := sha512.Sum384(input)
		digest, h = sum[:], crypto.SHA384
	case "ES512":
		sum := sha512.Sum512(input)
		digest, h = sum[:], crypto.SHA512
	default:
		return nil, fmt.Errorf("unsupported algorithm %s", alg)
	}
	switch k := key.(type) {
	case *rsa.PrivateKey:
		return rsa.SignPKCS1v15(rand.Reader, k, h, digest)
	case *ecdsa.PrivateKey:
		r, s, err := ecdsa.Sign(rand.Reader, k, digest)
		if err != nil {
			return nil, err
		}
		// JWS wants r || s, each left-padded to the curve size.
		size := (k.Curve.Params().BitSize + 7) / 8
		out := make([]byte, 2*size)
		r.FillBytes(out[:size])
		s.FillBytes(out[size:])
		return out, nil
	}
	return nil, fmt.Errorf("unsupported key type %T", key)
}

// loadKey reads a PEM RSA (PKCS#1 or PKCS#8) or EC (SEC 1 or PKCS#8) private
// key and picks the JWS algorithm for it.
func loadKey(path string) (crypto.Signer, string, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, "", err
	}
	var key any
	for rest := raw; ; {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			break
		}
		switch block.Type {
		case "PRIVATE KEY":
			key, err = x509.ParsePKCS8PrivateKey(block.Bytes)
		case "RSA PRIVATE KEY":
			key, err = x509.ParsePKCS1PrivateKey(block.Bytes)
		case "EC PRIVATE KEY":
			key, err = x509.ParseECPrivateKey(block.Bytes)
		case "ENCRYPTED PRIVATE KEY":
			return nil, "", errors.New("the key is encrypted; store it unencrypted (and protect the file)")
		default:
			continue
		}
		if err != nil {
			return nil, "", fmt.Errorf("parse %s: %w", block.Type, err)
		}
		break
	}
	switch k := key.(type) {
	case *rsa.PrivateKey:
		if k.N.BitLen() < 2048 {
			return nil, "", fmt.Errorf("RSA key of %d bits; Okta requires at least 2048", k.N.BitLen())
		}
		return k, "RS256", nil
	case *ecdsa.PrivateKey:
		switch k.Curve {
		case elliptic.P256():
			return k, "ES256", nil
		case elliptic.P384():
			return k, "ES384", nil
		case elliptic.P521():
			return k, "ES512", nil
		}
		return nil, "", fmt.Errorf("EC key on curve %s; want P-256, P-384 or P-521", k.Curve.Params().Name)
	case nil:
		return nil, "", errors.New("no PEM private key found (want BEGIN PRIVATE KEY, RSA PRIVATE KEY or EC PRIVATE KEY)")
	}
	return nil, "", fmt.Errorf("unsupported private key type %T; want RSA or EC", key)
}
