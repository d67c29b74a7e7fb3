package config

import (
	"slices"

	"github.com/accessbot/accessbot/providers/aws"
	"github.com/accessbot/accessbot/providers/okta"
)

// sessionProviders are the providers that can end (or deny) the sessions
// a user already holds when their access is revoked.
var sessionProviders = []string{"aws", "okta"}

// RoleSessions returns the per-role revoke_sessions overrides of the roles
// of provider (role name -> on/off); nil when there are none.
func (c Config) RoleSessions(provider string) map[string]bool {
	var m map[string]bool
	for name, rc := range c.Roles {
		if rc.Provider != provider || rc.RevokeSessions == nil {
			continue
		}
		if m == nil {
			m = map[string]bool{}
		}
		m[name] = *rc.RevokeSessions
	}
	return m
}

// AWSProvider is the AWS provider's Config: providers.aws with the roles'
// revoke_sessions overrides. Providers.AWS must be set.
func (c Config) AWSProvider() aws.Config {
	p := c.Providers.AWS.Provider()
	p.RoleSessions = c.RoleSessions("aws")
	return p
}

// OktaProvider is the Okta provider's Config: providers.okta with the
// roles' revoke_sessions overrides. Providers.Okta must be set.
func (c Config) OktaProvider() okta.Config {
	p := c.Providers.Okta.Provider()
	p.RoleSessions = c.RoleSessions("okta")
	return p
}

// validateSessions refuses revoke_sessions on a role whose provider
// cannot end sessions.
func validateSessions(c Config, ps *Problems) {
	for name, rc := range c.Roles {
		if rc.RevokeSessions != nil && *rc.RevokeSessions && !slices.Contains(sessionProviders, rc.Provider) {
			ps.add("roles."+name+".revoke_sessions", "provider %q cannot end sessions (only aws and okta can)", rc.Provider)
		}
	}
}
