package main

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"go.uber.org/goleak"

	"github.com/presenced/presenced/internal/needs"
	"github.com/presenced/presenced/internal/testkit"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(needs.Main(m)) }

func TestDevModeWorksAndShutsDownWithGoingAway(t *testing.T) {
	d := startDaemon(t, []string{"-dev"}, nil)
	if !strings.Contains(d.logs.String(), "development mode") {
		t.Fatalf("dev mode not announced in the log:\n%s", d.logs)
	}
	tok := d.devToken(t, 1, "alice")
	if strings.Contains(d.logs.String(), tok) {
		t.Fatal("a token appears in the log")
	}

	resp, err := http.Get(d.base + "/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") {
		t.Fatalf("GET /: %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}

	ws, _, err := websocket.DefaultDialer.Dial("ws://"+d.addr+"/ws?access_token="+tok, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ws.Close()
	if err := ws.WriteMessage(websocket.TextMessage, []byte(`{"type":"ping"}`)); err != nil {
		t.Fatal(err)
	}
	_ = ws.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, msg, err := ws.ReadMessage(); err != nil || string(msg) != `{"type":"pong"}` {
		t.Fatalf("pong: %s %v", msg, err)
	}

	d.terminate()
	_, _, err = ws.ReadMessage()
	var ce *websocket.CloseError
	if !errors.As(err, &ce) || ce.Code != websocket.CloseGoingAway {
		t.Fatalf("on shutdown the socket got %v, want close 1001", err)
	}
	if err := d.wait(t); err != nil {
		t.Fatalf("run: %v", err)
	}
	if strings.Contains(d.logs.String(), tok) {
		t.Fatal("a token appears in the log")
	}
}

func TestWithoutDevModeSecretIsRequiredAndDevTokenIsAbsent(t *testing.T) {
	err := run(context.Background(), []string{"-addr", "127.0.0.1:0"}, env(nil), &testkit.Buffer{}, nil)
	if err == nil || !strings.Contains(err.Error(), "PRESENCE_JWT_SECRET") {
		t.Fatalf("start without a secret: %v, want an error naming PRESENCE_JWT_SECRET", err)
	}

	d := startDaemon(t, nil, map[string]string{"PRESENCE_JWT_SECRET": "s3cret-0123456789abcdef0123456789"})
	if strings.Contains(d.logs.String(), "development mode") {
		t.Fatal("dev mode announced without -dev")
	}
	resp, err := http.Post(d.base+"/dev/token", "application/json", strings.NewReader(`{"user_id":1}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound {
		t.Fatalf("POST /dev/token without -dev: %d, want 404", resp.StatusCode)
	}
}

func TestEnvironmentAndFlags(t *testing.T) {
	o, err := parseFlags([]string{"-grace", "2s"}, env(map[string]string{
		"PRESENCE_ADDR": ":9999", "PRESENCE_GRACE": "7s", "PRESENCE_MAX_IDS": "50",
	}), &bytes.Buffer{})
	if err != nil {
		t.Fatal(err)
	}
	if o.addr != ":9999" || o.grace != 2*time.Second || o.maxIDs != 50 {
		t.Fatalf("parsed %+v: want addr from the environment, grace from the flag, max-ids 50", o)
	}
	if _, err := parseFlags(nil, env(map[string]string{"PRESENCE_GRACE": "soon"}), &bytes.Buffer{}); err == nil || !strings.Contains(err.Error(), "PRESENCE_GRACE") {
		t.Fatalf("bad environment value: %v", err)
	}
	var help bytes.Buffer
	if _, err := parseFlags([]string{"-h"}, env(nil), &help); err == nil {
		t.Fatal("-h did not stop")
	}
	for _, want := range []string{"-addr", "-jwt-secret", "PRESENCE_JWT_SECRET", "-dev", "-grace"} {
		if !strings.Contains(help.String(), want) {
			t.Errorf("-h does not list %s", want)
		}
	}
}

// TestDevModeHoldsNoProductionKey: -dev signs a token for anyone, so it
// refuses to start beside any key that verifies production tokens, and
// says why.
func TestDevModeHoldsNoProductionKey(t *testing.T) {
	good := "production-secret-0123456789abcdef"
	for name, tc := range map[string]struct {
		args []string
		vars map[string]string
		want string
	}{
		"-jwt-secret":               {[]string{"-dev", "-jwt-secret", good}, nil, "-dev refuses to start with -jwt-secret"},
		"PRESENCE_JWT_SECRET":       {[]string{"-dev"}, map[string]string{"PRESENCE_JWT_SECRET": good}, "-dev refuses to start with -jwt-secret (or PRESENCE_JWT_SECRET)"},
		"-jwt-secret-previous":      {[]string{"-dev", "-jwt-secret-previous", good}, nil, "-dev refuses to start with -jwt-secret-previous"},
		"-jwt-public-key-file":      {[]string{"-dev", "-jwt-public-key-file", "/etc/keys/auth.pem"}, nil, "-dev refuses to start with -jwt-public-key-file"},
		"-jwt-jwks-url":             {[]string{"-dev", "-jwt-jwks-url", "https://auth.example/jwks.json"}, nil, "-dev refuses to start with -jwt-jwks-url"},
		"-dev-secret without -dev":  {[]string{"-jwt-secret", good, "-dev-secret", good}, nil, "-dev-secret (or PRESENCE_DEV_SECRET) is set without -dev"},
		"a short -dev-secret":       {[]string{"-dev", "-dev-secret", "dev"}, nil, "-dev-secret (or PRESENCE_DEV_SECRET) is 3 bytes; an HS256 secret must be at least 32 bytes"},
		"a one-byte -jwt-secret":    {[]string{"-jwt-secret", "x"}, nil, "-jwt-secret (or PRESENCE_JWT_SECRET) is 1 bytes; an HS256 secret must be at least 32 bytes (RFC 7518"},
		"a 31-byte secret from env": {nil, map[string]string{"PRESENCE_JWT_SECRET": good[:31]}, "-jwt-secret (or PRESENCE_JWT_SECRET) is 31 bytes"},
		"a short previous secret":   {[]string{"-jwt-secret", good, "-jwt-secret-previous", "old"}, nil, "-jwt-secret-previous (or PRESENCE_JWT_SECRET_PREVIOUS) is 3 bytes"},
	} {
		t.Run(name, func(t *testing.T) {
			err := run(context.Background(), append([]string{"-addr", "127.0.0.1:0"}, tc.args...), env(tc.vars), &testkit.Buffer{}, nil)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("run = %v, want an error saying %q", err, tc.want)
			}
		})
	}
	// A 32-byte secret is enough.
	d := startDaemon(t, nil, map[string]string{"PRESENCE_JWT_SECRET": good[:32]})
	resp, err := http.Get(d.base + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("healthz with a 32-byte secret: %d", resp.StatusCode)
	}
}

// TestDevModeIsNotSwitchedOnByTheEnvironment: PRESENCE_DEV alone starts
// no development mode (the server then wants a real key), and beside a
// real key it is ignored with a warning.
func TestDevModeIsNotSwitchedOnByTheEnvironment(t *testing.T) {
	err := run(context.Background(), []string{"-addr", "127.0.0.1:0"}, env(map[string]string{"PRESENCE_DEV": "true"}), &testkit.Buffer{}, nil)
	if err == nil || !strings.Contains(err.Error(), "no way to verify tokens") {
		t.Fatalf("PRESENCE_DEV=true alone: %v, want the error for a missing key", err)
	}
	d := startDaemon(t, nil, map[string]string{"PRESENCE_DEV": "true", "PRESENCE_JWT_SECRET": "production-secret-0123456789abcdef"})
	if !strings.Contains(d.logs.String(), "PRESENCE_DEV is ignored") || strings.Contains(d.logs.String(), "development mode:") {
		t.Fatalf("PRESENCE_DEV beside a real key must be ignored with a warning:\n%s", d.logs)
	}
	resp, err := http.Post(d.base+"/dev/token", "application/json", strings.NewReader(`{"user_id":1}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound {
		t.Fatalf("POST /dev/token with PRESENCE_DEV=true: %d, want 404", resp.StatusCode)
	}
	var help bytes.Buffer
	_, _ = parseFlags([]string{"-h"}, env(nil), &help)
	if !strings.Contains(help.String(), "(command line only)") {
		t.Fatalf("-h does not say -dev is for the command line only:\n%s", help.String())
	}
}

// TestDevSecretKeepsTokensAcrossARestart: with -dev-secret a token from
// one run of the server is still good after a restart; without it, it is
// not.
func TestDevSecretKeepsTokensAcrossARestart(t *testing.T) {
	for _, tc := range []struct {
		name string
		args []string
		want int
	}{
		{"-dev-secret", []string{"-dev", "-dev-secret", "a-stable-development-secret-0123456789"}, http.StatusOK},
		{"a random key", []string{"-dev"}, http.StatusUnauthorized},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := startDaemon(t, tc.args, nil)
			tok := d.devToken(t, 7, "dora")
			if err := d.stop(t); err != nil {
				t.Fatal(err)
			}
			d = startDaemon(t, tc.args, nil)
			req, _ := http.NewRequest(http.MethodPost, d.base+"/users/me/heartbeat", nil)
			req.Header.Set("Authorization", "Bearer "+tok)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != tc.want {
				t.Fatalf("the first run's token after a restart: %d, want %d", resp.StatusCode, tc.want)
			}
		})
	}
}
