package transport_test

import (
	"context"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/presenced/presenced/hub"
	"github.com/presenced/presenced/transport"
)

func deviceHeader(id string) http.Header { return http.Header{transport.DeviceHeader: {id}} }

func TestDeviceIDIsCheckedOnRESTAndSocket(t *testing.T) {
	e := newEnv(t, options{})
	tok := e.token(1, "a")
	for _, good := range []string{"3f2b8c1e-0d4a-4c7e-9a51-2b7d0c6e8f10", "a", strings.Repeat("x", 64), "tab:1~_.-!"} {
		if r := e.doWith("POST", "/users/me/heartbeat", tok, "", deviceHeader(good)); r.status != http.StatusOK {
			t.Fatalf("device id %q: %d %s", good, r.status, r.body)
		}
	}
	for _, bad := range []string{"", strings.Repeat("x", 65), "has space", "é"} {
		for _, path := range []string{"/users/me/heartbeat", "/users/me/status"} {
			method := "POST"
			if path == "/users/me/status" {
				method = "PUT"
			}
			r := e.doWith(method, path, tok, `{"is_busy":true}`, deviceHeader(bad))
			if r.status != http.StatusBadRequest || !strings.Contains(r.detail(t), "X-Device-ID") {
				t.Fatalf("%s %s with device id %q: %d %s, want 400 naming X-Device-ID", method, path, bad, r.status, r.body)
			}
		}
	}
	// Two values are no id either.
	if r := e.doWith("POST", "/users/me/heartbeat", tok, "", http.Header{transport.DeviceHeader: {"a", "b"}}); r.status != http.StatusBadRequest {
		t.Fatalf("two device ids: %d, want 400", r.status)
	}
	// A bad token is still a 401 first.
	if r := e.doWith("POST", "/users/me/heartbeat", "", "", deviceHeader("has space")); r.status != http.StatusUnauthorized {
		t.Fatalf("no token and a bad device id: %d, want 401", r.status)
	}

	// On the socket, by header or by query parameter; a bad one closes
	// with 4400 after the handshake, as a refused token does with 4401.
	h := http.Header{"Authorization": {"Bearer " + tok}, transport.DeviceHeader: {"bad id"}}
	if code := e.dialWith(e.wsURL(""), h, websocket.DefaultDialer, true).closed(); code != transport.CloseBadRequest {
		t.Fatalf("socket with a bad device header: close %d, want %d", code, transport.CloseBadRequest)
	}
	q := "access_token=" + tok + "&device_id=" + strings.Repeat("y", 65)
	if code := e.dialWith(e.wsURL(q), nil, websocket.DefaultDialer, true).closed(); code != transport.CloseBadRequest {
		t.Fatalf("socket with a bad device_id: close %d, want %d", code, transport.CloseBadRequest)
	}
	alive(e.dialWith(e.wsURL("access_token="+tok+"&device_id=tab-1"), nil, websocket.DefaultDialer, true))
}

// dialDevice opens a socket of user id from device.
func (e *env) dialDevice(id int64, device string) *client {
	e.t.Helper()
	h := http.Header{"Authorization": {"Bearer " + e.token(id, fmt.Sprint("user", id))}}
	if device != "" {
		h.Set(transport.DeviceHeader, device)
	}
	return e.dialWith(e.wsURL(""), h, websocket.DefaultDialer, true)
}

// onlineOverREST reports what GET /users/{id}/presence says.
func (e *env) onlineOverREST(id int64) bool {
	e.t.Helper()
	r := e.do("GET", fmt.Sprintf("/users/%d/presence", id), e.token(99, "asker"), "")
	if r.status != http.StatusOK {
		e.t.Fatalf("presence of %d: %d %s", id, r.status, r.body)
	}
	return r.object(e.t)["is_online"] == true
}

