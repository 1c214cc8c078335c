package postgres

import (
	"context"
	"crypto/rand"
	"embed"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/tern/v2/migrate"

	"github.com/presenced/presenced/hub"
)

var (
	_ hub.Store      = (*Store)(nil)
	_ hub.BatchStore = (*Store)(nil)
	_ hub.Feed       = (*Store)(nil)
)

//go:embed migrations/*.sql
var migrations embed.FS

// Config tunes a Store. The zero value of each field means the default
// given beside it.
type Config struct {
	// NodeID names this node in the database; it must differ between the
	// nodes of a cluster. Default: the host name and a random suffix, new
	// at every start.
	NodeID string
	// LeaseTTL is how long this node counts as alive after it last renewed
	// its lease; it renews every third of it. A node killed without a word
	// turns its users offline on the other nodes within LeaseTTL +
	// SweepInterval. Default 15s.
	LeaseTTL time.Duration
	// SweepInterval is how often this node looks for dead nodes and
	// expired heartbeats. Default 5s.
	SweepInterval time.Duration
	// Grace is how long this node's users stay online after it stops
	// gracefully, so that they can reconnect to another node without an
	// offline flap: the hub's grace, which internal/presenced passes, so
	// that one setting rules both. Default: the hub's default, 5s.
	Grace time.Duration
	// ListenerPing is how long the listening connection may stay silent
	// before the node checks that it is still alive; a check that takes
	// longer than 5s counts as a dead connection. Default 10s.
	ListenerPing time.Duration
	// Observer, when set, is told of every write and of the live nodes
	// found by each sweep, for metrics.
	Observer hub.StoreObserver
	// WebhookURLs are the webhook receivers: each change's events are
	// kept for each of them in the outbox, in the change's transaction,
	// until they are delivered. The nodes of a cluster should list the
	// same URLs.
	WebhookURLs []string
	// Logger receives the store's logs. Default slog.Default().
	Logger *slog.Logger
}

// DefaultConfig returns the values that the zero fields stand for, but
// NodeID, which is made anew at every start; presenced's flags and README
// show them.
func DefaultConfig() Config {
	return Config{LeaseTTL: 15 * time.Second, SweepInterval: 5 * time.Second, Grace: hub.DefaultConfig().Grace, ListenerPing: 10 * time.Second}
}

func (c *Config) setDefaults() {
	if c.NodeID == "" {
		host, _ := os.Hostname()
		b := make([]byte, 4)
		_, _ = rand.Read(b) // crypto/rand.Read never fails on Linux
		c.NodeID = host + "-" + hex.EncodeToString(b)
	}
	d := DefaultConfig()
	if c.LeaseTTL == 0 {
		c.LeaseTTL = d.LeaseTTL
	}
	if c.SweepInterval == 0 {
		c.SweepInterval = d.SweepInterval
	}
	if c.Grace == 0 {
		c.Grace = d.Grace
	}
	if c.ListenerPing == 0 {
		c.ListenerPing = d.ListenerPing
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
}

// Store keeps statuses in PostgreSQL and shares them with the other nodes
// on the same database (and schema).
type Store struct {
	cfg       Config
	log       *slog.Logger
	pool      *pgxpool.Pool
	listenCfg *pgx.ConnConfig
	schema    string
	channel   string // NOTIFY channel: one per schema, so schemas do not mix

	listening atomic.Bool // the feed's connection is up and listening

	mu      sync.Mutex
	vouched map[int64]struct{} // users this node vouches for, to reclaim a lost lease

	claimsMu sync.Mutex
	claims   map[*pgClaim]struct{} // this node's webhook claims, told of local commits

	stop    context.CancelFunc
	stopped chan struct{} // closed when the maintenance goroutine ends
	closed  sync.Once
}

// Open connects to the database at url, applies the migrations under an
// advisory lock (so that nodes starting together do not race), registers
// this node with a lease and starts renewing it. Close releases it all.
func Open(ctx context.Context, url string, cfg Config) (*Store, error) {
	cfg.setDefaults()
	pcfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		return nil, fmt.Errorf("database url: %w", err)
	}
	if pcfg.ConnConfig.ConnectTimeout == 0 {
		pcfg.ConnConfig.ConnectTimeout = 5 * time.Second
	}
	if _, set := pcfg.ConnConfig.RuntimeParams["plan_cache_mode"]; !set {
		// Every statement here finds rows by key, whatever its arguments,
		// so one plan serves all its calls. PostgreSQL would otherwise
		// plan those that take an array of ids at every call, which costs
		// more than running them.
		pcfg.ConnConfig.RuntimeParams["plan_cache_mode"] = "force_generic_plan"
	}
	pool, err := pgxpool.NewWithConfig(ctx, pcfg)
	if err != nil {
		return nil, fmt.Errorf("database: %w", err)
	}
	s := &Store{cfg: cfg, log: cfg.Logger, pool: pool, listenCfg: pcfg.ConnConfig.Copy(), vouched: make(map[int64]struct{}), claims: make(map[*pgClaim]struct{})}
	// Named, so that an operator can tell the listening connection apart.
	s.listenCfg.RuntimeParams["application_name"] = ListenerName(cfg.NodeID)
	if err := s.init(ctx); err != nil {
		pool.Close()
		return nil, err
	}
	if err := s.dropPreviousVouches(ctx); err != nil {
		pool.Close()
		return nil, err
	}
	// The cluster's size is known from the start, not from the first
	// sweep: an alert on too few nodes must not fire at every deploy.
	if err := s.observeNodes(ctx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("count live nodes: %w", err)
	}
	mctx, stop := context.WithCancel(context.Background())
	s.stop, s.stopped = stop, make(chan struct{})
	go s.maintain(mctx)
	return s, nil
}

