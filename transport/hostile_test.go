package transport_test

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"testing/fstest"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/gorilla/websocket"

	"github.com/presenced/presenced/auth"
	"github.com/presenced/presenced/hub"
	"github.com/presenced/presenced/transport"
)

func TestOriginCheckEdgeCases(t *testing.T) {
	e := newEnv(t, options{transport: transport.Config{AllowedOrigins: []string{"https://app.example/", "HTTPS://Admin.Example:8443"}}})
	tok := e.token(1, "a")
	for _, tc := range []struct {
		name, origin string
		ok           bool
	}{
		{"allowed origin listed with a slash", "https://app.example", true},
		{"allowed origin in another case", "https://admin.example:8443", true},
		{"allowed host on another scheme", "http://app.example", false},
		{"allowed host on another port", "https://app.example:444", false},
		{"allowed host as a suffix", "https://app.example.evil.example", false},
		{"opaque origin of a sandboxed page", "null", false},
		{"malformed origin", "://%%", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := bearer(tok)
			h.Set("Origin", tc.origin)
			ws, resp, err := websocket.DefaultDialer.Dial(e.wsURL(""), h)
			if tc.ok {
				if err != nil {
					t.Fatalf("origin %q refused: %v (%s)", tc.origin, err, statusOf(resp))
				}
				ws.Close()
				return
			}
			if err == nil {
				ws.Close()
				t.Fatalf("origin %q was let in", tc.origin)
			}
			if resp == nil || resp.StatusCode != http.StatusForbidden {
				t.Fatalf("origin %q: %s, want 403 before the upgrade", tc.origin, statusOf(resp))
			}
		})
	}

	// Development mode lets any page in.
	dev := newEnv(t, options{transport: transport.Config{AllowAnyOrigin: true}})
	h := bearer(dev.token(1, "a"))
	h.Set("Origin", "https://evil.example")
	alive(dev.dialWith(dev.wsURL(""), h, websocket.DefaultDialer, true))
}

func TestMoreBadMessagesGetAnErrorAndTheSocketLivesOn(t *testing.T) {
	e := newEnv(t, options{transport: transport.Config{MaxIDsPerRequest: 5}, hub: hub5()})
	c := e.dial(e.token(1, "a"))
	for _, tc := range []struct {
		name, msg, detail string
		id                any // the id the error must echo; nil for none
	}{
		{"empty frame", ``, "not valid JSON", nil},
		{"a bare string", `"ping"`, "must be a JSON object", nil},
		{"null", `null`, "must be a JSON object", nil},
		{"huge unknown type", `{"type":"` + strings.Repeat("a", 500) + `","id":"x"}`, "unknown message type", "x"},
		{"deeply nested", strings.Repeat("[", 5000) + strings.Repeat("]", 5000), "must be a JSON object", nil},
		{"zero id", `{"type":"subscribe","user_ids":[0],"id":3}`, "not a positive integer", 3.0},
		{"exponent id", `{"type":"subscribe","user_ids":[1e3]}`, "must be written in canonical decimal", nil},
		{"400-digit id", `{"type":"subscribe","user_ids":[` + strings.Repeat("9", 400) + `]}`, "at most 9007199254740991", nil},
		{"null id", `{"type":"subscribe","user_ids":[null]}`, "must be numbers", nil},
		{"nested array id", `{"type":"subscribe","user_ids":[[1]]}`, "must be numbers", nil},
		{"too many ids", `{"type":"subscribe","user_ids":[1,2,3,4,5,6]}`, "at most 5 are allowed", nil},
		{"unsubscribe of strings", `{"type":"unsubscribe","user_ids":["a"]}`, "must be numbers", nil},
		{"wait_time a string", `{"type":"set_status","is_busy":true,"wait_time":"15"}`, "whole number of minutes", nil},
		{"wait_time huge", `{"type":"set_status","is_busy":true,"wait_time":1e300}`, "at most", nil},
		{"refresh without token", `{"type":"refresh","id":5}`, "token is required", 5.0},
		{"refresh with a number", `{"type":"refresh","token":5}`, "token is required", nil},
		{"refresh with garbage", `{"type":"refresh","token":"x.y.z"}`, "invalid or expired token", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c.send(tc.msg)
			m := c.expect("error")
			if d, _ := m["detail"].(string); !strings.Contains(d, tc.detail) {
				t.Fatalf("detail %q does not say %q", d, tc.detail)
			}
			if m["id"] != tc.id {
				t.Fatalf("error id %v, want %v", m["id"], tc.id)
			}
		})
	}
	alive(c)
	// Nothing bad was applied.
	if r := e.do("GET", "/users/me/status", e.token(1, "a"), ""); r.status != http.StatusOK || r.object(t)["is_busy"] != false {
		t.Fatalf("status after the bad messages: %d %s, want untouched", r.status, r.body)
	}
	// The subscription limit per connection: 4 in, then 2 more are over 5.
	c.subscribe(11, 12, 13, 14)
	c.send(`{"type":"subscribe","user_ids":[15,16],"id":"over"}`)
	if m := c.expect("error"); m["id"] != "over" || !strings.Contains(m["detail"].(string), "at most 5 subscriptions") {
		t.Fatalf("over the subscription limit: %v", m)
	}
	alive(c)
}

