// Command presenced runs the presence hub: REST and WebSocket on one port,
// statuses in memory (or PostgreSQL once configured).
//
// Every flag has an environment equivalent: -jwt-secret is
// PRESENCE_JWT_SECRET, -addr is PRESENCE_ADDR, and so on. A flag given on
// the command line wins over the environment.
package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/presenced/presenced/auth"
	"github.com/presenced/presenced/hub"
	"github.com/presenced/presenced/internal/presenced"
	"github.com/presenced/presenced/internal/version"
	"github.com/presenced/presenced/storage/postgres"
	"github.com/presenced/presenced/transport"
	"github.com/presenced/presenced/transport/webhook"
	"github.com/presenced/presenced/web"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	err := run(ctx, os.Args[1:], os.Getenv, os.Stderr, nil)
	if err != nil && !errors.Is(err, flag.ErrHelp) { // -h asked for the usage, which went to stdout
		fmt.Fprintln(os.Stderr, "presenced:", err)
		os.Exit(2)
	}
}

// stdout receives what the user asked to read: -h and -version.
var stdout io.Writer = os.Stdout

// options is the parsed configuration.
type options struct {
	addr            string
	adminAddr       string
	readHeader      time.Duration
	readTimeout     time.Duration
	idleTimeout     time.Duration
	maxIdleConns    int
	dev             bool
	devSecret       string
	devFromEnv      bool // PRESENCE_DEV was set, and ignored
	jwtSecret       string
	jwtSecretPrev   string
	jwtIssuer       string
	jwtAudience     string
	jwtLeeway       time.Duration
	jwtNameClaims   string
	jwtPublicKeys   string
	jwksURL         string
	jwksMaxAge      time.Duration
	jwksMinRefresh  time.Duration
	grace           time.Duration
	heartbeatTTL    time.Duration
	pingInterval    time.Duration
	pongTimeout     time.Duration
	writeTimeout    time.Duration
	maxMessageBytes int64
	maxIDs          int
	maxUsername     int
	maxSubs         int
	maxConnsPerUser int
	maxQueueBytes   int
	msgRate         float64
	maxBadMessages  int
	msgBurst        int
	reqRate         float64
	reqBurst        int
	ipSocketRate    float64
	ipSocketBurst   int
	socketRate      float64
	socketBurst     int
	clientIPHeader  string
	allowedOrigins  string
	shutdownTimeout time.Duration
	shutdownDelay   time.Duration
	logLevel        string
	logFormat       string
	databaseURL     string
	nodeID          string
	leaseTTL        time.Duration
	sweepInterval   time.Duration
	webhookSecret   string
	webhookURLs     string
	webhookQueue    int
	webhookBackoff  time.Duration
	watchPolicy     string
	watchAuthzURL   string
	watchAuthzTTL   time.Duration
	watchAuthzWait  time.Duration
	version         bool
	from            map[string]string // flag name: the flag or variable that set it
}