// dropPreviousVouches ends the vouches the database still holds under
// this node's id. A node that starts holds no connection, so those are
// its previous life's, which ended without a word (a crash, kill -9) and
// which the restart made look alive again by renewing the lease: a node
// started again with the same -node-id would otherwise keep their users
// online for good. Their users are decided again at once.
func (s *Store) dropPreviousVouches(ctx context.Context) error {
	rows, err := s.pool.Query(ctx, `DELETE FROM presence_vouches WHERE node_id = $1 RETURNING user_id`, s.cfg.NodeID)
	if err != nil {
		return fmt.Errorf("drop the previous vouches: %w", err)
	}
	ids, err := pgx.CollectRows(rows, pgx.RowTo[int64])
	if err != nil {
		return fmt.Errorf("drop the previous vouches: %w", err)
	}
	if len(ids) > 0 {
		s.log.Warn("dropped the vouches of this node's previous run", "node_id", s.cfg.NodeID, "users", len(ids))
	}
	_, err = s.refresh(ctx, ids)
	return err
}

func (s *Store) init(ctx context.Context) error {
	conn, err := s.pool.Acquire(ctx)
	if err != nil {
		return fmt.Errorf("database: %w", err)
	}
	defer conn.Release()
	if err := Migrate(ctx, conn.Conn()); err != nil {
		return err
	}
	var schema string
	if err := conn.QueryRow(ctx, "SELECT current_schema()").Scan(&schema); err != nil {
		return fmt.Errorf("current schema: %w", err)
	}
	s.schema, s.channel = schema, "presence:"+schema
	_, err = conn.Exec(ctx, `INSERT INTO presence_nodes (node_id, lease_until, lease_ttl) VALUES ($1, now() + $2::interval, $2::interval)
		ON CONFLICT (node_id) DO UPDATE SET lease_until = EXCLUDED.lease_until, lease_ttl = EXCLUDED.lease_ttl, stopped = false`, s.cfg.NodeID, s.cfg.LeaseTTL)
	if err != nil {
		return fmt.Errorf("register node: %w", err)
	}
	return nil
}

// Migrate brings the schema on conn's search path to the latest version.
// tern holds an advisory lock while it works, so concurrent callers wait
// for each other.
func Migrate(ctx context.Context, conn *pgx.Conn) error {
	m, err := migrate.NewMigrator(ctx, conn, "presence_schema_version")
	if err != nil {
		return fmt.Errorf("migrations: %w", err)
	}
	sub, err := fs.Sub(migrations, "migrations")
	if err != nil {
		return err
	}
	if err := m.LoadMigrations(sub); err != nil {
		return fmt.Errorf("migrations: %w", err)
	}
	if err := m.Migrate(ctx); err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	return nil
}

// ListenerName is the application_name of the listening connection of
// the node named nodeID, as pg_stat_activity shows it.
func ListenerName(nodeID string) string { return "presenced listener " + nodeID }

// NodeID is the name of this node in the database.
func (s *Store) NodeID() string { return s.cfg.NodeID }

// Database says where the statuses live, for the start-up log: the
// server's host and port, the database, and the schema when it is not
// public. It never names the user or the password.
func (s *Store) Database() string {
	c := s.pool.Config().ConnConfig
	where := net.JoinHostPort(c.Host, strconv.Itoa(int(c.Port))) + "/" + c.Database
	if s.schema != "public" {
		where += ", schema " + s.schema
	}
	return where
}

