package transport

import (
	"container/list"
	"context"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"syscall"
	"time"
)

// ConnConfig bounds the HTTP connections of one listener, so that no
// client holds one without cost, before authentication or after: each
// stage of a connection's life has a deadline, and the connections that
// wait for a request, which cost the server a file and memory while the
// client pays nothing, are capped. The zero value of each field means the
// default given beside it.
type ConnConfig struct {
	// ReadHeaderTimeout bounds the reading of a request's headers,
	// counted from the connection's start for its first request. Default
	// 10s.
	ReadHeaderTimeout time.Duration
	// ReadTimeout bounds the reading of a whole request, headers and
	// body: a body sent a byte at a time is cut off there. Default 30s.
	ReadTimeout time.Duration
	// WriteTimeout bounds the writing of an answer, counted from the end
	// of its request's headers (net/http's WriteTimeout): a client that
	// does not read its answers cannot hold the connection. Default
	// ReadTimeout + 10s.
	WriteTimeout time.Duration
	// IdleTimeout is how long a kept-alive connection may wait for its
	// next request. Default 90s.
	IdleTimeout time.Duration
	// MaxIdleConns caps the connections that wait for a request: new ones
	// that have sent nothing yet and kept-alive ones between requests.
	// When one more comes, the one that has waited longest is closed;
	// a client that speaks promptly is never the oldest. The cap also
	// holds when the process runs out of files: an accept that fails for
	// lack of them closes the longest-waiting connections and tries
	// again. Sockets are not counted once upgraded. Default 10,000.
	MaxIdleConns int
	// Logger receives the server's own errors and a line when idle
	// connections are closed for the cap. Default slog.Default().
	Logger *slog.Logger
}

// DefaultConnConfig returns the values that the zero fields stand for,
// which presenced's flags and README show. WriteTimeout is left zero: it
// follows ReadTimeout.
func DefaultConnConfig() ConnConfig {
	return ConnConfig{ReadHeaderTimeout: 10 * time.Second, ReadTimeout: 30 * time.Second, IdleTimeout: 90 * time.Second, MaxIdleConns: 10_000}
}

func (c *ConnConfig) setDefaults() {
	d := DefaultConnConfig()
	orDefault(&c.ReadHeaderTimeout, d.ReadHeaderTimeout)
	orDefault(&c.ReadTimeout, d.ReadTimeout)
	orDefault(&c.WriteTimeout, c.ReadTimeout+10*time.Second)
	orDefault(&c.IdleTimeout, d.IdleTimeout)
	orDefault(&c.MaxIdleConns, d.MaxIdleConns)
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
}

// HTTPServer serves one listener under a ConnConfig. It is an
// http.Server whose connections are also tracked, for the idle cap.
type HTTPServer struct {
	srv  *http.Server
	idle *idleConns
}

// NewHTTPServer returns a server of h bounded by cfg.
func NewHTTPServer(h http.Handler, cfg ConnConfig) *HTTPServer {
	cfg.setDefaults()
	idle := newIdleConns(cfg.MaxIdleConns, cfg.Logger)
	return &HTTPServer{idle: idle, srv: &http.Server{
		Handler:           h,
		ReadHeaderTimeout: cfg.ReadHeaderTimeout,
		ReadTimeout:       cfg.ReadTimeout,
		WriteTimeout:      cfg.WriteTimeout,
		IdleTimeout:       cfg.IdleTimeout,
		ConnState:         idle.track,
		ErrorLog:          slog.NewLogLogger(cfg.Logger.Handler(), slog.LevelWarn),
	}}
}

// Serve accepts connections on ln until Shutdown; it returns
// http.ErrServerClosed then, as http.Server.Serve does.
func (s *HTTPServer) Serve(ln net.Listener) error {
	return s.srv.Serve(&evictingListener{Listener: ln, idle: s.idle})
}

