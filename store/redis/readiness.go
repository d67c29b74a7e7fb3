package redis

import (
	"context"
	"errors"
	"net"

	goredis "github.com/redis/go-redis/v9"
)

// setReady records whether the server answered. A client that Dial gave a
// Readiness (through readinessHook) turns it not ready when a dial fails
// or a command fails for want of the server (a refused or broken
// connection, a timeout, LOADING), and ready again at the next command
// the server answers. Errors the server itself returns (a script error,
// redis.Nil) and a caller's cancelled context say nothing about the
// server and change nothing. A replica that sends no commands keeps its
// last state; its own traffic (scheduler sweeps, lease renewals) keeps it
// current.
func (r *Readiness) setReady(ok bool) {
	if r != nil {
		r.ready.Store(ok)
	}
}

// readinessHook keeps a Readiness current from a client's traffic.
type readinessHook struct{ r *Readiness }

var _ goredis.Hook = readinessHook{}

func (h readinessHook) DialHook(next goredis.DialHook) goredis.DialHook {
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := next(ctx, network, addr)
		if err != nil && ctx.Err() == nil {
			h.r.setReady(false)
		}
		return c, err
	}
}

func (h readinessHook) ProcessHook(next goredis.ProcessHook) goredis.ProcessHook {
	return func(ctx context.Context, cmd goredis.Cmder) error {
		err := next(ctx, cmd)
		h.observe(ctx, err)
		return err
	}
}

func (h readinessHook) ProcessPipelineHook(next goredis.ProcessPipelineHook) goredis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []goredis.Cmder) error {
		err := next(ctx, cmds)
		h.observe(ctx, err)
		return err
	}
}

// observe sets the readiness from a command's outcome.
func (h readinessHook) observe(ctx context.Context, err error) {
	switch {
	case err == nil, errors.Is(err, goredis.Nil):
		h.r.setReady(true)
	case ctx.Err() != nil:
		// The caller gave up: no news about the server.
	case serverAnswered(err):
		h.r.setReady(true)
	default:
		h.r.setReady(false)
	}
}

// serverAnswered reports whether err is a reply of the server (an error
// reply such as a script error or WRONGTYPE) rather than a failure to
// reach it. LOADING (a restarted server still reading its AOF) and
// similar replies mean it cannot serve yet: not answered.
func serverAnswered(err error) bool {
	var re goredis.Error
	if !errors.As(err, &re) {
		return false
	}
	var ne net.Error
	if errors.As(err, &ne) {
		return false
	}
	msg := re.Error()
	for _, busy := range []string{"LOADING", "MASTERDOWN", "TRYAGAIN", "CLUSTERDOWN", "READONLY"} {
		if len(msg) >= len(busy) && msg[:len(busy)] == busy {
			return false
		}
	}
	return true
}