// Close stops renewing the lease and closes the pool. The lease is set
// to end after the grace, not at once: the other nodes keep this node's users online
// that long, so that they can reconnect elsewhere without a flap. Close
// is safe to call twice.
func (s *Store) Close(ctx context.Context) error {
	var err error
	s.closed.Do(func() {
		s.stop()
		<-s.stopped
		_, err = s.pool.Exec(ctx, `UPDATE presence_nodes SET lease_until = now() + $2::interval, lease_ttl = $2::interval, stopped = true WHERE node_id = $1`,
			s.cfg.NodeID, s.cfg.Grace)
		if err != nil {
			err = fmt.Errorf("release lease: %w", err)
		}
		s.pool.Close()
	})
	return err
}

// CheckDatabase reports whether the database answers.
func (s *Store) CheckDatabase(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	return s.pool.Ping(ctx)
}

// CheckListener reports whether the feed's connection listens.
func (s *Store) CheckListener(context.Context) error {
	if !s.listening.Load() {
		return errors.New("not listening for changes of other nodes")
	}
	return nil
}

const columns = `user_id, username, online, appear_offline, busy, wait_time, last_seen, created_at, updated_at, heartbeat_until, version, device_heartbeats, busy_since, hide_last_seen`

// LoadAll returns every stored status.
func (s *Store) LoadAll(ctx context.Context) ([]hub.Record, error) {
	return s.load(ctx, nil)
}

// load returns the statuses of ids, or all when ids is nil, with the
// number of live nodes vouching for each.
func (s *Store) load(ctx context.Context, ids []int64) ([]hub.Record, error) {
	q := `SELECT now(), ` + columns + `, coalesce(v.n, 0) FROM presence_status p
		LEFT JOIN (SELECT s.user_id, count(*) AS n FROM presence_vouches s JOIN presence_nodes n USING (node_id)
			WHERE presence_lease_end(n.lease_until, n.lease_ttl) > now() GROUP BY s.user_id) v USING (user_id)`
	args := []any{}
	if ids != nil {
		q += ` WHERE p.user_id = ANY($1)`
		args = append(args, ids)
	}
	rows, err := s.pool.Query(ctx, q, args...)
	if err != nil {
		return nil, classify("load statuses", err)
	}
	defer rows.Close()
	var out []hub.Record
	for rows.Next() {
		var cols rowWithNow
		var n int
		if err := rows.Scan(append(cols.dest(), &n)...); err != nil {
			return nil, classify("load statuses", err)
		}
		out = append(out, cols.row().Record(cols.now, n))
	}
	if err := rows.Err(); err != nil {
		return nil, classify("load statuses", err)
	}
	return out, nil
}

// rowWithNow scans now() and the columns of a status.
type rowWithNow struct {
	now       time.Time
	r         hub.Row
	wait      *int32
	hb        *time.Time
	devices   map[string]int64 // device id -> Unix microseconds
	busySince *time.Time
}

func (c *rowWithNow) dest() []any {
	return []any{&c.now, &c.r.UserID, &c.r.Username, &c.r.Online, &c.r.AppearOffline, &c.r.Busy, &c.wait,
		&c.r.LastSeen, &c.r.CreatedAt, &c.r.UpdatedAt, &c.hb, &c.r.Version, &c.devices, &c.busySince, &c.r.HideLastSeen}
}

func (c *rowWithNow) row() hub.Row {
	r := c.r
	if c.wait != nil {
		w := int(*c.wait)
		r.WaitTime = &w
	}
	if c.hb != nil {
		r.HeartbeatUntil = *c.hb
	}
	if c.busySince != nil {
		r.BusySince = *c.busySince
	}
	for dev, us := range c.devices {
		if r.DeviceHeartbeats == nil {
			r.DeviceHeartbeats = make(map[string]time.Time, len(c.devices))
		}
		r.DeviceHeartbeats[dev] = time.UnixMicro(us)
	}
	return r
}

// deviceJSON encodes device heartbeats as the device_heartbeats column
// holds them: a JSON object of Unix microseconds.
func deviceJSON(hb map[string]time.Time) string {
	m := make(map[string]int64, len(hb))
	for dev, t := range hb {
		m[dev] = t.UnixMicro()
	}
	b, _ := json.Marshal(m) // strings and integers only
	return string(b)
}

