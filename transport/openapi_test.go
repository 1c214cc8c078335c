package transport_test

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/gorillamux"
	"github.com/gorilla/websocket"

	"github.com/presenced/presenced/auth"
	"github.com/presenced/presenced/transport"
)

// contract checks real exchanges against openapi.json and remembers which
// documented answers it has seen, so that a test can demand all of them.
type contract struct {
	t *testing.T
	*apiDoc
	covered map[string]bool // "operationId status"
}

// apiDoc is openapi.json, loaded and validated once per test binary.
type apiDoc struct {
	doc    *openapi3.T
	router routers.Router
}

var loadAPIDoc = sync.OnceValues(func() (*apiDoc, error) {
	data, err := os.ReadFile("openapi.json")
	if err != nil {
		return nil, err
	}
	loader := openapi3.NewLoader()
	doc, err := loader.LoadFromData(data)
	if err != nil {
		return nil, fmt.Errorf("openapi.json does not load: %w", err)
	}
	if doc.OpenAPI != "3.1.0" {
		return nil, fmt.Errorf("openapi.json is OpenAPI %s, want 3.1.0", doc.OpenAPI)
	}
	if err := doc.Validate(loader.Context); err != nil {
		return nil, fmt.Errorf("openapi.json is not a valid OpenAPI document: %w", err)
	}
	router, err := gorillamux.NewRouter(doc)
	if err != nil {
		return nil, err
	}
	return &apiDoc{doc: doc, router: router}, nil
})

func loadContract(t *testing.T) *contract {
	t.Helper()
	d, err := loadAPIDoc()
	if err != nil {
		t.Fatal(err)
	}
	return &contract{t: t, apiDoc: d, covered: make(map[string]bool)}
}

// checkAnswer validates the answer of any request a test makes whose
// route is documented; a route that is not (an unknown path, a method not
// allowed) is left to TestEveryRouteIsDocumented. Every REST test thus
// checks the document too.
func checkAnswer(t *testing.T, base, method, path, token, body string, resp *http.Response, respBody []byte) {
	t.Helper()
	c := loadContract(t)
	ex := exchange{method: method, path: path, token: token, body: body, invalid: true}
	if _, _, err := c.router.FindRoute(ex.request(t, base)); err != nil {
		return
	}
	c.check(base, ex, resp.StatusCode, resp.Header, respBody)
}

// exchange is one request made and the answer it got.
type exchange struct {
	method, path, token string
	body                string
	header              http.Header
	// invalid marks a request that breaks the document on purpose (to
	// get an error); only its answer is checked.
	invalid bool
}

func (ex exchange) request(t *testing.T, base string) *http.Request {
	t.Helper()
	req, err := http.NewRequest(ex.method, base+ex.path, strings.NewReader(ex.body))
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range ex.header {
		req.Header[k] = v
	}
	if ex.token != "" {
		req.Header.Set("Authorization", "Bearer "+ex.token)
	}
	return req
}

// check validates ex and its answer against the document.
func (c *contract) check(base string, ex exchange, status int, header http.Header, body []byte) {
	c.t.Helper()
	req := ex.request(c.t, base)
	route, params, err := c.router.FindRoute(req)
	if err != nil {
		c.t.Fatalf("%s %s is not in openapi.json: %v", ex.method, ex.path, err)
	}
	opts := &openapi3filter.Options{AuthenticationFunc: openapi3filter.NoopAuthenticationFunc, IncludeResponseStatus: true}
	in := &openapi3filter.RequestValidationInput{Request: req, PathParams: params, Route: route, Options: opts}
	ctx := context.Background()
	if !ex.invalid {
		if err := openapi3filter.ValidateRequest(ctx, in); err != nil {
			c.t.Errorf("%s %s: the request breaks openapi.json: %v", ex.method, ex.path, err)
		}
	}
	out := &openapi3filter.ResponseValidationInput{RequestValidationInput: in, Status: status, Header: header, Options: opts}
	out.SetBodyBytes(body)
	if err := openapi3filter.ValidateResponse(ctx, out); err != nil {
		c.t.Errorf("%s %s: the %d answer breaks openapi.json: %v\nbody: %s", ex.method, ex.path, status, err, body)
	}
	c.covered[route.Operation.OperationID+" "+strconv.Itoa(status)] = true
}

