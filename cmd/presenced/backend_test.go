package main

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/gorilla/websocket"
	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"

	"github.com/presenced/presenced/internal/testkit"
)

const backendJWTSecret = "backend-test-secret-0123456789abcdef"

var backendWebhookSecret = "whsec_" + base64.StdEncoding.EncodeToString([]byte("backend-test-webhook-key-0123456"))

func backendToken(t *testing.T, claims jwt.MapClaims) string {
	t.Helper()
	claims["exp"] = time.Now().Add(time.Hour).Unix()
	tok, err := jwt.NewWithClaims(jwt.SigningMethodHS256, claims).SignedString([]byte(backendJWTSecret))
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// call makes one request and returns its status and body.
func call(t *testing.T, method, url, token, body string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, strings.TrimSpace(string(b))
}

// watchSocket dials addr with token and subscribes to ids; it returns the
// socket and the snapshot's user ids.
func watchSocket(t *testing.T, addr, token string, ids ...int64) (*websocket.Conn, string) {
	t.Helper()
	ws, _, err := websocket.DefaultDialer.Dial("ws://"+addr+"/ws", http.Header{"Authorization": {"Bearer " + token}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ws.Close() })
	msg, _ := json.Marshal(map[string]any{"type": "subscribe", "user_ids": ids})
	if err := ws.WriteMessage(websocket.TextMessage, msg); err != nil {
		t.Fatal(err)
	}
	var snap struct {
		Type      string `json:"type"`
		Presences []struct {
			UserID int64 `json:"user_id"`
		} `json:"presences"`
	}
	readJSON(t, ws, &snap)
	if snap.Type != "subscribed" {
		t.Fatalf("got %+v, want subscribed", snap)
	}
	var got []string
	for _, p := range snap.Presences {
		got = append(got, fmt.Sprint(p.UserID))
	}
	return ws, strings.Join(got, ",")
}

func readJSON(t *testing.T, ws *websocket.Conn, v any) {
	t.Helper()
	_ = ws.SetReadDeadline(time.Now().Add(10 * time.Second))
	_, data, err := ws.ReadMessage()
	if err != nil {
		t.Fatalf("reading the socket: %v", err)
	}
	if err := json.Unmarshal(data, v); err != nil {
		t.Fatalf("frame %s: %v", data, err)
	}
}

func presenceIDsOf(t *testing.T, body string) string {
	t.Helper()
	var ps []struct {
		UserID int64 `json:"user_id"`
	}
	if err := json.Unmarshal([]byte(body), &ps); err != nil {
		t.Fatalf("%s: %v", body, err)
	}
	var ids []string
	for _, p := range ps {
		ids = append(ids, fmt.Sprint(p.UserID))
	}
	return strings.Join(ids, ",")
}

// The watch policies and the service API, through the flags and variables
// of the real binary's wiring.
func TestWatchPoliciesAndServiceAPIThroughTheFlags(t *testing.T) {
	user := func(id int64, watch ...int64) string {
		c := jwt.MapClaims{"sub": fmt.Sprint(id)}
		if watch != nil {
			c["watch"] = watch
		}
		return backendToken(t, c)
	}
	service := backendToken(t, jwt.MapClaims{"sub": "call-service", "scope": "presenced:service"})

	t.Run("claim", func(t *testing.T) {
		d := startDaemon(t, []string{"-watch-policy", "claim"}, map[string]string{"PRESENCE_JWT_SECRET": backendJWTSecret})
		if rec := startupLine(t, d.logs.String()); rec["watch_policy"] != "claim" {
			t.Fatalf("start-up line %v", rec)
		}
		base := d.base
		for _, id := range []int64{2, 3} {
			if code := heartbeatStatus(t, base, user(id)); code != 200 {
				t.Fatal(code)
			}
		}
		if code, body := call(t, "GET", base+"/users/presence?user_ids=3,2", user(1, 2), ""); code != 200 || presenceIDsOf(t, body) != "2" {
			t.Fatalf("claim policy: %d %s", code, body)
		}
		if code, body := call(t, "GET", base+"/users/presence?user_ids=2", user(1, 2), ""); code != 200 || presenceIDsOf(t, body) != "2" {
			t.Fatalf("claim policy: %d %s", code, body)
		}
		if _, got := watchSocket(t, d.addr, user(1, 2), 2, 3); got != "2" {
			t.Fatalf("snapshot %s, want 2", got)
		}
		bad := backendToken(t, jwt.MapClaims{"sub": "1", "watch": "2,3"})
		if code, body := call(t, "GET", base+"/users/2/presence", bad, ""); code != 401 || !strings.Contains(body, "watch claim") {
			t.Fatalf("a malformed watch claim: %d %s", code, body)
		}
		// The service writes and reads through the same keys; no policy holds it.
		if code, body := call(t, "PUT", base+"/users/3/status", service, `{"is_busy":true}`); code != 200 || !strings.Contains(body, `"is_busy":true`) {
			t.Fatalf("service write: %d %s", code, body)
		}
		if code, body := call(t, "GET", base+"/users/presence?user_ids=2,3", service, ""); code != 200 || presenceIDsOf(t, body) != "2,3" {
			t.Fatalf("service read: %d %s", code, body)
		}
		if code, _ := call(t, "PUT", base+"/users/3/status", user(3), `{"is_busy":true}`); code != 403 {
			t.Fatalf("a user's token on the service API: %d", code)
		}
		if !strings.Contains(d.logs.String(), `"msg":"service status write","service":"call-service","user_id":3`) {
			t.Fatalf("no service write in the log:\n%s", d.logs)
		}
	})

	t.Run("callback", func(t *testing.T) {
		wh, err := standardwebhooks.NewWebhook(backendWebhookSecret)
		if err != nil {
			t.Fatal(err)
		}
		var mu sync.Mutex
		allowed := []int64{2, 3}
		backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			body, _ := io.ReadAll(r.Body)
			if err := wh.Verify(body, r.Header); err != nil {
				t.Errorf("signature: %v", err)
				w.WriteHeader(http.StatusUnauthorized)
				return
			}
			mu.Lock()
			defer mu.Unlock()
			_ = json.NewEncoder(w).Encode(map[string]any{"allowed": allowed})
		}))
		defer backend.Close()
		d := startDaemon(t, nil, map[string]string{
			"PRESENCE_JWT_SECRET": backendJWTSecret, "PRESENCE_WATCH_POLICY": "callback", "PRESENCE_WATCH_AUTHZ_URL": backend.URL,
			"PRESENCE_WEBHOOK_SECRET": backendWebhookSecret, "PRESENCE_WATCH_AUTHZ_TTL": "1s", "PRESENCE_WATCH_AUTHZ_TIMEOUT": "500ms",
		})
		if rec := startupLine(t, d.logs.String()); rec["watch_policy"] != "callback" {
			t.Fatalf("start-up line %v", rec)
		}
		base := d.base
		for _, id := range []int64{2, 3} {
			if code := heartbeatStatus(t, base, user(id)); code != 200 {
				t.Fatal(code)
			}
		}
		ws, got := watchSocket(t, d.addr, user(1), 2, 3)
		if got != "2,3" {
			t.Fatalf("snapshot %s", got)
		}
		mu.Lock()
		allowed = []int64{3}
		mu.Unlock()
		// Within the TTL the socket checks again and drops 2.
		var notice struct {
			Type    string  `json:"type"`
			UserIDs []int64 `json:"user_ids"`
		}
		readJSON(t, ws, &notice)
		if notice.Type != "unsubscribed" || len(notice.UserIDs) != 1 || notice.UserIDs[0] != 2 {
			t.Fatalf("got %+v, want unsubscribed [2]", notice)
		}
		if code, body := call(t, "GET", base+"/users/2/presence", user(1), ""); code != 404 || body != `{"detail":"User status not found"}` {
			t.Fatalf("withdrawn: %d %s", code, body)
		}
		backend.Close()
		if code, body := call(t, "GET", base+"/users/presence?user_ids=4", user(1), ""); code != 503 || !strings.Contains(body, "Watch authorization is unavailable") {
			t.Fatalf("backend down: %d %s", code, body)
		}
		if !strings.Contains(d.logs.String(), "watch authorization failed") {
			t.Fatalf("the failure is not logged:\n%s", d.logs)
		}
	})

	t.Run("socket refuses a service token", func(t *testing.T) {
		d := startDaemon(t, nil, map[string]string{"PRESENCE_JWT_SECRET": backendJWTSecret})
		ws, _, err := websocket.DefaultDialer.Dial("ws://"+d.addr+"/ws", http.Header{"Authorization": {"Bearer " + service}})
		if err != nil {
			t.Fatal(err)
		}
		defer ws.Close()
		_ = ws.SetReadDeadline(time.Now().Add(10 * time.Second))
		_, _, err = ws.ReadMessage()
		var ce *websocket.CloseError
		if !errors.As(err, &ce) || ce.Code != 4403 {
			t.Fatalf("a service token's socket: %v, want close 4403", err)
		}
	})
}

