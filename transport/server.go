package transport

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"math"
	"net/http"
	"net/netip"
	"net/url"
	"path"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/go-chi/chi/v5/middleware"
	"github.com/gorilla/websocket"
	"golang.org/x/time/rate"

	"github.com/presenced/presenced/hub"
)

// Identity is who a verified token says its holder is.
type Identity struct {
	UserID   int64
	Username string
	// ValidUntil is the last instant the token is accepted: its exp
	// plus the verifier's leeway for clock skew, not the bare exp. A
	// socket opened with it is closed with 4002 then, unless the client
	// sends a fresher token first; a refresh answers it as expires_at.
	ValidUntil time.Time
	// Service, when not empty, says that the token is a service
	// credential, the app's own backend acting for users, and names the
	// service; UserID is then 0. A service reads and changes any user's
	// status at /users/{user_id}/status, reads any presence, and is never
	// held by the watch policy; it has no /users/me and no socket.
	Service string
	// Watch is the token's watch claim as it was signed, nil when it has
	// none; ClaimPolicy reads it.
	Watch json.RawMessage

	watch map[int64]struct{} // Watch, read once the token is verified, under ClaimPolicy
}

// Verifier checks a bearer token.
type Verifier interface {
	Verify(token string) (Identity, error)
}

// VerifierFunc adapts a function to Verifier.
type VerifierFunc func(token string) (Identity, error)

// Verify calls f.
func (f VerifierFunc) Verify(token string) (Identity, error) { return f(token) }

// TokenIssuer signs development tokens for POST /dev/token.
type TokenIssuer interface {
	Issue(userID int64, username string) (string, error)
}

// Config tunes a Server. The zero value of each field means the default
// given beside it.
type Config struct {
	// PingInterval is how often the server pings each socket. Default 25s.
	PingInterval time.Duration
	// PongTimeout is how long a ping may go unanswered before the
	// connection counts as dead. Default 10s.
	PongTimeout time.Duration
	// WriteTimeout bounds one write to a socket. Default 10s.
	WriteTimeout time.Duration
	// MaxMessageBytes is the largest client frame read; a larger one
	// closes the socket with 1009. Default 16 KiB.
	MaxMessageBytes int64
	// MaxIDsPerRequest caps the ids in GET /users/presence and in one
	// subscribe message. Default 100.
	MaxIDsPerRequest int
	// MaxUsernameLength is the longest username, in characters, that a
	// token or POST /dev/token may carry; a longer one, or one with a
	// control character, is refused where it enters. Default 64.
	MaxUsernameLength int
	// MaxBadMessages closes a socket with 4400 after this many invalid
	// messages in a row (each is answered with an error first); a valid
	// message starts the count again. Zero means no limit (DefaultConfig
	// sets 10).
	MaxBadMessages int
	// AllowedOrigins lists the browser origins (scheme://host[:port])
	// besides the server's own that may open a socket. Requests without
	// an Origin header (native apps) are always allowed.
	AllowedOrigins []string
	// AllowAnyOrigin turns the origin check off (development only).
	AllowAnyOrigin bool
	// DevTokens, when set, enables POST /dev/token. Never set it in
	// production.
	DevTokens TokenIssuer
	// MessagesPerSecond is the steady rate of client messages one socket
	// may send, with bursts of MessageBurst (default: one second's worth).
	// A message over the limit is dropped and answered with an error,
	// once; a client that goes on sending another burst's worth is closed
	// with 4429. Zero means no limit (DefaultConfig sets 20, burst 40).
	MessagesPerSecond float64
	MessageBurst      int
	// RequestsPerSecond is the steady rate of REST requests one user may
	// make (all devices together), with bursts of RequestBurst (default:
	// one second's worth); more get 429 with Retry-After. Zero means no
	// limit (DefaultConfig sets 10, burst 20).
	RequestsPerSecond float64
	RequestBurst      int
	// SocketsPerSecondPerIP is the steady rate of new sockets from one
	// client address (an IPv4 address or an IPv6 /64), with bursts of
	// SocketBurstPerIP (default: one second's worth); more get 429 with
	// Retry-After before the upgrade. Zero means no limit (DefaultConfig
	// sets 5, burst 20).
	SocketsPerSecondPerIP float64
	SocketBurstPerIP      int
	// SocketsPerSecond is the steady rate of new sockets the whole server
	// admits, with bursts of SocketBurst (default: one second's worth);
	// more get 503 with Retry-After before the upgrade, so that a
	// reconnect storm after a restart is admitted at a pace the server
	// can serve. Zero means no limit (DefaultConfig sets 500, burst
	// 500).
	SocketsPerSecond float64
	SocketBurst      int
	// MaxLimiterKeys bounds the per-user and per-address buckets held by
	// each limit. Default 100,000.
	MaxLimiterKeys int
	// ClientIPHeader, when set, names the header (X-Forwarded-For,
	// X-Real-IP) from which a trusted reverse proxy passes the client's
	// address; its last entry is used. Leave it empty when clients
	// connect directly: a client can write any header it likes.
	ClientIPHeader string
	// Static is served at / (the demo page and client library).
	Static fs.FS
	// Logger receives the server's logs. Default slog.Default().
	Logger *slog.Logger
	// ReadinessChecks are asked by /readyz besides the hub itself: the
	// database, the cluster's listener. None means the hub alone decides.
	ReadinessChecks []ReadinessCheck
	// Observer is told about messages, events, closes and refused tokens,
	// for metrics. Default: nobody.
	Observer Observer
	// Metrics, when set, is served at GET /metrics by AdminHandler, and
	// by the public handler too unless AdminListener is set.
	Metrics http.Handler
	// AdminListener says that AdminHandler is served on a listener of its
	// own that only operators reach: the public handler then serves no
	// /metrics. Either way the public /readyz says only ready or not, and
	// AdminHandler's /readyz names each failed check and its error.
	AdminListener bool
	// WatchPolicy decides whom each user may read. Default OpenPolicy:
	// anyone may read anyone.
	WatchPolicy WatchPolicy
}

