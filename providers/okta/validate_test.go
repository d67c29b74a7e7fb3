package okta_test

import (
	"slices"
	"strings"
	"testing"

	"github.com/accessbot/accessbot/providers/okta"
)

// TestValidateKeyPaths: every problem of the providers.okta section comes
// with its key path, and none shows a credential.
func TestValidateKeyPaths(t *testing.T) {
	for _, c := range []struct {
		cfg  okta.Config
		want []string
	}{
		{okta.Config{}, []string{
			"providers.okta.org_url: is required (e.g. https://acme.okta.com)",
			"providers.okta: no credentials: set api_token (e.g. ${OKTA_API_TOKEN}), or client_id with private_key",
		}},
		{okta.Config{OrgURL: "http://acme.okta.com", APIToken: "SSWS secret-abc"}, []string{
			`providers.okta.org_url: "http://acme.okta.com": https is required (http only for loopback test servers)`,
			`providers.okta.api_token: must be the bare token, without "SSWS" or spaces`,
		}},
		{okta.Config{OrgURL: "https://acme.okta.com/api", APIToken: "secret-abc", ClientID: "c", PrivateKeyFile: "k.pem"}, []string{
			`providers.okta.org_url: "https://acme.okta.com/api": give the org only, without path, query or user info`,
			"providers.okta: set either api_token or client_id with private_key, not both",
		}},
		{okta.Config{OrgURL: "ftp://acme.okta.com", ClientID: "c"}, []string{
			`providers.okta.org_url: "ftp://acme.okta.com": scheme must be https`,
			"providers.okta.private_key: is missing: an OAuth service app needs both client_id and private_key (the PEM file of its private key)",
		}},
		{okta.Config{OrgURL: "https://acme.okta.com", PrivateKeyFile: "k.pem"}, []string{
			"providers.okta.client_id: is missing: an OAuth service app needs both client_id and private_key",
		}},
		{okta.Config{OrgURL: "https://acme.okta.com/", APIToken: "secret-abc"}, nil},
		{okta.Config{OrgURL: "https://acme.okta.com", ClientID: "c", PrivateKeyFile: "/nonexistent.pem"}, nil}, // the file is New's to read
	} {
		var got []string
		for _, err := range c.cfg.Validate() {
			fe, ok := err.(*okta.FieldError)
			if !ok {
				t.Fatalf("%T is not a *FieldError", err)
			}
			if !strings.HasPrefix(fe.Path, "providers.okta") {
				t.Errorf("path %q is not under providers.okta", fe.Path)
			}
			got = append(got, err.Error())
		}
		if !slices.Equal(got, c.want) {
			t.Errorf("Validate(%+v):\n got %q\nwant %q", c.cfg, got, c.want)
		}
		if strings.Contains(strings.Join(got, "\n"), "secret-abc") {
			t.Errorf("a problem shows the token: %q", got)
		}
	}
}