func TestMoreTokensInTheWrongPlace(t *testing.T) {
	e := newEnv(t, options{})
	good := e.token(1, "a")
	// On the socket: only the Authorization header or access_token count.
	for name, tc := range map[string]struct {
		query  string
		header http.Header
	}{
		"unknown query parameter": {"token=" + good, nil},
		"Basic scheme":            {"", http.Header{"Authorization": {"Basic " + good}}},
		"oversized token":         {"", bearer(good + strings.Repeat("A", 9000))},
	} {
		t.Run("socket "+name, func(t *testing.T) {
			c := e.dialWith(e.wsURL(tc.query), tc.header, websocket.DefaultDialer, true)
			if code := c.closed(); code != transport.CloseInvalidToken {
				t.Fatalf("close code %d, want %d", code, transport.CloseInvalidToken)
			}
		})
	}
	// On REST: only the Authorization header; a URL ends up in logs.
	for name, tc := range map[string]struct {
		query, header, value string
	}{
		"access_token parameter alone": {"?access_token=" + good, "", ""},
		"token parameter":              {"?token=" + good, "", ""},
		"cookie":                       {"", "Cookie", "access_token=" + good},
		"scheme missing":               {"", "Authorization", good},
	} {
		t.Run("REST "+name, func(t *testing.T) {
			req, _ := http.NewRequest(http.MethodGet, e.srv.URL+"/users/me/status"+tc.query, nil)
			if tc.header != "" {
				req.Header.Set(tc.header, tc.value)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusUnauthorized || resp.Header.Get("WWW-Authenticate") != "Bearer" {
				t.Fatalf("%d, want 401 with WWW-Authenticate", resp.StatusCode)
			}
		})
	}
	if r := e.do("POST", "/users/me/heartbeat", good, ""); r.status != http.StatusOK {
		t.Fatalf("the right place still works: %d %s", r.status, r.body)
	}
}

func TestTokenExpiryClosesTheSocketWith4002(t *testing.T) {
	e := newEnv(t, options{})
	c := e.dialWith(e.wsURL(""), bearer(tokenFor(t, 1, time.Now().Add(3*time.Second))), websocket.DefaultDialer, true)
	alive(c)
	if code := c.closed(); code != transport.CloseTokenExpired {
		t.Fatalf("close code %d, want %d", code, transport.CloseTokenExpired)
	}
	alive(e.dial(e.token(1, "a")))
}

func tokenFor(t *testing.T, id int64, exp time.Time) string {
	t.Helper()
	return signed(t, jwt.SigningMethodHS256, []byte(secret), jwt.MapClaims{"sub": strconv.FormatInt(id, 10), "exp": exp.Unix()})
}

func TestRefreshKeepsTheSocketPastTheFirstToken(t *testing.T) {
	e := newEnv(t, options{})
	firstExp := time.Now().Add(4 * time.Second)
	c := e.dialWith(e.wsURL(""), bearer(tokenFor(t, 1, firstExp)), websocket.DefaultDialer, true)

	// A bad refresh is an error and changes nothing.
	c.send(`{"type":"refresh","id":1,"token":"` + tokenFor(t, 1, time.Now().Add(-time.Minute)) + `"}`)
	if m := c.expect("error"); m["id"] != 1.0 {
		t.Fatalf("refresh with an expired token: %v", m)
	}
	later := time.Now().Add(time.Hour).Truncate(time.Second)
	c.send(`{"type":"refresh","id":2,"token":"` + tokenFor(t, 1, later) + `"}`)
	if m := c.expect("refreshed"); m["id"] != 2.0 || m["expires_at"] != later.UTC().Format(time.RFC3339) {
		t.Fatalf("refresh answered %v, want refreshed until %s", m, later.UTC().Format(time.RFC3339))
	}
	// Wait until the first token has run out, with a margin, then prove
	// the socket still serves. This waits on the clock because the clock
	// is what is under test.
	time.Sleep(time.Until(firstExp.Add(1500 * time.Millisecond)))
	alive(c)
}

func TestRefreshWithAnotherUsersTokenCloses(t *testing.T) {
	e := newEnv(t, options{})
	c := e.dial(e.token(1, "a"))
	c.send(`{"type":"refresh","token":"` + e.token(2, "b") + `"}`)
	if code := c.closed(); code != transport.CloseUserMismatch {
		t.Fatalf("close code %d, want %d", code, transport.CloseUserMismatch)
	}
	alive(e.dial(e.token(1, "a")))
}

func TestRESTRateLimitPerUser(t *testing.T) {
	e := newEnv(t, options{transport: transport.Config{RequestsPerSecond: 0.01, RequestBurst: 2}})
	tok := e.token(1, "a")
	for i := range 2 {
		if r := e.do("POST", "/users/me/heartbeat", tok, ""); r.status != http.StatusOK {
			t.Fatalf("request %d of the burst: %d %s", i+1, r.status, r.body)
		}
	}
	r := e.do("GET", "/users/me/status", tok, "")
	if r.status != http.StatusTooManyRequests || !strings.Contains(r.detail(t), "Too many requests: at most 0.01 per second per user") {
		t.Fatalf("third request: %d %s, want 429 with a detail", r.status, r.body)
	}
	if ra, err := strconv.Atoi(r.header.Get("Retry-After")); err != nil || ra < 1 || ra > 100 {
		t.Fatalf("Retry-After %q, want the whole seconds until the next token (at most 100)", r.header.Get("Retry-After"))
	}
	// Another user is not held back by the first one's requests.
	if r := e.do("GET", "/users/1/presence", e.token(2, "b"), ""); r.status != http.StatusOK {
		t.Fatalf("another user got %d %s", r.status, r.body)
	}
}

func TestNewSocketsPerAddressAreLimitedBeforeTheUpgrade(t *testing.T) {
	e := newEnv(t, options{transport: transport.Config{SocketsPerSecondPerIP: 0.01, SocketBurstPerIP: 2}})
	e.dial(e.token(1, "a"))
	e.dial(e.token(2, "b"))
	_, resp, err := websocket.DefaultDialer.Dial(e.wsURL(""), bearer(e.token(3, "c")))
	if err == nil || resp == nil || resp.StatusCode != http.StatusTooManyRequests {
		t.Fatalf("third socket from one address: %v (%s), want 429 before the upgrade", err, statusOf(resp))
	}
	if ra, err := strconv.Atoi(resp.Header.Get("Retry-After")); err != nil || ra < 1 {
		t.Fatalf("Retry-After %q", resp.Header.Get("Retry-After"))
	}
	var body map[string]string
	_ = json.NewDecoder(resp.Body).Decode(&body)
	if !strings.Contains(body["detail"], "Too many new connections from this address") {
		t.Fatalf("detail %q", body["detail"])
	}
	// Another address has its own bucket.
	alive(e.dialWith(e.wsURL(""), bearer(e.token(4, "d")), &websocket.Dialer{NetDialContext: fromAddr("127.0.0.2"), HandshakeTimeout: waitFor}, true))
}

func TestClientIPHeaderFromATrustedProxy(t *testing.T) {
	e := newEnv(t, options{transport: transport.Config{SocketsPerSecondPerIP: 0.01, SocketBurstPerIP: 1, ClientIPHeader: "X-Forwarded-For"}})
	// Behind the proxy every client comes from 127.0.0.1; the header tells
	// them apart. The last entry is the one the proxy wrote.
	for i, xff := range []string{"203.0.113.7", "198.51.100.1, 203.0.113.8", "2001:db8::1"} {
		h := bearer(e.token(int64(i+1), "a"))
		h.Set("X-Forwarded-For", xff)
		e.dialWith(e.wsURL(""), h, websocket.DefaultDialer, true)
	}
	for _, xff := range []string{"203.0.113.7", "10.0.0.1, 203.0.113.8", "2001:db8::2"} { // the last: same /64
		h := bearer(e.token(9, "a"))
		h.Set("X-Forwarded-For", xff)
		if _, resp, _ := websocket.DefaultDialer.Dial(e.wsURL(""), h); resp == nil || resp.StatusCode != http.StatusTooManyRequests {
			t.Fatalf("second socket of %s: %s, want 429", xff, statusOf(resp))
		}
	}
}

func TestServerWideSocketRateAnswers503(t *testing.T) {
	e := newEnv(t, options{transport: transport.Config{SocketsPerSecond: 0.01, SocketBurst: 2}})
	e.dial(e.token(1, "a"))
	e.dial(e.token(2, "b"))
	_, resp, err := websocket.DefaultDialer.Dial(e.wsURL(""), bearer(e.token(3, "c")))
	if err == nil || resp == nil || resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" {
		t.Fatalf("socket over the server-wide rate: %v (%s), want 503 with Retry-After", err, statusOf(resp))
	}
	// REST is not held back by the socket limit.
	if r := e.do("POST", "/users/me/heartbeat", e.token(3, "c"), ""); r.status != http.StatusOK {
		t.Fatalf("REST during a socket storm: %d", r.status)
	}
}