// DefaultConfig returns presenced's defaults: the values that the zero
// fields stand for, and the rate limits a server that faces the internet
// should keep, which a zero field turns off. presenced's flags and README
// show them.
func DefaultConfig() Config {
	return Config{
		PingInterval: 25 * time.Second, PongTimeout: 10 * time.Second, WriteTimeout: 10 * time.Second,
		MaxMessageBytes: 16 << 10, MaxIDsPerRequest: 100, MaxUsernameLength: 64, MaxBadMessages: 10,
		MessagesPerSecond: 20, MessageBurst: 40, RequestsPerSecond: 10, RequestBurst: 20,
		SocketsPerSecondPerIP: 5, SocketBurstPerIP: 20, SocketsPerSecond: 500, SocketBurst: 500,
		MaxLimiterKeys: 100_000,
	}
}

func (c *Config) setDefaults() {
	d := DefaultConfig()
	orDefault(&c.PingInterval, d.PingInterval)
	orDefault(&c.PongTimeout, d.PongTimeout)
	orDefault(&c.WriteTimeout, d.WriteTimeout)
	orDefault(&c.MaxMessageBytes, d.MaxMessageBytes)
	orDefault(&c.MaxIDsPerRequest, d.MaxIDsPerRequest)
	orDefault(&c.MaxUsernameLength, d.MaxUsernameLength)
	orDefault(&c.MaxLimiterKeys, d.MaxLimiterKeys)
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.Observer == nil {
		c.Observer = nopObserver{}
	}
	if c.WatchPolicy == nil {
		c.WatchPolicy = OpenPolicy{}
	}
	defaultBurst(c.MessagesPerSecond, &c.MessageBurst)
	defaultBurst(c.RequestsPerSecond, &c.RequestBurst)
	defaultBurst(c.SocketsPerSecondPerIP, &c.SocketBurstPerIP)
	defaultBurst(c.SocketsPerSecond, &c.SocketBurst)
}

// orDefault sets a zero *v to d.
func orDefault[T comparable](v *T, d T) {
	var zero T
	if *v == zero {
		*v = d
	}
}

// defaultBurst lets a rate limit without a burst take one second's worth.
func defaultBurst(perSecond float64, burst *int) {
	if *burst <= 0 {
		*burst = max(1, int(math.Ceil(perSecond)))
	}
}