// newFlags defines every flag into o. The defaults of those that set a
// part's configuration are the part's own (presenced.DefaultOptions),
// written nowhere else; the README's configuration table lists each flag
// with its default, and a test holds the two together.
func newFlags(o *options, output io.Writer) *flag.FlagSet {
	d := presenced.DefaultOptions()
	fs := flag.NewFlagSet("presenced", flag.ContinueOnError)
	fs.SetOutput(output)
	fs.StringVar(&o.addr, "addr", d.Addr, "address to listen on")
	fs.StringVar(&o.adminAddr, "admin-addr", "", "address of the operators' listener for /metrics, /healthz and a /readyz that names failed checks; empty: none, and /metrics is served on -addr")
	fs.DurationVar(&o.readHeader, "read-header-timeout", d.Conn.ReadHeaderTimeout, "bound on reading a request's headers, from the connection's start for its first request")
	fs.DurationVar(&o.readTimeout, "read-timeout", d.Conn.ReadTimeout, "bound on reading a whole request, headers and body")
	fs.DurationVar(&o.idleTimeout, "idle-timeout", d.Conn.IdleTimeout, "how long a kept-alive connection may wait for its next request")
	fs.IntVar(&o.maxIdleConns, "max-idle-connections", d.Conn.MaxIdleConns, "most connections waiting for a request (new ones and kept-alive ones); over it, or out of files, the longest-waiting is closed")
	fs.BoolVar(&o.dev, "dev", false, "development mode: sign tokens at POST /dev/token with -dev-secret or a random key, allow any origin; refused together with a production key")
	fs.StringVar(&o.devSecret, "dev-secret", "", "HS256 secret of development mode (at least 32 bytes), so that tokens outlive a restart; empty: a random one at each start")
	fs.StringVar(&o.jwtSecret, "jwt-secret", "", "HS256 secret of the bearer tokens, at least 32 bytes")
	fs.StringVar(&o.jwtSecretPrev, "jwt-secret-previous", "", "a second HS256 secret still accepted during key rotation")
	fs.StringVar(&o.jwtIssuer, "jwt-issuer", "", "when set, tokens must carry this iss")
	fs.StringVar(&o.jwtAudience, "jwt-audience", "", "when set, tokens must carry this aud")
	fs.DurationVar(&o.jwtLeeway, "jwt-leeway", d.Auth.Leeway, "clock skew allowed on exp, nbf and iat")
	fs.StringVar(&o.jwtNameClaims, "jwt-username-claim", strings.Join(d.Auth.UsernameClaims, ","), "comma-separated token claims that may carry the display name; the first that holds one wins")
	fs.StringVar(&o.jwtPublicKeys, "jwt-public-key-file", "", "comma-separated PEM files of RS256, ES256 or EdDSA public keys that verify tokens")
	fs.StringVar(&o.jwksURL, "jwt-jwks-url", "", "https URL of a JSON Web Key Set that verifies tokens (RS256, ES256, EdDSA)")
	fs.DurationVar(&o.jwksMaxAge, "jwt-jwks-max-age", d.Auth.JWKSMaxAge, "how long a fetched key set is used before it is fetched again")
	fs.DurationVar(&o.jwksMinRefresh, "jwt-jwks-min-refresh", d.Auth.JWKSMinRefresh, "least time between two key set fetches, also for tokens naming an unknown kid")
	fs.DurationVar(&o.grace, "grace", d.Hub.Grace, "how long a user stays online after their last connection ends")
	fs.DurationVar(&o.heartbeatTTL, "heartbeat-ttl", d.Hub.HeartbeatTTL, "how long one REST heartbeat or update keeps its device (or, without X-Device-ID, its user) online")
	fs.DurationVar(&o.pingInterval, "ping-interval", d.Transport.PingInterval, "how often the server pings each socket")
	fs.DurationVar(&o.pongTimeout, "pong-timeout", d.Transport.PongTimeout, "how long a ping may go unanswered")
	fs.DurationVar(&o.writeTimeout, "write-timeout", d.Transport.WriteTimeout, "bound on one write to a socket, and on writing a REST answer beyond -read-timeout")
	fs.Int64Var(&o.maxMessageBytes, "max-message-bytes", d.Transport.MaxMessageBytes, "largest client frame; larger closes with 1009")
	fs.IntVar(&o.maxIDs, "max-ids", d.Transport.MaxIDsPerRequest, "most user ids in GET /users/presence or one subscribe message")
	fs.IntVar(&o.maxUsername, "max-username-length", d.Transport.MaxUsernameLength, "longest username, in characters, a token or POST /dev/token may carry; a longer one, or one with a control character, is refused (401, close 4401)")
	fs.IntVar(&o.maxSubs, "max-subscriptions", d.Hub.MaxSubscriptions, "most users one connection may watch")
	fs.IntVar(&o.maxConnsPerUser, "max-connections-per-user", d.Hub.MaxSessionsPerUser, "most live sockets of one user")
	fs.IntVar(&o.maxQueueBytes, "max-queue-bytes", d.Hub.MaxQueueBytes, "send queue per socket; a client that falls further behind is closed with 4000")
	fs.Float64Var(&o.msgRate, "max-messages-per-second", d.Transport.MessagesPerSecond, "steady rate of messages one socket may send; over it set_status is merged, others are dropped with an error, and staying over it closes 4429 (0: no limit)")
	fs.IntVar(&o.msgBurst, "message-burst", d.Transport.MessageBurst, "messages one socket may send at once above the steady rate")
	fs.IntVar(&o.maxBadMessages, "max-bad-messages", d.Transport.MaxBadMessages, "invalid messages in a row (each answered with an error) before a socket is closed with 4400 (0: no limit)")
	fs.Float64Var(&o.reqRate, "max-requests-per-second", d.Transport.RequestsPerSecond, "steady rate of REST requests of one user; over it: 429 with Retry-After (0: no limit)")
	fs.IntVar(&o.reqBurst, "request-burst", d.Transport.RequestBurst, "REST requests one user may make at once above the steady rate")
	fs.Float64Var(&o.ipSocketRate, "max-sockets-per-second-per-ip", d.Transport.SocketsPerSecondPerIP, "steady rate of new sockets from one address (IPv6: one /64); over it: 429 with Retry-After (0: no limit)")
	fs.IntVar(&o.ipSocketBurst, "socket-burst-per-ip", d.Transport.SocketBurstPerIP, "new sockets one address may open at once above the steady rate")
	fs.Float64Var(&o.socketRate, "max-sockets-per-second", d.Transport.SocketsPerSecond, "steady rate of new sockets the server admits in all, so a reconnect storm comes in at a steady pace; over it: 503 with Retry-After (0: no limit)")
	fs.IntVar(&o.socketBurst, "socket-burst", d.Transport.SocketBurst, "new sockets the server admits at once above the steady rate")
	fs.StringVar(&o.clientIPHeader, "client-ip-header", "", "header in which a trusted reverse proxy passes the client address (X-Forwarded-For, X-Real-IP); empty: the TCP peer")
	fs.StringVar(&o.allowedOrigins, "allowed-origins", "", "comma-separated browser origins allowed besides the server's own")
	fs.DurationVar(&o.shutdownTimeout, "shutdown-timeout", d.ShutdownTimeout, "how long a graceful shutdown may take")
	fs.DurationVar(&o.shutdownDelay, "shutdown-delay", 0, "at shutdown, how long /readyz answers 503 before the listener closes, so load balancers stop routing here first")
	fs.StringVar(&o.logLevel, "log-level", "info", "debug, info, warn or error")
	fs.StringVar(&o.logFormat, "log-format", "json", "json or text")
	fs.StringVar(&o.databaseURL, "database-url", "", "PostgreSQL URL: statuses live there, and nodes on one database form a cluster; empty keeps them in memory (DATABASE_URL is read too)")
	fs.StringVar(&o.nodeID, "node-id", "", "this node's name in the cluster; empty: host name and a random suffix")
	fs.DurationVar(&o.leaseTTL, "lease-ttl", d.Postgres.LeaseTTL, "a node that stops renewing its lease for this long is dead; its users go offline within lease-ttl + sweep-interval")
	fs.DurationVar(&o.sweepInterval, "sweep-interval", d.Postgres.SweepInterval, "how often a node looks for dead nodes and expired heartbeats")
	fs.StringVar(&o.webhookURLs, "webhook-url", "", "comma-separated URLs of the app backend that receive user.online, user.offline and user.status events, signed with -webhook-secret")
	fs.IntVar(&o.webhookQueue, "webhook-queue", d.Webhook.MaxQueue, "most webhook events waiting for one URL; beyond it the oldest are dropped and counted")
	fs.DurationVar(&o.webhookBackoff, "webhook-max-backoff", d.Webhook.MaxBackoff, "longest wait between two tries of a webhook request that failed with a 5xx, a 429 or a timeout")
	fs.StringVar(&o.webhookSecret, "webhook-secret", "", "secret that signs webhooks and watch authorization requests as Standard Webhooks do: whsec_ and the base64 of at least 24 random bytes; comma-separated, requests carry a signature for each (rotation)")
	fs.StringVar(&o.watchPolicy, "watch-policy", "open", "who may read whom: open (any signed-in user, anyone), claim (the users the token's watch claim lists) or callback (the app's backend at -watch-authz-url answers)")
	fs.StringVar(&o.watchAuthzURL, "watch-authz-url", "", "with -watch-policy callback: the app backend's URL that presenced POSTs to, signed with -webhook-secret, to ask whom a user may read")
	fs.DurationVar(&o.watchAuthzTTL, "watch-authz-ttl", transport.DefaultCallbackConfig().TTL, "with -watch-policy callback: how long the backend's answer for one watcher and user is kept; a permission withdrawn ends a socket's subscription within it (at least 1s)")
	fs.DurationVar(&o.watchAuthzWait, "watch-authz-timeout", transport.DefaultCallbackConfig().Timeout, "with -watch-policy callback: bound on one request to -watch-authz-url; past it, or on an error or a bad answer, presenced refuses (503 on REST, an error on the socket)")
	fs.BoolVar(&o.version, "version", false, "print the version and exit")
	return fs
}