func TestConnectionFloodFromOneUserStopsAtTheLimit(t *testing.T) {
	e := newEnv(t, options{hub: hub5()})
	tok := e.token(1, "a")
	conns := make(chan *client, 20)
	for range 20 {
		go func() { conns <- e.dial(tok) }()
	}
	// Each socket reads from the start (the pump): the refused ones get
	// 4409 at once. Once fifteen have, the other five must answer a ping.
	var all []*client
	for range 20 {
		all = append(all, <-conns)
	}
	type result struct {
		c    *client
		code int
	}
	results := make(chan result, 20)
	for _, c := range all {
		go func() {
			_, err := c.tryNext()
			code := 0
			if ce, ok := err.(*websocket.CloseError); ok {
				code = ce.Code
			}
			results <- result{c, code}
		}()
	}
	refused := map[*client]bool{}
	for range 15 {
		r := <-results
		if r.code != transport.CloseTooManyConnections {
			t.Fatalf("a socket ended with code %d before 15 were refused, want 4409", r.code)
		}
		refused[r.c] = true
	}
	for _, c := range all {
		if !refused[c] {
			c.send(`{"type":"ping"}`)
		}
	}
	for range 5 {
		if r := <-results; r.code != 0 || refused[r.c] {
			t.Fatalf("an admitted socket ended with %d, want a pong", r.code)
		}
	}
	if st, err := e.hub.Stats(context.Background()); err != nil || st.Sessions != 5 {
		t.Fatalf("hub holds %d sessions (%v), want 5", st.Sessions, err)
	}
	alive(e.dial(e.token(2, "b")))
}

