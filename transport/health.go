package transport

import (
	"context"
	"net/http"
	"sync"
	"time"
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

// readyz answers the readiness probe: 200 while the hub answers and every
// configured check passes, 503 naming each failure otherwise, and 503 from
// the moment [Server.Drain] is called.
func (s *Server) readyz(w http.ResponseWriter, r *http.Request) {
	failed := s.checkReadiness(r.Context())
	if len(failed) == 0 {
		writeJSON(w, http.StatusOK, readyResponse{Status: "ready"})
		return
	}
	writeJSON(w, http.StatusServiceUnavailable, readyResponse{Status: "not ready", Checks: failed})
}

// checkReadiness runs every check at once and returns the failures by name.
func (s *Server) checkReadiness(ctx context.Context) map[string]string {
	if s.draining.Load() {
		return map[string]string{"shutdown": "server is shutting down"}
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
	return failed
}

// Drain makes /readyz answer 503 from now on. Call it when shutdown
// begins, before the listener closes, so that load balancers stop sending
// new clients here while the ones already connected are served.
func (s *Server) Drain() { s.draining.Store(true) }
