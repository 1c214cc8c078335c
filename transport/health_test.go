package transport_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/presenced/presenced/transport"
)

// tcpCheck is a readiness check that dials addr and waits for its first
// byte, as a database client does: refused and silent servers both fail.
func tcpCheck(name, addr string) transport.ReadinessCheck {
	return transport.ReadinessCheck{Name: name, Check: func(ctx context.Context) error {
		var d net.Dialer
		c, err := d.DialContext(ctx, "tcp", addr)
		if err != nil {
			return err
		}
		defer c.Close()
		if dl, ok := ctx.Deadline(); ok {
			_ = c.SetReadDeadline(dl)
		}
		_, err = c.Read(make([]byte, 1))
		return err
	}}
}

// greeter is a TCP server that sends one byte to each client, like a
// database announcing itself; silent accepts and says nothing.
func greeter(t *testing.T, silent bool) net.Listener {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		var held []net.Conn
		defer func() {
			for _, c := range held {
				c.Close()
			}
		}()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			if silent {
				held = append(held, c)
				continue
			}
			_, _ = c.Write([]byte{'R'})
			c.Close()
		}
	}()
	t.Cleanup(func() { ln.Close(); <-done })
	return ln
}

func decodeReady(t *testing.T, b []byte) (status string, checks map[string]string) {
	t.Helper()
	var body struct {
		Status string            `json:"status"`
		Checks map[string]string `json:"checks"`
	}
	if err := json.Unmarshal(b, &body); err != nil {
		t.Fatalf("readyz body %q: %v", b, err)
	}
	return body.Status, body.Checks
}

func TestHealthzAnswersWhileTheProcessLives(t *testing.T) {
	e := startOps(t, transport.Config{})
	resp, b := e.do("GET", "/healthz", "", nil)
	if resp.StatusCode != http.StatusOK || strings.TrimSpace(string(b)) != `{"status":"ok"}` {
		t.Fatalf("healthz: %d %s", resp.StatusCode, b)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
		t.Fatalf("healthz content type %q", ct)
	}
	// Liveness must not follow the hub: a stopped hub is a readiness
	// matter, and restarting the process would not bring a database back.
	e.stopHub()
	if resp, b := e.do("GET", "/healthz", "", nil); resp.StatusCode != http.StatusOK {
		t.Fatalf("healthz after the hub stopped: %d %s", resp.StatusCode, b)
	}
}

func TestReadyzFollowsItsChecks(t *testing.T) {
	db := greeter(t, false)
	e := startOps(t, transport.Config{ReadinessChecks: []transport.ReadinessCheck{tcpCheck("postgres", db.Addr().String())}, AdminListener: true})

	for _, get := range []func(string, string) (*http.Response, []byte){e.admin, e.public} {
		resp, b := get("GET", "/readyz")
		if resp.StatusCode != http.StatusOK || strings.TrimSpace(string(b)) != `{"status":"ready"}` {
			t.Fatalf("readyz with everything up: %d %s", resp.StatusCode, b)
		}
	}

	db.Close() // the database goes away: connections are refused
	resp, b := e.admin("GET", "/readyz")
	status, checks := decodeReady(t, b)
	if resp.StatusCode != http.StatusServiceUnavailable || status != "not ready" {
		t.Fatalf("admin readyz with the database down: %d %s", resp.StatusCode, b)
	}
	if len(checks) != 1 || !strings.Contains(checks["postgres"], "refused") {
		t.Fatalf("admin readyz should name only the failed check with its error: %v", checks)
	}
	// The public port says not ready, and nothing about the database.
	resp, b = e.public("GET", "/readyz")
	if resp.StatusCode != http.StatusServiceUnavailable || strings.TrimSpace(string(b)) != `{"status":"not ready"}` {
		t.Fatalf("public readyz with the database down: %d %s, want only {\"status\":\"not ready\"}", resp.StatusCode, b)
	}
	// The log says why, once.
	line := e.waitLog("for not ready", func(l map[string]any) bool { return l["msg"] == "not ready" })
	if c, _ := line["checks"].(map[string]any); !strings.Contains(fmt.Sprint(c["postgres"]), "refused") {
		t.Fatalf("the not-ready line does not give the check's error: %v", line)
	}
	if n := strings.Count(e.logs.String(), `"msg":"not ready"`); n != 1 {
		t.Fatalf("%d not-ready lines for one change", n)
	}
}

func TestReadyzBoundsASilentDependency(t *testing.T) {
	silent := greeter(t, true)
	e := startOps(t, transport.Config{ReadinessChecks: []transport.ReadinessCheck{tcpCheck("listener", silent.Addr().String())}, AdminListener: true})
	start := time.Now()
	resp, b := e.admin("GET", "/readyz")
	took := time.Since(start)
	_, checks := decodeReady(t, b)
	if resp.StatusCode != http.StatusServiceUnavailable || !strings.Contains(checks["listener"], "timeout") {
		t.Fatalf("readyz with a silent dependency: %d %s", resp.StatusCode, b)
	}
	// A probe that hung would pile up behind the kubelet's own timeout.
	if took > 5*time.Second {
		t.Fatalf("readyz took %v with a silent dependency; checks must be bounded", took)
	}
}

