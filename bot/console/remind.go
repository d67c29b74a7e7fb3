package console

import (
	"context"
	"fmt"
	"strings"

	"github.com/accessbot/accessbot/access"
	"github.com/accessbot/accessbot/handlers"
)

// Reply implements handlers.Chat: m is printed as a reply to the message
// ref points at, in the same channel or DM.
func (c *Console) Reply(_ context.Context, ref access.MessageRef, m handlers.Message) (access.MessageRef, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.seq++
	out := access.MessageRef{Platform: "console", Channel: ref.Channel, ID: fmt.Sprintf("m%d", c.seq)}
	where := "#" + ref.Channel
	if strings.HasPrefix(ref.Channel, "dm:") {
		where = "dm to " + strings.TrimPrefix(ref.Channel, "dm:")
	}
	c.print("["+where+"] message "+out.ID+", reply to "+ref.ID, strings.TrimPrefix(ref.Channel, "dm:"), m)
	return out, nil
}
