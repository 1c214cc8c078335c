package transport

import (
	"bufio"
	"context"
	"crypto/rand"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/go-chi/chi/v5"
)

// requestIDHeader carries a request's id in and out. A proxy in front may
// set it so that its logs and ours share the id.
const requestIDHeader = "X-Request-ID"

// requestInfo is what the access log learns while a request is served:
// handlers further in fill in who asked and which socket it became.
type requestInfo struct {
	id      string
	userID  int64
	service string // the service of a service credential
	connID  uint64
}

type requestInfoKey struct{}

func infoOf(ctx context.Context) *requestInfo {
	if ri, ok := ctx.Value(requestInfoKey{}).(*requestInfo); ok {
		return ri
	}
	return &requestInfo{} // a handler called outside the middleware, as in a unit test
}

// requestID returns the caller's X-Request-ID when it is a sane token, or
// a new random one. A foreign id is kept only if it is short printable
// ASCII, so that it cannot forge or break log lines.
func requestID(r *http.Request) string {
	if id := r.Header.Get(requestIDHeader); len(id) > 0 && len(id) <= 128 {
		ok := true
		for i := 0; i < len(id) && ok; i++ {
			ok = id[i] > ' ' && id[i] <= '~'
		}
		if ok {
			return id
		}
	}
	return rand.Text()
}

// accessLog gives each request an id, echoes it in the answer, and writes
// one line per request when it ends. Probes and metric scrapes are logged
// at debug level, so that they do not drown the API's lines.
func (s *Server) accessLog(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		ri := &requestInfo{id: requestID(r)}
		w.Header().Set(requestIDHeader, ri.id)
		rec := &statusRecorder{ResponseWriter: w}
		next.ServeHTTP(rec, r.WithContext(context.WithValue(r.Context(), requestInfoKey{}, ri)))

		route := ""
		if rc := chi.RouteContext(r.Context()); rc != nil {
			route = rc.RoutePattern()
		}
		level := slog.LevelInfo
		switch {
		case rec.status >= 500:
			level = slog.LevelError
		case route == "/healthz" || route == "/readyz" || route == "/metrics":
			level = slog.LevelDebug
		}
		if !s.log.Enabled(r.Context(), level) {
			return
		}
		attrs := make([]slog.Attr, 0, 10)
		attrs = append(attrs,
			slog.String("request_id", ri.id),
			slog.String("method", r.Method),
			slog.String("uri", redactedURI(r.URL)),
			slog.String("route", route),
			slog.Int("status", rec.code()),
			slog.Int64("bytes", rec.bytes),
			slog.Duration("duration", time.Since(start)),
			slog.String("remote_addr", r.RemoteAddr),
		)
		if ri.userID != 0 {
			attrs = append(attrs, slog.Int64("user_id", ri.userID))
		}
		if ri.service != "" {
			attrs = append(attrs, slog.String("service", ri.service))
		}
		if ri.connID != 0 {
			attrs = append(attrs, slog.Uint64("conn_id", ri.connID))
		}
		s.log.LogAttrs(r.Context(), level, "http request", attrs...)
	})
}

// secretParams are the names under which a credential is written to the
// access log as REDACTED, most specific first. Browsers pass the socket's
// token as access_token because they cannot set headers on a WebSocket;
// the others are what a client gone astray might send. A parameter is
// secret when its name, decoded and folded to lower-case letters and
// digits, contains one of these folded the same way: ACCESS_TOKEN,
// access%5Ftoken, accessToken, access_token[] and refresh_token all are.
var secretParams = []string{"access_token", "refresh_token", "id_token", "token", "authorization", "jwt"}

