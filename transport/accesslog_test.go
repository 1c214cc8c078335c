package transport_test

import (
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"testing"

	"github.com/gorilla/websocket"

	"github.com/presenced/presenced/internal/testkit"
	"github.com/presenced/presenced/transport"
)

// accessLines returns the access log lines of requests to uri.
func (e *opsEnv) accessLines(uri string) []map[string]any {
	var out []map[string]any
	for _, l := range e.logLines() {
		if l["msg"] == "http request" && l["uri"] == uri {
			out = append(out, l)
		}
	}
	return out
}

func TestEachRequestGetsAnIDInItsLogLineAndAnswer(t *testing.T) {
	e := startOps(t, transport.Config{})
	tok := e.token(7)

	// Without X-Request-ID the server makes one up and echoes it.
	resp, b := e.do("PUT", "/users/me/status", tok, strings.NewReader(`{"is_busy":true}`))
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("PUT: %d %s", resp.StatusCode, b)
	}
	made := resp.Header.Get("X-Request-ID")
	if len(made) < 16 {
		t.Fatalf("generated request id %q is too short to be unique", made)
	}
	// A second request gets another id.
	resp2, _ := e.do("PUT", "/users/me/status", tok, strings.NewReader(`{"is_busy":false}`))
	if other := resp2.Header.Get("X-Request-ID"); other == made || other == "" {
		t.Fatalf("two requests share the id %q / %q", made, other)
	}

	// A proxy's id is kept, on success and on error alike.
	resp, _ = e.do("GET", "/users/99/presence", tok, nil, "X-Request-ID", "edge-42")
	if resp.StatusCode != http.StatusNotFound || resp.Header.Get("X-Request-ID") != "edge-42" {
		t.Fatalf("404 answer: %d, id %q", resp.StatusCode, resp.Header.Get("X-Request-ID"))
	}
	resp, _ = e.do("GET", "/users/me/status", "", nil, "X-Request-ID", "edge-43")
	if resp.StatusCode != http.StatusUnauthorized || resp.Header.Get("X-Request-ID") != "edge-43" {
		t.Fatalf("401 answer: %d, id %q", resp.StatusCode, resp.Header.Get("X-Request-ID"))
	}

	// An id that could break a log line is replaced.
	long := strings.Repeat("x", 129)
	for _, bad := range []string{"two words", long, "tab\there"} {
		resp, _ = e.do("GET", "/healthz", "", nil, "X-Request-ID", bad)
		if got := resp.Header.Get("X-Request-ID"); got == bad || got == "" {
			t.Fatalf("unsafe request id %q was echoed as %q", bad, got)
		}
	}

	// Every REST line carries its request id, method, route and status.
	lines := e.accessLines("/users/me/status")
	if len(lines) != 3 {
		t.Fatalf("want 3 access lines for /users/me/status, got %d:\n%s", len(lines), e.logs.String())
	}
	for _, l := range lines {
		if id, _ := l["request_id"].(string); id == "" {
			t.Fatalf("access line without request_id: %v", l)
		}
	}
	if lines[0]["request_id"] != made || lines[0]["method"] != "PUT" || lines[0]["status"] != 200.0 ||
		lines[0]["user_id"] != 7.0 || lines[0]["route"] != "/users/me/status" {
		t.Fatalf("first PUT's line: %v", lines[0])
	}
	if l := lines[2]; l["request_id"] != "edge-43" || l["status"] != 401.0 || l["user_id"] != nil {
		t.Fatalf("401 line: %v", l)
	}
	if l := e.accessLines("/users/99/presence"); len(l) != 1 || l[0]["request_id"] != "edge-42" ||
		l[0]["route"] != "/users/{user_id}/presence" || l[0]["status"] != 404.0 {
		t.Fatalf("404 line: %v", l)
	}
}

func TestSocketLinesCarryTheConnectionID(t *testing.T) {
	e := startOps(t, transport.Config{})
	wsURL := "ws" + strings.TrimPrefix(e.URL, "http") + "/ws"
	ws, _, err := websocket.DefaultDialer.Dial(wsURL, http.Header{
		"Authorization": {"Bearer " + e.token(5)}, "X-Request-ID": {"sock-1"}})
	if err != nil {
		t.Fatal(err)
	}
	open := e.waitLog("socket open", func(l map[string]any) bool { return l["msg"] == "socket open" })
	connID, _ := open["conn_id"].(float64)
	if connID == 0 || open["request_id"] != "sock-1" || open["user_id"] != 5.0 {
		t.Fatalf("socket open line: %v", open)
	}
	_ = ws.WriteMessage(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseNormalClosure, "bye"))
	closed := e.waitLog("socket closed", func(l map[string]any) bool { return l["msg"] == "socket closed" })
	if closed["conn_id"] != connID || closed["by"] != "client" || closed["code"] != 1000.0 {
		t.Fatalf("socket closed line: %v", closed)
	}
	ws.Close()
	// The access line of the upgrade ties the request to the connection.
	access := e.waitLog("for /ws", func(l map[string]any) bool { return l["msg"] == "http request" && l["uri"] == "/ws" })
	if access["status"] != 101.0 || access["conn_id"] != connID || access["request_id"] != "sock-1" {
		t.Fatalf("access line of the upgrade: %v", access)
	}
}

