package redistest

import (
	"fmt"
	"net"
	"os/exec"
	"strconv"
	"syscall"
	"testing"
	"time"
)

// Server is a redis-server of one test's own, on a loopback port chosen by
// FreePort, that the test can stop and start again on the same port (to
// play an outage or a restart). It is stopped by its pid when the test ends.
type Server struct {
	t    testing.TB
	Port int
	Dir  string   // the server's --dir (a temp dir of the test)
	Args []string // extra arguments, e.g. "--appendonly", "yes"
	cmd  *exec.Cmd
}

// FreePort returns a loopback TCP port nothing listens on right now.
func FreePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("redistest: free port: %v", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// NewServer prepares (does not start) a server on port with the extra
// arguments args; its data lives in a temp dir of t.
func NewServer(t testing.TB, port int, args ...string) *Server {
	t.Helper()
	if _, err := exec.LookPath("redis-server"); err != nil {
		t.Fatalf("redistest: redis-server not found on PATH (apt-get install -y redis-server): %v", err)
	}
	s := &Server{t: t, Port: port, Dir: t.TempDir(), Args: args}
	t.Cleanup(s.Stop)
	return s
}

// URL is the server's redis:// URL.
func (s *Server) URL() string { return fmt.Sprintf("redis://127.0.0.1:%d/0", s.Port) }

// Start runs the server and waits until it answers (10 s at most).
func (s *Server) Start() {
	s.t.Helper()
	if s.cmd != nil {
		s.t.Fatal("redistest: server already running")
	}
	args := append([]string{"--port", strconv.Itoa(s.Port), "--bind", "127.0.0.1",
		"--save", "", "--dir", s.Dir}, s.Args...)
	cmd := exec.Command("redis-server", args...)
	if err := cmd.Start(); err != nil {
		s.t.Fatalf("redistest: start redis-server: %v", err)
	}
	s.cmd = cmd
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		// A TCP accept, not a PING: the server may require a password.
		if c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", s.Port), time.Second); err == nil {
			c.Close()
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	s.Stop()
	s.t.Fatalf("redistest: redis-server on port %d did not answer within 10s", s.Port)
}

// Stop sends SIGTERM to the server (by its pid) and waits for it to exit;
// with AOF on, Redis flushes the file first. It does nothing when the
// server is not running.
func (s *Server) Stop() {
	if s.cmd == nil {
		return
	}
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	_, _ = s.cmd.Process.Wait()
	s.cmd = nil
}
