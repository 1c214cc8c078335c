package transport_test

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/gorilla/websocket"
	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"

	"github.com/presenced/presenced/internal/testkit"
	"github.com/presenced/presenced/transport"
	"github.com/presenced/presenced/transport/webhook"
)

// watchToken signs a token of user id whose watch claim is watch (left
// out when nil; a json.RawMessage goes in as written).
func watchToken(t *testing.T, key string, id int64, watch any) string {
	t.Helper()
	claims := jwt.MapClaims{"sub": fmt.Sprint(id), "username": fmt.Sprint("user", id), "exp": time.Now().Add(time.Hour).Unix()}
	if watch != nil {
		claims["watch"] = watch
	}
	return signed(t, jwt.SigningMethodHS256, []byte(key), claims)
}

// presenceIDs reads the user ids of a JSON array of presences.
func presenceIDs(t *testing.T, v any) []int64 {
	t.Helper()
	list, ok := v.([]any)
	if !ok {
		t.Fatalf("%v is not an array of presences", v)
	}
	ids := []int64{}
	for _, p := range list {
		ids = append(ids, int64(p.(map[string]any)["user_id"].(float64)))
	}
	return ids
}

// seen makes users known to the hub, online over REST.
func (e *env) seen(ids ...int64) {
	e.t.Helper()
	for _, id := range ids {
		if r := e.do("POST", "/users/me/heartbeat", e.token(id, fmt.Sprint("user", id)), ""); r.status != 200 {
			e.t.Fatalf("heartbeat of %d: %d %s", id, r.status, r.body)
		}
	}
}

// busy sets user id busy or not over REST and waits for the answer.
func (e *env) busy(id int64, busy bool) {
	e.t.Helper()
	if r := e.do("PUT", "/users/me/status", e.token(id, fmt.Sprint("user", id)), fmt.Sprintf(`{"is_busy":%t}`, busy)); r.status != 200 {
		e.t.Fatalf("status of %d: %d %s", id, r.status, r.body)
	}
}

// quietUntilPong checks that nothing but presence events of the users in
// allowed arrives before the answer to a ping: changes of anyone else
// sent before the ping reached the client as nothing.
func (c *client) quietUntilPong(allowed ...int64) {
	c.t.Helper()
	c.send(`{"type":"ping","id":"quiet"}`)
	for {
		m := c.next()
		switch {
		case m["type"] == "pong" && m["id"] == "quiet":
			return
		case m["type"] == "presence" && slices.Contains(allowed, int64(m["user_id"].(float64))):
		default:
			c.t.Fatalf("got %v; a user the client may not read must send nothing", m)
		}
	}
}

// closeError waits for the server's close frame.
func (c *client) closeError() *websocket.CloseError {
	c.t.Helper()
	for {
		_, err := c.tryNext()
		if err == nil {
			continue
		}
		var ce *websocket.CloseError
		if !errors.As(err, &ce) {
			c.t.Fatalf("socket ended without a close frame: %v", err)
		}
		return ce
	}
}

// notFoundBody is the answer for an unknown id, which an id the caller
// may not read must equal byte for byte.
const notFoundBody = `{"detail":"User status not found"}`

func TestOpenPolicyLetsAnyUserReadAnyUser(t *testing.T) {
	e := newEnv(t, options{transport: transport.Config{WatchPolicy: transport.OpenPolicy{}}})
	e.seen(2, 3)
	r := e.do("GET", "/users/presence?user_ids=3,2", e.token(1, "a"), "")
	if got := presenceIDs(t, r.json(t)); !slices.Equal(got, []int64{3, 2}) {
		t.Fatalf("open policy answered %v, want [3 2]", got)
	}
	c := e.dial(e.token(1, "a"))
	if got := presenceIDs(t, c.subscribe(2, 3)); !slices.Equal(got, []int64{2, 3}) {
		t.Fatalf("snapshot %v", got)
	}
	e.busy(3, true)
	if ev := c.presence(3, true); ev["is_busy"] != true {
		t.Fatalf("event %v", ev)
	}
}

