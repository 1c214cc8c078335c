package presenced

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"sync"
	"time"

	"github.com/presenced/presenced/auth"
	"github.com/presenced/presenced/hub"
	"github.com/presenced/presenced/internal/version"
	"github.com/presenced/presenced/metrics"
	"github.com/presenced/presenced/storage/memory"
	"github.com/presenced/presenced/storage/postgres"
	"github.com/presenced/presenced/transport"
	"github.com/presenced/presenced/transport/webhook"
)

// Options say what to build. Each part's own Config carries its tuning;
// the fields that tie the parts together (the hub's Feed and EncodeEvent,
// the transport's Observer, Metrics and ReadinessChecks, the store's
// Observer, the webhook sender's Outbox) are set by Open, whatever they
// hold.
type Options struct {
	// Addr is where the public listener listens, host:port. Ignored when
	// Listener is set.
	Addr string
	// Listener, when set, is served instead of a listener on Addr, so
	// that a test can wrap it (to shrink socket buffers, say). Open takes
	// it over: Close and Run close it.
	Listener net.Listener
	// AdminAddr, when set, opens a second listener for operators:
	// /metrics, /healthz and a /readyz that names failed checks. Empty:
	// none, and /metrics is served on the public listener.
	AdminAddr string
	// Conn bounds the connections of both listeners. Its Logger is
	// Logger.
	Conn transport.ConnConfig

	// Auth says which tokens to accept.
	Auth auth.Config
	// Dev is development mode: POST /dev/token signs tokens for a day
	// with the first of Auth.Secrets, which it requires, and any origin
	// may connect.
	Dev bool

	// Hub tunes the hub. Its Logger is Logger.
	Hub hub.Config
	// Transport tunes REST and the sockets. Its Logger is Logger; Dev
	// sets DevTokens and AllowAnyOrigin.
	Transport transport.Config

	// DatabaseURL, when set, keeps statuses in PostgreSQL, where the
	// nodes on one database form a cluster; empty keeps them in memory.
	DatabaseURL string
	// Postgres tunes the PostgreSQL store. Its Grace is the hub's, its
	// WebhookURLs are Webhook's and its Logger is Logger.
	Postgres postgres.Config

	// Webhook configures the webhook sender; it runs when Webhook.URLs
	// lists any URL, and then Webhook.Signer is required. The store keeps
	// each change's events for those URLs.
	Webhook webhook.Config

	// ShutdownDelay is how long /readyz answers 503 before the listener
	// closes, at shutdown. Zero: none.
	ShutdownDelay time.Duration
	// ShutdownTimeout bounds the graceful shutdown that follows. Default
	// 15s.
	ShutdownTimeout time.Duration

	// Logger receives every part's logs. Default slog.Default().
	Logger *slog.Logger
}

// DefaultOptions returns presenced's defaults: each part's DefaultConfig,
// the public address and the shutdown bound. They are written only in
// the parts; cmd/presenced's flags take theirs from here, and the README
// shows them. A zero field given to Open stands for the same value, but
// where zero turns a limit off (the rates, the token leeway).
func DefaultOptions() Options {
	return Options{
		Addr: ":8080", Conn: transport.DefaultConnConfig(), Auth: auth.DefaultConfig(),
		Hub: hub.DefaultConfig(), Transport: transport.DefaultConfig(),
		Postgres: postgres.DefaultConfig(), Webhook: webhook.DefaultConfig(),
		ShutdownTimeout: 15 * time.Second,
	}
}

// SettingError is an error that shows only when a setting is used: a
// port already taken, a database that does not answer. Setting names the
// Options field, so that the caller can name it as its user wrote it.
type SettingError struct {
	// Setting is the field: "Addr", "AdminAddr", "DatabaseURL" or
	// "Webhook.URLs".
	Setting string
	// Value is the setting's value when it may be shown, else "" (a
	// database URL may hold a password).
	Value string
	Err   error
}