func TestRESTUpdateOfADeviceEndsWithItsSocket(t *testing.T) {
	const grace = 300 * time.Millisecond
	e := newEnv(t, options{hub: hub.Config{Grace: grace, HeartbeatTTL: time.Hour}})
	watcher := e.dial(e.token(1, "w"))
	watcher.subscribe(2, 3)

	// User 2's app: its socket and, while that socket was not answered
	// yet, a REST update from the same device.
	phone := e.dialDevice(2, "phone")
	watcher.presence(2, true)
	if r := e.doWith("PUT", "/users/me/status", e.token(2, "user2"), `{"is_busy":true}`, deviceHeader("phone")); r.status != http.StatusOK {
		t.Fatalf("REST update: %d %s", r.status, r.body)
	}
	start := time.Now()
	phone.ws.Close()
	watcher.presence(2, false)
	if took := time.Since(start); took < grace || took > grace+5*time.Second {
		t.Fatalf("offline %v after the socket closed, want about the grace (%v), not the hour of the heartbeat", took, grace)
	}

	// User 3's old client sends no device id: its REST update keeps the
	// user online for the heartbeat TTL, as in the seed API.
	old := e.dialDevice(3, "")
	watcher.presence(3, true)
	if r := e.do("PUT", "/users/me/status", e.token(3, "user3"), `{"is_busy":true}`); r.status != http.StatusOK {
		t.Fatalf("REST update: %d %s", r.status, r.body)
	}
	old.ws.Close()
	<-time.After(3 * grace) // nothing to await: the absence of an event
	if !e.onlineOverREST(3) {
		t.Fatal("a REST update without a device id stopped counting as a heartbeat")
	}
}

func TestHeartbeatsAfterTheSocketClosedKeepTheDevice(t *testing.T) {
	const grace = 300 * time.Millisecond
	e := newEnv(t, options{hub: hub.Config{Grace: grace, HeartbeatTTL: time.Hour}})
	watcher := e.dial(e.token(1, "w"))
	watcher.subscribe(2)
	phone := e.dialDevice(2, "phone")
	watcher.presence(2, true)
	// The app goes to the background in a call: it closes its socket,
	// waits for the server's answer to the close, then keeps the device
	// alive over REST.
	if err := phone.ws.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseNormalClosure, "background"), time.Now().Add(time.Second)); err != nil {
		t.Fatal(err)
	}
	if code := phone.closed(); code != websocket.CloseNormalClosure {
		t.Fatalf("the server answered the close with %d", code)
	}
	if r := e.doWith("POST", "/users/me/heartbeat", e.token(2, "user2"), "", deviceHeader("phone")); r.status != http.StatusOK {
		t.Fatalf("heartbeat: %d %s", r.status, r.body)
	}
	<-time.After(3 * grace) // nothing to await: the absence of an event
	if !e.onlineOverREST(2) {
		t.Fatal("the heartbeat sent after the socket's close was ended with it")
	}
}

func TestSetStatusBurstIsMergedAndTheLastWins(t *testing.T) {
	e := newEnv(t, options{transport: transport.Config{MessagesPerSecond: 20, MessageBurst: 40}})
	watcher := e.dial(e.token(1, "w"))
	watcher.subscribe(2)
	c := e.dial(e.token(2, "b"))
	watcher.presence(2, true)
	const n = 100
	for i := range n {
		c.send(fmt.Sprintf(`{"type":"set_status","id":%d,"is_busy":%t,"wait_time":%d}`, i, i%2 == 1, i))
	}
	// Every message is answered, each with the status it led to; the last
	// answer is the last message's status.
	seen := map[float64]bool{}
	var last map[string]any
	for len(seen) < n {
		m := c.expect("status")
		id := m["id"].(float64)
		if seen[id] {
			t.Fatalf("message %v answered twice", id)
		}
		seen[id] = true
		last = m["status"].(map[string]any)
	}
	if last["is_busy"] != true || last["wait_time"] != float64(n-1) {
		t.Fatalf("final status %v, want the last message's: busy for %d minutes", last, n-1)
	}
	alive(c)
	st, err := e.hub.Status(context.Background(), 2)
	if err != nil || !st.Busy || *st.WaitTime != n-1 {
		t.Fatalf("stored status %+v, %v; want busy for %d minutes", st, err, n-1)
	}
	// The watcher saw the last state, in far fewer events than updates:
	// they were merged while the first was on its way.
	events := 0
	for {
		m := watcher.next()
		events++
		if m["is_busy"] == true && m["wait_time"] == float64(n-1) {
			break
		}
	}
	if events >= n {
		t.Fatalf("%d events for %d updates: nothing was merged", events, n)
	}
	t.Logf("%d updates became %d events", n, events)
}

