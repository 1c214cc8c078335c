package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/presenced/presenced/internal/testkit"
)

// daemon is presenced run in-process by run, as main runs it, on a
// loopback port: the one way these tests start a server in their own
// process.
type daemon struct {
	addr string // host:port
	base string // http://host:port
	logs *testkit.Buffer

	cancel   context.CancelFunc
	done     chan error
	waitOnce sync.Once
	err      error // run's result, once done
}

// env makes a getenv of vars.
func env(vars map[string]string) func(string) string {
	return func(k string) string { return vars[k] }
}

// startDaemon runs presenced with args on 127.0.0.1:0 (an -addr in args wins),
// with vars as its environment, until the test ends. The test's cleanup
// stops it and fails the test if the shutdown fails.
func startDaemon(t *testing.T, args []string, vars map[string]string) *daemon {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	d := &daemon{logs: &testkit.Buffer{}, cancel: cancel, done: make(chan error, 1)}
	ready := make(chan string, 1)
	go func() {
		d.done <- run(ctx, append([]string{"-addr", "127.0.0.1:0"}, args...), env(vars), d.logs, ready)
	}()
	select {
	case d.addr = <-ready:
		d.base = "http://" + d.addr
	case err := <-d.done:
		cancel()
		t.Fatalf("presenced did not start: %v\n%s", err, d.logs)
	case <-time.After(10 * time.Second):
		cancel()
		t.Fatalf("presenced did not start within 10s\n%s", d.logs)
	}
	t.Cleanup(func() {
		if err := d.stop(t); err != nil {
			t.Errorf("shutdown: %v", err)
		}
	})
	return d
}

// terminate starts the shutdown, as SIGTERM does, without waiting for it.
func (d *daemon) terminate() { d.cancel() }

// stop shuts the daemon down and returns run's error; later calls return
// the same.
func (d *daemon) stop(t *testing.T) error {
	t.Helper()
	d.cancel()
	return d.wait(t)
}

// wait waits for run to return, after a terminate, and returns its error;
// later calls return the same.
func (d *daemon) wait(t *testing.T) error {
	t.Helper()
	d.waitOnce.Do(func() {
		select {
		case d.err = <-d.done:
		case <-time.After(30 * time.Second):
			t.Fatalf("presenced did not stop within 30s\n%s", d.logs)
		}
	})
	return d.err
}

// adminBase is the URL of the admin listener, read from the log line
// that announces it.
func (d *daemon) adminBase(t *testing.T) string {
	t.Helper()
	m := regexp.MustCompile(`"msg":"listening","addr":"[^"]+","admin_addr":"([^"]+)"`).FindStringSubmatch(d.logs.String())
	if m == nil {
		t.Fatalf("no admin listener in the log:\n%s", d.logs)
	}
	return "http://" + m[1]
}

// devToken asks POST /dev/token for a token of user id called name.
func (d *daemon) devToken(t *testing.T, id int64, name string) string {
	t.Helper()
	resp, err := http.Post(d.base+"/dev/token", "application/json", strings.NewReader(fmt.Sprintf(`{"user_id":%d,"username":%q}`, id, name)))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out struct {
		AccessToken string `json:"access_token"`
		TokenType   string `json:"token_type"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil || resp.StatusCode != http.StatusOK || out.TokenType != "bearer" || out.AccessToken == "" {
		t.Fatalf("POST /dev/token: %d %+v %v", resp.StatusCode, out, err)
	}
	return out.AccessToken
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
