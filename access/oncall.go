package access

import (
	"context"
	"fmt"
	"strings"
	"time"
)

// OnCallRouter answers OnCall for several rotations, each by its own
// source (static, PagerDuty, Opsgenie), keyed by rotation name.
type OnCallRouter map[string]OnCall

// OnCall asks the source of the named rotation.
func (r OnCallRouter) OnCall(ctx context.Context, rotation string, at time.Time) (Shift, error) {
	src, ok := r[strings.ToLower(rotation)]
	if !ok {
		return Shift{}, fmt.Errorf("unknown rotation %q", rotation)
	}
	sh, err := src.OnCall(ctx, rotation, at)
	if err != nil {
		return Shift{}, err
	}
	sh.Rotation = strings.ToLower(rotation)
	for i, p := range sh.People {
		sh.People[i] = normID(p)
	}
	return sh, nil
}