// hub5 is a hub that allows five sockets per user and five subscriptions
// per socket, so that tests reach the limits quickly.
func hub5() hub.Config { return hub.Config{MaxSessionsPerUser: 5, MaxSubscriptions: 5} }

// fromAddr dials from a given loopback source address, so that a test can
// play clients on many addresses.
func fromAddr(ip string) func(ctx context.Context, network, addr string) (net.Conn, error) {
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}, Timeout: waitFor}
	return d.DialContext
}

func bearer(tok string) http.Header { return http.Header{"Authorization": {"Bearer " + tok}} }

func statusOf(resp *http.Response) string {
	if resp == nil {
		return "no HTTP answer"
	}
	return resp.Status
}

// alive proves a socket and the server behind it still serve.
func alive(c *client) {
	c.t.Helper()
	c.send(`{"type":"ping","id":"alive?"}`)
	if m := c.expect("pong"); m["id"] != "alive?" {
		c.t.Fatalf("pong %v", m)
	}
}

// TestHandshakeOfAnotherVersionNamesVersion13: RFC 6455 (section 4.2.2)
// wants a refused handshake to carry Sec-WebSocket-Version with the
// versions the server speaks, so that the client can retry with one.
func TestHandshakeOfAnotherVersionNamesVersion13(t *testing.T) {
	e := newEnv(t, options{})
	tok := e.token(1, "a")
	for name, version := range map[string]string{"version 8": "Sec-WebSocket-Version: 8\r\n", "no version": ""} {
		t.Run(name, func(t *testing.T) {
			c, err := net.Dial("tcp", strings.TrimPrefix(e.srv.URL, "http://"))
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			fmt.Fprintf(c, "GET /ws HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n%sSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nAuthorization: Bearer %s\r\n\r\n", version, tok)
			resp, err := http.ReadResponse(bufio.NewReader(c), nil)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			var body struct{ Detail string }
			if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
				t.Fatal(err)
			}
			if resp.StatusCode != http.StatusBadRequest || resp.Header.Get("Sec-WebSocket-Version") != "13" || !strings.Contains(body.Detail, "version") {
				t.Fatalf("%d, Sec-WebSocket-Version %q, detail %q: want 400 naming version 13", resp.StatusCode, resp.Header.Get("Sec-WebSocket-Version"), body.Detail)
			}
		})
	}
}

