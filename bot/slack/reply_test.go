package slack_test

import (
	"context"
	"testing"
	"time"

	slackbot "github.com/accessbot/accessbot/bot/slack"
	"github.com/accessbot/accessbot/bot/slack/slackfake"
	"github.com/accessbot/accessbot/handlers"
)

// deadlineEater is a Handler whose commands and clicks use up the event's
// whole deadline before answering.
type deadlineEater struct{ *recorder }

func (d deadlineEater) Command(ctx context.Context, c handlers.Command) handlers.Reply {
	<-ctx.Done()
	return handlers.Reply{Message: handlers.Message{Text: "late answer to " + c.Text}}
}

func (d deadlineEater) Action(ctx context.Context, a handlers.Action) handlers.Reply {
	<-ctx.Done()
	return handlers.Reply{Message: handlers.Message{Text: "late answer to " + a.Action}}
}

// The answer to a person never shares a deadline that the handling used
// up: it gets a fresh short one of its own.
func TestReplyAfterHandlerUsedUpDeadline(t *testing.T) {
	f := newFake(t, slackfake.Options{})
	cfg := botConfig(f)
	cfg.EventTimeout = 50 * time.Millisecond
	b := start(t, f, cfg, deadlineEater{&recorder{}})

	if _, err := f.SlashCommand(tctx(t), slackfake.Command{User: "UALICE", Channel: chGeneral, Text: "prod-admin 2h slow"}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, f, "the answer to the command", func() bool { return len(f.EphemeralsFor("UALICE")) == 1 })
	if e := f.EphemeralsFor("UALICE")[0]; e.Text != "late answer to prod-admin 2h slow" || e.Channel != chGeneral {
		t.Errorf("answer %+v", e)
	}

	postCard(t, b, "r-1")
	if _, err := f.Click(tctx(t), slackfake.Click{User: "UBOB", ActionID: handlers.ActionDeny, Value: "r-1"}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, f, "the answer to the click", func() bool { return len(f.EphemeralsFor("UBOB")) == 1 })
	if e := f.EphemeralsFor("UBOB")[0]; e.Text != "late answer to "+handlers.ActionDeny {
		t.Errorf("answer %+v", e)
	}
}

var _ slackbot.Handler = deadlineEater{}
