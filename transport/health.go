package transport

import (
	"context"
	"log/slog"
	"net/http"
	"net/http/pprof"
	"sync"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/go-chi/chi/v5/middleware"
)

// ReadinessCheck is one dependency that /readyz asks about: the database,
// the cluster's listener. Check returns nil when the dependency is usable;
// its error text is shown in the 503 answer, so it must not hold secrets.
// Check must honour ctx, which ends after readyTimeout.
type ReadinessCheck struct {
	// Name keys the error in the answer, e.g. "postgres".
	Name string
	// Check reports whether the dependency is usable now.
	Check func(ctx context.Context) error
}

// readyTimeout bounds one round of readiness checks. Kubernetes gives a
// probe one second by default; a check slower than that has failed anyway.
const readyTimeout = time.Second

// healthz answers the liveness probe. It touches no dependency: a
// database outage must not get every replica restarted.
func (s *Server) healthz(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
}

// readyResponse is the body of /readyz.
type readyResponse struct {
	Status string            `json:"status"`
	Checks map[string]string `json:"checks,omitempty"`
}

// readyz answers the public readiness probe: 200 while the hub answers
// and every configured check passes, 503 otherwise and from the moment
// [Server.Drain] is called. It says nothing more: a check's error names
// the database's user, name, host and port, which the internet has no
// business reading. AdminHandler's /readyz, and the log, say why.
func (s *Server) readyz(w http.ResponseWriter, r *http.Request) {
	if failed := s.checkReadiness(r.Context()); len(failed) > 0 {
		writeJSON(w, http.StatusServiceUnavailable, readyResponse{Status: "not ready"})
		return
	}
	writeJSON(w, http.StatusOK, readyResponse{Status: "ready"})
}

// adminReadyz answers the readiness probe on the admin listener, naming
// each failed check and its error.
func (s *Server) adminReadyz(w http.ResponseWriter, r *http.Request) {
	failed := s.checkReadiness(r.Context())
	if len(failed) == 0 {
		writeJSON(w, http.StatusOK, readyResponse{Status: "ready"})
		return
	}
	writeJSON(w, http.StatusServiceUnavailable, readyResponse{Status: "not ready", Checks: failed})
}

// AdminHandler serves the operator's endpoints: /healthz, /readyz with
// the name and error of each failed check, /metrics when Config.Metrics
// is set, and the Go runtime's profiles under /debug/pprof/ (net/http/pprof,
// without /debug/pprof/cmdline, which would show a -jwt-secret given on
// the command line). Serve it on a listener that only operators and
// probes reach (presenced's -admin-addr); the public handler keeps
// /healthz and a /readyz that says only ready or not, for load balancers
// that probe the serving port.
func (s *Server) AdminHandler() http.Handler { return s.admin }

func (s *Server) adminRoutes() chi.Router {
	r := chi.NewRouter()
	r.Use(s.accessLog, middleware.GetHead)
	r.NotFound(func(w http.ResponseWriter, _ *http.Request) { writeError(w, http.StatusNotFound, "Not Found") })
	r.MethodNotAllowed(methodNotAllowed(r))
	r.Get("/healthz", s.healthz)
	r.Get("/readyz", s.adminReadyz)
	if s.cfg.Metrics != nil {
		r.Method(http.MethodGet, "/metrics", s.cfg.Metrics)
	}
	// Profiles of a running server are how BENCHMARKS.md finds where its
	// CPU goes; they belong with the operators, never on the public port.
	r.HandleFunc("/debug/pprof/profile", pprof.Profile)
	r.HandleFunc("/debug/pprof/trace", pprof.Trace)
	r.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	r.HandleFunc("/debug/pprof/cmdline", func(w http.ResponseWriter, _ *http.Request) {
		writeError(w, http.StatusNotFound, "Not Found")
	})
	r.HandleFunc("/debug/pprof/*", pprof.Index) // the index, and each named profile
	return r
}

// checkReadiness runs every check at once and returns the failures by name.
func (s *Server) checkReadiness(ctx context.Context) map[string]string {
	if s.draining.Load() {
		return map[string]string{"shutdown": "server is shutting down"} // Drain logs it
	}
	ctx, cancel := context.WithTimeout(ctx, readyTimeout)
	defer cancel()
	checks := append([]ReadinessCheck{{Name: "hub", Check: s.hub.Ping}}, s.cfg.ReadinessChecks...)
	var (
		mu     sync.Mutex
		failed map[string]string
		wg     sync.WaitGroup
	)
	for _, c := range checks {
		wg.Go(func() {
			if err := c.Check(ctx); err != nil {
				mu.Lock()
				defer mu.Unlock()
				if failed == nil {
					failed = make(map[string]string)
				}
				failed[c.Name] = err.Error()
			}
		})
	}
	wg.Wait()
	s.noteReadiness(failed)
	return failed
}

// noteReadiness logs each change between ready and not ready, with the
// failed checks: without an admin listener the log is where an operator
// reads why.
func (s *Server) noteReadiness(failed map[string]string) {
	state := int32(1)
	if len(failed) > 0 {
		state = 2
	}
	if s.readyState.Swap(state) == state {
		return
	}
	if state == 1 {
		s.log.Info("ready")
		return
	}
	attrs := make([]any, 0, 2*len(failed))
	for name, err := range failed {
		attrs = append(attrs, name, err)
	}
	s.log.Warn("not ready", slog.Group("checks", attrs...))
}

// Drain makes /readyz answer 503 from now on. Call it when shutdown
// begins, before the listener closes, so that load balancers stop sending
// new clients here while the ones already connected are served.
func (s *Server) Drain() { s.draining.Store(true) }