// Server is the HTTP face of a hub.
type Server struct {
	hub      *hub.Hub
	verifier Verifier
	cfg      Config
	log      *slog.Logger
	obs      Observer
	upgrader websocket.Upgrader
	router   chi.Router
	admin    chi.Router   // the operator's endpoints, for AdminHandler
	static   http.Handler // the file server of cfg.Static; nil without

	conns    sync.WaitGroup // reader and writer goroutines of every socket
	draining atomic.Bool    // set by Drain: /readyz answers 503
	// readyState is the last readiness seen, 0 none yet, 1 ready, 2 not,
	// so that only changes are logged.
	readyState atomic.Int32

	// openWatch says that the policy allows everything, so that sockets
	// need not track what it granted; claimWatch that tokens' watch
	// claims are read, so that a malformed one is refused with the token.
	openWatch, claimWatch bool

	requestLimit   *keyedLimiter[int64]      // REST requests per user
	socketIPLimit  *keyedLimiter[netip.Addr] // new sockets per client address
	socketAllLimit *rate.Limiter             // new sockets, all together; nil for none
}

// New returns a Server for h that authenticates with v.
func New(h *hub.Hub, v Verifier, cfg Config) *Server {
	cfg.setDefaults()
	s := &Server{hub: h, verifier: v, cfg: cfg, log: cfg.Logger, obs: cfg.Observer}
	_, s.openWatch = cfg.WatchPolicy.(OpenPolicy)
	_, s.claimWatch = cfg.WatchPolicy.(ClaimPolicy)
	s.requestLimit = newKeyedLimiter[int64](cfg.RequestsPerSecond, cfg.RequestBurst, cfg.MaxLimiterKeys)
	s.socketIPLimit = newKeyedLimiter[netip.Addr](cfg.SocketsPerSecondPerIP, cfg.SocketBurstPerIP, cfg.MaxLimiterKeys)
	if cfg.SocketsPerSecond > 0 {
		s.socketAllLimit = rate.NewLimiter(rate.Limit(cfg.SocketsPerSecond), cfg.SocketBurst)
	}
	s.upgrader = websocket.Upgrader{
		// Client messages are small, and a larger one is read past the
		// buffer straight into the message; 256 bytes hold a frame
		// header and the largest control frame. A 1 KiB buffer was 5 %
		// of an idle socket's memory.
		ReadBufferSize:  256,
		WriteBufferSize: 4096,
		// Idle sockets hold no write buffer: one is taken from the pool
		// for each frame.
		WriteBufferPool:  &sync.Pool{},
		HandshakeTimeout: 10 * time.Second,
		CheckOrigin:      s.checkOrigin,
		Error: func(w http.ResponseWriter, _ *http.Request, status int, reason error) {
			// RFC 6455, section 4.2.2: a refused handshake names the
			// versions the server speaks, so a client on another one
			// knows what to retry with. gorilla's own error answer sets
			// it; this one replaces that answer, so it sets it too.
			w.Header().Set("Sec-WebSocket-Version", "13")
			writeError(w, status, reason.Error())
		},
	}
	if cfg.Static != nil {
		s.static = http.FileServerFS(cfg.Static)
	}
	s.router = s.routes()
	s.admin = s.adminRoutes()
	return s
}

// ServeHTTP serves every route.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.router.ServeHTTP(w, r) }

