package transport_test

import (
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/gorilla/websocket"

	"github.com/presenced/presenced/auth"
	"github.com/presenced/presenced/hub"
	"github.com/presenced/presenced/transport"
)

func TestSubscribeSnapshotAndBroadcast(t *testing.T) {
	e := newEnv(t, options{})
	e.dial(e.token(2, "bob"))
	watcher := e.dial(e.token(1, "ann"))
	waitKnown(t, "bob", func() int { return e.do("GET", "/users/2/presence", e.token(1, "ann"), "").status })

	watcher.send(`{"type":"subscribe","user_ids":[2,3],"id":"s1"}`)
	m := watcher.expect("subscribed")
	ps := m["presences"].([]any)
	if m["id"] != "s1" || len(ps) != 1 {
		t.Fatalf("subscribed = %v, want id s1 and bob alone (3 is unknown)", m)
	}
	bob := ps[0].(map[string]any)
	if keys(bob) != "busy_since,is_busy,is_online,last_seen,user_id,username,wait_time" || bob["username"] != "bob" || bob["is_online"] != true {
		t.Fatalf("snapshot entry %v", bob)
	}

	carol := e.dial(e.token(3, "carol"))
	ev := watcher.presence(3, true)
	if keys(ev) != "busy_since,is_busy,is_online,last_seen,type,user_id,username,wait_time" || ev["username"] != "carol" {
		t.Fatalf("presence event %v", ev)
	}

	carol.send(`{"type":"set_status","is_busy":true,"wait_time":20,"id":7}`)
	st := carol.expect("status")
	if st["id"] != float64(7) {
		t.Fatalf("status reply %v, want id 7", st)
	}
	checkUserStatus(t, st["status"].(map[string]any), 3)
	ev = watcher.presence(3, true)
	if ev["is_busy"] != true || ev["wait_time"] != float64(20) {
		t.Fatalf("busy event %v", ev)
	}

	// A REST change reaches the socket too.
	if r := e.do("PUT", "/users/me/status", e.token(3, "carol"), `{"is_busy":false}`); r.status != 200 {
		t.Fatal(r.status)
	}
	if ev := watcher.presence(3, true); ev["is_busy"] != false || ev["wait_time"] != nil {
		t.Fatalf("free event %v", ev)
	}

	watcher.send(`{"type":"unsubscribe","user_ids":[3]}`)
	if u := watcher.expect("unsubscribed"); len(u["user_ids"].([]any)) != 1 {
		t.Fatalf("unsubscribed %v", u)
	}
	carol.send(`{"type":"set_status","is_busy":true}`)
	carol.expect("status")
	watcher.send(`{"type":"ping","id":"p"}`)
	// The pong comes next: no event for carol, whom it no longer watches.
	if p := watcher.expect("pong"); p["id"] != "p" {
		t.Fatalf("pong %v", p)
	}
}

func TestBadMessagesGetErrorsAndTheSocketLives(t *testing.T) {
	e := newEnv(t, options{})
	c := e.dial(e.token(1, "a"))
	for msg, detail := range map[string]string{
		`{`:                                     "message is not valid JSON",
		`[1]`:                                   "a message must be a JSON object",
		`{"user_ids":[1]}`:                      "type is required",
		`{"type":5}`:                            "type must be a string, not the number 5",
		`{"type":"dance"}`:                      `unknown message type "dance"`,
		`{"type":"subscribe"}`:                  "user_ids is required",
		`{"type":"subscribe","user_ids":"1,2"}`: "user_ids must be an array of user ids, not a string",
		`{"type":"subscribe","user_ids":[]}`:    "user_ids must list at least one user id",
		`{"type":"subscribe","user_ids":["1"]}`: "user ids must be numbers, not a string",
		`{"type":"subscribe","user_ids":[-4]}`:  "user id -4 is not a positive integer",
		`{"type":"subscribe","user_ids":[1.5]}`: `user id "1.5" is not a positive integer`,
		`{"type":"subscribe","user_ids":[99999999999999999999]}`: `user id "99999999999999999999" is too large: ids are at most 9007199254740991`,
		`{"type":"set_status"}`:                                  "No status fields to update",
		`{"type":"set_status","is_busy":"no"}`:                   "is_busy must be true or false, not a string",
		`{"type":"set_status","wait_time":-2}`:                   "wait_time must not be negative",
		`{"type":"ping","id":{"a":1}}`:                           "id must be a string or a number",
	} {
		c.send(msg)
		m := c.expect("error")
		if d, _ := m["detail"].(string); !strings.HasPrefix(d, detail) {
			t.Errorf("%s: detail %q, want %q…", msg, d, detail)
		}
	}
	c.send(`{"type":"dance","id":9}`)
	if m := c.expect("error"); m["id"] != float64(9) {
		t.Fatalf("error %v does not echo the id", m)
	}
	c.send(`{"type":"ping"}`)
	c.expect("pong")
}