func TestTokensNeverReachTheLog(t *testing.T) {
	e := startOps(t, transport.Config{})
	tok := e.token(9)
	forged := tok[:len(tok)-4] + "AAAA"

	// A browser's socket: the token is in the query string.
	wsURL := "ws" + strings.TrimPrefix(e.URL, "http") + "/ws?v=1&access_token=" + tok
	ws, _, err := websocket.DefaultDialer.Dial(wsURL, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := ws.WriteJSON(map[string]any{"type": "subscribe", "user_ids": []int{1}}); err != nil {
		t.Fatal(err)
	}
	if _, _, err := ws.ReadMessage(); err != nil {
		t.Fatal(err)
	}
	ws.Close()
	// A refused token in the query of a plain request, in a header, and
	// a forged one on a socket.
	e.do("GET", "/users/me/status?Access_Token="+forged, "", nil)
	e.do("GET", "/users/me/status", forged, nil)
	if ws, _, err := websocket.DefaultDialer.Dial(strings.Replace(wsURL, tok, forged, 1), nil); err == nil {
		_, _, _ = ws.ReadMessage() // the 4401 close
		ws.Close()
	}

	e.waitLog("for the socket", func(l map[string]any) bool {
		return l["msg"] == "http request" && l["uri"] == "/ws?v=1&access_token=REDACTED" && l["status"] == 101.0 && l["user_id"] == 9.0
	})
	e.waitLog("for the refused query token", func(l map[string]any) bool {
		return l["uri"] == "/users/me/status?access_token=REDACTED" && l["status"] == 401.0
	})
	e.waitLog("for the forged socket", func(l map[string]any) bool {
		return l["msg"] == "http request" && l["uri"] == "/ws?v=1&access_token=REDACTED" && l["user_id"] == nil
	})
	logs := e.logs.String()
	for _, secret := range []string{tok, forged, tok[strings.LastIndexByte(tok, '.')+1:]} {
		if strings.Contains(logs, secret) {
			t.Fatalf("a token reached the log:\n%s", logs)
		}
	}
}

// TestTokensInAnySpellingNeverReachTheLog sends request lines as a
// hostile or confused client writes them, byte for byte over TCP, with the
// token under every spelling a server on the way might read as its name,
// and finds none of the token in the log.
func TestTokensInAnySpellingNeverReachTheLog(t *testing.T) {
	e := startOps(t, transport.Config{})
	tok := e.token(9)
	queries := []string{
		"x=1;access_token=" + tok, "access_token=" + tok + ";x=1", ";access_token=" + tok,
		"ACCESS_TOKEN=" + tok, "Access_Token=" + tok, "access%5Ftoken=" + tok, "access%5ftoken=" + tok,
		"%61ccess_token=" + tok, "access%255Ftoken=" + tok, "+access_token=" + tok, "access_token%00=" + tok,
		"access_token[]=" + tok, "accessToken=" + tok, "access-token=" + tok, "token=" + tok, "TOKEN=" + tok,
		"refresh_token=" + tok, "t=" + tok, tok, "x=1&" + tok, "access_token%3D" + tok,
	}
	for i, q := range queries {
		c, err := net.Dial("tcp", strings.TrimPrefix(e.URL, "http://"))
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(c, "GET /ws?%s HTTP/1.1\r\nHost: x\r\nX-Request-ID: spell-%d\r\nConnection: close\r\n\r\n", q, i)
		if _, err := io.ReadAll(c); err != nil {
			t.Fatal(err)
		}
		c.Close()
	}
	for i := range queries {
		e.waitLog(fmt.Sprintf("for request %d", i), func(l map[string]any) bool {
			return l["msg"] == "http request" && l["request_id"] == fmt.Sprintf("spell-%d", i)
		})
	}
	// A real socket whose token follows a ';' is refused (Go reads no
	// pair with a ';' in it) and is not logged either.
	ws, _, err := websocket.DefaultDialer.Dial("ws"+strings.TrimPrefix(e.URL, "http")+"/ws?v=1;access_token="+tok, nil)
	if err != nil {
		t.Fatal(err)
	}
	_, _, err = ws.ReadMessage()
	ws.Close()
	if !websocket.IsCloseError(err, transport.CloseInvalidToken) {
		t.Fatalf("a token after ';': %v, want close %d", err, transport.CloseInvalidToken)
	}
	e.waitLog("for the socket", func(l map[string]any) bool {
		return l["msg"] == "http request" && l["uri"] == "/ws?v=1;access_token=REDACTED"
	})
	logs := e.logs.String()
	if sig := tok[strings.LastIndexByte(tok, '.')+1:]; strings.Contains(logs, sig) || strings.Contains(logs, tok[:20]) {
		t.Fatalf("a token reached the log:\n%s", logs)
	}
}

func TestProbesLogAtDebugOnly(t *testing.T) {
	var logs testkit.Buffer
	e := startOps(t, transport.Config{Logger: slog.New(slog.NewJSONHandler(&logs, nil))})
	for _, p := range []string{"/healthz", "/readyz"} {
		if resp, _ := e.do("GET", p, "", nil); resp.StatusCode != http.StatusOK {
			t.Fatalf("%s: %d", p, resp.StatusCode)
		}
	}
	e.do("POST", "/users/me/heartbeat", e.token(3), nil)
	out := logs.String()
	if !strings.Contains(out, `"uri":"/users/me/heartbeat"`) {
		t.Fatalf("an API request was not logged at info level:\n%s", out)
	}
	if strings.Contains(out, "/healthz") || strings.Contains(out, "/readyz") {
		t.Fatalf("probes were logged at info level:\n%s", out)
	}
}
