// Package fakeswitch runs a test fake's HTTP server on one loopback address,
// counts the requests that reach it, and switches it down (connection
// refused, or 503 from something in front of it) and up again, as the
// on-call fakes (pdfake, ogfake) need.
package fakeswitch

import (
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"sync"
)

// Mode says how the fake fails while it is down.
type Mode int

const (
	// Up serves normally.
	Up Mode = iota
	// Refused closes the listener: clients get "connection refused".
	Refused
	// Unavailable answers every request with 503 and a non-JSON body, as a
	// load balancer in front of a failing service does.
	Unavailable
)

// Switch is a running server that can be taken down and brought back. All
// methods are safe for concurrent use.
type Switch struct {
	name    string
	handler http.Handler
	page503 string

	mu       sync.Mutex
	srv      *httptest.Server
	addr     string
	mode     Mode
	requests int
}

// Start serves h on a new loopback address. name prefixes errors ("pdfake");
// page503 is the HTML body of the 503 answers in Unavailable mode, which
// h does not see. Close it when done.
func Start(name string, h http.Handler, page503 string) *Switch {
	s := &Switch{name: name, page503: page503}
	s.handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !s.outage(w) {
			h.ServeHTTP(w, r)
		}
	})
	s.srv = httptest.NewServer(s.handler)
	s.addr = s.srv.Listener.Addr().String()
	return s
}

// URL is the base URL (http://127.0.0.1:port); it stays the same across
// Down(Refused) and Up.
func (s *Switch) URL() string { return "http://" + s.addr }

// Close stops the server.
func (s *Switch) Close() {
	s.mu.Lock()
	srv := s.srv
	s.srv = nil
	s.mu.Unlock()
	if srv != nil {
		srv.Close()
	}
}

// Down takes the service down in mode m (Refused or Unavailable).
func (s *Switch) Down(m Mode) {
	s.mu.Lock()
	s.mode = m
	srv := s.srv
	if m == Refused {
		s.srv = nil
	}
	s.mu.Unlock()
	if m == Refused && srv != nil {
		srv.Close()
	}
}

// Up brings the service back on the same address.
func (s *Switch) Up() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.mode = Up
	if s.srv != nil {
		return nil
	}
	l, err := net.Listen("tcp", s.addr)
	if err != nil {
		return fmt.Errorf("%s: listen again on %s: %w", s.name, s.addr, err)
	}
	srv := httptest.NewUnstartedServer(s.handler)
	srv.Listener.Close()
	srv.Listener = l
	srv.Start()
	s.srv = srv
	return nil
}

// Requests returns how many HTTP requests reached the server, 503s included.
func (s *Switch) Requests() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.requests
}

// outage counts a request, and answers w with the 503 page and returns true
// while the service is down in Unavailable mode.
func (s *Switch) outage(w http.ResponseWriter) bool {
	s.mu.Lock()
	s.requests++
	down := s.mode == Unavailable
	s.mu.Unlock()
	if !down {
		return false
	}
	w.Header().Set("Content-Type", "text/html")
	w.WriteHeader(http.StatusServiceUnavailable)
	fmt.Fprint(w, s.page503)
	return true
}
