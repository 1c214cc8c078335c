package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/presenced/presenced/internal/testkit"
	"github.com/presenced/presenced/metrics/metricstest"
)

// dial opens a socket with token in the query, as a browser does.
func (d *daemon) dial(t *testing.T, token string) *websocket.Conn {
	t.Helper()
	ws, _, err := websocket.DefaultDialer.Dial("ws"+strings.TrimPrefix(d.base, "http")+"/ws?access_token="+token, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ws.Close() })
	_ = ws.SetReadDeadline(time.Now().Add(10 * time.Second))
	return ws
}

// request sends a REST request with a bearer token and returns the status.
func (d *daemon) request(t *testing.T, method, path, token, body string) int {
	t.Helper()
	return requestStatus(t, method, d.base+path, token, body)
}

// requestStatus sends a REST request with a bearer token and returns the
// status.
func requestStatus(t *testing.T, method, url, token, body string) int {
	t.Helper()
	code, _ := call(t, method, url, token, body)
	return code
}

// readType reads frames until one of type typ arrives.
func readType(t *testing.T, ws *websocket.Conn, typ string) map[string]any {
	t.Helper()
	for range 100 {
		_, data, err := ws.ReadMessage()
		if err != nil {
			t.Fatalf("waiting for %s: %v", typ, err)
		}
		var m map[string]any
		if json.Unmarshal(data, &m) == nil && m["type"] == typ {
			return m
		}
	}
	t.Fatalf("no %s among 100 frames", typ)
	return nil
}

// waitMetrics scrapes until ok holds: a write is counted just after the
// client may already have read it.
func (d *daemon) waitMetrics(t *testing.T, what string, ok func(metricstest.Families) bool) metricstest.Families {
	t.Helper()
	var f metricstest.Families
	testkit.Eventually(t, 10*time.Second, func() error {
		if f = metricstest.Scrape(t, d.base+"/metrics"); !ok(f) {
			return fmt.Errorf("metrics do not show %s", what)
		}
		return nil
	})
	return f
}

func TestMetricsFollowRealTraffic(t *testing.T) {
	d := startDaemon(t, []string{"-dev", "-max-queue-bytes", "1024"}, nil)
	f := metricstest.Scrape(t, d.base+"/metrics")
	// The database and cluster series exist with the memory store too.
	if f.Count(t, "presenced_store_write_seconds", "op", "save") != 0 || f.Value(t, "presenced_cluster_nodes") != 0 {
		t.Fatal("store and cluster series should exist at zero")
	}

	begin := time.Now()
	alice, bob := d.devToken(t, int64(1), "u"), d.devToken(t, int64(2), "u")
	wsAlice, wsBob := d.dial(t, alice), d.dial(t, bob)
	// The hub takes a socket after its handshake; a pong proves alice's
	// connection is in, so that her online event cannot reach bob later.
	if err := wsAlice.WriteMessage(websocket.TextMessage, []byte(`{"type":"ping"}`)); err != nil {
		t.Fatal(err)
	}
	readType(t, wsAlice, "pong")
	if err := wsBob.WriteJSON(map[string]any{"type": "subscribe", "user_ids": []int{1}}); err != nil {
		t.Fatal(err)
	}
	readType(t, wsBob, "subscribed")
	_ = wsBob.WriteMessage(websocket.TextMessage, []byte(`{"type":"dance"}`))
	readType(t, wsBob, "error")
	_ = wsBob.WriteMessage(websocket.TextMessage, []byte(`not json`))
	readType(t, wsBob, "error")

	if code := d.request(t, "PUT", "/users/me/status", alice, `{"is_busy":true}`); code != http.StatusOK {
		t.Fatalf("PUT status: %d", code)
	}
	// Alice's coming online may reach bob too, before or packed with it.
	for {
		_, data, err := wsBob.ReadMessage()
		if err != nil {
			t.Fatalf("waiting for alice's busy event: %v", err)
		}
		if strings.Contains(string(data), `"is_busy":true`) {
			break
		}
	}
	f = d.waitMetrics(t, "the delivered events", func(f metricstest.Families) bool {
		n := f.Value(t, "presenced_events_sent_total")
		return n >= 1 && float64(f.Count(t, "presenced_event_delivery_seconds")) == n
	})
	if f.Value(t, "presenced_connections") != 2 || f.Value(t, "presenced_online_users") != 2 || f.Value(t, "presenced_subscriptions") != 1 {
		t.Fatalf("gauges: connections %v, online %v, subscriptions %v; want 2, 2, 1",
			f.Value(t, "presenced_connections"), f.Value(t, "presenced_online_users"), f.Value(t, "presenced_subscriptions"))
	}
	for kind, want := range map[string]float64{"subscribe": 1, "unknown": 1, "invalid": 1, "set_status": 0} {
		if v := f.Value(t, "presenced_messages_received_total", "type", kind); v != want {
			t.Errorf("messages of type %s: %v, want %v", kind, v, want)
		}
	}
	// Each delay is measured from a decision made since the test began.
	if n, s := float64(f.Count(t, "presenced_event_delivery_seconds")), f.Sum(t, "presenced_event_delivery_seconds"); s <= 0 || s > n*time.Since(begin).Seconds() {
		t.Fatalf("%v deliveries took %vs in all, within %v", n, s, time.Since(begin))
	}

	// Refused tokens, on REST and on a socket.
	if code := d.request(t, "GET", "/users/me/status", alice+"x", ""); code != http.StatusUnauthorized {
		t.Fatalf("forged token: %d", code)
	}
	_, _, err := d.dial(t, bob[:len(bob)-2]).ReadMessage()
	if !websocket.IsCloseError(err, 4401) {
		t.Fatalf("forged socket token: %v", err)
	}

	// A slow consumer: a snapshot larger than the send queue.
	ids := make([]int, 20)
	for i := range ids {
		ids[i] = 100 + i
		if code := d.request(t, "POST", "/users/me/heartbeat", d.devToken(t, int64(ids[i]), "u"), ""); code != http.StatusOK {
			t.Fatalf("heartbeat: %d", code)
		}
	}
	wsSlow := d.dial(t, d.devToken(t, int64(3), "u"))
	if err := wsSlow.WriteJSON(map[string]any{"type": "subscribe", "user_ids": ids}); err != nil {
		t.Fatal(err)
	}
	if _, _, err := wsSlow.ReadMessage(); !websocket.IsCloseError(err, 4000) {
		t.Fatalf("a snapshot over -max-queue-bytes should close with 4000, got %v", err)
	}

	f = d.waitMetrics(t, "the rejected tokens and the slow consumer", func(f metricstest.Families) bool {
		return f.Value(t, "presenced_slow_consumers_total") == 1 && f.Value(t, "presenced_tokens_rejected_total", "via", "ws") == 1
	})
	if f.Value(t, "presenced_tokens_rejected_total", "via", "rest") != 1 ||
		f.Value(t, "presenced_sockets_closed_total", "code", "4401") != 1 ||
		f.Value(t, "presenced_sockets_closed_total", "code", "4000") != 1 {
		t.Fatal("rejected tokens or closes by code are miscounted")
	}

	wsAlice.Close()
	wsBob.Close()
	d.waitMetrics(t, "no connection left", func(f metricstest.Families) bool {
		return f.Value(t, "presenced_connections") == 0 && f.Value(t, "presenced_subscriptions") == 0
	})
}
