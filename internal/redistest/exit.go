package redistest

import (
	"os"
	"os/exec"
	"syscall"
)

var started []*exec.Cmd

func stopOnExit(cmd *exec.Cmd) { started = append(started, cmd) }

// Stop ends the redis-server this package started, if any. Call it from
// TestMain after m.Run; servers are stopped by their pid only.
func Stop() {
	for _, c := range started {
		if c.Process != nil {
			_ = c.Process.Signal(syscall.SIGTERM)
			_, _ = c.Process.Wait()
		}
	}
	started = nil
}

// Main is a TestMain body: it runs the tests and stops a started server.
func Main(run func() int) {
	code := run()
	Stop()
	os.Exit(code)
}
