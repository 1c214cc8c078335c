package transport_test

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/gorilla/websocket"

	"github.com/presenced/presenced/auth"
	"github.com/presenced/presenced/hub"
	"github.com/presenced/presenced/internal/testkit"
	"github.com/presenced/presenced/transport"
)

// serviceToken signs a service credential for name with key.
func serviceToken(t *testing.T, key, name string) string {
	t.Helper()
	return signed(t, jwt.SigningMethodHS256, []byte(key), jwt.MapClaims{
		"sub": name, "scope": "openid " + auth.ServiceScope, "exp": time.Now().Add(time.Hour).Unix()})
}

// logLines parses JSON log lines.
func logLines(t *testing.T, logs *testkit.Buffer) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, line := range strings.Split(strings.TrimSpace(logs.String()), "\n") {
		var m map[string]any
		if json.Unmarshal([]byte(line), &m) == nil {
			out = append(out, m)
		}
	}
	return out
}

// A call service marks both parties busy when the call starts: watchers
// see it at once, the service reads each whole status, and each write is
// logged with the service's name and the user's id. The write is no
// heartbeat and no device: it does not keep a user online.
func TestServiceMarksBothPartiesOfACallBusy(t *testing.T) {
	logs := &testkit.Buffer{}
	e := newEnv(t, options{
		hub:       hub.Config{Grace: 100 * time.Millisecond},
		transport: transport.Config{Logger: slog.New(slog.NewJSONHandler(logs, nil))},
	})
	svc := serviceToken(t, secret, "call-service")
	alice, bob := e.dial(e.token(1, "alice")), e.dial(e.token(2, "bob"))
	carol := e.dial(e.token(3, "carol"))
	// A socket's connect may reach the hub after the subscribe: wait for
	// the online events the snapshot does not already hold, so that they
	// are not taken for the service's changes below.
	snapshot := map[float64]bool{}
	for _, p := range carol.subscribe(1, 2) {
		if p, ok := p.(map[string]any); ok && p["is_online"] == true {
			snapshot[p["user_id"].(float64)] = true
		}
	}
	for _, id := range []int64{1, 2} {
		if !snapshot[float64(id)] {
			carol.presence(id, true)
		}
	}

	for _, w := range []struct {
		method string
		user   int64
	}{{"PUT", 1}, {"PATCH", 2}} {
		r := e.do(w.method, fmt.Sprintf("/users/%d/status", w.user), svc, `{"is_busy":true,"wait_time":30}`)
		if r.status != 200 {
			t.Fatalf("%s by the service: %d %s", w.method, r.status, r.body)
		}
		st := r.object(t)
		checkUserStatus(t, st, w.user)
		if st["is_busy"] != true || st["wait_time"] != float64(30) || st["busy_since"] == nil || st["is_online"] != true {
			t.Fatalf("status after the service's write: %v", st)
		}
		if ev := carol.presence(w.user, true); ev["is_busy"] != true || ev["wait_time"] != float64(30) {
			t.Fatalf("watcher's event %v", ev)
		}
	}
	var writes []map[string]any
	for _, l := range logLines(t, logs) {
		if l["msg"] == "service status write" {
			writes = append(writes, l)
		}
	}
	if len(writes) != 2 || writes[0]["service"] != "call-service" || writes[0]["user_id"] != float64(1) ||
		writes[1]["user_id"] != float64(2) || writes[0]["request_id"] == "" || !slices.Equal(anyStrings(writes[0]["fields"]), []string{"is_busy", "wait_time"}) {
		t.Fatalf("service writes logged as %v", writes)
	}
	for _, l := range logLines(t, logs) {
		if l["msg"] == "http request" && l["route"] == "/users/{user_id}/status" && (l["service"] != "call-service" || l["user_id"] != nil) {
			t.Fatalf("access log of a service request: %v", l)
		}
	}

	// The service reads the whole status, busy fields included, even of a
	// user who appears offline to others.
	bob.send(`{"type":"set_status","is_online":false}`)
	bob.expect("status")
	carol.presence(2, false)
	r := e.do("GET", "/users/2/status", svc, "")
	if st := r.object(t); r.status != 200 || st["is_busy"] != true || st["wait_time"] != float64(30) || st["busy_since"] == nil {
		t.Fatalf("the service read %d %s", r.status, r.body)
	}
	if r := e.do("GET", "/users/2/presence", svc, ""); r.object(t)["is_busy"] != false {
		t.Fatalf("presence of an invisible user, to a service: %s", r.body)
	}

	// No heartbeat: a user never seen is stored busy, but not online.
	r = e.do("PUT", "/users/4/status", svc, `{"is_busy":true}`)
	if st := r.object(t); r.status != 200 || st["is_online"] != false || st["is_busy"] != true {
		t.Fatalf("a user without devices, written by the service: %d %s", r.status, r.body)
	}
	// No device: when alice's only socket closes she goes offline after
	// the grace, whatever the service wrote.
	alice.ws.Close()
	if ev := carol.presence(1, false); ev["is_busy"] != true {
		t.Fatalf("alice's offline event %v", ev)
	}
	// The call ends: the service clears both.
	for _, id := range []string{"1", "2"} {
		if r := e.do("PATCH", "/users/"+id+"/status", svc, `{"is_busy":false}`); r.status != 200 || r.object(t)["wait_time"] != nil {
			t.Fatalf("ending the call: %d %s", r.status, r.body)
		}
	}
}