// call makes ex against e, demands the status want and checks both sides.
func (c *contract) call(e *opsEnv, ex exchange, want int) []byte {
	c.t.Helper()
	if ex.body != "" && ex.header == nil {
		ex.header = http.Header{"Content-Type": {"application/json"}}
	}
	var hdr []string
	for k, v := range ex.header {
		hdr = append(hdr, k, v[0])
	}
	resp, body := e.do(ex.method, ex.path, ex.token, strings.NewReader(ex.body), hdr...)
	if resp.StatusCode != want {
		c.t.Fatalf("%s %s: %d %s, want %d", ex.method, ex.path, resp.StatusCode, body, want)
	}
	c.check(e.URL, ex, resp.StatusCode, resp.Header, body)
	return body
}

// missing lists the documented answers never seen.
func (c *contract) missing() []string {
	var out []string
	for path, item := range c.doc.Paths.Map() {
		for method, op := range item.Operations() {
			for status := range op.Responses.Map() {
				if !c.covered[op.OperationID+" "+status] {
					out = append(out, fmt.Sprintf("%s %s %s (%s)", method, path, status, op.OperationID))
				}
			}
		}
	}
	sort.Strings(out)
	return out
}

// TestEveryAnswerMatchesTheOpenAPIDocument drives every endpoint into
// every answer it documents, errors included, and validates each real
// request and answer with kin-openapi; then it fails for any documented
// answer it did not see, so the document cannot promise what the server
// never says, nor the server say what the document does not promise.
func TestEveryAnswerMatchesTheOpenAPIDocument(t *testing.T) {
	c := loadContract(t)
	e := startOps(t, transport.Config{DevTokens: auth.NewIssuer([]byte("dev-secret-0123456789abcdef"), time.Hour)})
	tok, fresh := e.token(1), e.token(2)
	big := `{"is_busy":true,"pad":"` + strings.Repeat("x", 70<<10) + `"}`

	for _, fam := range []struct{ status, heartbeat string }{
		{"/users/me/status", "/users/me/heartbeat"},
		{"/both/status/me", "/both/status/heartbeat"},
	} {
		c.call(e, exchange{method: "GET", path: fam.status, token: fresh}, 404)
		c.call(e, exchange{method: "GET", path: fam.status}, 401)
		c.call(e, exchange{method: "PUT", path: fam.status, token: tok, body: `{"is_busy":true,"wait_time":15}`}, 200)
		c.call(e, exchange{method: "PATCH", path: fam.status, token: tok, body: `{"is_online":false}`}, 200)
		c.call(e, exchange{method: "GET", path: fam.status, token: tok}, 200)
		for _, m := range []string{"PUT", "PATCH"} {
			c.call(e, exchange{method: m, path: fam.status, token: tok, body: `{"is_busy":false,"wait_time":null}`}, 200)
			c.call(e, exchange{method: m, path: fam.status, token: tok, body: `{}`, invalid: true}, 400)
			c.call(e, exchange{method: m, path: fam.status, token: tok, body: `{"wait_time":-1}`, invalid: true}, 400)
			c.call(e, exchange{method: m, path: fam.status, token: "forged", body: `{"is_busy":true}`}, 401)
			c.call(e, exchange{method: m, path: fam.status, token: tok, body: big, invalid: true}, 413)
		}
		c.call(e, exchange{method: "POST", path: fam.heartbeat, token: tok}, 200)
		c.call(e, exchange{method: "POST", path: fam.heartbeat}, 401)
		device := http.Header{transport.DeviceHeader: {"phone-1"}}
		c.call(e, exchange{method: "POST", path: fam.heartbeat, token: tok, header: device}, 200)
		c.call(e, exchange{method: "PUT", path: fam.status, token: tok, body: `{"is_busy":true}`,
			header: http.Header{transport.DeviceHeader: {"phone-1"}, "Content-Type": {"application/json"}}}, 200)
		bad := http.Header{transport.DeviceHeader: {"no spaces allowed"}}
		c.call(e, exchange{method: "POST", path: fam.heartbeat, token: tok, header: bad, invalid: true}, 400)
		c.call(e, exchange{method: "GET", path: fam.status, token: tok, header: bad, invalid: true}, 400)
	}

	c.call(e, exchange{method: "GET", path: "/users/1/presence", token: tok}, 200)
	c.call(e, exchange{method: "GET", path: "/users/me/presence", token: tok}, 200)
	c.call(e, exchange{method: "GET", path: "/users/abc/presence", token: tok, invalid: true}, 400)
	c.call(e, exchange{method: "GET", path: "/users/424242/presence", token: tok}, 404)
	c.call(e, exchange{method: "GET", path: "/users/1/presence"}, 401)
	c.call(e, exchange{method: "GET", path: "/users/presence?user_ids=1,2,1", token: tok}, 200)
	c.call(e, exchange{method: "GET", path: "/users/presence?user_ids=1,x", token: tok, invalid: true}, 400)
	c.call(e, exchange{method: "GET", path: "/users/presence?user_ids=" + strings.Repeat("1,", 100) + "1", token: tok}, 400)
	c.call(e, exchange{method: "GET", path: "/users/presence?user_ids=1"}, 401)

	// The service API: a service token reads and changes any user's
	// status and reads any presence; a user's token may not use it, and a
	// service may not use the caller's own routes.
	svc := e.serviceToken("call-service")
	c.call(e, exchange{method: "GET", path: "/users/1/status", token: svc}, 200)
	c.call(e, exchange{method: "GET", path: "/users/424242/status", token: svc}, 404)
	c.call(e, exchange{method: "GET", path: "/users/abc/status", token: svc, invalid: true}, 400)
	c.call(e, exchange{method: "GET", path: "/users/1/status"}, 401)
	c.call(e, exchange{method: "GET", path: "/users/1/status", token: tok}, 403)
	for _, m := range []string{"PUT", "PATCH"} {
		c.call(e, exchange{method: m, path: "/users/1/status", token: svc, body: `{"is_busy":true,"wait_time":5}`}, 200)
		c.call(e, exchange{method: m, path: "/users/7/status", token: svc, body: `{"is_busy":false}`}, 200)
		c.call(e, exchange{method: m, path: "/users/1/status", token: svc, body: `{}`, invalid: true}, 400)
		c.call(e, exchange{method: m, path: "/users/1/status", token: svc, body: `{"is_busy":true}`, invalid: true,
			header: http.Header{transport.DeviceHeader: {"phone-1"}, "Content-Type": {"application/json"}}}, 400)
		c.call(e, exchange{method: m, path: "/users/1/status", token: "forged", body: `{"is_busy":true}`}, 401)
		c.call(e, exchange{method: m, path: "/users/1/status", token: tok, body: `{"is_busy":true}`}, 403)
		c.call(e, exchange{method: m, path: "/users/1/status", token: svc, body: big, invalid: true}, 413)
	}
	for _, ex := range []exchange{
		{method: "GET", path: "/users/me/status"}, {method: "GET", path: "/both/status/me"},
		{method: "PUT", path: "/users/me/status", body: `{"is_busy":true}`}, {method: "PUT", path: "/both/status/me", body: `{"is_busy":true}`},
		{method: "PATCH", path: "/users/me/status", body: `{"is_busy":true}`}, {method: "PATCH", path: "/both/status/me", body: `{"is_busy":true}`},
		{method: "POST", path: "/users/me/heartbeat"}, {method: "POST", path: "/both/status/heartbeat"},
		{method: "GET", path: "/users/me/presence"},
	} {
		ex.token = svc
		c.call(e, ex, 403)
	}
	c.call(e, exchange{method: "GET", path: "/users/1/presence", token: svc}, 200)
	c.call(e, exchange{method: "GET", path: "/users/presence?user_ids=1,7", token: svc}, 200)

	c.call(e, exchange{method: "POST", path: "/dev/token", body: `{"user_id":5,"username":"eve"}`}, 200)
	c.call(e, exchange{method: "POST", path: "/dev/token", body: `{"user_id":"five"}`, invalid: true}, 400)
	c.call(e, exchange{method: "POST", path: "/dev/token", body: `{"user_id":5,"username":"` + strings.Repeat("e", 70<<10) + `"}`, invalid: true}, 413)

	c.call(e, exchange{method: "GET", path: "/healthz"}, 200)
	c.call(e, exchange{method: "GET", path: "/readyz"}, 200)
	c.call(e, exchange{method: "GET", path: "/metrics"}, 200)
	served := c.call(e, exchange{method: "GET", path: "/openapi.json"}, 200)
	if onDisk, _ := os.ReadFile("openapi.json"); !bytes.Equal(served, onDisk) {
		t.Error("/openapi.json does not serve the document kept in the repository")
	}

	// The socket's handshake: a real upgrade, and each refusal.
	wsURL := "ws" + strings.TrimPrefix(e.URL, "http") + "/ws"
	ws, resp, err := websocket.DefaultDialer.Dial(wsURL+"?access_token="+tok, nil)
	if err != nil {
		t.Fatal(err)
	}
	c.check(e.URL, exchange{method: "GET", path: "/ws?access_token=" + tok, header: http.Header{
		"Connection": {"Upgrade"}, "Upgrade": {"websocket"}, "Sec-Websocket-Version": {"13"}, "Sec-Websocket-Key": {"dGhlIHNhbXBsZSBub25jZQ=="},
	}}, resp.StatusCode, resp.Header, nil)
	ws.Close()
	c.call(e, exchange{method: "GET", path: "/ws"}, 401)
	c.call(e, exchange{method: "GET", path: "/ws", token: tok}, 400)
	_, resp, err = websocket.DefaultDialer.Dial(wsURL, http.Header{"Authorization": {"Bearer " + tok}, "Origin": {"https://evil.example"}})
	if err == nil || resp == nil {
		t.Fatalf("a foreign origin was let in: %v", err)
	}
	body := make([]byte, 512)
	n, _ := resp.Body.Read(body)
	resp.Body.Close()
	c.check(e.URL, exchange{method: "GET", path: "/ws", token: tok, header: http.Header{"Origin": {"https://evil.example"}}}, resp.StatusCode, resp.Header, body[:n])

	// Shutting down: readiness goes first, then the hub stops and every
	// request that needs it gets 503.
	e.Server.Drain()
	c.call(e, exchange{method: "GET", path: "/readyz"}, 503)
	e.stopHub()
	for _, p := range []string{"/users/me/status", "/both/status/me"} {
		c.call(e, exchange{method: "GET", path: p, token: tok}, 503)
		c.call(e, exchange{method: "PUT", path: p, token: tok, body: `{"is_busy":true}`}, 503)
		c.call(e, exchange{method: "PATCH", path: p, token: tok, body: `{"is_busy":true}`}, 503)
	}
	c.call(e, exchange{method: "POST", path: "/users/me/heartbeat", token: tok}, 503)
	c.call(e, exchange{method: "POST", path: "/both/status/heartbeat", token: tok}, 503)
	c.call(e, exchange{method: "GET", path: "/users/1/presence", token: tok}, 503)
	c.call(e, exchange{method: "GET", path: "/users/presence?user_ids=1", token: tok}, 503)
	c.call(e, exchange{method: "GET", path: "/users/1/status", token: svc}, 503)
	c.call(e, exchange{method: "PUT", path: "/users/1/status", token: svc, body: `{"is_busy":true}`}, 503)
	c.call(e, exchange{method: "PATCH", path: "/users/1/status", token: svc, body: `{"is_busy":true}`}, 503)

	// A callback watch policy whose backend cannot be reached: presence
	// is refused with 503, not allowed.
	refusing := startOps(t, transport.Config{WatchPolicy: unreachablePolicy(t)})
	c.call(refusing, exchange{method: "GET", path: "/users/2/presence", token: refusing.token(1)}, 503)
	c.call(refusing, exchange{method: "GET", path: "/users/presence?user_ids=1,2", token: refusing.token(1)}, 503)

	// Limits: a user over the REST rate, an address over the socket
	// rate, the server over its admission rate; and no -dev.
	limited := startOps(t, transport.Config{RequestsPerSecond: 0.001, RequestBurst: 1, SocketsPerSecondPerIP: 0.001, SocketBurstPerIP: 1})
	for i, ex := range []exchange{
		{method: "GET", path: "/users/me/status"}, {method: "GET", path: "/both/status/me"},
		{method: "PUT", path: "/users/me/status", body: `{"is_busy":true}`}, {method: "PUT", path: "/both/status/me", body: `{"is_busy":true}`},
		{method: "PATCH", path: "/users/me/status", body: `{"is_busy":true}`}, {method: "PATCH", path: "/both/status/me", body: `{"is_busy":true}`},
		{method: "POST", path: "/users/me/heartbeat"}, {method: "POST", path: "/both/status/heartbeat"},
		{method: "GET", path: "/users/1/presence"}, {method: "GET", path: "/users/presence?user_ids=1"},
	} {
		ex.token = limited.token(int64(100 + i))
		c.call(limited, exchange{method: "POST", path: "/users/me/heartbeat", token: ex.token}, 200) // the whole burst
		c.call(limited, ex, 429)
	}
	c.call(limited, exchange{method: "GET", path: "/ws"}, 401) // the address's whole burst
	c.call(limited, exchange{method: "GET", path: "/ws"}, 429)
	admitting := startOps(t, transport.Config{SocketsPerSecond: 0.001, SocketBurst: 1})
	c.call(admitting, exchange{method: "GET", path: "/ws"}, 401)
	c.call(admitting, exchange{method: "GET", path: "/ws"}, 503)
	c.call(admitting, exchange{method: "POST", path: "/dev/token", body: `{"user_id":5}`}, 404)

	if m := c.missing(); len(m) > 0 {
		t.Errorf("openapi.json documents answers the test never saw; drive each one or drop it:\n%s", strings.Join(m, "\n"))
	}
}