// TestEveryPathAndMethodGetsTheRightHTTPAnswer drives the router with
// paths and methods that no client should send and checks each answer:
// JSON errors, 404 for what is not there, 405 with Allow for a method a
// known path does not serve, HEAD wherever GET works, and the static
// files only for GET and HEAD.
func TestEveryPathAndMethodGetsTheRightHTTPAnswer(t *testing.T) {
	static := fstest.MapFS{
		"index.html":       {Data: []byte("<!doctype html><title>demo</title>")},
		"presence.js":      {Data: []byte("export {};")},
		"sub/notes.txt":    {Data: []byte("no index here")},
		"docs/index.html":  {Data: []byte("<!doctype html><title>docs</title>")},
		"docs/readme.html": {Data: []byte("<!doctype html><title>readme</title>")},
	}
	e := newEnv(t, options{transport: transport.Config{Static: static, Metrics: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		_, _ = io.WriteString(w, "presenced_connections 0\n")
	})}})
	tok := e.token(1, "a")
	for _, tc := range []struct {
		method, path, token string
		status              int
		allow               string // the Allow header of a 405
		body                string // what a 200's body starts with; "" for a HEAD
	}{
		// Unknown paths, API-looking or not.
		{"GET", "/nope", "", 404, "", ""},
		{"GET", "/users/1", tok, 404, "", ""},
		{"GET", "/users/me/status/extra", tok, 404, "", ""},
		{"GET", "/users/1/presence/x", tok, 404, "", ""},
		{"DELETE", "/nope", "", 404, "", ""},
		{"POST", "/api/v2/status", tok, 404, "", ""},
		{"GET", "/sub/", "", 404, "", ""}, // a directory without index.html is never listed
		{"GET", "/../../etc/passwd", "", 404, "", ""},
		// Known paths, wrong methods.
		{"DELETE", "/users/me/status", tok, 405, "GET, HEAD, PUT, PATCH", ""},
		{"POST", "/users/me/status", tok, 405, "GET, HEAD, PUT, PATCH", ""},
		{"DELETE", "/both/status/me", tok, 405, "GET, HEAD, PUT, PATCH", ""},
		{"GET", "/users/me/heartbeat", tok, 405, "POST", ""},
		{"PUT", "/both/status/heartbeat", tok, 405, "POST", ""},
		{"POST", "/users/2/presence", tok, 405, "GET, HEAD", ""},
		{"DELETE", "/users/presence?user_ids=1", tok, 405, "GET, HEAD", ""},
		{"POST", "/healthz", "", 405, "GET, HEAD", ""},
		{"PUT", "/readyz", "", 405, "GET, HEAD", ""},
		{"POST", "/metrics", "", 405, "GET, HEAD", ""},
		{"DELETE", "/openapi.json", "", 405, "GET, HEAD", ""},
		{"POST", "/ws", tok, 405, "GET, HEAD", ""},
		{"OPTIONS", "/users/me/status", "", 405, "GET, HEAD, PUT, PATCH", ""},
		// The static files: GET and HEAD only.
		{"POST", "/", "", 405, "GET, HEAD", ""},
		{"PUT", "/presence.js", "", 405, "GET, HEAD", ""},
		{"DELETE", "/docs/", "", 405, "GET, HEAD", ""},
		{"GET", "/", "", 200, "", "<!doctype html><title>demo</title>"},
		{"GET", "/presence.js", "", 200, "", "export {};"},
		{"GET", "/docs/readme.html", "", 200, "", "<!doctype html><title>readme</title>"},
		{"HEAD", "/", "", 200, "", ""},
		{"HEAD", "/presence.js", "", 200, "", ""},
		// HEAD wherever GET works.
		{"HEAD", "/healthz", "", 200, "", ""},
		{"HEAD", "/readyz", "", 200, "", ""},
		{"HEAD", "/metrics", "", 200, "", ""},
		{"HEAD", "/openapi.json", "", 200, "", ""},
		{"HEAD", "/users/me/status", "", 401, "", ""},
		{"HEAD", "/users/1/presence", tok, 404, "", ""},
		{"HEAD", "/users/presence?user_ids=1", tok, 200, "", ""},
		{"HEAD", "/users/me/heartbeat", tok, 405, "POST", ""},
	} {
		t.Run(tc.method+" "+tc.path, func(t *testing.T) {
			req, err := http.NewRequest(tc.method, e.srv.URL+tc.path, nil)
			if err != nil {
				t.Fatal(err)
			}
			if tc.path == "/../../etc/passwd" {
				req.URL.Opaque = tc.path // sent as written, not cleaned by the client
			}
			if tc.token != "" {
				req.Header.Set("Authorization", "Bearer "+tc.token)
			}
			resp, err := e.srv.Client().Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			body, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != tc.status {
				t.Fatalf("%d %s, want %d", resp.StatusCode, body, tc.status)
			}
			if got := resp.Header.Get("Allow"); got != tc.allow {
				t.Fatalf("Allow %q, want %q", got, tc.allow)
			}
			if tc.method == "HEAD" {
				if len(body) != 0 {
					t.Fatalf("a HEAD answer has a body: %q", body)
				}
				return
			}
			if tc.status == 200 {
				if !strings.HasPrefix(string(body), tc.body) {
					t.Fatalf("body %q, want %q", body, tc.body)
				}
				return
			}
			var e struct{ Detail string }
			if ct := resp.Header.Get("Content-Type"); ct != "application/json" || json.Unmarshal(body, &e) != nil || e.Detail == "" {
				t.Fatalf("error answer %s %q is not {\"detail\": ...}", ct, body)
			}
			if want := map[int]string{404: "Not Found", 405: "Method Not Allowed"}[tc.status]; want != "" && e.Detail != want {
				t.Fatalf("detail %q, want %q", e.Detail, want)
			}
		})
	}
}