// commandLineOnly are the flags that no environment variable sets.
// Development mode opens POST /dev/token to anyone, so it must be asked
// for where the command is written, not inherited from an environment
// that a deployment shares with a developer's shell.
// -version is a question, not configuration.
var commandLineOnly = map[string]bool{"dev": true, "version": true}

// parseFlags reads args, with PRESENCE_* environment variables as defaults.
func parseFlags(args []string, getenv func(string) string, output io.Writer) (options, error) {
	var o options
	fs := newFlags(&o, output)
	explain := explainFlags(fs)
	o.from = map[string]string{}
	var envErr error
	fs.VisitAll(func(f *flag.Flag) {
		if commandLineOnly[f.Name] {
			o.devFromEnv = o.devFromEnv || f.Name == "dev" && getenv(envName(f.Name)) != ""
			f.Usage += " (command line only)"
			return
		}
		if v := getenv(envName(f.Name)); v != "" {
			o.from[f.Name] = envName(f.Name)
			if err := f.Value.Set(v); err != nil && envErr == nil {
				envErr = envError(f, v)
			}
		}
		f.Usage += " (env " + envName(f.Name) + ")"
	})
	if envErr != nil {
		return o, envErr
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			printUsage(fs, output)
		}
		return o, explain(err)
	}
	if fs.NArg() > 0 {
		return o, fmt.Errorf("%q is not a flag: presenced takes only flags, such as -addr :8080 (presenced -h lists them)", fs.Arg(0))
	}
	fs.Visit(func(f *flag.Flag) { o.from[f.Name] = "-" + f.Name })
	if err := checkValues(fs, o.from); err != nil {
		return o, err
	}
	if o.databaseURL == "" && getenv("DATABASE_URL") != "" {
		o.databaseURL, o.from["database-url"] = getenv("DATABASE_URL"), "DATABASE_URL"
	}
	return o, nil
}

