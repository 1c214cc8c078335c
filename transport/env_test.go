package transport_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/gorilla/websocket"

	"github.com/presenced/presenced/auth"
	"github.com/presenced/presenced/hub"
	"github.com/presenced/presenced/internal/presenced"
	"github.com/presenced/presenced/internal/testserver"
	"github.com/presenced/presenced/transport"
)

const secret = "transport-test-secret-0123456789abcdef"

// waitFor bounds every wait for an event; generous because test machines
// are shared.
const waitFor = 10 * time.Second

// env is a whole node, as presenced wires it, on a loopback port.
type env struct {
	t      *testing.T
	srv    *testserver.Server
	hub    *hub.Hub
	issuer *auth.Issuer
	// stop shuts the node down as SIGTERM does: sockets close with
	// 1001.
	stop func()
}

type options struct {
	hub       hub.Config
	transport transport.Config
	// listener wraps the server's listener (to shrink socket buffers).
	listener func(net.Listener) net.Listener
}

func newEnv(t *testing.T, o options) *env {
	t.Helper()
	po := presenced.Options{Auth: auth.Config{Secrets: [][]byte{[]byte(secret)}}, Hub: o.hub, Transport: o.transport}
	if o.transport.Logger != nil {
		po.Logger = o.transport.Logger
	}
	if o.listener != nil {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		po.Listener = o.listener(ln)
	}
	srv := testserver.Run(t, po)
	return &env{t: t, srv: srv, hub: srv.Hub(), issuer: auth.NewIssuer([]byte(secret), time.Hour), stop: func() {
		if err := srv.Stop(); err != nil {
			t.Errorf("shutdown: %v", err)
		}
	}}
}

func (e *env) token(id int64, name string) string {
	e.t.Helper()
	tok, err := e.issuer.Issue(id, name)
	if err != nil {
		e.t.Fatal(err)
	}
	return tok
}

// signed makes a token with any claims and method, for the bad-token cases.
func signed(t *testing.T, method jwt.SigningMethod, key any, claims jwt.MapClaims) string {
	t.Helper()
	tok, err := jwt.NewWithClaims(method, claims).SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

type response struct {
	status int
	header http.Header
	body   []byte
}

// json decodes the body into a generic value.
func (r response) json(t *testing.T) any {
	t.Helper()
	var v any
	if err := json.Unmarshal(r.body, &v); err != nil {
		t.Fatalf("body %q is not JSON: %v", r.body, err)
	}
	return v
}

func (r response) object(t *testing.T) map[string]any {
	t.Helper()
	m, ok := r.json(t).(map[string]any)
	if !ok {
		t.Fatalf("body %s is not a JSON object", r.body)
	}
	return m
}

func (r response) detail(t *testing.T) string {
	t.Helper()
	d, _ := r.object(t)["detail"].(string)
	return d
}

func (e *env) do(method, path, token string, body string) response {
	e.t.Helper()
	return e.doWith(method, path, token, body, nil)
}

// doWith is do with more request headers.
func (e *env) doWith(method, path, token, body string, header http.Header) response {
	e.t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	resp, b := send(e.t, e.srv.Client(), method, e.srv.URL+path, token, rd, header)
	checkAnswer(e.t, e.srv.URL, method, path, token, body, resp, b)
	if ct := resp.Header.Get("Content-Type"); resp.StatusCode != http.StatusOK && !strings.HasPrefix(ct, "application/json") && method != http.MethodHead {
		e.t.Errorf("%s %s: %d with Content-Type %q, want JSON", method, path, resp.StatusCode, ct)
	}
	return response{status: resp.StatusCode, header: resp.Header, body: bytes.TrimSpace(b)}
}

// send makes one request, with header and, unless token is empty, the
// token as its bearer, and returns the answer with its body read.
func send(t *testing.T, c *http.Client, method, url, token string, body io.Reader, header http.Header) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, url, body)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range header {
		req.Header[k] = v
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, b
}

// client is a real WebSocket client. Like a real app it reads all the
// time (gorilla answers pings while reading); frames wait in a channel
// until the test looks at them. A raw client reads only when asked.
type client struct {
	t       *testing.T
	ws      *websocket.Conn
	frames  chan []byte // closed by the pump when reading fails
	readErr error       // set by the pump before it closes frames
	pending []map[string]any
}

func (e *env) wsURL(query string) string {
	u := "ws" + strings.TrimPrefix(e.srv.URL, "http") + "/ws"
	if query != "" {
		u += "?" + query
	}
	return u
}

