package fielderr_test

import (
	"errors"
	"fmt"
	"testing"

	"github.com/accessbot/accessbot/internal/fielderr"
)

func TestErrorKeepsPathAndMessage(t *testing.T) {
	err := fmt.Errorf("wrapped: %w", &fielderr.Error{Path: "chat.slack.app_token", Msg: "must start with xapp-"})
	var fe *fielderr.Error
	if !errors.As(err, &fe) || fe.Path != "chat.slack.app_token" || fe.Msg != "must start with xapp-" {
		t.Fatalf("errors.As = %v, %+v", errors.As(err, &fe), fe)
	}
	if got := fe.Error(); got != "chat.slack.app_token: must start with xapp-" {
		t.Fatalf("Error() = %q", got)
	}
}