// Shutdown stops accepting, closes idle connections and waits for the
// requests in flight, until ctx ends (http.Server.Shutdown). Hijacked
// connections, the sockets, are the Server's to close.
func (s *HTTPServer) Shutdown(ctx context.Context) error { return s.srv.Shutdown(ctx) }

// idleConns knows the connections that wait for a request, oldest first.
type idleConns struct {
	max int
	log *slog.Logger

	mu       sync.Mutex
	waiting  list.List // of net.Conn, by the time they began to wait
	index    map[net.Conn]*list.Element
	evicted  int       // closed for the cap since the last log line
	loggedAt time.Time // of that line
}

func newIdleConns(max int, log *slog.Logger) *idleConns {
	return &idleConns{max: max, log: log, index: make(map[net.Conn]*list.Element)}
}

// track follows each connection's state (http.Server.ConnState, called
// on the connection's own goroutine, and for StateNew on the accepting
// one before the connection is served).
func (t *idleConns) track(c net.Conn, state http.ConnState) {
	var victims []net.Conn
	t.mu.Lock()
	switch state {
	case http.StateNew, http.StateIdle:
		if e := t.index[c]; e != nil {
			t.waiting.MoveToBack(e)
		} else {
			t.index[c] = t.waiting.PushBack(c)
		}
		if over := t.waiting.Len() - t.max; over > 0 {
			victims = t.oldest(over)
		}
	default: // active, hijacked or closed: not waiting
		if e := t.index[c]; e != nil {
			t.waiting.Remove(e)
			delete(t.index, c)
		}
	}
	t.mu.Unlock()
	t.close(victims)
}

// oldest takes the n connections that have waited longest off the list.
// The caller holds mu.
func (t *idleConns) oldest(n int) []net.Conn {
	victims := make([]net.Conn, 0, n)
	for len(victims) < n {
		e := t.waiting.Front()
		if e == nil {
			break
		}
		c := t.waiting.Remove(e).(net.Conn)
		delete(t.index, c)
		victims = append(victims, c)
	}
	return victims
}

// evict closes the n connections that have waited longest and returns
// how many it closed.
func (t *idleConns) evict(n int) int {
	t.mu.Lock()
	victims := t.oldest(n)
	t.mu.Unlock()
	t.close(victims)
	return len(victims)
}

// close closes victims outside the lock: their goroutines then find the
// connection closed and report StateClosed, which finds them gone.
func (t *idleConns) close(victims []net.Conn) {
	if len(victims) == 0 {
		return
	}
	for _, c := range victims {
		_ = c.Close()
	}
	t.mu.Lock()
	t.evicted += len(victims)
	now := time.Now()
	var n int
	if now.Sub(t.loggedAt) >= 10*time.Second {
		n, t.evicted, t.loggedAt = t.evicted, 0, now
	}
	t.mu.Unlock()
	if n > 0 {
		t.log.Warn("closed the longest-waiting idle connections: more wait for a request than -max-idle-connections allows, or the process ran out of files (one line per 10 s at most)",
			"closed_since_last_line", n, "max", t.max)
	}
}

// evictingListener makes room when the process is out of files: net/http
// would otherwise sleep and retry while every file is held by a
// connection that waits for nothing, and the server would answer nobody.
type evictingListener struct {
	net.Listener
	idle *idleConns
}

// fdBatch is how many idle connections one failed accept closes: enough
// that the accepts behind it find files too.
const fdBatch = 32

func (l *evictingListener) Accept() (net.Conn, error) {
	for attempt := 0; ; attempt++ {
		c, err := l.Listener.Accept()
		if err == nil || !outOfFiles(err) || attempt == 3 || l.idle.evict(fdBatch) == 0 {
			return c, err // net/http backs off on a temporary error and tries again
		}
		// A closed file is given back once its reader has woken; give
		// the runtime that moment before the next accept.
		time.Sleep(time.Millisecond)
	}
}

func outOfFiles(err error) bool {
	return errors.Is(err, syscall.EMFILE) || errors.Is(err, syscall.ENFILE)
}
