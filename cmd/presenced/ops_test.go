package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"
)

// lockedBuffer collects a server's stderr while the test reads it.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// daemon is presenced started by run, as main starts it.
type daemon struct {
	base   string
	stderr *lockedBuffer
	stop   context.CancelFunc
	done   chan error
}

// startDaemon runs the server with args on a loopback port and stops it
// at the end of the test.
func startDaemon(t *testing.T, args ...string) *daemon {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	d := &daemon{stderr: &lockedBuffer{}, stop: cancel, done: make(chan error, 1)}
	ready := make(chan string, 1)
	args = append([]string{"-addr", "127.0.0.1:0", "-dev"}, args...)
	go func() { d.done <- run(ctx, args, func(string) string { return "" }, d.stderr, ready) }()
	select {
	case addr := <-ready:
		d.base = "http://" + addr
	case err := <-d.done:
		cancel()
		t.Fatalf("presenced did not start: %v\n%s", err, d.stderr.String())
	case <-time.After(10 * time.Second):
		cancel()
		t.Fatalf("presenced did not start within 10s\n%s", d.stderr.String())
	}
	t.Cleanup(func() {
		cancel()
		if err := d.wait(t); err != nil {
			t.Errorf("shutdown: %v", err)
		}
	})
	return d
}

// wait returns run's result; once only, later calls return nil.
func (d *daemon) wait(t *testing.T) error {
	t.Helper()
	select {
	case err, ok := <-d.done:
		if ok {
			close(d.done)
		}
		return err
	case <-time.After(30 * time.Second):
		t.Fatalf("presenced did not stop within 30s\n%s", d.stderr.String())
		return nil
	}
}

// adminBase is the URL of the admin listener, read from the log line
// that announces it.
func (d *daemon) adminBase(t *testing.T) string {
	t.Helper()
	m := regexp.MustCompile(`"msg":"listening","addr":"[^"]+","admin_addr":"([^"]+)"`).FindStringSubmatch(d.stderr.String())
	if m == nil {
		t.Fatalf("no admin listener in the log:\n%s", d.stderr.String())
	}
	return "http://" + m[1]
}

func (d *daemon) get(t *testing.T, path string) (int, string) {
	t.Helper()
	return getURL(t, d.base+path)
}

func getURL(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func TestLogsAreJSONByDefaultAndTextOnRequest(t *testing.T) {
	d := startDaemon(t)
	first, _, _ := strings.Cut(d.stderr.String(), "\n")
	var line map[string]any
	if err := json.Unmarshal([]byte(first), &line); err != nil || line["level"] == nil || line["msg"] == nil {
		t.Fatalf("default log line is not slog JSON: %v: %s", err, first)
	}

	d = startDaemon(t, "-log-format", "text", "-log-level", "debug")
	if code, _ := d.get(t, "/healthz"); code != http.StatusOK {
		t.Fatalf("healthz: %d", code)
	}
	out := d.stderr.String()
	if !strings.Contains(out, " msg=listening addr=127.0.0.1:") || !strings.Contains(out, "level=DEBUG msg=\"http request\"") {
		t.Fatalf("text format with debug level:\n%s", out)
	}

	err := run(context.Background(), []string{"-dev", "-log-format", "xml"}, func(string) string { return "" }, io.Discard, nil)
	if err == nil || !strings.Contains(err.Error(), "-log-format") {
		t.Fatalf("an unknown log format must stop the start with a clear error, got %v", err)
	}
}

func TestShutdownSaysNotReadyBeforeTheListenerCloses(t *testing.T) {
	d := startDaemon(t, "-shutdown-delay", "3s", "-admin-addr", "127.0.0.1:0")
	admin := d.adminBase(t)
	if code, body := d.get(t, "/readyz"); code != http.StatusOK || strings.TrimSpace(body) != `{"status":"ready"}` {
		t.Fatalf("readyz while running: %d %s", code, body)
	}
	d.stop()
	// The signal and Drain race with the probe: poll, within the delay.
	deadline := time.Now().Add(2 * time.Second)
	for {
		code, body := getURL(t, admin+"/readyz")
		if code == http.StatusServiceUnavailable && strings.Contains(body, `"shutdown"`) {
			break
		}
		if code != http.StatusOK || time.Now().After(deadline) {
			t.Fatalf("admin readyz during the shutdown delay: %d %s", code, body)
		}
		time.Sleep(10 * time.Millisecond)
	}
	if code, body := d.get(t, "/readyz"); code != http.StatusServiceUnavailable || strings.TrimSpace(body) != `{"status":"not ready"}` {
		t.Fatalf("public readyz during the shutdown delay: %d %s", code, body)
	}
	if code, _ := d.get(t, "/healthz"); code != http.StatusOK {
		t.Fatalf("healthz during the shutdown delay: %d", code)
	}
	if err := d.wait(t); err != nil {
		t.Fatalf("shutdown: %v", err)
	}
	if _, err := http.Get(d.base + "/healthz"); err == nil {
		t.Fatal("the listener is still open after shutdown")
	}
}

// TestAdminAddrServesTheOperatorsEndpoints: with -admin-addr, /metrics
// leaves the public port for the admin listener, which also serves the
// probes; the public port keeps /healthz and a /readyz that says only
// ready or not.
func TestAdminAddrServesTheOperatorsEndpoints(t *testing.T) {
	d := startDaemon(t, "-admin-addr", "127.0.0.1:0")
	admin := d.adminBase(t)
	for _, tc := range []struct {
		url, want string
		status    int
	}{
		{d.base + "/metrics", `{"detail":"Not Found"}`, http.StatusNotFound},
		{d.base + "/healthz", `{"status":"ok"}`, http.StatusOK},
		{d.base + "/readyz", `{"status":"ready"}`, http.StatusOK},
		{admin + "/metrics", "presenced_connections 0", http.StatusOK},
		{admin + "/healthz", `{"status":"ok"}`, http.StatusOK},
		{admin + "/readyz", `{"status":"ready"}`, http.StatusOK},
		{admin + "/users/me/status", `{"detail":"Not Found"}`, http.StatusNotFound},
	} {
		if code, body := getURL(t, tc.url); code != tc.status || !strings.Contains(body, tc.want) {
			t.Errorf("GET %s: %d %.200s, want %d with %s", tc.url, code, body, tc.status, tc.want)
		}
	}
	// Without it, /metrics stays on the public port.
	plain := startDaemon(t)
	if code, body := plain.get(t, "/metrics"); code != http.StatusOK || !strings.Contains(body, "presenced_connections") {
		t.Fatalf("/metrics without -admin-addr: %d", code)
	}
	err := run(context.Background(), []string{"-dev", "-addr", "127.0.0.1:0", "-admin-addr", "127.0.0.1:99999"}, func(string) string { return "" }, io.Discard, nil)
	if err == nil || !strings.Contains(err.Error(), "-admin-addr") {
		t.Fatalf("a bad -admin-addr: %v, want an error naming the flag", err)
	}
}
