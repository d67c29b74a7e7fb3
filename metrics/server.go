package metrics

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// DefaultListen is the address of metrics.listen when it is not set (the
// console demo serves nothing unless it is set).
const DefaultListen = ":9090"

// Handler serves /metrics, /healthz (200 "ok" while Live, else 503 with
// the reason) and /readyz (200 while Ready, else 503; the body lists each
// check).
func (m *Metrics) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{Registry: m.reg}))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		if err := m.Live(); err != nil {
			w.WriteHeader(http.StatusServiceUnavailable)
			fmt.Fprintln(w, err.Error())
			return
		}
		fmt.Fprintln(w, "ok")
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		lines, err := m.Ready(r.Context())
		if err != nil {
			w.WriteHeader(http.StatusServiceUnavailable)
			fmt.Fprintln(w, err.Error())
		} else {
			fmt.Fprintln(w, "ok")
		}
		fmt.Fprintln(w, strings.Join(lines, "\n"))
	})
	return mux
}

// Server serves Handler on an address. Create it with Metrics.Server.
type Server struct {
	addr string
	h    http.Handler

	mu sync.Mutex
	ln net.Listener
}

// Server returns a Server for addr (DefaultListen when empty). It listens
// only once Listen or Run is called.
func (m *Metrics) Server(addr string) *Server {
	if addr == "" {
		addr = DefaultListen
	}
	return &Server{addr: addr, h: m.Handler()}
}

// Listen binds the address (once) and returns the bound address, which
// tells the port when addr asked for port 0.
func (s *Server) Listen() (net.Addr, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ln == nil {
		ln, err := net.Listen("tcp", s.addr)
		if err != nil {
			return nil, fmt.Errorf("metrics: listen on %s: %w", s.addr, err)
		}
		s.ln = ln
	}
	return s.ln.Addr(), nil
}

// Run serves until ctx ends, then shuts the server down (5 s for
// requests in flight) and returns nil; it returns an error when the
// address cannot be bound or serving fails.
func (s *Server) Run(ctx context.Context) error {
	if _, err := s.Listen(); err != nil {
		return err
	}
	srv := &http.Server{Handler: s.h, ReadHeaderTimeout: 5 * time.Second, WriteTimeout: 30 * time.Second}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(s.ln) }()
	select {
	case err := <-done:
		return fmt.Errorf("metrics: serve: %w", err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	err := srv.Shutdown(sctx)
	if serr := <-done; serr != nil && !errors.Is(serr, http.ErrServerClosed) {
		return fmt.Errorf("metrics: serve: %w", serr)
	}
	if err != nil {
		return fmt.Errorf("metrics: shut down: %w", err)
	}
	return nil
}