// redactedURI returns the path and query of u with the value of every
// secret parameter replaced. It works on the raw query, so that a
// malformed query is logged as sent rather than dropped or re-encoded,
// and it splits the query on both '&' and ';' as servers have done (Go's
// before 1.17, many proxies and frameworks still): whatever some server
// on the way could read as a token is redacted. A pair whose name or
// value looks like a JWT is redacted whole, whatever its name.
func redactedURI(u *url.URL) string {
	path := u.EscapedPath()
	if u.RawQuery == "" {
		return path
	}
	var b strings.Builder
	b.Grow(len(path) + 1 + len(u.RawQuery))
	b.WriteString(path)
	b.WriteByte('?')
	q := u.RawQuery
	for {
		i := strings.IndexAny(q, "&;")
		part := q
		if i >= 0 {
			part = q[:i]
		}
		b.WriteString(redactPair(part))
		if i < 0 {
			break
		}
		b.WriteByte(q[i])
		q = q[i+1:]
	}
	return b.String()
}

// redactPair returns one name=value pair of a query as it may be logged.
func redactPair(pair string) string {
	rawKey, rawValue, _ := strings.Cut(pair, "=")
	key, value := looseUnescape(rawKey), looseUnescape(rawValue)
	if looksLikeJWT(key) {
		return "REDACTED"
	}
	if folded := fold(key); folded != "" {
		for _, secret := range secretParams {
			if strings.Contains(folded, fold(secret)) {
				return secret + "=REDACTED"
			}
		}
	}
	if looksLikeJWT(value) {
		return "REDACTED"
	}
	return pair
}

// looseUnescape decodes s as a server might, and as often as one on the
// way might: '+' is a space and each valid %XX its byte, applied until
// nothing changes (a few rounds at most, since each one shortens s). An
// invalid escape is kept as it is instead of failing the whole name, as
// lenient servers do.
func looseUnescape(s string) string {
	for range 4 {
		if !strings.ContainsAny(s, "%+") {
			return s
		}
		var b strings.Builder
		b.Grow(len(s))
		for i := 0; i < len(s); i++ {
			switch c := s[i]; {
			case c == '+':
				b.WriteByte(' ')
			case c == '%' && i+2 < len(s) && isHex(s[i+1]) && isHex(s[i+2]):
				b.WriteByte(unhex(s[i+1])<<4 | unhex(s[i+2]))
				i += 2
			default:
				b.WriteByte(c)
			}
		}
		next := b.String()
		if next == s {
			return s
		}
		s = next
	}
	return s
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

func unhex(c byte) byte {
	switch {
	case c <= '9':
		return c - '0'
	case c <= 'F':
		return c - 'A' + 10
	}
	return c - 'a' + 10
}

// fold keeps the ASCII letters and digits of s, in lower case, so that
// separators, brackets, case and stray bytes do not disguise a name.
func fold(s string) string {
	b := make([]byte, 0, len(s))
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case 'a' <= c && c <= 'z', '0' <= c && c <= '9':
			b = append(b, c)
		case 'A' <= c && c <= 'Z':
			b = append(b, c+'a'-'A')
		}
	}
	return string(b)
}

// looksLikeJWT says whether s holds what may be a JWT: the base64url of a
// JSON object's opening '{"' ("eyJ") followed, further on, by a dot.
func looksLikeJWT(s string) bool {
	i := strings.Index(s, "eyJ")
	return i >= 0 && strings.Contains(s[i:], ".")
}

// statusRecorder notes the status and size of an answer. It passes
// Hijack through, so that a WebSocket upgrade still works behind it.
type statusRecorder struct {
	http.ResponseWriter
	status int
	bytes  int64
}

func (w *statusRecorder) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusRecorder) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	n, err := w.ResponseWriter.Write(b)
	w.bytes += int64(n)
	return n, err
}

// Hijack hands the connection over for a WebSocket; the answer was then
// 101 Switching Protocols.
func (w *statusRecorder) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	h, ok := w.ResponseWriter.(http.Hijacker)
	if !ok {
		return nil, nil, errors.New("transport: the response writer cannot be hijacked")
	}
	c, rw, err := h.Hijack()
	if err == nil {
		w.status = http.StatusSwitchingProtocols
	}
	return c, rw, err
}

// Unwrap lets http.ResponseController reach the real writer.
func (w *statusRecorder) Unwrap() http.ResponseWriter { return w.ResponseWriter }

func (w *statusRecorder) code() int {
	if w.status == 0 {
		return http.StatusOK // a handler that wrote nothing answered 200
	}
	return w.status
}