// TestInputIsReadExactly: member names match exactly (encoding/json's own
// decoding would take IS_BUSY for is_busy), a name given twice is refused,
// ids have one spelling and fit a JavaScript number, and POST /dev/token
// wants a string username. Each refusal says what is wrong, on REST with
// a 400 and on the socket with an error, and nothing is applied.
func TestInputIsReadExactly(t *testing.T) {
	e := newEnv(t, options{transport: transport.Config{DevTokens: auth.NewIssuer([]byte(secret), time.Hour)}})
	tok := e.token(1, "a")
	if r := e.do("PUT", "/users/me/status", tok, `{"is_busy":false}`); r.status != 200 {
		t.Fatalf("PUT: %d %s", r.status, r.body)
	}
	for _, tc := range []struct{ method, path, body, detail string }{
		{"PUT", "/users/me/status", `{"IS_BUSY":true}`, "No status fields to update"},
		{"PATCH", "/users/me/status", `{"Is_Busy":true,"WAIT_TIME":5}`, "No status fields to update"},
		{"PUT", "/both/status/me", `{"is_online ":false}`, "No status fields to update"},
		{"PUT", "/users/me/status", `{"is_busy":false,"is_busy":true}`, "is_busy is given twice"},
		{"PUT", "/users/me/status", `null`, "Request body must be a JSON object"},
		{"PUT", "/users/me/status", `{"is_busy":true} {}`, "Request body is not valid JSON"},
		{"GET", "/users/presence?user_ids=%2B5", "", `user id "+5" must be written in canonical decimal`},
		{"GET", "/users/presence?user_ids=007", "", `user id "007" must be written in canonical decimal`},
		{"GET", "/users/presence?user_ids=1,%202", "", `user id " 2" must be written in canonical decimal`},
		{"GET", "/users/presence?user_ids=9007199254740992", "", "is too large: ids are at most 9007199254740991 (2^53 − 1)"},
		{"GET", "/users/presence?user_ids=18446744073709551616", "", "is too large"},
		{"GET", "/users/%2B5/presence", "", `user id "+5" must be written in canonical decimal`},
		{"GET", "/users/9007199254740992/presence", "", "is too large"},
		{"POST", "/dev/token", `{"user_id":5,"username":null}`, "username must be a string, not null"},
		{"POST", "/dev/token", `{"user_id":5,"username":5}`, "username must be a string, not the number 5"},
		{"POST", "/dev/token", `{"user_id":5,"username":["eve"]}`, "username must be a string, not an array"},
		{"POST", "/dev/token", `{"USER_ID":5}`, "user_id is required"},
		{"POST", "/dev/token", `{"user_id":5.0}`, `user id "5.0" must be written in canonical decimal`},
		{"POST", "/dev/token", `{"user_id":5,"user_id":6}`, "user_id is given twice"},
		{"POST", "/dev/token", `{"user_id":9007199254740992}`, "is too large"},
	} {
		t.Run(tc.method+" "+tc.path+" "+tc.body, func(t *testing.T) {
			r := e.do(tc.method, tc.path, tok, tc.body)
			if r.status != 400 || !strings.Contains(r.detail(t), tc.detail) {
				t.Fatalf("%d %s, want 400 saying %q", r.status, r.body, tc.detail)
			}
		})
	}
	if r := e.do("GET", "/users/me/status", tok, ""); r.object(t)["is_busy"] != false {
		t.Fatalf("a refused body changed the status: %s", r.body)
	}
	if r := e.do("GET", "/users/presence?user_ids=9007199254740991,1", tok, ""); r.status != 200 {
		t.Fatalf("the largest id: %d %s", r.status, r.body)
	}

	c := e.dial(tok)
	for _, tc := range []struct{ msg, detail string }{
		{`{"TYPE":"ping"}`, "type is required"},
		{`{"type":"set_status","IS_BUSY":true}`, "No status fields to update"},
		{`{"type":"set_status","is_busy":true,"is_busy":false}`, "is_busy is given twice"},
		{`{"type":"ping","type":"subscribe","user_ids":[2]}`, "type is given twice"},
		{`{"type":"subscribe","USER_IDS":[2]}`, "user_ids is required"},
		{`{"type":"subscribe","user_ids":[9007199254740992]}`, "is too large: ids are at most 9007199254740991"},
		{`{"type":"subscribe","user_ids":[5.0]}`, "must be written in canonical decimal"},
		{`{"type":"refresh","Token":"x.y.z"}`, "token is required"},
	} {
		c.send(tc.msg)
		if m := c.expect("error"); !strings.Contains(m["detail"].(string), tc.detail) {
			t.Errorf("%s: detail %q, want %q", tc.msg, m["detail"], tc.detail)
		}
	}
	c.send(`{"type":"subscribe","user_ids":[9007199254740991],"id":"max"}`)
	if m := c.expect("subscribed"); m["id"] != "max" {
		t.Fatalf("subscribe to the largest id: %v", m)
	}
	if r := e.do("GET", "/users/me/status", tok, ""); r.object(t)["is_busy"] != false {
		t.Fatalf("a refused message changed the status: %s", r.body)
	}
}

