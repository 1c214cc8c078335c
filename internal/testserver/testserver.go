// Package testserver runs a whole presenced node in a test, built by
// internal/presenced as the binary builds it, on a loopback port.
package testserver

import (
	"context"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/presenced/presenced/auth"
	"github.com/presenced/presenced/internal/presenced"
)

// Server is a node that a test runs.
type Server struct {
	*presenced.Server
	// URL is the public listener's base URL, http://host:port.
	URL string
	// AdminURL is the admin listener's base URL; "" without one.
	AdminURL string

	client   *http.Client
	stopOnce sync.Once
	stopErr  error
	stop     func() error
}

// Run opens a node with o, on 127.0.0.1:0 unless o says where, and runs
// it until the test ends. The test's cleanup stops it, as SIGTERM does,
// and fails the test if the shutdown fails; every goroutine of the node
// has ended by then.
func Run(t testing.TB, o presenced.Options) *Server {
	t.Helper()
	if o.Addr == "" {
		o.Addr = "127.0.0.1:0"
	}
	srv, err := presenced.Open(context.Background(), o)
	if err != nil {
		t.Fatalf("presenced did not start: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Run(ctx) }()
	s := &Server{Server: srv, URL: "http://" + srv.Addr(), client: &http.Client{Transport: &http.Transport{}}}
	if a := srv.AdminAddr(); a != "" {
		s.AdminURL = "http://" + a
	}
	s.stop = func() error {
		cancel()
		select {
		case err := <-done:
			return err
		case <-time.After(time.Minute):
			t.Errorf("presenced did not stop within a minute")
			return nil
		}
	}
	t.Cleanup(func() {
		s.client.CloseIdleConnections()
		if err := s.Stop(); err != nil {
			t.Errorf("shutdown: %v", err)
		}
	})
	return s
}

// Stop shuts the node down as SIGTERM does and returns Run's error;
// later calls return the same.
func (s *Server) Stop() error {
	s.stopOnce.Do(func() { s.stopErr = s.stop() })
	return s.stopErr
}

// Client is an HTTP client of its own, whose idle connections the
// test's cleanup closes.
func (s *Server) Client() *http.Client { return s.client }

// Start runs a node that keeps statuses in memory and accepts HS256
// tokens signed with secret, and returns its host:port.
func Start(t testing.TB, secret string) string {
	t.Helper()
	s := Run(t, presenced.Options{Auth: auth.Config{Secrets: [][]byte{[]byte(secret)}}})
	return strings.TrimPrefix(s.URL, "http://")
}
