package main

import (
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/presenced/presenced/internal/faultproxy"
	"github.com/presenced/presenced/internal/pgtest"
)

// The network between a node and PostgreSQL fails for real here: the
// node reaches the database through a faultproxy, which drops every byte
// without closing (a silent partition, half-open connections) or resets
// every connection. The node must keep its sockets and answer from
// memory meanwhile, and store every change it acknowledged once the
// database is reachable again.

// proxiedNode starts a node whose database connections go through a
// fault proxy, and returns the direct URL for checking the database.
func proxiedNode(t *testing.T, name string) (direct string, p *faultproxy.Proxy, n *node) {
	t.Helper()
	direct = pgtest.Schema(t)
	u, err := url.Parse(direct)
	if err != nil {
		t.Fatalf("the test database URL must be a URL for this test: %v", err)
	}
	p, err = faultproxy.Start(u.Host)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	u.Host = p.Addr()
	return direct, p, startNode(t, u.String(), name)
}

func busy(p presence) bool    { return p.IsBusy }
func notBusy(p presence) bool { return !p.IsBusy }

func TestDatabasePartitionKeepsServingAndLosesNothing(t *testing.T) {
	direct, proxy, n := proxiedNode(t, "partition")
	watcher := dial(t, n, 1, "watcher")
	watcher.subscribe(2)
	bob := dial(t, n, 2, "bob")
	watcher.await(2, "online", 20*time.Second, online)

	proxy.Blackhole()
	// A change during the partition is acknowledged from memory within the
	// store timeout and reaches watchers at once.
	if code, body := rest(t, n, http.MethodPut, "/users/me/status", 2, "bob", `{"is_busy":true,"wait_time":7}`); code != http.StatusOK {
		t.Fatalf("PUT during the partition: %d %s", code, body)
	}
	watcher.await(2, "busy during the partition", 20*time.Second, busy)
	bob.request(`{"type":"ping"}`, "pong")
	// The node notices that it cannot reach its database.
	n.waitReadyz(http.StatusServiceUnavailable, 60*time.Second)

	proxy.Restore()
	// The acknowledged change reaches the database, and the node is ready.
	pgtest.WaitUntil(t, direct, `SELECT coalesce(bool_and(busy AND wait_time = 7), false) FROM presence_status WHERE user_id = 2`)
	n.waitReadyz(http.StatusOK, 60*time.Second)
	// And it works as before: a new change is stored and delivered.
	if code, body := rest(t, n, http.MethodPut, "/users/me/status", 2, "bob", `{"is_busy":false}`); code != http.StatusOK {
		t.Fatalf("PUT after the partition: %d %s", code, body)
	}
	watcher.await(2, "not busy after the partition", 20*time.Second, notBusy)
	pgtest.WaitUntil(t, direct, `SELECT coalesce(bool_and(NOT busy), false) FROM presence_status WHERE user_id = 2`)
}

func TestDatabaseConnectionsResetAreReopened(t *testing.T) {
	direct, proxy, n := proxiedNode(t, "reset")
	watcher := dial(t, n, 1, "watcher")
	watcher.subscribe(3)
	dial(t, n, 3, "carol")
	watcher.await(3, "online", 20*time.Second, online)

	for round := range 3 {
		proxy.Reset() // every pooled connection and the listener, at once
		wait := 5 + round
		if code, body := rest(t, n, http.MethodPut, "/users/me/status", 3, "carol", `{"is_busy":true,"wait_time":`+strconv.Itoa(wait)+`}`); code != http.StatusOK {
			t.Fatalf("PUT after reset %d: %d %s", round+1, code, body)
		}
		watcher.await(3, "the change after reset", 20*time.Second, func(p presence) bool { return p.WaitTime != nil && *p.WaitTime == wait })
		pgtest.WaitUntil(t, direct, `SELECT coalesce(bool_and(wait_time = `+strconv.Itoa(wait)+`), false) FROM presence_status WHERE user_id = 3`)
	}
	n.waitReadyz(http.StatusOK, 60*time.Second)
	if proxy.Links() == 0 {
		t.Fatal("the node holds no database connection after the resets")
	}
}

// TestAStoreThatRefusesOneUserFailsThatUserAlone makes PostgreSQL refuse
// every row of one user (a check constraint, a real refusal of the
// database): that user's socket is closed with 1011 and a reason, not
// with 1001 as if the server were going away, and their REST write is a
// 500 with a detail; other users are served throughout, and once the
// database takes the user again, so does the server, with nothing lost.
func TestAStoreThatRefusesOneUserFailsThatUserAlone(t *testing.T) {
	t.Parallel()
	db := pgtest.Schema(t)
	d := startDaemon(t, []string{"-dev", "-database-url", db}, nil)
	execDB(t, db, `ALTER TABLE presence_status ADD CONSTRAINT refuse_666 CHECK (user_id <> 666)`)

	refused := d.devToken(t, 666, "refused")
	ws, _, err := websocket.DefaultDialer.Dial("ws://"+d.addr+"/ws", http.Header{"Authorization": {"Bearer " + refused}})
	if err != nil {
		t.Fatal(err)
	}
	_ = ws.SetReadDeadline(time.Now().Add(20 * time.Second))
	_, _, err = ws.ReadMessage()
	ws.Close()
	var ce *websocket.CloseError
	if !errors.As(err, &ce) || ce.Code != 1011 || !strings.Contains(ce.Text, "could not record this connection") {
		t.Fatalf("the refused user's socket ended with %v, want close 1011 with a reason", err)
	}
	if !strings.Contains(d.logs.String(), "the store did not take the connect") {
		t.Fatalf("no log line for the refused connect:\n%s", d.logs)
	}
	put := func(token, body string) (int, map[string]any) {
		t.Helper()
		req, _ := http.NewRequest("PUT", d.base+"/users/me/status", strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var m map[string]any
		if err := json.NewDecoder(resp.Body).Decode(&m); err != nil || resp.Header.Get("Content-Type") != "application/json" {
			t.Fatalf("PUT answered %d, %s, not JSON: %v", resp.StatusCode, resp.Header.Get("Content-Type"), err)
		}
		return resp.StatusCode, m
	}
	if code, m := put(refused, `{"is_busy":true}`); code != 500 || m["detail"] == nil {
		t.Fatalf("the refused user's PUT: %d %v, want 500 with a detail", code, m)
	}

	// Another user is served all along, and what they stored stays.
	other := d.devToken(t, 7, "other")
	ows, _, err := websocket.DefaultDialer.Dial("ws://"+d.addr+"/ws", http.Header{"Authorization": {"Bearer " + other}})
	if err != nil {
		t.Fatal(err)
	}
	defer ows.Close()
	if code, m := put(other, `{"is_busy":true,"wait_time":5}`); code != 200 || m["is_busy"] != true {
		t.Fatalf("another user's PUT: %d %v", code, m)
	}

	execDB(t, db, `ALTER TABLE presence_status DROP CONSTRAINT refuse_666`)
	if code, m := put(refused, `{"is_busy":true}`); code != 200 || m["is_busy"] != true {
		t.Fatalf("the user's PUT once the database takes them: %d %v", code, m)
	}
	pgtest.WaitUntil(t, db, `SELECT count(*) = 2 FROM presence_status WHERE busy AND user_id IN (7, 666)`)
}