// TestUsernamesAreCappedAndClean: a name enters only with a token (or a
// dev token); one longer than -max-username-length characters, or with a
// control character, is refused right there with a clear answer, on REST,
// at a socket's connect and in a refresh, and never reaches the hub.
func TestUsernamesAreCappedAndClean(t *testing.T) {
	e := newEnv(t, options{transport: transport.Config{MaxUsernameLength: 10, DevTokens: auth.NewIssuer([]byte(secret), time.Hour)}})
	exp := time.Now().Add(time.Hour).Unix()
	named := func(name string) string {
		return signed(t, jwt.SigningMethodHS256, []byte(secret), jwt.MapClaims{"sub": "5", "username": name, "exp": exp})
	}
	for name, detail := range map[string]string{
		strings.Repeat("n", 11): "Invalid token: username is 11 characters; at most 10 are allowed",
		"a\x00b":                "Invalid token: username must not contain control characters; it has U+0000",
		"tab\there":             "it has U+0009",
		"line\nbreak":           "it has U+000A",
		"del\x7f":               "it has U+007F",
		"next\u0085line":        "it has U+0085",
	} {
		t.Run(fmt.Sprintf("%q", name), func(t *testing.T) {
			tok := named(name)
			r := e.do("PUT", "/users/me/status", tok, `{"is_busy":true}`)
			if r.status != 401 || r.detail(t) != detail && !strings.HasSuffix(r.detail(t), detail) {
				t.Fatalf("REST: %d %s, want 401 saying %q", r.status, r.body, detail)
			}
			if h := r.header.Get("WWW-Authenticate"); !strings.HasPrefix(h, "Bearer") {
				t.Fatalf("WWW-Authenticate %q", h)
			}
			ws, _, err := websocket.DefaultDialer.Dial(e.wsURL("access_token="+tok), nil)
			if err != nil {
				t.Fatal(err)
			}
			defer ws.Close()
			_, _, err = ws.ReadMessage()
			var ce *websocket.CloseError
			if !errors.As(err, &ce) || ce.Code != transport.CloseInvalidToken || !strings.Contains(ce.Text, "username") {
				t.Fatalf("socket: %v, want close %d naming the username", err, transport.CloseInvalidToken)
			}
			quoted, _ := json.Marshal(name)
			r = e.do("POST", "/dev/token", "", fmt.Sprintf(`{"user_id":5,"username":%s}`, quoted))
			if r.status != 400 || !strings.Contains(r.detail(t), strings.TrimPrefix(detail, "Invalid token: ")) {
				t.Fatalf("dev token: %d %s", r.status, r.body)
			}
		})
	}
	// Characters, not bytes: ten two-byte letters are within ten.
	ok := strings.Repeat("é", 10)
	c := e.dial(named(ok))
	c.send(`{"type":"refresh","token":"` + named(strings.Repeat("é", 11)) + `","id":"r"}`)
	if m := c.expect("error"); m["id"] != "r" || !strings.Contains(m["detail"].(string), "username is 11 characters") {
		t.Fatalf("refresh with a long name: %v", m)
	}
	c.subscribe(5)
	alive(c)
	if r := e.do("GET", "/users/5/presence", e.token(6, "f"), ""); r.status != 200 || r.object(t)["username"] != ok {
		t.Fatalf("presence of the user with a ten-letter name: %d %s", r.status, r.body)
	}
	// No name at all is still a name.
	if r := e.do("POST", "/users/me/heartbeat", named(""), ""); r.status != 200 {
		t.Fatalf("an empty name: %d %s", r.status, r.body)
	}
	// The default is 64 characters.
	d := newEnv(t, options{})
	if r := d.do("POST", "/users/me/heartbeat", d.token(1, strings.Repeat("n", 64)), ""); r.status != 200 {
		t.Fatalf("64 characters by default: %d %s", r.status, r.body)
	}
	if r := d.do("POST", "/users/me/heartbeat", d.token(1, strings.Repeat("n", 65)), ""); r.status != 401 || !strings.Contains(r.detail(t), "at most 64") {
		t.Fatalf("65 characters by default: %d %s", r.status, r.body)
	}
}
