// Package fielderr is the one type of a config problem at its key path
// ("chat.slack.app_token", "store.redis.sentinel.addrs[0]"). Every adapter
// that validates its own config section returns these (each names it
// FieldError, an alias), so the config package reports them all alike.
package fielderr

// Error is one problem of a config section at its key path in the
// accessbot config file.
type Error struct {
	Path string
	Msg  string
}

func (e *Error) Error() string { return e.Path + ": " + e.Msg }
