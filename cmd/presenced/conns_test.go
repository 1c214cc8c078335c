package main

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"os/exec"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/presenced/presenced/internal/testkit"
)

// TestOutOfFilesTheServerStillAnswers runs presenced with a small limit
// on open files and holds more idle keep-alive connections than it may
// have files, as the 20,000 that once made a server answer nobody: the
// connections that wait longest are closed to make room, and /healthz
// and the REST API answer throughout.
func TestOutOfFilesTheServerStillAnswers(t *testing.T) {
	const limit, flood = 128, 400
	// The shell's ulimit lowers both the soft and the hard limit, so the
	// Go runtime cannot raise it again. The idle cap is far above it:
	// only running out of files makes room here.
	cmd := exec.Command("sh", "-c", fmt.Sprintf(`ulimit -n %d && exec "$0" "$@"`, limit), presencedBinary(t),
		"-dev", "-addr", "127.0.0.1:0", "-max-idle-connections", "100000", "-idle-timeout", "10m", "-log-format", "json")
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	logs := &testkit.Buffer{}
	addrc := make(chan string, 1)
	exited := make(chan struct{})
	go func() {
		defer close(exited)
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			_, _ = logs.Write([]byte(sc.Text() + "\n"))
			if m := regexp.MustCompile(`"msg":"listening","addr":"([^"]+)"`).FindStringSubmatch(sc.Text()); m != nil {
				addrc <- m[1]
			}
		}
		_, _ = io.Copy(io.Discard, stderr)
		_ = cmd.Wait()
	}()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-exited
		if t.Failed() {
			t.Logf("presenced log:\n%s", logs)
		}
	})
	var addr string
	select {
	case addr = <-addrc:
	case <-exited:
		t.Fatalf("presenced exited at start:\n%s", logs)
	case <-time.After(30 * time.Second):
		t.Fatal("presenced did not listen within 30s")
	}

	// Each connection makes one request and then waits, kept alive.
	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	var held []net.Conn
	defer func() {
		for _, c := range held {
			c.Close()
		}
	}()
	for i := range flood {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		held = append(held, c)
		_ = c.SetDeadline(time.Now().Add(10 * time.Second))
		fmt.Fprintf(c, "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil {
			t.Fatalf("idle connection %d of %d (the process may have %d files): %v", i+1, flood, limit, err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("idle connection %d: %d", i+1, resp.StatusCode)
		}
		_ = c.SetDeadline(time.Time{})
		// Every so often, a fresh client: the probe and the REST API.
		if i%50 == 49 {
			for _, path := range []string{"/healthz", "/users/me/status"} {
				resp, err := client.Get("http://" + addr + path)
				if err != nil {
					t.Fatalf("GET %s with %d idle connections held: %v", path, i+1, err)
				}
				resp.Body.Close()
				if want := map[string]int{"/healthz": 200, "/users/me/status": 401}[path]; resp.StatusCode != want {
					t.Fatalf("GET %s: %d", path, resp.StatusCode)
				}
			}
		}
	}
	// Room was made by closing the connections that waited longest, and
	// the server said so.
	first := held[0]
	_ = first.SetReadDeadline(time.Now().Add(10 * time.Second))
	if n, err := first.Read(make([]byte, 1)); n != 0 || err == nil || strings.Contains(err.Error(), "timeout") {
		t.Fatalf("the oldest idle connection is still open (%d, %v)", n, err)
	}
	if !strings.Contains(logs.String(), "closed the longest-waiting idle connections") {
		t.Fatalf("no log line about closing idle connections:\n%s", logs)
	}
}
