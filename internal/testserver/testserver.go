// Package testserver runs a real presenced hub and transport on a loopback
// port for the tests of the tools that load it.
package testserver

import (
	"context"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/presenced/presenced/auth"
	"github.com/presenced/presenced/hub"
	"github.com/presenced/presenced/storage/memory"
	"github.com/presenced/presenced/transport"
)

// Start runs a server that accepts HS256 tokens signed with secret and
// returns its host:port. The test's cleanup stops it and waits for every
// goroutine it started.
func Start(t testing.TB, secret string) string {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	h := hub.New(memory.New(), hub.Config{EncodeEvent: transport.EncodeEvent})
	hubDone := make(chan error, 1)
	go func() { hubDone <- h.Run(ctx) }()
	v, err := auth.NewVerifier(auth.Config{Secrets: [][]byte{[]byte(secret)}})
	if err != nil {
		t.Fatal(err)
	}
	srv := transport.New(h, transport.VerifierFunc(func(token string) (transport.Identity, error) {
		c, err := v.Verify(token)
		return transport.Identity{UserID: c.UserID, Username: c.Username, ExpiresAt: c.ExpiresAt, Service: c.Service, Watch: c.Watch}, err
	}), transport.Config{})
	ts := httptest.NewServer(srv)
	t.Cleanup(func() {
		ts.Close()
		cancel()
		if err := <-hubDone; err != nil {
			t.Error(err)
		}
		wctx, wcancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer wcancel()
		if err := srv.Wait(wctx); err != nil {
			t.Error(err)
		}
	})
	return strings.TrimPrefix(ts.URL, "http://")
}
