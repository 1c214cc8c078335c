package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/presenced/presenced/internal/pgtest"
)

// dialDevice opens a socket of userID from device on n.
func dialDevice(t *testing.T, n *node, userID int64, name, device string) *client {
	t.Helper()
	h := http.Header{"Authorization": {"Bearer " + token(t, userID, name)}, "X-Device-ID": {device}}
	ws, _, err := websocket.DefaultDialer.Dial("ws://"+n.addr+"/ws", h)
	if err != nil {
		t.Fatalf("dial node %s: %v", n.id, err)
	}
	c := &client{t: t, ws: ws, replies: map[string]int{}, more: make(chan struct{}, 1), done: make(chan struct{})}
	go c.read()
	t.Cleanup(func() { _ = ws.Close(); <-c.done })
	return c
}

// restDevice sends a REST request of userID from device ("" for none).
func restDevice(t *testing.T, n *node, method, path string, userID int64, device, body string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, "http://"+n.addr+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+token(t, userID, fmt.Sprint("user", userID)))
	if device != "" {
		req.Header.Set("X-Device-ID", device)
	}
	c := http.Client{Timeout: 20 * time.Second}
	resp, err := c.Do(req)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// presenceOf reads GET /users/{id}/presence on n.
func presenceOf(t *testing.T, n *node, id int64) map[string]any {
	t.Helper()
	code, body := restDevice(t, n, http.MethodGet, fmt.Sprintf("/users/%d/presence", id), 999, "", "")
	if code != http.StatusOK {
		t.Fatalf("presence of %d on %s: %d %s", id, n.id, code, body)
	}
	var m map[string]any
	if err := json.Unmarshal([]byte(body), &m); err != nil {
		t.Fatal(err)
	}
	return m
}

func TestClusterDeviceLivenessEndsWithItsNode(t *testing.T) {
	t.Parallel()
	// A heartbeat TTL far above the dead-node bound, so that a user kept
	// online by a REST update would show.
	_, a, b := twoNodes(t, "-heartbeat-ttl", "5m")
	watcher := dial(t, b, 1, "watcher")
	watcher.subscribe(2, 3, 4)
	// User 2's socket is on a, its REST update went through b (another
	// node's heartbeat, which a takes over); user 3's update went through
	// a itself; user 4's client sends no device id, as the seed's do.
	dialDevice(t, a, 2, "two", "phone-2")
	dialDevice(t, a, 3, "three", "phone-3")
	dial(t, a, 4, "four")
	for _, id := range []int64{2, 3, 4} {
		watcher.await(id, "online", 20*time.Second, online)
	}
	for _, r := range []struct {
		via    *node
		id     int64
		device string
	}{{b, 2, "phone-2"}, {a, 3, "phone-3"}, {b, 4, ""}} {
		if code, body := restDevice(t, r.via, http.MethodPut, "/users/me/status", r.id, r.device, `{"is_busy":true}`); code != 200 {
			t.Fatalf("PUT of user %d: %d %s", r.id, code, body)
		}
		watcher.await(r.id, "busy", 20*time.Second, func(p presence) bool { return p.IsBusy })
	}
	a.kill()
	killed := time.Now()
	for _, id := range []int64{2, 3} {
		at := watcher.await(id, "offline after kill -9", deadBound+clusterGrace+10*time.Second, offline)
		if took := at.Sub(killed); took > deadBound+clusterGrace {
			t.Fatalf("user %d offline %v after its node was killed; bound %v", id, took, deadBound+clusterGrace)
		} else {
			t.Logf("user %d, last update over REST, offline %v after kill -9", id, took)
		}
	}
	// The seed's client, whose update carried no device id, is online
	// for the heartbeat TTL.
	if p := presenceOf(t, b, 4); p["is_online"] != true {
		t.Fatalf("user 4's device-less REST update no longer keeps it online: %v", p)
	}
}

func TestClusterNodeStartedAgainWithItsIDDropsItsOldSessions(t *testing.T) {
	t.Parallel()
	db := pgtest.Schema(t)
	a := startNode(t, db, "a")
	b := startNode(t, db, "b")
	watcher := dial(t, b, 1, "watcher")
	watcher.subscribe(2)
	dial(t, a, 2, "two")
	watcher.await(2, "online", 20*time.Second, online)
	a.kill()
	// Back before its lease ran out, under the same -node-id: the
	// sessions of its first run are not its own any more.
	startNode(t, db, "a")
	watcher.await(2, "offline", deadBound, offline)
}