// setBy names where the value of the flag name came from, for errors
// that are found only when it is used: the flag, or its variable.
func (o *options) setBy(name string) string {
	if from := o.from[name]; from != "" {
		return from
	}
	return "-" + name
}

func envName(flagName string) string {
	return "PRESENCE_" + strings.ToUpper(strings.ReplaceAll(flagName, "-", "_"))
}

// run starts the server and blocks until ctx is done and the server has
// shut down. When ready is not nil it receives the listening address.
func run(ctx context.Context, args []string, getenv func(string) string, stderr io.Writer, ready chan<- string) error {
	o, err := parseFlags(args, getenv, stdout)
	if err != nil {
		return err
	}
	if o.version {
		_, err := fmt.Fprintln(stdout, "presenced", version.Get())
		return err
	}
	var level slog.Level
	_ = level.UnmarshalText([]byte(o.logLevel)) // parseFlags checked it
	log, err := newLogger(stderr, o.logFormat, level)
	if err != nil {
		return err
	}
	if o.devFromEnv {
		log.Warn("PRESENCE_DEV is ignored: development mode is switched on only by -dev on the command line")
	}

	acfg, err := authConfig(&o)
	if err != nil {
		return err
	}
	signer, err := webhookSigner(&o)
	if err != nil {
		return err
	}
	watch, err := watchPolicy(&o, signer, log)
	if err != nil {
		return err
	}
	if len(splitList(o.webhookURLs)) > 0 && signer == nil {
		return fmt.Errorf("%s needs -webhook-secret (or PRESENCE_WEBHOOK_SECRET), so that the backend can tell presenced's requests from anyone else's", o.setBy("webhook-url"))
	}
	srv, err := presenced.Open(ctx, presenced.Options{
		Addr: o.addr, AdminAddr: o.adminAddr,
		Conn: transport.ConnConfig{
			ReadHeaderTimeout: o.readHeader, ReadTimeout: o.readTimeout, WriteTimeout: o.readTimeout + o.writeTimeout,
			IdleTimeout: o.idleTimeout, MaxIdleConns: o.maxIdleConns,
		},
		Auth: acfg, Dev: o.dev,
		Hub: hub.Config{
			Grace: o.grace, HeartbeatTTL: o.heartbeatTTL, MaxQueueBytes: o.maxQueueBytes,
			MaxSubscriptions: o.maxSubs, MaxSessionsPerUser: o.maxConnsPerUser,
		},
		Transport: transport.Config{
			PingInterval: o.pingInterval, PongTimeout: o.pongTimeout, WriteTimeout: o.writeTimeout,
			MaxMessageBytes: o.maxMessageBytes, MaxIDsPerRequest: o.maxIDs, MaxUsernameLength: o.maxUsername,
			AllowedOrigins:    splitList(o.allowedOrigins),
			MessagesPerSecond: o.msgRate, MessageBurst: o.msgBurst, MaxBadMessages: o.maxBadMessages,
			RequestsPerSecond: o.reqRate, RequestBurst: o.reqBurst,
			SocketsPerSecondPerIP: o.ipSocketRate, SocketBurstPerIP: o.ipSocketBurst,
			SocketsPerSecond: o.socketRate, SocketBurst: o.socketBurst, ClientIPHeader: o.clientIPHeader,
			Static: web.FS(), WatchPolicy: watch,
		},
		DatabaseURL: o.databaseURL,
		Postgres:    postgres.Config{NodeID: o.nodeID, LeaseTTL: o.leaseTTL, SweepInterval: o.sweepInterval},
		Webhook: webhook.Config{
			URLs: splitList(o.webhookURLs), Signer: signer, MaxQueue: o.webhookQueue, MaxBackoff: o.webhookBackoff,
		},
		ShutdownDelay: o.shutdownDelay, ShutdownTimeout: o.shutdownTimeout,
		Logger: log,
	})
	if err != nil {
		return o.explainSetting(err)
	}
	defer srv.Close()
	logStartup(log, srv, &o)
	if ready != nil {
		ready <- srv.Addr()
	}
	return srv.Run(ctx)
}