// truncate rounds times to what PostgreSQL keeps, microseconds, so that
// the answer equals what a later read returns.
func truncate(r hub.Row) hub.Row {
	r.LastSeen = r.LastSeen.Truncate(time.Microsecond)
	r.CreatedAt = r.CreatedAt.Truncate(time.Microsecond)
	r.UpdatedAt = r.UpdatedAt.Truncate(time.Microsecond)
	r.HeartbeatUntil = r.HeartbeatUntil.Truncate(time.Microsecond)
	r.BusySince = r.BusySince.Truncate(time.Microsecond)
	if r.DeviceHeartbeats != nil {
		hb := make(map[string]time.Time, len(r.DeviceHeartbeats))
		for dev, t := range r.DeviceHeartbeats {
			hb[dev] = t.Truncate(time.Microsecond)
		}
		r.DeviceHeartbeats = hb
	}
	return r
}

func nullTime(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	return &t
}

// SaveLastSeen writes a batch of last_seen times and heartbeat extensions
// in one statement, and tells the other nodes the new times.
func (s *Store) SaveLastSeen(ctx context.Context, seen []hub.LastSeen) error {
	if len(seen) == 0 {
		return nil
	}
	start := time.Now()
	ids := make([]int64, len(seen))
	ats := make([]time.Time, len(seen))
	ttls := make([]float64, len(seen))
	devs := make([]string, len(seen)) // device id -> seconds, as JSON
	for i, ls := range seen {
		ids[i], ats[i], ttls[i] = ls.UserID, ls.At, ls.HeartbeatTTL.Seconds()
		ext := make(map[string]float64, len(ls.DeviceHeartbeats))
		for dev, ttl := range ls.DeviceHeartbeats {
			ext[dev] = ttl.Seconds()
		}
		b, _ := json.Marshal(ext)
		devs[i] = string(b)
	}
	err := s.transact(ctx, func(tx pgx.Tx) error {
		// Lock the rows in user id order first, as ApplyBatch does, so that
		// a flush and another node's batch never deadlock.
		if _, err := tx.Exec(ctx, `SELECT FROM presence_status WHERE user_id = ANY($1) ORDER BY user_id FOR UPDATE`, ids); err != nil {
			return err
		}
		// While a user appears offline their last_seen stays. A device
		// heartbeat is extended only while it is stored: one that a
		// socket took over since is not brought back.
		rows, err := tx.Query(ctx, `UPDATE presence_status p SET
				last_seen = CASE WHEN p.appear_offline THEN p.last_seen ELSE GREATEST(p.last_seen, b.at) END,
				heartbeat_until = CASE WHEN b.ttl > 0
					THEN GREATEST(p.heartbeat_until, now() + b.ttl * interval '1 second')
					ELSE p.heartbeat_until END,
				device_heartbeats = p.device_heartbeats || coalesce((
					SELECT jsonb_object_agg(e.key, GREATEST((p.device_heartbeats->>e.key)::bigint,
						(extract(epoch FROM now()) * 1000000)::bigint + (e.value::float8 * 1000000)::bigint))
					FROM jsonb_each_text(b.dev) e WHERE p.device_heartbeats ? e.key), '{}')
			FROM unnest($1::bigint[], $2::timestamptz[], $3::float8[], $4::jsonb[]) AS b(user_id, at, ttl, dev)
			WHERE p.user_id = b.user_id
			RETURNING p.user_id, p.last_seen`, ids, ats, ttls, devs)
		if err != nil {
			return err
		}
		var got []hub.LastSeen
		for rows.Next() {
			var ls hub.LastSeen
			if err := rows.Scan(&ls.UserID, &ls.At); err != nil {
				return err
			}
			got = append(got, ls)
		}
		if err := rows.Err(); err != nil {
			return err
		}
		b := &pgx.Batch{}
		for _, payload := range encodeLastSeen(got) {
			b.Queue(`SELECT pg_notify($1, $2)`, s.channel, payload)
		}
		return tx.SendBatch(ctx, b).Close()
	})
	s.observe("last_seen", start, err)
	return classify("save last_seen", err)
}

func (s *Store) observe(op string, start time.Time, err error) {
	if s.cfg.Observer != nil {
		s.cfg.Observer.StoreWrite(op, time.Since(start), err)
	}
}

// classify marks the errors that an outage causes, after which the same
// change may succeed later, as hub.ErrUnavailable.
func classify(what string, err error) error {
	if err == nil {
		return nil
	}
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		switch pgErr.Code[:2] {
		case "08", "53", "57", "40": // connection, resources, shutdown, serialization or deadlock
			return fmt.Errorf("%s: %w: %w", what, hub.ErrUnavailable, err)
		}
		return fmt.Errorf("%s: %w", what, err)
	}
	if errors.Is(err, context.Canceled) {
		return fmt.Errorf("%s: %w", what, err)
	}
	// Refused connections, resets, timeouts, a closed pool.
	return fmt.Errorf("%s: %w: %w", what, hub.ErrUnavailable, err)
}