func TestProtocolViolationsClose(t *testing.T) {
	e := newEnv(t, options{transport: transport.Config{MaxMessageBytes: 1024}})
	for name, tc := range map[string]struct {
		kind int
		data []byte
		code int
	}{
		"binary":    {websocket.BinaryMessage, []byte(`{"type":"ping"}`), websocket.CloseUnsupportedData},
		"too big":   {websocket.TextMessage, []byte(`{"type":"ping","id":"` + strings.Repeat("x", 2000) + `"}`), websocket.CloseMessageTooBig},
		"bad utf-8": {websocket.TextMessage, []byte("{\"type\":\"ping\",\"id\":\"\xff\xfe\"}"), websocket.CloseInvalidFramePayloadData},
	} {
		t.Run(name, func(t *testing.T) {
			c := e.dial(e.token(1, "a"))
			if err := c.ws.WriteMessage(tc.kind, tc.data); err != nil {
				t.Fatal(err)
			}
			if code := c.closed(); code != tc.code {
				t.Fatalf("close code %d, want %d", code, tc.code)
			}
		})
	}
	// The server is still healthy.
	c := e.dial(e.token(1, "a"))
	c.send(`{"type":"ping"}`)
	c.expect("pong")
}

func TestBadTokensOnTheSocket(t *testing.T) {
	e := newEnv(t, options{})
	exp := time.Now().Add(time.Hour).Unix()
	expired, _ := auth.NewIssuer([]byte(secret), -time.Minute).Issue(1, "a")
	for name, tok := range map[string]string{
		"missing":  "",
		"garbage":  "garbage",
		"expired":  expired,
		"forged":   signed(t, jwt.SigningMethodHS256, []byte("other"), jwt.MapClaims{"sub": "1", "exp": exp}),
		"alg none": signed(t, jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, jwt.MapClaims{"sub": "1", "exp": exp}),
	} {
		t.Run(name, func(t *testing.T) {
			c := e.dial(tok)
			if code := c.closed(); code != transport.CloseInvalidToken {
				t.Fatalf("close code %d, want %d", code, transport.CloseInvalidToken)
			}
		})
	}
	// Browsers send the token as a query parameter.
	c := e.dialWith(e.wsURL("access_token="+e.token(5, "q")), nil, websocket.DefaultDialer, true)
	c.send(`{"type":"ping"}`)
	c.expect("pong")
	// A plain GET without a token is refused before any upgrade.
	if r := e.do("GET", "/ws", "", ""); r.status != http.StatusUnauthorized || r.detail(t) != "Invalid or expired token" {
		t.Fatalf("plain GET /ws: %d %s", r.status, r.body)
	}
}

func TestDevicesGraceAndOffline(t *testing.T) {
	e := newEnv(t, options{hub: hub.Config{Grace: 100 * time.Millisecond}})
	watcher := e.dial(e.token(1, "w"))
	watcher.subscribe(2)
	phone := e.dial(e.token(2, "bob"))
	watcher.presence(2, true)
	laptop := e.dial(e.token(2, "bob"))
	phone.ws.Close()
	// The laptop still holds bob online: a status change shows him online.
	laptop.send(`{"type":"set_status","is_busy":true}`)
	laptop.expect("status")
	if ev := watcher.presence(2, true); ev["is_busy"] != true {
		t.Fatalf("event %v", ev)
	}
	laptop.ws.Close()
	ev := watcher.presence(2, false)
	if ev["last_seen"] == nil {
		t.Fatalf("offline event without last_seen: %v", ev)
	}
	r := e.do("GET", "/users/2/presence", e.token(1, "w"), "")
	if r.object(t)["is_online"] != false {
		t.Fatalf("REST after offline: %s", r.body)
	}
}

func TestMissedPongClosesAndTurnsOffline(t *testing.T) {
	e := newEnv(t, options{
		hub:       hub.Config{Grace: 50 * time.Millisecond},
		transport: transport.Config{PingInterval: 100 * time.Millisecond, PongTimeout: 100 * time.Millisecond},
	})
	watcher := e.dial(e.token(1, "w"))
	watcher.subscribe(2)
	// A peer whose pongs never come: it reads, but ignores pings.
	dead := e.dialWith(e.wsURL(""), http.Header{"Authorization": {"Bearer " + e.token(2, "ghost")}}, websocket.DefaultDialer, false)
	dead.ws.SetPingHandler(func(string) error { return nil })
	dead.startPump()
	watcher.presence(2, true)
	// The watcher answers pings (gorilla does so while reading) and stays.
	if code := dead.closed(); code != transport.ClosePongTimeout {
		t.Fatalf("close code %d, want %d", code, transport.ClosePongTimeout)
	}
	watcher.presence(2, false)
	watcher.send(`{"type":"ping"}`)
	watcher.expect("pong")
}