// Under the claim policy a user reads whom their token's watch claim
// lists, and themselves; everyone else looks like an unknown id, over
// REST and on the socket, and sends no event.
func TestClaimPolicyOverRESTAndSockets(t *testing.T) {
	e := newEnv(t, options{transport: transport.Config{WatchPolicy: transport.ClaimPolicy{}}})
	e.seen(1, 2, 3)
	alice := watchToken(t, secret, 1, []int64{2})

	if r := e.do("GET", "/users/2/presence", alice, ""); r.status != 200 {
		t.Fatalf("a listed user: %d %s", r.status, r.body)
	}
	hidden, unknown := e.do("GET", "/users/3/presence", alice, ""), e.do("GET", "/users/999/presence", alice, "")
	if hidden.status != 404 || string(hidden.body) != notFoundBody || string(unknown.body) != string(hidden.body) {
		t.Fatalf("an unlisted user: %d %s; an unknown one: %d %s; want the same 404", hidden.status, hidden.body, unknown.status, unknown.body)
	}
	for _, path := range []string{"/users/1/presence", "/users/me/presence"} {
		if r := e.do("GET", path, alice, ""); r.status != 200 {
			t.Fatalf("%s, the caller: %d %s", path, r.status, r.body)
		}
	}
	r := e.do("GET", "/users/presence?user_ids=3,2,999,1", alice, "")
	if got := presenceIDs(t, r.json(t)); !slices.Equal(got, []int64{2, 1}) {
		t.Fatalf("batch answered %v, want [2 1]: the unlisted and the unknown dropped alike", got)
	}
	// No watch claim: the holder reads only themselves.
	none := watchToken(t, secret, 1, nil)
	if r := e.do("GET", "/users/presence?user_ids=1,2,3", none, ""); !slices.Equal(presenceIDs(t, r.json(t)), []int64{1}) {
		t.Fatalf("a token without a watch claim read %s", r.body)
	}
	if r := e.do("GET", "/users/presence?user_ids=2", watchToken(t, secret, 1, []int64{}), ""); string(r.body) != "[]" {
		t.Fatalf("an empty watch claim read %s", r.body)
	}

	// The socket: the snapshot holds the listed and the caller, the
	// unlisted user's changes send nothing, the listed user's do.
	c := e.dial(alice)
	if got := presenceIDs(t, c.subscribe(2, 3, 999, 1)); !slices.Equal(got, []int64{2, 1}) {
		t.Fatalf("snapshot %v, want [2 1]", got)
	}
	e.busy(3, true)
	c.quietUntilPong()
	e.busy(2, true)
	if ev := c.presence(2, true); ev["is_busy"] != true {
		t.Fatalf("a listed user's event: %v", ev)
	}

	// A refreshed token whose claim no longer lists 2 ends that
	// subscription at once, and says so.
	c.send(map[string]any{"type": "refresh", "token": watchToken(t, secret, 1, []int64{3}), "id": "r"})
	if u := c.expect("unsubscribed"); !sameIDs(u["user_ids"], 2) || u["id"] != nil {
		t.Fatalf("notice %v, want unsubscribed [2] without an id", u)
	}
	c.expect("refreshed")
	e.busy(2, false)
	c.quietUntilPong()
	// The new claim lists 3, for the next subscribe.
	if got := presenceIDs(t, c.subscribe(3)); !slices.Equal(got, []int64{3}) {
		t.Fatalf("after the refresh, snapshot %v, want [3]", got)
	}
	e.busy(3, false)
	if ev := c.presence(3, true); ev["is_busy"] != false {
		t.Fatalf("event %v", ev)
	}
}