// Wait blocks until every socket's goroutines have ended or ctx is done.
// After the hub has stopped, every socket is closing, so Wait is the last
// step of a graceful shutdown.
func (s *Server) Wait(ctx context.Context) error {
	done := make(chan struct{})
	go func() { s.conns.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (s *Server) routes() chi.Router {
	r := chi.NewRouter()
	r.Use(s.accessLog)
	// HEAD is answered wherever GET is, as HTTP asks (RFC 9110, section
	// 9.3.2): net/http drops the body and keeps the headers.
	r.Use(middleware.GetHead)
	// The static files are not a route: a catch-all would take every
	// method of every path that no route serves, and answer a DELETE of
	// an API path with the file server's text/plain 404.
	r.NotFound(s.notFound)
	r.MethodNotAllowed(methodNotAllowed(r))
	r.Get("/ws", s.serveWS)
	r.Get("/healthz", s.healthz)
	r.Get("/readyz", s.readyz)
	r.Get("/openapi.json", serveOpenAPI)
	if s.cfg.Metrics != nil && !s.cfg.AdminListener {
		r.Method(http.MethodGet, "/metrics", s.cfg.Metrics)
	}
	r.Group(func(r chi.Router) {
		r.Use(s.requireToken)
		for _, p := range []string{"/both/status/me", "/users/me/status"} {
			r.Get(p, userOnly(s.getMyStatus))
			r.Put(p, userOnly(s.updateMyStatus))
			r.Patch(p, userOnly(s.updateMyStatus))
		}
		r.Post("/both/status/heartbeat", userOnly(s.heartbeat))
		r.Post("/users/me/heartbeat", userOnly(s.heartbeat))
		r.Get("/users/presence", s.getPresences)
		r.Get("/users/{user_id}/presence", s.getPresence)
		// The service API; /users/me/status above is a route of its own,
		// so {user_id} is never "me" here.
		r.Get("/users/{user_id}/status", serviceOnly(s.getUserStatus))
		r.Put("/users/{user_id}/status", serviceOnly(s.updateUserStatus))
		r.Patch("/users/{user_id}/status", serviceOnly(s.updateUserStatus))
	})
	if s.cfg.DevTokens != nil {
		r.Post("/dev/token", s.devToken)
	}
	return r
}

// notFound serves a static file to GET and HEAD, refuses other methods on
// one with 405, and answers every other path with a JSON 404.
func (s *Server) notFound(w http.ResponseWriter, r *http.Request) {
	if s.cfg.Static != nil && staticFileExists(s.cfg.Static, r.URL.Path) {
		if r.Method == http.MethodGet || r.Method == http.MethodHead {
			s.static.ServeHTTP(w, r)
			return
		}
		notAllowed(w, []string{http.MethodGet, http.MethodHead})
		return
	}
	// The seed API's (FastAPI's) texts, which clients may compare.
	writeError(w, http.StatusNotFound, "Not Found")
}

// routeMethods are the methods a 405's Allow header may name.
var routeMethods = []string{http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete}

// methodNotAllowed answers a known path of routes asked with a method it
// does not serve, naming in Allow the ones it does (RFC 9110, section
// 15.5.6).
func methodNotAllowed(routes chi.Routes) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		var allowed []string
		for _, m := range routeMethods {
			probe := m
			if m == http.MethodHead {
				probe = http.MethodGet // HEAD goes wherever GET does
			}
			if routes.Match(chi.NewRouteContext(), probe, r.URL.Path) {
				allowed = append(allowed, m)
			}
		}
		notAllowed(w, allowed)
	}
}

func notAllowed(w http.ResponseWriter, allowed []string) {
	w.Header().Set("Allow", strings.Join(allowed, ", "))
	writeError(w, http.StatusMethodNotAllowed, "Method Not Allowed")
}

// staticFileExists says whether urlPath names a file of fsys, or a
// directory with an index.html (a directory without one would be listed).
func staticFileExists(fsys fs.FS, urlPath string) bool {
	name := strings.TrimPrefix(path.Clean("/"+urlPath), "/")
	if name == "" {
		name = "."
	}
	info, err := fs.Stat(fsys, name)
	if err != nil {
		return false
	}
	if info.IsDir() {
		info, err = fs.Stat(fsys, path.Join(name, "index.html"))
		return err == nil && !info.IsDir()
	}
	return true
}

type callerKey struct{}

// caller is who an authenticated request comes from: the token's
// identity, and the hub's view of a user's request (for a service, the
// zero Client).
type caller struct {
	Identity
	client hub.Client
}

// requireToken lets through requests with a valid bearer token in the
// Authorization header (and a well-formed device id, if any), and answers
// the rest with the seed API's 401 (or a 400).
// A token anywhere else (an access_token query parameter, as sockets
// take) is not looked at: URLs end up in logs and browser history. Each
// user's requests are then held to the REST rate limit; a service's are
// not: it acts for many users, and the app trusts it as it trusts its
// auth server.
func (s *Server) requireToken(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id, err := s.verify(bearerToken(r))
		if err != nil {
			s.obs.TokenRejected("rest")
			var claim claimError
			if errors.As(err, &claim) {
				w.Header().Set("WWW-Authenticate", "Bearer")
				writeError(w, http.StatusUnauthorized, claim.Error())
				return
			}
			unauthorized(w)
			return
		}
		if id.Service != "" {
			infoOf(r.Context()).service = id.Service
			if r.Header.Get(DeviceHeader) != "" {
				writeError(w, http.StatusBadRequest, "A service acts from no device of the user's: drop the "+DeviceHeader+" header")
				return
			}
			next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), callerKey{}, caller{Identity: id})))
			return
		}
		infoOf(r.Context()).userID = id.UserID
		if ok, wait := s.requestLimit.allow(id.UserID, time.Now()); !ok {
			tooMany(w, http.StatusTooManyRequests, wait, fmt.Sprintf(
				"Too many requests: at most %g per second per user (bursts of %d); retry after the time in Retry-After",
				s.cfg.RequestsPerSecond, s.cfg.RequestBurst))
			return
		}
		device, err := deviceOf(r, false)
		if err != nil {
			writeError(w, http.StatusBadRequest, err.Error())
			return
		}
		c := caller{Identity: id, client: hub.Client{UserID: id.UserID, Username: id.Username, Device: device}}
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), callerKey{}, c)))
	})
}