// TestOfflineDelayAfterAnUpdateOverREST measures what the README states:
// with the default grace, a user whose last status update went over REST
// (with its device id, as presence.js sends it) is offline within the
// grace and a second of closing the app.
func TestOfflineDelayAfterAnUpdateOverREST(t *testing.T) {
	t.Parallel()
	const grace = 5 * time.Second // the default
	n := startNode(t, "", "rest-offline", "-grace", grace.String())
	const users = 5
	ids := make([]int64, users)
	for i := range ids {
		ids[i] = int64(10 + i)
	}
	var wg sync.WaitGroup
	took := make([]time.Duration, users)
	for i, id := range ids {
		// A watcher each: one client's events are awaited by one goroutine.
		watcher := dial(t, n, 100+id, "watcher")
		watcher.subscribe(id)
		device := fmt.Sprint("app-", id)
		app := dialDevice(t, n, id, fmt.Sprint("user", id), device)
		watcher.await(id, "online", 20*time.Second, online)
		if code, body := restDevice(t, n, http.MethodPut, "/users/me/status", id, device, `{"is_busy":true,"wait_time":5}`); code != 200 {
			t.Fatalf("PUT: %d %s", code, body)
		}
		watcher.await(id, "busy", 20*time.Second, func(p presence) bool { return p.IsBusy })
		wg.Go(func() {
			closed := time.Now()
			_ = app.ws.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseNormalClosure, ""), time.Now().Add(time.Second))
			at := watcher.await(id, "offline", grace+30*time.Second, offline)
			took[i] = at.Sub(closed)
		})
	}
	wg.Wait()
	for i, d := range took {
		if d < grace || d > grace+time.Second {
			t.Errorf("user %d offline %v after closing, want within the grace (%v) and a second", ids[i], d, grace)
		}
	}
	t.Logf("offline after closing, last update over REST, grace %v: %v", grace, took)
}

// TestInvisibleLastSeenStaysAcrossPings: while a user appears offline,
// pongs, heartbeats and new sockets move nothing others can read.
func TestInvisibleLastSeenStaysAcrossPings(t *testing.T) {
	t.Parallel()
	const ping = 500 * time.Millisecond
	n := startNode(t, "", "invisible", "-ping-interval", ping.String(), "-pong-timeout", ping.String())
	watcher := dial(t, n, 1, "watcher")
	watcher.subscribe(2)
	app := dialDevice(t, n, 2, "two", "phone")
	watcher.await(2, "online", 20*time.Second, online)
	app.request(`{"type":"set_status","is_online":false,"is_busy":true}`, "status")
	watcher.await(2, "offline", 20*time.Second, offline)
	before := presenceOf(t, n, 2)
	events := len(watcher.eventsOf(2))
	// Three ping intervals (the app answers each ping), a flush of
	// last_seen (every 5 s) and some heartbeats and sockets in between.
	deadline := time.Now().Add(3*ping + 5*time.Second + time.Second)
	for time.Now().Before(deadline) {
		if code, _ := restDevice(t, n, http.MethodPost, "/users/me/heartbeat", 2, "laptop", ""); code != 200 {
			t.Fatalf("heartbeat: %d", code)
		}
		dialDevice(t, n, 2, "two", "tablet").request(`{"type":"ping"}`, "pong")
		<-time.After(ping)
	}
	after := presenceOf(t, n, 2)
	if after["last_seen"] != before["last_seen"] || after["is_online"] != false || after["is_busy"] != false || after["busy_since"] != nil {
		t.Fatalf("while invisible, others read %v, then %v", before, after)
	}
	if got := watcher.eventsOf(2); len(got) != events {
		t.Fatalf("events while invisible: %v", got[events:])
	}
	t.Logf("last_seen %v unchanged across %v of pings at %v, heartbeats and new sockets", after["last_seen"], 3*ping+6*time.Second, ping)
	app.request(`{"type":"set_status","is_online":true}`, "status")
	watcher.await(2, "online again", 20*time.Second, func(presence) bool { return len(watcher.eventsOf(2)) > events })
	<-time.After(time.Second) // nothing to await: the absence of a second event
	if got := watcher.eventsOf(2)[events:]; len(got) != 1 || !got[0].IsOnline || !got[0].IsBusy {
		t.Fatalf("coming back took %d events, want one, online and busy: %v", len(got), got)
	}
}

func TestClusterDeviceThatPolledThroughOneNodeLeavesFromAnother(t *testing.T) {
	t.Parallel()
	_, a, b := twoNodes(t, "-heartbeat-ttl", "5m")
	watcher := dial(t, a, 1, "watcher")
	watcher.subscribe(2)
	// The app polls through b: heartbeats and an update, with its device
	// id, so b holds a heartbeat of the device that has not expired.
	for range 2 {
		if code, body := restDevice(t, b, http.MethodPost, "/users/me/heartbeat", 2, "phone", ""); code != 200 {
			t.Fatalf("heartbeat: %d %s", code, body)
		}
	}
	watcher.await(2, "online", 20*time.Second, online)
	// Its socket works again, on a; then the app closes.
	app := dialDevice(t, a, 2, "two", "phone")
	app.request(`{"type":"set_status","is_busy":true}`, "status")
	watcher.await(2, "busy", 20*time.Second, func(p presence) bool { return p.IsBusy })
	closed := time.Now()
	_ = app.ws.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseNormalClosure, ""), time.Now().Add(time.Second))
	at := watcher.await(2, "offline", clusterGrace+20*time.Second, offline)
	if took := at.Sub(closed); took > clusterGrace+5*time.Second {
		t.Fatalf("offline %v after the socket closed; the heartbeat b received kept the device alive", took)
	}
	// And it stays offline: b does not send its copy of the heartbeat
	// again once the store has ended it.
	<-time.After(2 * clusterGrace) // nothing to await: the absence of an event
	if p := presenceOf(t, b, 2); p["is_online"] != false {
		t.Fatalf("back online on b: %v", p)
	}
}
