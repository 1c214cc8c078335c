package main

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
)

func TestLogsAreJSONByDefaultAndTextOnRequest(t *testing.T) {
	d := startDaemon(t, []string{"-dev"}, nil)
	first, _, _ := strings.Cut(d.logs.String(), "\n")
	var line map[string]any
	if err := json.Unmarshal([]byte(first), &line); err != nil || line["level"] == nil || line["msg"] == nil {
		t.Fatalf("default log line is not slog JSON: %v: %s", err, first)
	}

	d = startDaemon(t, []string{"-dev", "-log-format", "text", "-log-level", "debug"}, nil)
	if code, _ := d.get(t, "/healthz"); code != http.StatusOK {
		t.Fatalf("healthz: %d", code)
	}
	out := d.logs.String()
	if !strings.Contains(out, " msg=listening addr=127.0.0.1:") || !strings.Contains(out, "level=DEBUG msg=\"http request\"") {
		t.Fatalf("text format with debug level:\n%s", out)
	}

	err := run(context.Background(), []string{"-dev", "-log-format", "xml"}, func(string) string { return "" }, io.Discard, nil)
	if err == nil || !strings.Contains(err.Error(), "-log-format") {
		t.Fatalf("an unknown log format must stop the start with a clear error, got %v", err)
	}
}

func TestShutdownSaysNotReadyBeforeTheListenerCloses(t *testing.T) {
	d := startDaemon(t, []string{"-dev", "-shutdown-delay", "3s", "-admin-addr", "127.0.0.1:0"}, nil)
	admin := d.adminBase(t)
	if code, body := d.get(t, "/readyz"); code != http.StatusOK || strings.TrimSpace(body) != `{"status":"ready"}` {
		t.Fatalf("readyz while running: %d %s", code, body)
	}
	d.terminate()
	// The shutdown logs its start once readiness is withdrawn.
	d.logs.Await(t, 10*time.Second, "shutting down line", func(s string) bool { return strings.Contains(s, `"msg":"shutting down"`) })
	if code, body := getURL(t, admin+"/readyz"); code != http.StatusServiceUnavailable || !strings.Contains(body, `"shutdown"`) {
		t.Fatalf("admin readyz during the shutdown delay: %d %s", code, body)
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
	d := startDaemon(t, []string{"-dev", "-admin-addr", "127.0.0.1:0"}, nil)
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
	plain := startDaemon(t, []string{"-dev"}, nil)
	if code, body := plain.get(t, "/metrics"); code != http.StatusOK || !strings.Contains(body, "presenced_connections") {
		t.Fatalf("/metrics without -admin-addr: %d", code)
	}
	err := run(context.Background(), []string{"-dev", "-addr", "127.0.0.1:0", "-admin-addr", "127.0.0.1:99999"}, func(string) string { return "" }, io.Discard, nil)
	if err == nil || !strings.Contains(err.Error(), "-admin-addr") {
		t.Fatalf("a bad -admin-addr: %v, want an error naming the flag", err)
	}
}
