package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/presenced/presenced/internal/pgtest"
	"github.com/presenced/presenced/internal/testkit"
)

// The fault tests run real presenced processes (built from this package)
// on PostgreSQL, so that a restart keeps what was stored and the process
// gets a real SIGTERM.

// TestSIGTERMUnderLoad stops a node while sockets are open and REST
// clients are writing: every socket must get close 1001, the process must
// exit cleanly, and every change it acknowledged must be in the database.
func TestSIGTERMUnderLoad(t *testing.T) {
	const sockets, writers = 300, 20
	db := pgtest.Schema(t)
	noLimits := []string{"-max-sockets-per-second-per-ip", "0", "-max-requests-per-second", "0", "-max-messages-per-second", "0"}
	n := startNode(t, db, "sigterm", noLimits...)

	// Watchers of the writers, so that every write fans out as events.
	type closed struct {
		user int64
		err  error
	}
	ends := make(chan closed, sockets)
	var readers sync.WaitGroup
	for i := range int64(sockets) {
		ws := dialRaw(t, n.addr, i+1, nil)
		_ = ws.WriteMessage(websocket.TextMessage, []byte(fmt.Sprintf(`{"type":"subscribe","user_ids":[%d,%d]}`, 1001+i%writers, 1001+(i+1)%writers)))
		readers.Go(func() {
			for {
				_ = ws.SetReadDeadline(time.Now().Add(time.Minute))
				if _, _, err := ws.ReadMessage(); err != nil {
					ends <- closed{i + 1, err}
					return
				}
			}
		})
	}

	// Writers: each sets a rising wait_time and remembers the last value
	// acknowledged with 200 and the last one it tried.
	var acked, tried [writers]atomic.Int64
	var total atomic.Int64
	stop := make(chan struct{})
	var load sync.WaitGroup
	for w := range writers {
		tok := token(t, int64(1001+w), "writer")
		load.Go(func() {
			client := &http.Client{Timeout: 20 * time.Second}
			for k := int64(1); k <= 10_000; k++ {
				select {
				case <-stop:
					return
				default:
				}
				tried[w].Store(k)
				req, _ := http.NewRequest(http.MethodPut, "http://"+n.addr+"/users/me/status", strings.NewReader(fmt.Sprintf(`{"is_busy":true,"wait_time":%d}`, k)))
				req.Header.Set("Authorization", "Bearer "+tok)
				resp, err := client.Do(req)
				if err != nil {
					return // the listener has closed
				}
				resp.Body.Close()
				if resp.StatusCode == http.StatusOK {
					acked[w].Store(k)
					total.Add(1)
				}
			}
		})
	}
	// Stop under load: once a good number of writes have gone through.
	testkit.Eventually(t, 60*time.Second, func() error {
		if n := total.Load(); n < 500 {
			return fmt.Errorf("only %d writes acknowledged", n)
		}
		return nil
	})
	n.terminate()
	select {
	case <-n.exited:
	case <-time.After(30 * time.Second):
		t.Fatal("the node did not exit within 30s of SIGTERM")
	}
	close(stop)
	load.Wait()
	if code := n.cmd.ProcessState.ExitCode(); code != 0 {
		t.Fatalf("exit code %d after SIGTERM, want 0\n%s", code, n.logs)
	}
	for range sockets {
		e := <-ends
		var ce *websocket.CloseError
		if !errors.As(e.err, &ce) || ce.Code != websocket.CloseGoingAway {
			t.Fatalf("socket of user %d ended with %v, want close 1001", e.user, e.err)
		}
	}
	readers.Wait()
	t.Logf("%d sockets all got 1001; %d writes acknowledged before SIGTERM", sockets, total.Load())

	// A new node on the same database has every acknowledged change: the
	// stored wait_time is at least the last one acknowledged (a request
	// cut off after it was stored may have gone further, never past the
	// last one tried).
	n2 := startNode(t, db, "after", noLimits...)
	for w := range writers {
		code, body := rest(t, n2, http.MethodGet, "/users/me/status", int64(1001+w), "writer", "")
		if code != http.StatusOK {
			t.Fatalf("writer %d after restart: %d %s", w, code, body)
		}
		got := waitTimeOf(t, body)
		if got < acked[w].Load() || got > tried[w].Load() {
			t.Fatalf("writer %d: stored wait_time %d; acknowledged up to %d, tried up to %d", w, got, acked[w].Load(), tried[w].Load())
		}
	}
}