// settingFlags name the flag of each presenced.Options field that can
// fail when it is used.
var settingFlags = map[string]string{
	"Addr": "addr", "AdminAddr": "admin-addr", "DatabaseURL": "database-url", "Webhook.URLs": "webhook-url",
}

// explainSetting names a setting that failed as its user set it: the
// flag, or its variable.
func (o *options) explainSetting(err error) error {
	var se *presenced.SettingError
	if !errors.As(err, &se) || settingFlags[se.Setting] == "" {
		return err
	}
	name := o.setBy(settingFlags[se.Setting])
	if se.Value != "" {
		name += " " + se.Value
	}
	return fmt.Errorf("%s: %w", name, se.Err)
}

// authConfig gathers the keys that verify tokens. Development mode has
// one key of its own, -dev-secret or a random one, and no other: its
// POST /dev/token signs a token for anyone who asks, so a production key
// beside it would let anyone sign in as any user.
func authConfig(o *options) (auth.Config, error) {
	cfg := auth.Config{
		JWKSURL: o.jwksURL, JWKSMaxAge: o.jwksMaxAge, JWKSMinRefresh: o.jwksMinRefresh,
		Issuer: o.jwtIssuer, Audience: o.jwtAudience, Leeway: o.jwtLeeway,
		UsernameClaims: splitList(o.jwtNameClaims),
	}
	if o.dev {
		for _, p := range []struct{ name, value string }{
			{"-jwt-secret", o.jwtSecret}, {"-jwt-secret-previous", o.jwtSecretPrev},
			{"-jwt-public-key-file", o.jwtPublicKeys}, {"-jwt-jwks-url", o.jwksURL},
		} {
			if p.value != "" {
				return cfg, fmt.Errorf("-dev refuses to start with %s (or %s) set: development mode signs a token for anyone at POST /dev/token, so it must never hold a production key; drop -dev, or drop %s and use -dev-secret for a stable development key",
					p.name, envName(strings.TrimPrefix(p.name, "-")), p.name)
			}
		}
		secret := o.devSecret
		if secret == "" {
			secret = randomSecret()
		}
		if err := checkSecret("-dev-secret", secret); err != nil {
			return cfg, err
		}
		cfg.Secrets = [][]byte{[]byte(secret)}
		return cfg, nil
	}
	if o.devSecret != "" {
		return cfg, errors.New("-dev-secret (or PRESENCE_DEV_SECRET) is set without -dev: it is development mode's key; give production keys with -jwt-secret, -jwt-public-key-file or -jwt-jwks-url")
	}
	for _, path := range splitList(o.jwtPublicKeys) {
		data, err := os.ReadFile(path)
		if err != nil {
			return cfg, fmt.Errorf("-jwt-public-key-file: %w", err)
		}
		keys, err := auth.ParsePublicKeysPEM(data)
		if err != nil {
			return cfg, fmt.Errorf("-jwt-public-key-file %s: %w", path, err)
		}
		cfg.PublicKeys = append(cfg.PublicKeys, keys...)
	}
	if o.jwtSecret == "" && len(cfg.PublicKeys) == 0 && cfg.JWKSURL == "" {
		return cfg, errors.New("no way to verify tokens: set PRESENCE_JWT_SECRET (or -jwt-secret), -jwt-public-key-file or -jwt-jwks-url, or run with -dev")
	}
	for _, p := range []struct{ name, value string }{{"-jwt-secret", o.jwtSecret}, {"-jwt-secret-previous", o.jwtSecretPrev}} {
		if p.value == "" {
			continue
		}
		if err := checkSecret(p.name, p.value); err != nil {
			return cfg, err
		}
		cfg.Secrets = append(cfg.Secrets, []byte(p.value))
	}
	return cfg, nil
}