func TestWatchConfigurationIsChecked(t *testing.T) {
	base := map[string]string{"PRESENCE_JWT_SECRET": backendJWTSecret}
	with := func(kv ...string) map[string]string {
		out := map[string]string{}
		for k, v := range base {
			out[k] = v
		}
		for i := 0; i < len(kv); i += 2 {
			out[kv[i]] = kv[i+1]
		}
		return out
	}
	for name, tc := range map[string]struct {
		args []string
		vars map[string]string
		want string
	}{
		"an unknown policy":           {[]string{"-watch-policy", "friends"}, base, "-watch-policy friends: not a policy, e.g. -watch-policy open"},
		"callback without a URL":      {[]string{"-watch-policy", "callback", "-webhook-secret", backendWebhookSecret}, base, "needs -watch-authz-url"},
		"callback without a secret":   {[]string{"-watch-policy", "callback", "-watch-authz-url", "http://127.0.0.1:1/watch"}, base, "needs -webhook-secret"},
		"a URL under the open policy": {[]string{"-watch-authz-url", "http://127.0.0.1:1/watch"}, base, "-watch-authz-url is set but -watch-policy is open"},
		"a URL under the claim policy": {nil, with("PRESENCE_WATCH_POLICY", "claim", "PRESENCE_WATCH_AUTHZ_URL", "http://127.0.0.1:1/watch"),
			"-watch-authz-url is set but -watch-policy is claim"},
		"a relative URL": {[]string{"-watch-policy", "callback", "-webhook-secret", backendWebhookSecret, "-watch-authz-url", "backend/watch"}, base, "not an absolute http or https URL"},
		"a short TTL": {[]string{"-watch-policy", "callback", "-webhook-secret", backendWebhookSecret, "-watch-authz-url", "http://127.0.0.1:1/watch", "-watch-authz-ttl", "100ms"},
			base, "-watch-authz-ttl 100ms: at least 1s"},
		"a zero timeout": {[]string{"-watch-policy", "callback", "-webhook-secret", backendWebhookSecret, "-watch-authz-url", "http://127.0.0.1:1/watch", "-watch-authz-timeout", "0s"},
			base, "-watch-authz-timeout 0s"},
		"a webhook secret without whsec_": {nil, with("PRESENCE_WEBHOOK_SECRET", "plain-secret"), "PRESENCE_WEBHOOK_SECRET: a webhook secret is written whsec_"},
	} {
		t.Run(name, func(t *testing.T) {
			err := run(context.Background(), append([]string{"-addr", "127.0.0.1:0"}, tc.args...), env(tc.vars), &testkit.Buffer{}, nil)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("start: %v, want an error saying %q", err, tc.want)
			}
		})
	}
}