// TestReconnectStormAfterRestart connects thousands of clients, restarts
// the node, and has them all reconnect at once. The server must admit
// them at its configured pace (503 with Retry-After to the rest), and all
// must be back in the end, with the server serving. The clients come
// from many loopback addresses, as they would from the internet, so that
// the per-address limit does not hide the server-wide one.
func TestReconnectStormAfterRestart(t *testing.T) {
	const clients, rate, burst = 2500, 500, 200
	db := pgtest.Schema(t)
	args := []string{"-max-sockets-per-second", strconv.Itoa(rate), "-socket-burst", strconv.Itoa(burst),
		"-ping-interval", "10m"} // the clients below do not read until the end
	a := startNode(t, db, "storm-a", args...)

	first := storm(t, a.addr, clients)
	t.Logf("first connect: %v", first)

	// Restart: every socket gets 1001, then a new process on the same port.
	a.terminate()
	for i, ws := range first.conns {
		_ = ws.SetReadDeadline(time.Now().Add(30 * time.Second))
		for {
			if _, _, err := ws.ReadMessage(); err != nil {
				var ce *websocket.CloseError
				if !errors.As(err, &ce) || ce.Code != websocket.CloseGoingAway {
					t.Fatalf("client %d at restart: %v, want close 1001", i, err)
				}
				break
			}
		}
		ws.Close()
	}
	<-a.exited
	b := startNode(t, db, "storm-b", append(args, "-addr", a.addr)...)

	second := storm(t, b.addr, clients)
	t.Logf("reconnect storm: %v", second)
	if second.refused == 0 {
		t.Fatalf("%d clients reconnecting at once were all admitted at once; want 503s above %d per second", clients, rate)
	}
	// The pace: beyond the burst, at most rate per second. This is a lower
	// bound set by the limiter, not a speed the machine must reach.
	if min := time.Duration(float64(clients-burst) / rate * float64(time.Second)); second.took < min*9/10 {
		t.Fatalf("%d clients admitted in %v; a steady %d per second after a burst of %d needs %v", clients, second.took, rate, burst, min)
	}
	// The server serves: a ping on a reconnected socket, and REST.
	ws := second.conns[len(second.conns)-1]
	_ = ws.WriteMessage(websocket.TextMessage, []byte(`{"type":"ping","id":"after-storm"}`))
	_ = ws.SetReadDeadline(time.Now().Add(30 * time.Second))
	for {
		_, data, err := ws.ReadMessage()
		if err != nil {
			t.Fatalf("ping after the storm: %v", err)
		}
		if strings.Contains(string(data), `"after-storm"`) {
			break
		}
	}
	// REST answers, and shows user 1 online once the new node's change is
	// stored: under load the store may answer after the handshake.
	testkit.Eventually(t, 30*time.Second, func() error {
		code, body := rest(t, b, http.MethodGet, "/users/1/presence", 2, "x", "")
		if code != http.StatusOK {
			t.Fatalf("REST after the storm: %d %s", code, body)
		}
		if !strings.Contains(body, `"is_online":true`) {
			return fmt.Errorf("REST after the storm shows user 1 offline: %s", body)
		}
		return nil
	})
}

type stormResult struct {
	conns   []*websocket.Conn
	refused int64 // 503 and 429 answers honoured
	took    time.Duration
}

func (r stormResult) String() string {
	return fmt.Sprintf("%d clients in %v (%.0f/s), %d refusals with Retry-After honoured",
		len(r.conns), r.took.Round(time.Millisecond), float64(len(r.conns))/r.took.Seconds(), r.refused)
}

// storm connects n clients at once, each from one of 250 loopback
// addresses, each retrying after Retry-After plus jitter when refused,
// as a well-behaved client library does. Each connection is kept without
// a reading goroutine; the caller closes them.
func storm(t *testing.T, addr string, n int) stormResult {
	t.Helper()
	var refused atomic.Int64
	conns := make([]*websocket.Conn, n)
	errs := make(chan error, n)
	start := time.Now()
	giveUp := start.Add(3 * time.Minute)
	tokens := make([]string, n)
	for i := range tokens {
		tokens[i] = token(t, int64(i+1), "storm")
	}
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			src := fmt.Sprintf("127.0.0.%d", 1+i%250)
			d := &websocket.Dialer{HandshakeTimeout: 30 * time.Second,
				NetDialContext: (&net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(src)}, Timeout: 30 * time.Second}).DialContext}
			h := http.Header{"Authorization": {"Bearer " + tokens[i]}}
			for attempt := 0; ; attempt++ {
				ws, resp, err := d.Dial("ws://"+addr+"/ws", h)
				if err == nil {
					conns[i] = ws
					errs <- nil
					return
				}
				if resp == nil || (resp.StatusCode != http.StatusServiceUnavailable && resp.StatusCode != http.StatusTooManyRequests) {
					errs <- fmt.Errorf("client %d from %s: %v (%v)", i, src, err, resp)
					return
				}
				refused.Add(1)
				ra, perr := strconv.Atoi(resp.Header.Get("Retry-After"))
				if perr != nil || ra < 1 {
					errs <- fmt.Errorf("client %d: %d without a usable Retry-After (%q)", i, resp.StatusCode, resp.Header.Get("Retry-After"))
					return
				}
				wait := time.Duration(ra)*time.Second + rand.N(time.Second)
				if time.Now().Add(wait).After(giveUp) {
					errs <- fmt.Errorf("client %d not admitted after %d tries", i, attempt+1)
					return
				}
				<-time.After(wait)
			}
		})
	}
	wg.Wait()
	took := time.Since(start)
	close(errs)
	for err := range errs {
		if err != nil {
			for _, ws := range conns {
				if ws != nil {
					ws.Close()
				}
			}
			t.Fatal(err)
		}
	}
	t.Cleanup(func() {
		for _, ws := range conns {
			ws.Close()
		}
	})
	return stormResult{conns: conns, refused: refused.Load(), took: took}
}

// dialRaw opens a socket on addr for userID, with no reader.
func dialRaw(t *testing.T, addr string, userID int64, d *websocket.Dialer) *websocket.Conn {
	t.Helper()
	if d == nil {
		d = websocket.DefaultDialer
	}
	ws, resp, err := d.Dial("ws://"+addr+"/ws", http.Header{"Authorization": {"Bearer " + token(t, userID, "u")}})
	if err != nil {
		t.Fatalf("dial as %d: %v (%v)", userID, err, resp)
	}
	t.Cleanup(func() { ws.Close() })
	return ws
}

// waitTimeOf reads wait_time from a UserStatus body.
func waitTimeOf(t *testing.T, body string) int64 {
	t.Helper()
	var st struct {
		WaitTime *int64 `json:"wait_time"`
	}
	if err := json.Unmarshal([]byte(body), &st); err != nil || st.WaitTime == nil {
		t.Fatalf("no wait_time in %s (%v)", body, err)
	}
	return *st.WaitTime
}
