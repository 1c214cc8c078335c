package transport_test

import (
	"bufio"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/presenced/presenced/auth"
	"github.com/presenced/presenced/hub"
	"github.com/presenced/presenced/internal/presenced"
	"github.com/presenced/presenced/internal/testkit"
	"github.com/presenced/presenced/internal/testserver"
	"github.com/presenced/presenced/transport"
)

// opsEnv is a whole node, as presenced wires it, on a loopback port:
// the memory store, the real JWT verifier, the real metrics, and a
// logger the test can read.
type opsEnv struct {
	t   *testing.T
	URL string
	// AdminURL is the admin listener's, as -admin-addr opens it; "" but
	// with cfg.AdminListener.
	AdminURL string
	Hub      *hub.Hub
	Server   *transport.Server
	logs     *testkit.Buffer
	issuer   *auth.Issuer
	secret   []byte // the HS256 key the server trusts
	stopHub  func()
}

// startOps starts a node with cfg, and an admin listener when
// cfg.AdminListener is set; the test's cleanup stops it and waits for
// every goroutine. Logs are JSON at debug level unless cfg brings its own
// logger.
func startOps(t *testing.T, cfg transport.Config) *opsEnv {
	t.Helper()
	secret := []byte("ops-test-secret-0123456789abcdef")
	logs := &testkit.Buffer{}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	o := presenced.Options{Auth: auth.Config{Secrets: [][]byte{secret}}, Transport: cfg, Logger: log}
	if cfg.AdminListener {
		o.AdminAddr = "127.0.0.1:0"
	}
	srv := testserver.Run(t, o)
	return &opsEnv{t: t, URL: srv.URL, AdminURL: srv.AdminURL, Hub: srv.Hub(), Server: srv.Transport(), logs: logs,
		issuer: auth.NewIssuer(secret, time.Hour), secret: secret, stopHub: srv.StopHub}
}

// serviceToken signs a service credential for the service called name.
func (e *opsEnv) serviceToken(name string) string {
	e.t.Helper()
	return signed(e.t, jwt.SigningMethodHS256, e.secret, jwt.MapClaims{
		"sub": name, "scope": auth.ServiceScope, "exp": time.Now().Add(time.Hour).Unix()})
}

// token signs a valid token for user id.
func (e *opsEnv) token(id int64) string {
	e.t.Helper()
	tok, err := e.issuer.Issue(id, "user")
	if err != nil {
		e.t.Fatal(err)
	}
	return tok
}

// public sends a request without a token to the public handler.
func (e *opsEnv) public(method, path string) (*http.Response, []byte) {
	e.t.Helper()
	return e.doAt(e.URL, method, path, "", nil)
}

// admin sends a request to the admin handler.
func (e *opsEnv) admin(method, path string) (*http.Response, []byte) {
	e.t.Helper()
	if e.AdminURL == "" {
		e.t.Fatal("no admin listener: start with transport.Config{AdminListener: true}")
	}
	return e.doAt(e.AdminURL, method, path, "", nil)
}

// do sends a request and returns the answer with its body read.
func (e *opsEnv) do(method, path, token string, body io.Reader, header ...string) (*http.Response, []byte) {
	e.t.Helper()
	return e.doAt(e.URL, method, path, token, body, header...)
}

func (e *opsEnv) doAt(base, method, path, token string, body io.Reader, header ...string) (*http.Response, []byte) {
	e.t.Helper()
	h := http.Header{}
	for i := 0; i+1 < len(header); i += 2 {
		h.Set(header[i], header[i+1])
	}
	return send(e.t, http.DefaultClient, method, base+path, token, body, h)
}

// logLines returns every log line written so far, each decoded.
func (e *opsEnv) logLines() []map[string]any {
	e.t.Helper()
	var out []map[string]any
	sc := bufio.NewScanner(strings.NewReader(e.logs.String()))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var m map[string]any
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			e.t.Fatalf("log line is not JSON: %v: %s", err, sc.Text())
		}
		out = append(out, m)
	}
	return out
}

// waitLog waits until a log line satisfies match and returns it.
func (e *opsEnv) waitLog(what string, match func(map[string]any) bool) map[string]any {
	e.t.Helper()
	var found map[string]any
	e.logs.Await(e.t, 10*time.Second, "log line "+what, func(string) bool {
		for _, l := range e.logLines() {
			if match(l) {
				found = l
				return true
			}
		}
		return false
	})
	return found
}
