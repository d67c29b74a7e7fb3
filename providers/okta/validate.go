package okta

import (
	"fmt"
	"net"
	"net/url"
	"strings"

	"github.com/accessbot/accessbot/internal/fielderr"
)

// FieldError is one problem of a Config, at its key path in the accessbot
// config file (providers.okta.…).
type FieldError = fielderr.Error

// section is the key path of Config in the config file.
const section = "providers.okta"

// Validate returns every problem of c, each a *FieldError with its key
// path; nil when c is usable. It never shows a credential and reads no
// file (New loads the private key). New applies the same checks (this is
// their one source).
func (c Config) Validate() []error {
	var errs []error
	add := func(key, format string, args ...any) {
		p := section
		if key != "" {
			p += "." + key
		}
		errs = append(errs, &FieldError{Path: p, Msg: fmt.Sprintf(format, args...)})
	}
	if _, _, msg := parseOrg(c.OrgURL); msg != "" {
		add("org_url", "%s", msg)
	}
	token := strings.TrimSpace(c.APIToken)
	oauth := c.ClientID != "" || c.PrivateKeyFile != ""
	switch {
	case token != "" && oauth:
		add("", "set either api_token or client_id with private_key, not both")
	case token != "":
		if strings.ContainsAny(token, " \t\r\n") || strings.HasPrefix(token, "SSWS") {
			add("api_token", "must be the bare token, without \"SSWS\" or spaces")
		}
	case c.ClientID == "" && c.PrivateKeyFile != "":
		add("client_id", "is missing: an OAuth service app needs both client_id and private_key")
	case c.ClientID != "" && c.PrivateKeyFile == "":
		add("private_key", "is missing: an OAuth service app needs both client_id and private_key (the PEM file of its private key)")
	case !oauth:
		add("", "no credentials: set api_token (e.g. ${OKTA_API_TOKEN}), or client_id with private_key")
	}
	c.validateSessions(add)
	return errs
}

// problemsError is the error of New for errs: each problem with its key
// relative to providers.okta ("okta: org_url is required …").
func problemsError(errs []error) error {
	lines := make([]string, len(errs))
	for i, err := range errs {
		fe := err.(*FieldError)
		key := strings.TrimPrefix(strings.TrimPrefix(fe.Path, section), ".")
		if key != "" {
			key += " "
		}
		lines[i] = "okta: " + key + fe.Msg
	}
	return fmt.Errorf("%s", strings.Join(lines, "\n"))
}

// parseOrg returns the org (scheme://host[:port]) and host of raw, or what
// is wrong with it.
func parseOrg(raw string) (org, host, msg string) {
	if raw == "" {
		return "", "", "is required (e.g. https://acme.okta.com)"
	}
	u, err := url.Parse(strings.TrimRight(raw, "/"))
	if err != nil || u.Host == "" {
		return "", "", fmt.Sprintf("%q is not a URL like https://acme.okta.com", raw)
	}
	if u.Path != "" || u.RawQuery != "" || u.User != nil {
		return "", "", fmt.Sprintf("%q: give the org only, without path, query or user info", raw)
	}
	switch u.Scheme {
	case "https":
	case "http":
		h := u.Hostname()
		if ip := net.ParseIP(h); h != "localhost" && (ip == nil || !ip.IsLoopback()) {
			return "", "", fmt.Sprintf("%q: https is required (http only for loopback test servers)", raw)
		}
	default:
		return "", "", fmt.Sprintf("%q: scheme must be https", raw)
	}
	return u.Scheme + "://" + u.Host, u.Host, ""
}