// callerOf returns who an authenticated request comes from.
func callerOf(r *http.Request) caller { return r.Context().Value(callerKey{}).(caller) }

// clientOf returns the user an authenticated request comes from, as the
// hub knows them.
func clientOf(r *http.Request) hub.Client { return callerOf(r).client }

func (s *Server) verify(token string) (Identity, error) {
	if token == "" {
		return Identity{}, errors.New("no token")
	}
	id, err := s.verifier.Verify(token)
	if err != nil {
		return Identity{}, err
	}
	if id.Service != "" {
		// A service's name is the verifier's to check; it is no user's
		// name, and no policy holds a service.
		id.UserID, id.Username, id.Watch = 0, "", nil
		return id, nil
	}
	// The name enters here, from every token on every path: checked once,
	// it never reaches the hub, the store or another client.
	if err := checkUsername(id.Username, s.cfg.MaxUsernameLength); err != nil {
		return Identity{}, claimError{err}
	}
	if s.claimWatch {
		if id.watch, err = parseWatchClaim(id.Watch); err != nil {
			return Identity{}, claimError{err}
		}
	}
	return id, nil
}

// claimError is a token that verified but carries a claim the server
// refuses. Unlike a bad signature, saying what is wrong with it helps no
// forger, only whoever issues the tokens; a refreshed token would carry
// the same claim, so the client must not loop on it.
type claimError struct{ err error }

func (e claimError) Error() string { return "Invalid token: " + e.err.Error() }

// bearerToken returns the token of an "Authorization: Bearer" header.
func bearerToken(r *http.Request) string {
	h := r.Header.Get("Authorization")
	const prefix = "bearer "
	if len(h) > len(prefix) && strings.EqualFold(h[:len(prefix)], prefix) {
		return strings.TrimSpace(h[len(prefix):])
	}
	return ""
}

func unauthorized(w http.ResponseWriter) {
	w.Header().Set("WWW-Authenticate", "Bearer")
	writeError(w, http.StatusUnauthorized, "Invalid or expired token")
}

// checkOrigin refuses browser pages of foreign origins, so that a page
// elsewhere cannot open a socket with a user's credentials.
func (s *Server) checkOrigin(r *http.Request) bool {
	origin := r.Header.Get("Origin")
	if origin == "" || s.cfg.AllowAnyOrigin {
		return true
	}
	u, err := url.Parse(origin)
	if err != nil {
		return false
	}
	if strings.EqualFold(u.Host, r.Host) {
		return true
	}
	for _, allowed := range s.cfg.AllowedOrigins {
		if strings.EqualFold(strings.TrimSuffix(allowed, "/"), origin) {
			return true
		}
	}
	return false
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// writeError writes the seed API's error body, {"detail": "..."}.
func writeError(w http.ResponseWriter, status int, detail string) {
	writeJSON(w, status, map[string]string{"detail": detail})
}

// writeHubError maps a hub error to a status code.
func writeHubError(w http.ResponseWriter, err error) {
	switch {
	case errors.Is(err, hub.ErrNotFound):
		writeError(w, http.StatusNotFound, "User status not found")
	case errors.Is(err, hub.ErrClosed), errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		w.Header().Set("Retry-After", "1")
		writeError(w, http.StatusServiceUnavailable, "Server is shutting down")
	case errors.Is(err, hub.ErrLimit):
		writeError(w, http.StatusTooManyRequests, err.Error())
	case errors.Is(err, hub.ErrUnavailable):
		// Too many changes wait for the database: refuse rather than
		// acknowledge a change that could be lost.
		w.Header().Set("Retry-After", "5")
		writeError(w, http.StatusServiceUnavailable, "Storage is unavailable; try again later")
	default:
		writeError(w, http.StatusInternalServerError, "Internal server error")
	}
}
