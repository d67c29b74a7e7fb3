package auditsink

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/accessbot/accessbot/access"
)

// The webhook's headers.
const (
	HeaderSignature = "X-Accessbot-Signature" // sha256=<hex HMAC-SHA256 of "<timestamp>.<body>">
	HeaderTimestamp = "X-Accessbot-Timestamp" // unix seconds when the request was signed
)

// Webhook posts each batch of events as one JSON body,
// {"events":[...]}, signed with HMAC-SHA256 (Sign). Any 2xx answer
// accepts the batch; anything else, or no answer within Timeout, fails it
// and the worker sends it again later. Receivers drop duplicates by event
// id: a batch whose answer was lost arrives again.
type Webhook struct {
	URL     string
	Secret  []byte
	Timeout time.Duration
	Client  *http.Client     // nil: http.DefaultClient
	Now     func() time.Time // nil: time.Now
}

// Body is what the webhook posts.
type Body struct {
	Events []access.AuditEvent `json:"events"`
}

// Sign returns the signature header value of body sent at timestamp ts
// (unix seconds): "sha256=" and the hex HMAC-SHA256, keyed by secret, of
// ts, a dot and the body.
func Sign(secret []byte, ts string, body []byte) string {
	m := hmac.New(sha256.New, secret)
	m.Write([]byte(ts))
	m.Write([]byte{'.'})
	m.Write(body)
	return "sha256=" + hex.EncodeToString(m.Sum(nil))
}

// ErrBadSignature is returned by Verify for a request not signed with the
// secret, or signed too long ago.
var ErrBadSignature = errors.New("auditsink: bad signature")

// Verify checks a received webhook request's signature and timestamp
// headers against body: the signature must be Sign's with secret, and the
// timestamp within tolerance of now (replays of old requests fail).
func Verify(secret []byte, signature, timestamp string, body []byte, now time.Time, tolerance time.Duration) error {
	sec, err := strconv.ParseInt(timestamp, 10, 64)
	if err != nil {
		return fmt.Errorf("%w: timestamp %q", ErrBadSignature, timestamp)
	}
	if d := now.Sub(time.Unix(sec, 0)); d > tolerance || d < -tolerance {
		return fmt.Errorf("%w: timestamp %s is %v away from now", ErrBadSignature, timestamp, d)
	}
	if !hmac.Equal([]byte(Sign(secret, timestamp, body)), []byte(strings.TrimSpace(signature))) {
		return fmt.Errorf("%w: signature does not match", ErrBadSignature)
	}
	return nil
}

// NewWebhook returns the webhook sink of c with secret.
func NewWebhook(c SinkConfig, secret []byte, client *http.Client) *Webhook {
	return &Webhook{URL: c.URL, Secret: secret, Timeout: c.TimeoutOrDefault(), Client: client}
}

// Deliver posts evs in one signed request.
func (w *Webhook) Deliver(ctx context.Context, evs []access.AuditEvent) error {
	body, err := json.Marshal(Body{Events: evs})
	if err != nil {
		return fmt.Errorf("webhook: encode: %w", err)
	}
	now := time.Now
	if w.Now != nil {
		now = w.Now
	}
	ts := strconv.FormatInt(now().Unix(), 10)
	ctx, cancel := context.WithTimeout(ctx, w.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, w.URL, bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("webhook: %w", err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "accessbot-audit")
	req.Header.Set(HeaderTimestamp, ts)
	req.Header.Set(HeaderSignature, Sign(w.Secret, ts, body))
	c := w.Client
	if c == nil {
		c = http.DefaultClient
	}
	resp, err := c.Do(req)
	if err != nil {
		return fmt.Errorf("webhook: post %d event(s): %w", len(evs), err)
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return fmt.Errorf("webhook: post %d event(s): %s", len(evs), resp.Status)
	}
	return nil
}
