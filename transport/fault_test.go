package transport_test

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/presenced/presenced/hub"
	"github.com/presenced/presenced/internal/faultproxy"
	"github.com/presenced/presenced/transport"
)

// TestHalfOpenClientTurnsOffline plays a phone that loses its network: a
// proxy between it and the server stops forwarding without closing, so no
// FIN or reset ever arrives and the server's writes still succeed. Only
// the missing pongs can tell, and the user must be shown offline within
// ping interval + pong deadline + grace.
func TestHalfOpenClientTurnsOffline(t *testing.T) {
	const ping, pong, grace = 500 * time.Millisecond, 500 * time.Millisecond, 300 * time.Millisecond
	e := newEnv(t, options{
		hub:       hub.Config{Grace: grace},
		transport: transport.Config{PingInterval: ping, PongTimeout: pong},
	})
	proxy, err := faultproxy.Start(strings.TrimPrefix(e.srv.URL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { proxy.Close() })

	watcher := e.dial(e.token(1, "watcher"))
	watcher.subscribe(2)
	phone := e.dialWith("ws://"+proxy.Addr()+"/ws", http.Header{"Authorization": {"Bearer " + e.token(2, "phone")}}, websocket.DefaultDialer, true)
	watcher.presence(2, true)
	alive(phone)

	proxy.Blackhole()
	cut := time.Now()
	watcher.presence(2, false)
	took := time.Since(cut)
	// The bound is the rule's sum plus slack for a loaded machine; without
	// pings the user would never turn offline at all.
	if limit := ping + pong + grace + 5*time.Second; took > limit {
		t.Fatalf("offline after %v, want within %v", took, limit)
	}
	t.Logf("half-open client shown offline %v after its network went (ping %v + pong %v + grace %v = %v)", took.Round(time.Millisecond), ping, pong, grace, ping+pong+grace)
	// The server has let go of the dead socket; the watcher is served.
	if st, err := e.hub.Stats(t.Context()); err != nil || st.Sessions != 1 {
		t.Fatalf("hub holds %d sessions (%v), want only the watcher's", st.Sessions, err)
	}
	alive(watcher)
}
