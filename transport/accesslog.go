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
	id     string
	userID int64
	connID uint64
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
		if ri.connID != 0 {
			attrs = append(attrs, slog.Uint64("conn_id", ri.connID))
		}
		s.log.LogAttrs(r.Context(), level, "http request", attrs...)
	})
}

// secretParams are query parameters whose values are credentials.
// Browsers pass the socket's token as access_token because they cannot set
// headers on a WebSocket; it must never reach a log.
var secretParams = []string{"access_token", "token"}

// redactedURI returns the path and query of u with the value of every
// secret parameter replaced. It works on the raw query, so that a
// malformed query is logged as sent rather than dropped or re-encoded.
func redactedURI(u *url.URL) string {
	path := u.EscapedPath()
	if u.RawQuery == "" {
		return path
	}
	parts := strings.Split(u.RawQuery, "&")
	for i, p := range parts {
		key, _, _ := strings.Cut(p, "=")
		if k, err := url.QueryUnescape(key); err == nil {
			key = k
		}
		for _, secret := range secretParams {
			if strings.EqualFold(strings.TrimSpace(key), secret) {
				parts[i] = secret + "=REDACTED"
			}
		}
	}
	return path + "?" + strings.Join(parts, "&")
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