func (e *SettingError) Error() string {
	if e.Value != "" {
		return e.Setting + " " + e.Value + ": " + e.Err.Error()
	}
	return e.Setting + ": " + e.Err.Error()
}

func (e *SettingError) Unwrap() error { return e.Err }

// Server is one node, built and listening. Run serves it; Close releases
// what Open took when Run is not called.
type Server struct {
	log  *slog.Logger
	opts Options

	hub       *hub.Hub
	transport *transport.Server
	metrics   *metrics.Metrics
	st        storage
	sender    *webhook.Sender // nil without webhook URLs

	ln, adminLn       net.Listener // adminLn nil without AdminAddr
	public, adminHTTP *transport.HTTPServer

	hubCtx     context.Context
	stopHub    context.CancelFunc
	hubExited  chan struct{} // closed when the hub's Run has returned
	hubErr     error         // the hub's Run result, set before hubExited closes
	runStarted chan struct{} // closed when Run starts the hub
	closeOnce  sync.Once
	closeErr   error
	runOnce    sync.Once
}

// Open builds every part from o and listens; the PostgreSQL store starts
// its lease. Only the store is running when it returns; Run runs the
// rest.
func Open(ctx context.Context, o Options) (*Server, error) {
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.ShutdownTimeout == 0 {
		o.ShutdownTimeout = DefaultOptions().ShutdownTimeout
	}
	log := o.Logger
	s := &Server{log: log, opts: o, hubExited: make(chan struct{}), runStarted: make(chan struct{})}
	verifier, err := auth.NewVerifier(o.Auth)
	if err != nil {
		o.closeListener()
		return nil, err
	}

	s.metrics = metrics.New(func() hub.Stats { return s.hub.Counts() })
	s.st, err = openStore(ctx, &o, s.metrics)
	if err != nil {
		o.closeListener()
		return nil, err
	}

	hcfg := o.Hub
	hcfg.Feed, hcfg.EncodeEvent, hcfg.Logger = s.st.feed, transport.EncodeEvent, log
	s.hub = hub.New(s.st.store, hcfg)

	tcfg := o.Transport
	tcfg.ReadinessChecks = append(tcfg.ReadinessChecks, s.st.checks...)
	tcfg.Observer, tcfg.Metrics, tcfg.AdminListener, tcfg.Logger = s.metrics, s.metrics.Handler(), o.AdminAddr != "", log
	if o.Dev {
		tcfg.DevTokens, tcfg.AllowAnyOrigin = auth.NewIssuer(o.Auth.Secrets[0], 24*time.Hour), true
	}
	s.transport = transport.New(s.hub, Verifier(verifier), tcfg)

	if len(o.Webhook.URLs) > 0 {
		if s.sender, err = newSender(o.Webhook, s.st.store.(hub.Outbox), s.metrics, log); err != nil {
			s.abandon()
			return nil, err
		}
	}

	s.ln = o.Listener
	if s.ln == nil {
		if s.ln, err = net.Listen("tcp", o.Addr); err != nil {
			s.abandon()
			return nil, &SettingError{Setting: "Addr", Value: o.Addr, Err: err}
		}
	}
	ccfg := o.Conn
	ccfg.Logger = log
	s.public = transport.NewHTTPServer(s.transport, ccfg)
	if o.AdminAddr != "" {
		if s.adminLn, err = net.Listen("tcp", o.AdminAddr); err != nil {
			s.abandon()
			return nil, &SettingError{Setting: "AdminAddr", Value: o.AdminAddr, Err: err}
		}
		s.adminHTTP = transport.NewHTTPServer(s.transport.AdminHandler(), ccfg)
	}
	s.hubCtx, s.stopHub = context.WithCancel(context.Background())
	return s, nil
}

func (o *Options) closeListener() {
	if o.Listener != nil {
		o.Listener.Close()
	}
}

// abandon releases what Open took so far, when Open fails.
func (s *Server) abandon() {
	if s.ln != nil {
		s.ln.Close()
	} else {
		s.opts.closeListener()
	}
	_ = s.st.close()
}