// A watch claim is believed only when the token's signature is good and
// the claim is an array of user ids in their one spelling; anything else
// is refused with the token, saying why, and never read as "everyone" or
// "nobody".
func TestClaimPolicyRefusesBadAndForgedWatchClaims(t *testing.T) {
	e := newEnv(t, options{transport: transport.Config{WatchPolicy: transport.ClaimPolicy{}}})
	e.seen(2)
	for name, tc := range map[string]struct {
		watch  json.RawMessage
		detail string
	}{
		"a string":           {json.RawMessage(`"2"`), "not a string"},
		"a number":           {json.RawMessage(`2`), "not the number 2"},
		"an object":          {json.RawMessage(`{"ids":[2]}`), "not an object"},
		"null":               {json.RawMessage(`null`), "not null"},
		"true":               {json.RawMessage(`true`), "not a boolean"},
		"a string id":        {json.RawMessage(`[2,"3"]`), "user ids must be numbers, not a string"},
		"a fraction":         {json.RawMessage(`[2.0]`), "canonical decimal"},
		"an exponent":        {json.RawMessage(`[2e0]`), "canonical decimal"},
		"a negative id":      {json.RawMessage(`[-2]`), "not a positive integer"},
		"zero":               {json.RawMessage(`[0]`), "not a positive integer"},
		"over 2^53-1":        {json.RawMessage(`[9007199254740992]`), "too large"},
		"null inside":        {json.RawMessage(`[null]`), "not null"},
		"a nested array":     {json.RawMessage(`[[2]]`), "not an array"},
		"a wildcard":         {json.RawMessage(`["*"]`), "not a string"},
		"an array of arrays": {json.RawMessage(`[[],[]]`), "not an array"},
	} {
		t.Run(name, func(t *testing.T) {
			tok := watchToken(t, secret, 1, tc.watch)
			r := e.do("GET", "/users/2/presence", tok, "")
			if d := r.detail(t); r.status != 401 || !strings.HasPrefix(d, "Invalid token: the watch claim must be an array of user ids") || !strings.Contains(d, tc.detail) {
				t.Fatalf("%d %q, want 401 saying the watch claim is %s", r.status, d, tc.detail)
			}
			if r.header.Get("WWW-Authenticate") != "Bearer" {
				t.Fatal("no WWW-Authenticate")
			}
			ws := e.dial(tok)
			if ce := ws.closeError(); ce.Code != transport.CloseInvalidToken || !strings.Contains(ce.Text, "watch claim") {
				t.Fatalf("socket closed %d %q, want 4401 naming the watch claim", ce.Code, ce.Text)
			}
		})
	}

	// A refresh with such a token is an error; the socket keeps its token.
	c := e.dial(watchToken(t, secret, 1, []int64{2}))
	c.subscribe(2)
	c.send(map[string]any{"type": "refresh", "token": watchToken(t, secret, 1, json.RawMessage(`"everyone"`)), "id": 1})
	if m := c.expect("error"); !strings.Contains(m["detail"].(string), "watch claim") {
		t.Fatalf("refresh error %v", m)
	}
	e.busy(2, true)
	c.presence(2, true)

	// A claim signed with another key lists whom it likes, for nothing.
	forged := watchToken(t, "another-key-0123456789abcdef-0123456789", 1, []int64{2})
	if r := e.do("GET", "/users/2/presence", forged, ""); r.status != 401 || r.detail(t) != "Invalid or expired token" {
		t.Fatalf("forged watch claim: %d %s", r.status, r.body)
	}
	if code := e.dial(forged).closed(); code != transport.CloseInvalidToken {
		t.Fatalf("forged watch claim on a socket: close %d", code)
	}
	// Under the open policy the claim is not read, so a token that
	// carries one of another meaning works as before.
	open := newEnv(t, options{})
	if r := open.do("GET", "/users/me/presence", watchToken(t, secret, 1, json.RawMessage(`"everyone"`)), ""); r.status != 404 {
		t.Fatalf("open policy read the watch claim: %d %s", r.status, r.body)
	}
}

// authzBackend is the app's backend for the callback policy: a real HTTP
// server that checks each request's signature with the Standard Webhooks
// library (not our code) and answers from a table the test changes.
type authzBackend struct {
	t      *testing.T
	srv    *httptest.Server
	secret string
	mu     sync.Mutex
	allow  map[int64][]int64 // watcher -> allowed ids
	// answer, when set, replaces the answer: a status code and a body.
	answer func(w http.ResponseWriter, r *http.Request)
	asked  []authzAsk
	// askedCh gets each request once it is recorded (capacity 100).
	askedCh chan authzAsk
}

type authzAsk struct {
	WatcherID int64   `json:"watcher_id"`
	UserIDs   []int64 `json:"user_ids"`
}