// smallBuffers shrinks the kernel buffers of accepted sockets so that a
// client that stops reading fills them after a few kilobytes.
type smallBuffers struct{ net.Listener }

func (l smallBuffers) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if tc, ok := c.(*net.TCPConn); ok {
		_ = tc.SetWriteBuffer(4096)
	}
	return c, err
}

func TestClientThatNeverReadsIsDropped(t *testing.T) {
	e := newEnv(t, options{
		hub:      hub.Config{MaxQueueBytes: 8 << 10},
		listener: func(l net.Listener) net.Listener { return smallBuffers{l} },
	})
	// A fixed receive buffer stops the kernel growing it; it is kept above
	// two loopback MSS (64 KiB each) so that reading it later reopens the
	// window at once instead of waiting for zero-window probes.
	dialer := *websocket.DefaultDialer
	dialer.NetDial = func(network, addr string) (net.Conn, error) {
		c, err := net.Dial(network, addr)
		if tc, ok := c.(*net.TCPConn); ok {
			_ = tc.SetReadBuffer(256 << 10)
		}
		return c, err
	}
	h := http.Header{"Authorization": {"Bearer " + e.token(1, "slow")}}
	slow := e.dialWith(e.wsURL(""), h, &dialer, false)
	slow.send(`{"type":"subscribe","user_ids":[2]}`)
	fast := e.dial(e.token(3, "fast"))
	fast.subscribe(2)
	busy := e.dial(e.token(2, "busy"))
	fast.presence(2, true)

	// Until the slow client is dropped, the fast one gets every change.
	for i := 0; i < 20000; i++ {
		busy.send(map[string]any{"type": "set_status", "is_busy": i%2 == 0})
		busy.expect("status")
		if ev := fast.presence(2, true); ev["is_busy"] != (i%2 == 0) {
			t.Fatalf("change %d: fast watcher got %v", i, ev)
		}
		stats, err := e.hub.Stats(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		if stats.Sessions == 2 {
			// Dropped: now it reads and finds the close code after the
			// events that did fit.
			if code := slow.closed(); code != transport.CloseSlowConsumer {
				t.Fatalf("close code %d, want %d", code, transport.CloseSlowConsumer)
			}
			return
		}
	}
	t.Fatal("a client that never read was not dropped after 20000 events")
}

func TestOriginCheck(t *testing.T) {
	e := newEnv(t, options{transport: transport.Config{AllowedOrigins: []string{"https://app.example"}}})
	tok := e.token(1, "a")
	for origin, ok := range map[string]bool{
		"":                     true, // native apps send none
		e.srv.URL:              true, // same origin
		"https://app.example":  true,
		"https://evil.example": false,
	} {
		h := http.Header{"Authorization": {"Bearer " + tok}}
		if origin != "" {
			h.Set("Origin", origin)
		}
		ws, resp, err := websocket.DefaultDialer.Dial(e.wsURL(""), h)
		if ok {
			if err != nil {
				t.Errorf("origin %q refused: %v", origin, err)
				continue
			}
			ws.Close()
			continue
		}
		if err == nil {
			ws.Close()
			t.Errorf("origin %q accepted", origin)
			continue
		}
		if resp == nil || resp.StatusCode != http.StatusForbidden {
			t.Errorf("origin %q: %v, want 403", origin, resp)
		}
	}
}

func TestShutdownSendsGoingAway(t *testing.T) {
	e := newEnv(t, options{})
	clients := []*client{e.dial(e.token(1, "a")), e.dial(e.token(2, "b")), e.dial(e.token(2, "b"))}
	clients[0].subscribe(2)
	e.stop()
	for i, c := range clients {
		if code := c.closed(); code != websocket.CloseGoingAway {
			t.Fatalf("client %d: close code %d, want 1001", i, code)
		}
	}
}

func TestARunOfBadMessagesClosesWith4400(t *testing.T) {
	e := newEnv(t, options{transport: transport.Config{MaxBadMessages: 3}})
	c := e.dial(e.token(1, "a"))
	// Bad messages with good ones between never add up.
	for i := 0; i < 4; i++ {
		c.send(`{"type":"dance"}`)
		c.expect("error")
		c.send(`{"type":"dance"}`)
		c.expect("error")
		c.send(`{"type":"ping"}`)
		c.expect("pong")
	}
	// Three in a row: each answered, then the close.
	for i := 0; i < 3; i++ {
		c.send(`{"type":"subscribe","user_ids":"x"}`)
	}
	for i := 0; i < 3; i++ {
		c.expect("error")
	}
	if code := c.closed(); code != transport.CloseBadRequest {
		t.Fatalf("close code %d, want %d", code, transport.CloseBadRequest)
	}
}