// Addr is the public listener's address.
func (s *Server) Addr() string { return s.ln.Addr().String() }

// AdminAddr is the admin listener's address, "" without one.
func (s *Server) AdminAddr() string {
	if s.adminLn == nil {
		return ""
	}
	return s.adminLn.Addr().String()
}

// Hub is the node's hub.
func (s *Server) Hub() *hub.Hub { return s.hub }

// Transport is the node's REST and WebSocket server.
func (s *Server) Transport() *transport.Server { return s.transport }

// StoreAttrs describe the store for the start-up log line: which, and
// where.
func (s *Server) StoreAttrs() []any { return s.st.describe }

// StopHub stops the hub while the listeners go on serving, as the hub's
// failure would: every socket closes with 1001 and requests that need the
// hub answer 503. It returns once the hub has stopped. Run's shutdown
// does this in its turn; StopHub is for tests of that state.
func (s *Server) StopHub() {
	s.stopHub()
	select {
	case <-s.runStarted:
		<-s.hubExited
	default: // Run has not started the hub; it will find it stopped
	}
}

// Run serves until ctx ends or a part fails, then shuts down: /readyz
// says not ready for ShutdownDelay, the public listener stops accepting
// and finishes its requests, the hub closes every socket with 1001 and
// flushes, the webhook sender stops, the store closes (its lease is left
// to run out after the grace) and the admin listener closes last, so
// that probes and scrapes see the shutdown through. Every goroutine Run
// starts has ended when it returns. Run may be called once.
func (s *Server) Run(ctx context.Context) error {
	err := errors.New("presenced: Run called twice")
	s.runOnce.Do(func() { err = s.run(ctx) })
	return err
}

func (s *Server) run(ctx context.Context) error {
	var wg sync.WaitGroup
	close(s.runStarted)
	wg.Go(func() {
		s.hubErr = s.hub.Run(s.hubCtx)
		close(s.hubExited)
	})
	senderCtx, stopSender := context.WithCancel(context.Background())
	defer stopSender()
	if s.sender != nil {
		wg.Go(func() { s.sender.Run(senderCtx) })
	}
	serveDone := make(chan error, 1)
	wg.Go(func() { serveDone <- s.public.Serve(s.ln) })
	adminDone := make(chan error, 1)
	if s.adminHTTP != nil {
		wg.Go(func() { adminDone <- s.adminHTTP.Serve(s.adminLn) })
	}

	var err error
	hubExited := s.hubExited
	for err == nil && ctx.Err() == nil {
		select {
		case <-ctx.Done():
		case e := <-serveDone:
			err = fmt.Errorf("serve: %w", e)
		case e := <-adminDone:
			err = fmt.Errorf("serve %s: %w", s.opts.AdminAddr, e)
		case <-hubExited:
			// A hub stopped by StopHub returns nil, and the listeners
			// go on serving; any other end is a failure.
			if s.hubErr != nil {
				err = fmt.Errorf("hub: %w", s.hubErr)
			}
			hubExited = nil
		}
	}

	if err == nil {
		// Say not ready and give load balancers the delay to notice.
		// The line comes once readiness is withdrawn, so that whoever
		// reads it (a test) knows /readyz answers 503.
		s.transport.Drain()
		s.log.Info("shutting down", "delay", s.opts.ShutdownDelay)
		if s.opts.ShutdownDelay > 0 {
			delay := time.NewTimer(s.opts.ShutdownDelay)
			select {
			case <-delay.C:
			case e := <-serveDone:
				delay.Stop()
				s.log.Error("serve", "err", e)
			}
		}
	}
	shutdownCtx, cancel := context.WithTimeout(context.Background(), s.opts.ShutdownTimeout)
	defer cancel()
	if e := s.public.Shutdown(shutdownCtx); err == nil {
		err = e
	}
	s.stopHub()
	<-s.hubExited
	if err == nil {
		err = s.hubErr
	}
	if e := s.transport.Wait(shutdownCtx); err == nil {
		err = e
	}
	// The pool closes last; the lease is left to run out after the grace.
	stopSender()
	if e := s.st.close(); err == nil {
		err = e
	}
	if s.adminHTTP != nil {
		adminCtx, cancel := context.WithTimeout(context.Background(), time.Second)
		_ = s.adminHTTP.Shutdown(adminCtx)
		cancel()
	}
	wg.Wait()
	s.closeOnce.Do(func() {})
	s.log.Info("stopped")
	return err
}