// dial connects with the token in the Authorization header.
func (e *env) dial(token string) *client {
	e.t.Helper()
	h := http.Header{}
	if token != "" {
		h.Set("Authorization", "Bearer "+token)
	}
	return e.dialWith(e.wsURL(""), h, websocket.DefaultDialer, true)
}

func (e *env) dialWith(url string, h http.Header, d *websocket.Dialer, pump bool) *client {
	e.t.Helper()
	ws, resp, err := d.Dial(url, h)
	if err != nil {
		status := 0
		if resp != nil {
			status = resp.StatusCode
		}
		e.t.Fatalf("dial %s: %v (HTTP %d)", url, err, status)
	}
	c := &client{t: e.t, ws: ws}
	e.t.Cleanup(func() { ws.Close() })
	if pump {
		c.startPump()
	}
	return c
}

// startPump starts reading in the background, as a real app does.
func (c *client) startPump() {
	c.frames = make(chan []byte, 1024)
	done := make(chan struct{})
	go func() {
		defer close(done)
		defer close(c.frames)
		for {
			_, data, err := c.ws.ReadMessage()
			if err != nil {
				c.readErr = err
				return
			}
			c.frames <- data
		}
	}()
	c.t.Cleanup(func() { c.ws.Close(); <-done })
}

// read returns the next frame.
func (c *client) read() ([]byte, error) {
	if c.frames == nil {
		_ = c.ws.SetReadDeadline(time.Now().Add(waitFor))
		_, data, err := c.ws.ReadMessage()
		return data, err
	}
	select {
	case data, ok := <-c.frames:
		if !ok {
			return nil, c.readErr
		}
		return data, nil
	case <-time.After(waitFor):
		return nil, errors.New("no frame within " + waitFor.String())
	}
}

func (c *client) send(v any) {
	c.t.Helper()
	var data []byte
	switch v := v.(type) {
	case string:
		data = []byte(v)
	default:
		var err error
		if data, err = json.Marshal(v); err != nil {
			c.t.Fatal(err)
		}
	}
	if err := c.ws.WriteMessage(websocket.TextMessage, data); err != nil {
		c.t.Fatalf("send: %v", err)
	}
}

// next returns the next message, reading a frame if none is pending; a
// frame holding an array yields its elements one by one.
func (c *client) next() map[string]any {
	c.t.Helper()
	m, err := c.tryNext()
	if err != nil {
		c.t.Fatalf("waiting for a message: %v", err)
	}
	return m
}

func (c *client) tryNext() (map[string]any, error) {
	for len(c.pending) == 0 {
		data, err := c.read()
		if err != nil {
			return nil, err
		}
		if len(data) > 0 && data[0] == '[' {
			var batch []map[string]any
			if err := json.Unmarshal(data, &batch); err != nil {
				c.t.Fatalf("frame %s: %v", data, err)
			}
			c.pending = append(c.pending, batch...)
			continue
		}
		var m map[string]any
		if err := json.Unmarshal(data, &m); err != nil {
			c.t.Fatalf("frame %s: %v", data, err)
		}
		c.pending = append(c.pending, m)
	}
	m := c.pending[0]
	c.pending = c.pending[1:]
	return m, nil
}

// expect reads the next message and checks its type.
func (c *client) expect(typ string) map[string]any {
	c.t.Helper()
	m := c.next()
	if m["type"] != typ {
		c.t.Fatalf("got %v, want a %q message", m, typ)
	}
	return m
}

// presence waits for a presence event of user with the given online state,
// skipping other events (the order of events of different users is free).
func (c *client) presence(user int64, online bool) map[string]any {
	c.t.Helper()
	for {
		m := c.next()
		if m["type"] == "presence" && m["user_id"] == float64(user) && m["is_online"] == online {
			return m
		}
		if m["type"] != "presence" {
			c.t.Fatalf("got %v while waiting for user %d online=%t", m, user, online)
		}
	}
}

// closed waits for the server to close the socket and returns the code.
func (c *client) closed() int {
	c.t.Helper()
	for {
		_, err := c.tryNext()
		if err == nil {
			continue
		}
		var ce *websocket.CloseError
		if errors.As(err, &ce) {
			return ce.Code
		}
		c.t.Fatalf("socket ended without a close frame: %v", err)
	}
}

func (c *client) subscribe(ids ...int64) []any {
	c.t.Helper()
	c.send(map[string]any{"type": "subscribe", "user_ids": ids})
	m := c.expect("subscribed")
	ps, _ := m["presences"].([]any)
	return ps
}