func newAuthzBackend(t *testing.T) *authzBackend {
	b := &authzBackend{t: t, allow: map[int64][]int64{},
		secret: "whsec_" + base64.StdEncoding.EncodeToString([]byte("watch-authz-test-key-0123456789ab")), askedCh: make(chan authzAsk, 100)}
	wh, err := standardwebhooks.NewWebhook(b.secret)
	if err != nil {
		t.Fatal(err)
	}
	b.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if r.Method != http.MethodPost || r.Header.Get("Content-Type") != "application/json" {
			t.Errorf("backend got %s with Content-Type %q", r.Method, r.Header.Get("Content-Type"))
		}
		if err := wh.Verify(body, r.Header); err != nil {
			t.Errorf("the request's signature does not verify with the Standard Webhooks library: %v (headers %v)", err, r.Header)
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		if !strings.HasPrefix(r.Header.Get("webhook-id"), "authz_") {
			t.Errorf("webhook-id %q", r.Header.Get("webhook-id"))
		}
		var ask authzAsk
		dec := json.NewDecoder(strings.NewReader(string(body)))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&ask); err != nil {
			t.Errorf("request body %s: %v", body, err)
		}
		b.mu.Lock()
		b.asked = append(b.asked, ask)
		allowed, answer := b.allow[ask.WatcherID], b.answer
		b.mu.Unlock()
		select {
		case b.askedCh <- ask:
		default:
		}
		if answer != nil {
			answer(w, r)
			return
		}
		if allowed == nil {
			allowed = []int64{}
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]any{"allowed": allowed})
	}))
	t.Cleanup(b.srv.Close)
	return b
}

func (b *authzBackend) set(watcher int64, allowed ...int64) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.allow[watcher] = allowed
}

func (b *authzBackend) respond(f func(w http.ResponseWriter, r *http.Request)) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.answer = f
}

func (b *authzBackend) requests() []authzAsk {
	b.mu.Lock()
	defer b.mu.Unlock()
	return slices.Clone(b.asked)
}