// Close releases what Open took (the listeners, the store) when Run was
// not called; after Run it does nothing. It is safe to call twice.
func (s *Server) Close() error {
	s.closeOnce.Do(func() {
		s.stopHub()
		s.ln.Close()
		if s.adminLn != nil {
			s.adminLn.Close()
		}
		s.closeErr = s.st.close()
	})
	return s.closeErr
}

// storage is the store the hub keeps statuses in, with what comes with
// it.
type storage struct {
	store    hub.Store
	feed     hub.Feed // nil for one node in memory
	checks   []transport.ReadinessCheck
	close    func() error
	describe []any // log attributes: the store, and where
}

// openStore opens PostgreSQL when a database URL is given, else memory.
func openStore(ctx context.Context, o *Options, m *metrics.Metrics) (storage, error) {
	if o.DatabaseURL == "" {
		return storage{store: memory.New(o.Webhook.URLs...), close: func() error { return nil },
			describe: []any{"store", "memory: statuses are lost at restart"}}, nil
	}
	openCtx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	pcfg := o.Postgres
	// One grace rules both: how long a user stays online after their
	// last socket, and after this node stops.
	pcfg.Grace = o.Hub.Grace
	if pcfg.Grace == 0 {
		pcfg.Grace = hub.DefaultConfig().Grace
	}
	pcfg.WebhookURLs, pcfg.Observer, pcfg.Logger = o.Webhook.URLs, m, o.Logger
	pg, err := postgres.Open(openCtx, o.DatabaseURL, pcfg)
	if err != nil {
		// The URL is not repeated: it may hold a password. pgx lists a
		// failed connection's hosts on lines of their own.
		return storage{}, &SettingError{Setting: "DatabaseURL", Err: errors.New(strings.Join(strings.Fields(err.Error()), " "))}
	}
	return storage{
		store: pg, feed: pg,
		describe: []any{"store", "postgresql", "database", pg.Database(), "node_id", pg.NodeID()},
		checks: []transport.ReadinessCheck{
			{Name: "database", Check: pg.CheckDatabase},
			{Name: "listener", Check: pg.CheckListener},
		},
		// Close is safe twice: Run calls it at the end of a shutdown and
		// Close may call it again.
		close: func() error {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			return pg.Close(ctx)
		},
	}, nil
}

// newSender builds the webhook sender, which reads the store's outbox.
func newSender(cfg webhook.Config, outbox hub.Outbox, m *metrics.Metrics, log *slog.Logger) (*webhook.Sender, error) {
	var names []string
	for _, u := range cfg.URLs {
		names = append(names, webhook.Name(u))
	}
	m.WebhookTargets(names...)
	cfg.Outbox, cfg.EncodePresence, cfg.Observer, cfg.Logger = outbox, transport.EncodePresence, m, log
	cfg.UserAgent = "presenced/" + version.Get().Version
	s, err := webhook.NewSender(cfg)
	if err != nil {
		return nil, &SettingError{Setting: "Webhook.URLs", Err: err}
	}
	return s, nil
}

// Verifier is the one adapter of auth's verifier to transport's: the
// binary and every test map a token's claims to an Identity through it.
// A socket lives until the token's ValidUntil, exp plus the leeway, the
// same instant up to which the verifier accepts the token.
func Verifier(v *auth.Verifier) transport.Verifier {
	return transport.VerifierFunc(func(token string) (transport.Identity, error) {
		c, err := v.Verify(token)
		return transport.Identity{UserID: c.UserID, Username: c.Username, ValidUntil: c.ValidUntil, Service: c.Service, Watch: c.Watch}, err
	})
}