func anyStrings(v any) []string {
	list, _ := v.([]any)
	out := make([]string, 0, len(list))
	for _, x := range list {
		s, _ := x.(string)
		out = append(out, s)
	}
	return out
}

// A user's token never reaches the service API, even for the user's own
// id, and a service token has no /users/me, no heartbeat, no device and no
// socket; each refusal says why.
func TestServiceAPIRefusals(t *testing.T) {
	e := newEnv(t, options{})
	svc := serviceToken(t, secret, "call-service")
	user := e.token(1, "alice")
	e.seen(1)

	for _, path := range []string{"/users/1/status", "/users/2/status"} {
		for _, m := range []string{"GET", "PUT", "PATCH"} {
			r := e.do(m, path, user, `{"is_busy":true}`)
			if d := r.detail(t); r.status != 403 || !strings.HasPrefix(d, "Only a service token may use /users/{user_id}/status") || !strings.Contains(d, "presenced:service") {
				t.Fatalf("a user's token on %s %s: %d %q", m, path, r.status, d)
			}
		}
	}
	if r := e.do("GET", "/users/1/status", user, ""); r.status != 403 {
		t.Fatal("refused once, allowed twice")
	}
	for _, ex := range []struct{ method, path, body string }{
		{"GET", "/users/me/status", ""}, {"PUT", "/users/me/status", `{"is_busy":true}`}, {"PATCH", "/users/me/status", `{"is_busy":true}`},
		{"GET", "/both/status/me", ""}, {"PUT", "/both/status/me", `{"is_busy":true}`}, {"PATCH", "/both/status/me", `{"is_busy":true}`},
		{"POST", "/users/me/heartbeat", ""}, {"POST", "/both/status/heartbeat", ""}, {"GET", "/users/me/presence", ""},
	} {
		r := e.do(ex.method, ex.path, svc, ex.body)
		if d := r.detail(t); r.status != 403 || !strings.HasPrefix(d, "A service token acts for no user of its own") {
			t.Fatalf("a service token on %s %s: %d %q", ex.method, ex.path, r.status, d)
		}
	}
	r := e.doWith("PUT", "/users/1/status", svc, `{"is_busy":true}`, http.Header{transport.DeviceHeader: {"phone-1"}})
	if d := r.detail(t); r.status != 400 || !strings.Contains(d, "X-Device-ID") {
		t.Fatalf("a service with a device id: %d %q", r.status, d)
	}
	for name, tok := range map[string]string{
		"signed with another key": serviceToken(t, "another-key-0123456789abcdef-0123456789", "call-service"),
		"without the scope": signed(t, jwt.SigningMethodHS256, []byte(secret), jwt.MapClaims{
			"sub": "call-service", "scope": "presenced:read", "exp": time.Now().Add(time.Hour).Unix()}),
		"expired": signed(t, jwt.SigningMethodHS256, []byte(secret), jwt.MapClaims{
			"sub": "call-service", "scope": auth.ServiceScope, "exp": time.Now().Add(-time.Hour).Unix()}),
	} {
		if r := e.do("PUT", "/users/1/status", tok, `{"is_busy":true}`); r.status != 401 || r.detail(t) != "Invalid or expired token" {
			t.Fatalf("a service token %s: %d %s", name, r.status, r.body)
		}
	}
	if r := e.do("GET", "/users/1/status", svc, ""); r.object(t)["is_busy"] != false {
		t.Fatalf("a refused write changed the status: %s", r.body)
	}

	// No socket: with the token in the header or the query, and not by a
	// refresh either.
	for _, c := range []*client{e.dial(svc), e.dialWith(e.wsURL("access_token="+svc), nil, websocket.DefaultDialer, true)} {
		if ce := c.closeError(); ce.Code != transport.CloseUserMismatch || !strings.Contains(ce.Text, "service token") {
			t.Fatalf("a service token's socket closed %d %q, want 4403", ce.Code, ce.Text)
		}
	}
	c := e.dial(user)
	c.send(map[string]any{"type": "refresh", "token": svc})
	if ce := c.closeError(); ce.Code != transport.CloseUserMismatch || !strings.Contains(ce.Text, "service token") {
		t.Fatalf("a refresh with a service token: close %d %q, want 4403", ce.Code, ce.Text)
	}
}

// A service is never held by the watch policy, nor by the per-user
// request rate.
func TestServiceReadsAnyoneWhateverThePolicy(t *testing.T) {
	b := newAuthzBackend(t)
	b.respond(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusInternalServerError) })
	for name, policy := range map[string]transport.WatchPolicy{"claim": transport.ClaimPolicy{}, "callback, backend down": b.policy(t, time.Minute, time.Second)} {
		t.Run(name, func(t *testing.T) {
			e := newEnv(t, options{transport: transport.Config{WatchPolicy: policy, RequestsPerSecond: 0.001, RequestBurst: 1}})
			e.seen(1, 2)
			svc := serviceToken(t, secret, "directory")
			for range 5 {
				r := e.do("GET", "/users/presence?user_ids=1,2", svc, "")
				if got := presenceIDs(t, r.json(t)); !slices.Equal(got, []int64{1, 2}) {
					t.Fatalf("the service read %d %s", r.status, r.body)
				}
				if r := e.do("GET", "/users/2/presence", svc, ""); r.status != 200 {
					t.Fatalf("the service read %d %s", r.status, r.body)
				}
			}
			if len(b.requests()) != 0 {
				t.Fatalf("the backend was asked about a service: %v", b.requests())
			}
		})
	}
}
