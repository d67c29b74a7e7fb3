package aws

import (
	"fmt"
	"regexp"
	"strings"

	"github.com/accessbot/accessbot/internal/fielderr"
)

// FieldError is one problem of a Config, at its key path in the accessbot
// config file (providers.aws.…).
type FieldError = fielderr.Error

const prefix = "providers.aws."

var storeIDPattern = regexp.MustCompile(`^(d-[0-9a-f]{10}|[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})$`)

// Validate returns every problem of c, each a *FieldError with its key
// path; nil when c is usable. New applies the same checks (this is their
// one source).
func (c Config) Validate() []error {
	var errs []error
	if !storeIDPattern.MatchString(c.IdentityStoreID) {
		errs = append(errs, &FieldError{Path: prefix + "identity_store_id",
			Msg: fmt.Sprintf("%q is not an identity store id (want d-1234567890, 10 hex digits, or a UUID)", c.IdentityStoreID)})
	}
	if c.InstanceARN != "" && (!strings.HasPrefix(c.InstanceARN, "arn:aws") || !strings.Contains(c.InstanceARN, ":instance/")) {
		errs = append(errs, &FieldError{Path: prefix + "instance_arn",
			Msg: fmt.Sprintf("%q is not an instance ARN (want arn:aws:sso:::instance/ssoins-...)", c.InstanceARN)})
	}
	if c.endsSessions() && c.InstanceARN == "" {
		errs = append(errs, &FieldError{Path: prefix + "revoke_sessions",
			Msg: "needs instance_arn (arn:aws:sso:::instance/ssoins-...): the deny statements go into the permission sets of the instance"})
	}
	return errs
}