func TestOverRateMessagesAreDroppedWithTheirID(t *testing.T) {
	// The bucket refills so slowly that the test sees only the burst.
	e := newEnv(t, options{transport: transport.Config{MessagesPerSecond: 0.01, MessageBurst: 3}})
	c := e.dial(e.token(1, "a"))
	for i := range 3 {
		c.send(fmt.Sprintf(`{"type":"ping","id":%d}`, i))
		if m := c.expect("pong"); m["id"] != float64(i) {
			t.Fatalf("pong %v, want id %d", m, i)
		}
	}
	c.send(`{"type":"subscribe","user_ids":[5],"id":"sub"}`)
	m := c.expect("error")
	if m["id"] != "sub" || !strings.Contains(m["detail"].(string), "this message was dropped") {
		t.Fatalf("answer to a subscribe over the rate: %v", m)
	}
	if st, _ := e.hub.Stats(context.Background()); st.Subscriptions != 0 {
		t.Fatalf("the dropped subscribe was handled: %d subscriptions", st.Subscriptions)
	}
	// A set_status over the rate is not dropped: it waits its turn.
	c.send(`{"type":"set_status","is_busy":true,"id":"s"}`)
	if m := c.expect("status"); m["id"] != "s" || m["status"].(map[string]any)["is_busy"] != true {
		t.Fatalf("answer to a set_status over the rate: %v", m)
	}
}

func TestStayingOverTheRateCloses4429(t *testing.T) {
	e := newEnv(t, options{transport: transport.Config{MessagesPerSecond: 0.01, MessageBurst: 3}})
	c := e.dial(e.token(1, "a"))
	// Three pass; then two bursts' worth (six) are dropped, each answered
	// with its id; the next one closes. The client sends exactly that
	// many, so that the server closes with nothing unread (which would
	// turn its FIN into a reset).
	const sent = 3 + 6 + 1
	for i := range sent {
		c.send(fmt.Sprintf(`{"type":"ping","id":%d}`, i))
	}
	for i := range 3 {
		if m := c.expect("pong"); m["id"] != float64(i) {
			t.Fatalf("pong %v, want id %d", m, i)
		}
	}
	for i := 3; i < 9; i++ {
		m := c.expect("error")
		if m["id"] != float64(i) || !strings.Contains(m["detail"].(string), "rate limit: at most 0.01 messages per second (bursts of 3); this message was dropped") {
			t.Fatalf("rate limit error %v, want one for message %d", m, i)
		}
	}
	if code := c.closed(); code != transport.CloseRateLimited {
		t.Fatalf("close code %d, want %d", code, transport.CloseRateLimited)
	}
	// Another socket of the same user has its own bucket.
	alive(e.dial(e.token(1, "a")))
}