func (b *authzBackend) policy(t *testing.T, ttl, timeout time.Duration) *transport.CallbackPolicy {
	t.Helper()
	signer, err := webhook.NewSigner(b.secret)
	if err != nil {
		t.Fatal(err)
	}
	p, err := transport.NewCallbackPolicy(transport.CallbackConfig{URL: b.srv.URL + "/watch", Signer: signer, TTL: ttl, Timeout: timeout})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// unreachablePolicy is a callback policy whose backend is down: nothing
// listens on its port any more.
func unreachablePolicy(t *testing.T) *transport.CallbackPolicy {
	t.Helper()
	b := newAuthzBackend(t)
	p := b.policy(t, time.Minute, 2*time.Second)
	b.srv.Close()
	return p
}

// The callback policy asks the backend, in signed requests, about the ids
// it has no fresh answer for, never about the caller; it keeps answers
// for the TTL.
func TestCallbackPolicyAsksTheBackendAndKeepsItsAnswers(t *testing.T) {
	b := newAuthzBackend(t)
	e := newEnv(t, options{transport: transport.Config{WatchPolicy: b.policy(t, time.Hour, 2*time.Second)}})
	e.seen(1, 2, 3)
	b.set(1, 2)
	alice := e.token(1, "alice")

	r := e.do("GET", "/users/presence?user_ids=3,1,2,999", alice, "")
	if got := presenceIDs(t, r.json(t)); !slices.Equal(got, []int64{1, 2}) {
		t.Fatalf("batch %v, want [1 2]", got)
	}
	if asked := b.requests(); len(asked) != 1 || asked[0].WatcherID != 1 || !slices.Equal(asked[0].UserIDs, []int64{3, 2, 999}) {
		t.Fatalf("the backend was asked %+v, want once, about 3, 2 and 999 for watcher 1", asked)
	}
	hidden, unknown := e.do("GET", "/users/3/presence", alice, ""), e.do("GET", "/users/12345/presence", alice, "")
	if hidden.status != 404 || string(hidden.body) != notFoundBody || string(unknown.body) != notFoundBody {
		t.Fatalf("refused: %d %s; unknown: %d %s", hidden.status, hidden.body, unknown.status, unknown.body)
	}
	if r := e.do("GET", "/users/2/presence", alice, ""); r.status != 200 {
		t.Fatalf("allowed: %d %s", r.status, r.body)
	}
	// 3 and 2 were answered (refused and allowed alike) within the TTL; only 12345 was new.
	if asked := b.requests(); len(asked) != 2 || !slices.Equal(asked[1].UserIDs, []int64{12345}) {
		t.Fatalf("the backend was asked %+v; the kept answers should have served 3 and 2", asked)
	}

	c := e.dial(alice)
	if got := presenceIDs(t, c.subscribe(2, 3, 1)); !slices.Equal(got, []int64{2, 1}) {
		t.Fatalf("snapshot %v, want [2 1]", got)
	}
	e.busy(3, true)
	c.quietUntilPong()
	e.busy(2, true)
	c.presence(2, true)
	if n := len(b.requests()); n != 2 {
		t.Fatalf("the socket's subscribe asked the backend again (%d requests) though every answer was fresh", n)
	}
	// Each watcher has answers of their own.
	b.set(5, 3)
	if r := e.do("GET", "/users/presence?user_ids=2,3", e.token(5, "eve"), ""); !slices.Equal(presenceIDs(t, r.json(t)), []int64{3}) {
		t.Fatalf("watcher 5 read %s", r.body)
	}
}

// When the backend changes its answer, the kept one holds until the TTL
// runs out; then REST refuses, and a socket's subscription ends with an
// unsubscribed notice and sends no more events.
func TestCallbackPolicyWithdrawnPermissionEndsWithinTheTTL(t *testing.T) {
	const ttl = 400 * time.Millisecond
	b := newAuthzBackend(t)
	e := newEnv(t, options{transport: transport.Config{WatchPolicy: b.policy(t, ttl, 2*time.Second)}})
	e.seen(2, 3)
	b.set(1, 2, 3)
	alice := e.token(1, "alice")
	c := e.dial(alice)
	if got := presenceIDs(t, c.subscribe(2, 3)); !slices.Equal(got, []int64{2, 3}) {
		t.Fatalf("snapshot %v", got)
	}
	<-b.askedCh
	b.set(1, 3) // 2 withdrawn
	changed := time.Now()

	// The checker asks again when the answers expire, and ends 2.
	u := c.expect("unsubscribed")
	took := time.Since(changed)
	if !sameIDs(u["user_ids"], 2) || u["id"] != nil {
		t.Fatalf("notice %v, want unsubscribed [2]", u)
	}
	t.Logf("the withdrawal took effect %v after the backend's change (TTL %v)", took, ttl)
	if took > ttl+5*time.Second {
		t.Fatalf("the subscription outlived the TTL by far: %v", took)
	}
	e.busy(2, true)
	c.quietUntilPong(3)
	e.busy(3, true)
	if ev := c.presence(3, true); ev["is_busy"] != true {
		t.Fatalf("3, still allowed: %v", ev)
	}
	// REST follows the same answer.
	if r := e.do("GET", "/users/2/presence", alice, ""); r.status != 404 || string(r.body) != notFoundBody {
		t.Fatalf("after the withdrawal: %d %s", r.status, r.body)
	}
	// A permission given again counts once the kept no expires, at the
	// next subscribe.
	b.set(1, 2, 3)
	testkit.Eventually(t, waitFor, func() error {
		if r := e.do("GET", "/users/2/presence", alice, ""); r.status != http.StatusOK {
			return fmt.Errorf("the backend's new yes is not heard: %d %s", r.status, r.body)
		}
		return nil
	})
	if got := presenceIDs(t, c.subscribe(2)); !slices.Equal(got, []int64{2}) {
		t.Fatalf("subscribe again: %v", got)
	}
}

// When the backend cannot answer (down, slow, a bad answer), presenced
// refuses: 503 with a detail on REST, an error on the socket, and a
// socket whose answers expire meanwhile loses those subscriptions.
func TestCallbackPolicyRefusesWhenTheBackendCannotAnswer(t *testing.T) {
	const timeout = 300 * time.Millisecond
	b := newAuthzBackend(t)
	e := newEnv(t, options{transport: transport.Config{WatchPolicy: b.policy(t, 300*time.Millisecond, timeout)}})
	e.seen(1, 2)
	b.set(1, 2)
	alice := e.token(1, "alice")
	release := make(chan struct{})
	defer close(release)

	for name, tc := range map[string]struct {
		answer func(w http.ResponseWriter, r *http.Request)
		detail string
	}{
		"down": {func(w http.ResponseWriter, _ *http.Request) {
			w.WriteHeader(http.StatusServiceUnavailable)
		}, "the app's backend answered 503"},
		"slow": {func(_ http.ResponseWriter, r *http.Request) {
			select { // past the timeout, until the test ends
			case <-release:
			case <-r.Context().Done():
			}
		}, "did not answer within 300ms"},
		"a redirect": {func(w http.ResponseWriter, r *http.Request) {
			http.Redirect(w, r, "/elsewhere", http.StatusTemporaryRedirect)
		}, "answered 307"},
		"not JSON":          {writeBody(`yes`), "not valid JSON"},
		"an array":          {writeBody(`[2]`), "not a JSON object"},
		"no allowed":        {writeBody(`{"ok":true}`), "allowed is missing"},
		"allowed a string":  {writeBody(`{"allowed":"2"}`), "allowed must be an array of user ids, not a string"},
		"a string id":       {writeBody(`{"allowed":["2"]}`), "user ids must be numbers"},
		"a bad id":          {writeBody(`{"allowed":[2.5]}`), "not a positive integer"},
		"allowed twice":     {writeBody(`{"allowed":[],"allowed":[2]}`), "allowed is given twice"},
		"null":              {writeBody(`{"allowed":null}`), "not null"},
		"an empty 200 body": {writeBody(``), "unexpected end of JSON input"},
	} {
		t.Run(name, func(t *testing.T) {
			b.respond(tc.answer)
			defer b.respond(nil)
			want := "Watch authorization is unavailable: "
			for _, path := range []string{"/users/2/presence", "/users/presence?user_ids=2,1"} {
				// A new id each time, so that no kept answer serves it.
				r := e.do("GET", strings.Replace(path, "2", fmt.Sprint(100+len(b.requests())), 1), alice, "")
				if d := r.detail(t); r.status != 503 || !strings.HasPrefix(d, want) || !strings.Contains(d, tc.detail) || !strings.HasSuffix(d, "; try again later") {
					t.Fatalf("%s: %d %q, want 503 saying %q", path, r.status, d, tc.detail)
				}
				if r.header.Get("Retry-After") == "" {
					t.Fatal("no Retry-After")
				}
				if strings.Contains(string(r.body), b.srv.URL) {
					t.Fatalf("the detail gives away the backend's URL: %s", r.body)
				}
			}
			c := e.dial(alice)
			c.send(map[string]any{"type": "subscribe", "user_ids": []int64{200 + int64(len(b.requests()))}, "id": "s"})
			m := c.expect("error")
			if d, _ := m["detail"].(string); m["id"] != "s" || !strings.HasPrefix(d, "watch authorization is unavailable: ") || !strings.Contains(d, tc.detail) || !strings.HasSuffix(d, "nothing was subscribed, try again later") {
				t.Fatalf("subscribe answered %v", m)
			}
			// The caller itself needs nobody's permission.
			if got := presenceIDs(t, c.subscribe(1)); !slices.Equal(got, []int64{1}) {
				t.Fatalf("subscribe to oneself: %v", got)
			}
		})
	}

	// A socket whose answers expire while the backend is down loses those
	// subscriptions, and is told.
	c := e.dial(alice)
	if got := presenceIDs(t, c.subscribe(2)); !slices.Equal(got, []int64{2}) {
		t.Fatalf("snapshot %v", got)
	}
	b.respond(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusInternalServerError) })
	m := c.expect("error")
	if d, _ := m["detail"].(string); !strings.Contains(d, "the app's backend answered 500") || !strings.Contains(d, "subscribe to them again later") {
		t.Fatalf("error %v", m)
	}
	if u := c.expect("unsubscribed"); !sameIDs(u["user_ids"], 2) {
		t.Fatalf("notice %v", u)
	}
	e.busy(2, true)
	c.quietUntilPong()
	// The caller's own presence never waits for the backend.
	if r := e.do("GET", "/users/me/presence", alice, ""); r.status != 200 {
		t.Fatalf("the caller's own presence: %d %s", r.status, r.body)
	}
}

// sameIDs says whether v, a JSON array, holds exactly ids.
func sameIDs(v any, ids ...int64) bool {
	list, ok := v.([]any)
	if !ok || len(list) != len(ids) {
		return false
	}
	for i, id := range ids {
		if list[i] != float64(id) {
			return false
		}
	}
	return true
}

func writeBody(body string) func(w http.ResponseWriter, r *http.Request) {
	return func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, body)
	}
}

func TestCallbackPolicyConfigurationIsChecked(t *testing.T) {
	signer, err := webhook.NewSigner("whsec_" + base64.StdEncoding.EncodeToString([]byte("watch-authz-test-key-0123456789ab")))
	if err != nil {
		t.Fatal(err)
	}
	for _, u := range []string{"", "backend.internal/watch", "ftp://backend/watch", "http://", "://x"} {
		if _, err := transport.NewCallbackPolicy(transport.CallbackConfig{URL: u, Signer: signer}); err == nil {
			t.Errorf("URL %q was accepted", u)
		}
	}
	if _, err := transport.NewCallbackPolicy(transport.CallbackConfig{URL: "https://backend.internal/watch"}); err == nil {
		t.Error("a policy without a signer was accepted")
	}
}