func TestReadyzSaysNotReadyWhileShuttingDown(t *testing.T) {
	e := startOps(t, transport.Config{AdminListener: true})
	if resp, b := e.do("GET", "/readyz", "", nil); resp.StatusCode != http.StatusOK {
		t.Fatalf("readyz before shutdown: %d %s", resp.StatusCode, b)
	}
	e.Server.Drain()
	resp, b := e.admin("GET", "/readyz")
	status, checks := decodeReady(t, b)
	if resp.StatusCode != http.StatusServiceUnavailable || status != "not ready" || checks["shutdown"] == "" {
		t.Fatalf("readyz after Drain: %d %s", resp.StatusCode, b)
	}
	if resp, b := e.do("GET", "/readyz", "", nil); resp.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("public readyz after Drain: %d %s", resp.StatusCode, b)
	}
	// Clients already here are still served while load balancers catch up.
	if resp, b := e.do("POST", "/users/me/heartbeat", e.token(1), nil); resp.StatusCode != http.StatusOK {
		t.Fatalf("heartbeat while draining: %d %s", resp.StatusCode, b)
	}
}

func TestReadyzSaysNotReadyWhenTheHubStops(t *testing.T) {
	e := startOps(t, transport.Config{AdminListener: true})
	e.stopHub()
	resp, b := e.admin("GET", "/readyz")
	_, checks := decodeReady(t, b)
	if resp.StatusCode != http.StatusServiceUnavailable || checks["hub"] != "hub closed" {
		t.Fatalf("readyz with the hub stopped: %d %s", resp.StatusCode, b)
	}
}

// TestAdminHandlerHoldsTheOperatorsEndpoints: with an admin listener the
// public port serves no /metrics; the admin handler serves /metrics,
// /healthz, /readyz and the profiles, and answers anything else as the
// public one does.
func TestAdminHandlerHoldsTheOperatorsEndpoints(t *testing.T) {
	e := startOps(t, transport.Config{AdminListener: true})
	for _, tc := range []struct {
		get          func(string, string) (*http.Response, []byte)
		method, path string
		status       int
		allow        string
	}{
		{e.public, "GET", "/metrics", http.StatusNotFound, ""},
		{e.public, "GET", "/healthz", http.StatusOK, ""},
		{e.public, "GET", "/readyz", http.StatusOK, ""},
		{e.admin, "GET", "/metrics", http.StatusOK, ""},
		{e.admin, "HEAD", "/metrics", http.StatusOK, ""},
		{e.admin, "GET", "/healthz", http.StatusOK, ""},
		{e.admin, "HEAD", "/readyz", http.StatusOK, ""},
		{e.admin, "GET", "/readyz", http.StatusOK, ""},
		{e.admin, "POST", "/readyz", http.StatusMethodNotAllowed, "GET, HEAD"},
		{e.admin, "GET", "/users/me/status", http.StatusNotFound, ""},
		{e.admin, "GET", "/", http.StatusNotFound, ""},
		// The runtime's profiles, for operators only; the command line,
		// which may hold the secret, not even there.
		{e.admin, "GET", "/debug/pprof/", http.StatusOK, ""},
		{e.admin, "GET", "/debug/pprof/goroutine?debug=1", http.StatusOK, ""},
		{e.admin, "GET", "/debug/pprof/cmdline", http.StatusNotFound, ""},
		{e.public, "GET", "/debug/pprof/", http.StatusNotFound, ""},
		{e.public, "GET", "/debug/pprof/goroutine?debug=1", http.StatusNotFound, ""},
	} {
		resp, b := tc.get(tc.method, tc.path)
		if resp.StatusCode != tc.status || resp.Header.Get("Allow") != tc.allow {
			t.Errorf("%s %s: %d (Allow %q) %s, want %d", tc.method, tc.path, resp.StatusCode, resp.Header.Get("Allow"), b, tc.status)
		}
		if resp.StatusCode >= 400 && resp.Header.Get("Content-Type") != "application/json" {
			t.Errorf("%s %s: error as %s", tc.method, tc.path, resp.Header.Get("Content-Type"))
		}
	}
	// Without an admin listener the public port keeps /metrics.
	plain := startOps(t, transport.Config{})
	if resp, b := plain.public("GET", "/metrics"); resp.StatusCode != http.StatusOK {
		t.Fatalf("public /metrics without an admin listener: %d %s", resp.StatusCode, b)
	}
}