func TestLastSeenCanBeHiddenFromOthers(t *testing.T) {
	e := newEnv(t, options{})
	watcher := e.dial(e.token(1, "w"))
	watcher.subscribe(2)
	tok := e.token(2, "b")
	c := e.dial(tok)
	if ev := watcher.presence(2, true); ev["last_seen"] == nil {
		t.Fatalf("event %v lacks last_seen", ev)
	}
	r := e.do("PATCH", "/users/me/status", tok, `{"last_seen_visible":false}`)
	if m := r.object(t); r.status != 200 || m["last_seen_visible"] != false || m["last_seen"] == nil {
		t.Fatalf("own status after hiding last_seen: %d %s", r.status, r.body)
	}
	// Watchers hear that last_seen went, and read it as null from now on.
	if ev := watcher.next(); ev["last_seen"] != nil || ev["is_online"] != true {
		t.Fatalf("event after hiding last_seen: %v", ev)
	}
	if p := e.do("GET", "/users/2/presence", e.token(3, "c"), "").object(t); p["last_seen"] != nil || p["is_online"] != true {
		t.Fatalf("others read %v", p)
	}
	if r := e.do("PATCH", "/users/me/status", tok, `{"last_seen_visible":"no"}`); r.status != 400 || !strings.Contains(r.detail(t), "last_seen_visible") {
		t.Fatalf("a bad last_seen_visible: %d %s", r.status, r.body)
	}
	c.send(`{"type":"set_status","last_seen_visible":true,"id":1}`)
	if m := c.expect("status"); m["status"].(map[string]any)["last_seen_visible"] != true {
		t.Fatalf("socket answer %v", m)
	}
	if ev := watcher.next(); ev["last_seen"] == nil {
		t.Fatalf("event after showing last_seen again: %v", ev)
	}
}

// Pings and pongs count against a socket's message rate: a ping over it
// goes unanswered, a pong over it reaches nothing, and a peer that stays
// over it is closed with 4429, as for messages.
func TestControlFramesCountAgainstTheMessageRate(t *testing.T) {
	for _, kind := range []int{websocket.PingMessage, websocket.PongMessage} {
		name := map[int]string{websocket.PingMessage: "pings", websocket.PongMessage: "pongs"}[kind]
		t.Run(name, func(t *testing.T) {
			e := newEnv(t, options{transport: transport.Config{MessagesPerSecond: 0.01, MessageBurst: 3}})
			c := e.dialWith(e.wsURL(""), bearer(e.token(1, "a")), websocket.DefaultDialer, false)
			var pongs atomic.Int32
			c.ws.SetPongHandler(func(string) error { pongs.Add(1); return nil })
			c.startPump()
			// Three pass, two bursts' worth (six) are dropped, the next
			// one closes; exactly so many, so that the server closes with
			// nothing unread.
			for i := range 3 + 6 + 1 {
				if err := c.ws.WriteControl(kind, []byte(strconv.Itoa(i)), time.Now().Add(waitFor)); err != nil {
					t.Fatalf("control frame %d: %v", i, err)
				}
			}
			if code := c.closed(); code != transport.CloseRateLimited {
				t.Fatalf("close code %d, want %d", code, transport.CloseRateLimited)
			}
			want := int32(0)
			if kind == websocket.PingMessage {
				want = 3
			}
			if got := pongs.Load(); got != want {
				t.Fatalf("%d pongs came back for ten %s, want %d", got, name, want)
			}
		})
	}
}

// The pongs that answer the server's own pings cost the client nothing
// of its message rate: a client that has used its burst is not pushed
// over the rate by the heartbeat.
func TestPongsToTheServersPingsAreFree(t *testing.T) {
	e := newEnv(t, options{transport: transport.Config{MessagesPerSecond: 0.01, MessageBurst: 3, PingInterval: 50 * time.Millisecond}})
	c := e.dialWith(e.wsURL(""), bearer(e.token(1, "a")), websocket.DefaultDialer, false)
	pinged := make(chan struct{}, 16)
	c.ws.SetPingHandler(func(data string) error {
		err := c.ws.WriteControl(websocket.PongMessage, []byte(data), time.Now().Add(waitFor))
		select {
		case pinged <- struct{}{}:
		default:
		}
		return err
	})
	c.startPump()
	for i := range 5 {
		select {
		case <-pinged:
		case <-time.After(waitFor):
			t.Fatalf("ping %d did not come", i+1)
		}
	}
	// Five pongs answered; the burst of three is still whole.
	for i := range 3 {
		c.send(fmt.Sprintf(`{"type":"ping","id":%d}`, i))
		if m := c.expect("pong"); m["id"] != float64(i) {
			t.Fatalf("answer %v to message %d after the heartbeat's pongs, want its pong", m, i)
		}
	}
}