// webhookSigner reads -webhook-secret; nil when none is set.
func webhookSigner(o *options) (*webhook.Signer, error) {
	if o.webhookSecret == "" {
		return nil, nil
	}
	signer, err := webhook.NewSigner(splitList(o.webhookSecret)...)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", o.setBy("webhook-secret"), err)
	}
	return signer, nil
}

// watchPolicy builds the policy -watch-policy names. A callback URL with
// another policy is refused rather than ignored: the operator meant the
// backend to decide, and open would let everyone read everyone.
func watchPolicy(o *options, signer *webhook.Signer, log *slog.Logger) (transport.WatchPolicy, error) {
	if o.watchPolicy != "callback" && o.watchAuthzURL != "" {
		return nil, fmt.Errorf("-watch-authz-url is set but -watch-policy is %s: set -watch-policy callback for the backend to decide, or drop the URL", o.watchPolicy)
	}
	switch o.watchPolicy {
	case "open":
		return transport.OpenPolicy{}, nil
	case "claim":
		return transport.ClaimPolicy{}, nil
	case "callback":
	default:
		return nil, fmt.Errorf("-watch-policy %s: not a policy, e.g. -watch-policy open (or claim, or callback)", o.watchPolicy)
	}
	switch {
	case o.watchAuthzURL == "":
		return nil, errors.New("-watch-policy callback needs -watch-authz-url (or PRESENCE_WATCH_AUTHZ_URL), the app backend's URL that answers whom a user may read")
	case signer == nil:
		return nil, errors.New("-watch-policy callback needs -webhook-secret (or PRESENCE_WEBHOOK_SECRET): its requests are signed like webhooks, so that the backend can tell them from anyone else's")
	case o.watchAuthzTTL < time.Second:
		return nil, fmt.Errorf("-watch-authz-ttl %s: at least 1s, since every socket asks again when its answers expire, e.g. -watch-authz-ttl 1m", o.watchAuthzTTL)
	case o.watchAuthzWait <= 0:
		return nil, fmt.Errorf("-watch-authz-timeout %s: a request needs some time, e.g. -watch-authz-timeout 2s", o.watchAuthzWait)
	}
	p, err := transport.NewCallbackPolicy(transport.CallbackConfig{
		URL: o.watchAuthzURL, Signer: signer, TTL: o.watchAuthzTTL, Timeout: o.watchAuthzWait, Logger: log,
	})
	if err != nil {
		return nil, fmt.Errorf("-watch-authz-url: %w", err)
	}
	return p, nil
}

// checkSecret refuses an HS256 secret shorter than RFC 7518 allows, naming
// the flag it came from.
func checkSecret(flagName, secret string) error {
	if len(secret) < auth.MinSecretBytes {
		return fmt.Errorf("%s (or %s) is %d bytes; an HS256 secret must be at least %d bytes (RFC 7518, section 3.2), since a shorter one can be guessed from any token it signed: make one with `openssl rand -hex 32`",
			flagName, envName(strings.TrimPrefix(flagName, "-")), len(secret), auth.MinSecretBytes)
	}
	return nil
}

// newLogger returns the process's logger: JSON lines for log collectors by
// default, or slog's key=value text for a person at a terminal.
func newLogger(w io.Writer, format string, level slog.Level) (*slog.Logger, error) {
	opts := &slog.HandlerOptions{Level: level}
	switch format {
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	case "text":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	}
	return nil, fmt.Errorf("-log-format: %q is neither json nor text", format)
}

func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

func randomSecret() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b) // crypto/rand.Read never fails on Linux
	return hex.EncodeToString(b)
}
