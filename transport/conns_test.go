package transport_test

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/presenced/presenced/auth"
	"github.com/presenced/presenced/internal/presenced"
	"github.com/presenced/presenced/internal/testserver"
	"github.com/presenced/presenced/transport"
)

// bounded is a whole server behind transport.NewHTTPServer on a
// loopback port, as presenced serves it.
type bounded struct {
	t    *testing.T
	addr string
	tok  string
}

func startBounded(t *testing.T, cfg transport.ConnConfig) *bounded {
	t.Helper()
	srv := testserver.Run(t, presenced.Options{Auth: auth.Config{Secrets: [][]byte{[]byte(secret)}}, Conn: cfg})
	tok, err := auth.NewIssuer([]byte(secret), time.Hour).Issue(1, "a")
	if err != nil {
		t.Fatal(err)
	}
	return &bounded{t: t, addr: srv.Addr(), tok: tok}
}

// dial opens a raw TCP connection, closed at the end of the test.
func (b *bounded) dial() net.Conn {
	b.t.Helper()
	c, err := net.Dial("tcp", b.addr)
	if err != nil {
		b.t.Fatal(err)
	}
	b.t.Cleanup(func() { c.Close() })
	return c
}

// request sends one keep-alive request on c and reads its answer.
func (b *bounded) request(c net.Conn, r *bufio.Reader, method, path, body string) *http.Response {
	b.t.Helper()
	_ = c.SetDeadline(time.Now().Add(waitFor))
	defer func() { _ = c.SetDeadline(time.Time{}) }()
	fmt.Fprintf(c, "%s %s HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\nContent-Length: %d\r\n\r\n%s", method, path, b.tok, len(body), body)
	resp, err := http.ReadResponse(r, nil)
	if err != nil {
		b.t.Fatalf("%s %s: %v", method, path, err)
	}
	if _, err := io.Copy(io.Discard, resp.Body); err != nil {
		b.t.Fatal(err)
	}
	resp.Body.Close()
	return resp
}

// closedByServer waits, within waitFor, for the server to close c: a read
// that ends with EOF or a reset, never with the test's own deadline.
func closedByServer(t *testing.T, c net.Conn, r io.Reader) {
	t.Helper()
	if r == nil {
		r = c
	}
	_ = c.SetReadDeadline(time.Now().Add(waitFor))
	_, err := io.Copy(io.Discard, r)
	if errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("the server held the connection for %v", waitFor)
	}
}

// closedYet says whether the server has closed c, looking for a moment.
func closedYet(c net.Conn, r io.Reader) bool {
	_ = c.SetReadDeadline(time.Now().Add(20 * time.Millisecond))
	_, err := r.Read(make([]byte, 1))
	return err != nil && !errors.Is(err, os.ErrDeadlineExceeded)
}

func TestAKeptAliveConnectionIsClosedAtTheIdleTimeout(t *testing.T) {
	b := startBounded(t, transport.ConnConfig{IdleTimeout: 200 * time.Millisecond})
	c := b.dial()
	r := bufio.NewReader(c)
	if resp := b.request(c, r, "GET", "/healthz", ""); resp.StatusCode != http.StatusOK || resp.Close {
		t.Fatalf("healthz: %d, close %v", resp.StatusCode, resp.Close)
	}
	// Kept alive: a second request on the same connection works.
	if resp := b.request(c, r, "GET", "/users/me/status", ""); resp.StatusCode != http.StatusNotFound {
		t.Fatalf("second request: %d", resp.StatusCode)
	}
	closedByServer(t, c, r)
}

func TestARequestSentSlowlyIsCutOff(t *testing.T) {
	b := startBounded(t, transport.ConnConfig{ReadHeaderTimeout: 200 * time.Millisecond, ReadTimeout: 400 * time.Millisecond})
	t.Run("nothing at all", func(t *testing.T) {
		closedByServer(t, b.dial(), nil)
	})
	t.Run("headers", func(t *testing.T) {
		c := b.dial()
		fmt.Fprintf(c, "PUT /users/me/status HTTP/1.1\r\nHost: x\r\n")
		closedByServer(t, c, nil)
	})
	t.Run("body", func(t *testing.T) {
		// The token is good and the headers complete: only the body lags,
		// one byte of the hundred announced.
		c := b.dial()
		fmt.Fprintf(c, "PUT /users/me/status HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\nContent-Length: 100\r\n\r\n{", b.tok)
		closedByServer(t, c, nil)
	})
}

func TestConnectionsWaitingForARequestAreCapped(t *testing.T) {
	const max = 4
	b := startBounded(t, transport.ConnConfig{MaxIdleConns: max})
	// Four that send nothing, then a fifth: the first one goes.
	var silent []net.Conn
	for range max {
		silent = append(silent, b.dial())
	}
	// The kernel queues connections in the order they come, and the
	// server accepts them in that order.
	fifth := b.dial()
	closedByServer(t, silent[0], nil)
	if resp := b.request(fifth, bufio.NewReader(fifth), "GET", "/healthz", ""); resp.StatusCode != http.StatusOK {
		t.Fatalf("the newest connection: %d", resp.StatusCode)
	}

	// Kept-alive connections between requests count too, and a flood of
	// silent ones cannot keep a prompt client out.
	var kept []net.Conn
	var readers []*bufio.Reader
	for range max {
		c := b.dial()
		r := bufio.NewReader(c)
		if resp := b.request(c, r, "GET", "/healthz", ""); resp.StatusCode != http.StatusOK {
			t.Fatal(resp.StatusCode)
		}
		kept, readers = append(kept, c), append(readers, r)
	}
	// A kept-alive connection begins to wait when the server has written
	// its answer and turned back to read, a moment after the client has
	// the answer: so new silent connections keep coming until each kept
	// one is closed, as a flood would.
	for i, c := range kept {
		for n := 0; !closedYet(c, readers[i]); n++ {
			if n == 500 {
				t.Fatalf("kept-alive connection %d still open after %d newer silent ones", i, n)
			}
			b.dial()
		}
	}
	for _, c := range silent[1:] {
		closedByServer(t, c, nil)
	}
	for range 3 {
		c := b.dial()
		resp := b.request(c, bufio.NewReader(c), "GET", "/healthz", "")
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("a prompt client among a flood of silent ones: %d", resp.StatusCode)
		}
	}
	// An upgraded socket no longer waits for a request: it is not counted.
	var sockets []*websocket.Conn
	for range max {
		ws, _, err := websocket.DefaultDialer.Dial("ws://"+b.addr+"/ws", http.Header{"Authorization": {"Bearer " + b.tok}})
		if err != nil {
			t.Fatal(err)
		}
		defer ws.Close()
		sockets = append(sockets, ws)
	}
	for range 2 * max {
		b.dial()
	}
	for _, ws := range sockets {
		_ = ws.SetReadDeadline(time.Now().Add(waitFor))
		if err := ws.WriteMessage(websocket.TextMessage, []byte(`{"type":"ping"}`)); err != nil {
			t.Fatal(err)
		}
		if _, msg, err := ws.ReadMessage(); err != nil || !strings.Contains(string(msg), "pong") {
			t.Fatalf("a socket after a flood of silent connections: %s %v", msg, err)
		}
	}
}
