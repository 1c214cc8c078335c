package postgres

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"go.uber.org/goleak"

	"github.com/presenced/presenced/hub"
	"github.com/presenced/presenced/internal/faultproxy"
	"github.com/presenced/presenced/internal/needs"
	"github.com/presenced/presenced/internal/pgtest"
	"github.com/presenced/presenced/internal/testkit"
	"github.com/presenced/presenced/storage/storetest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(needs.Main(m)) }

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// open opens a store on url, closed when t ends.
func open(t testing.TB, url string, cfg Config) *Store {
	t.Helper()
	if cfg.Logger == nil {
		cfg.Logger = quiet
	}
	s, err := Open(context.Background(), url, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close(context.Background()) })
	return s
}

func TestStore(t *testing.T) {
	pgtest.URL(t)
	t.Parallel()
	storetest.Run(t, func(t *testing.T) hub.Store { return open(t, pgtest.Schema(t), Config{}) })
}

func TestOutbox(t *testing.T) {
	pgtest.URL(t)
	t.Parallel()
	storetest.RunOutbox(t, func(t *testing.T, urls []string) storetest.OutboxStore {
		return open(t, pgtest.Schema(t), Config{WebhookURLs: urls})
	})
}

func TestMigrationsAreIdempotentAndConcurrent(t *testing.T) {
	url := pgtest.Schema(t)
	t.Parallel()
	var wg sync.WaitGroup
	errs := make(chan error, 4)
	for range 4 {
		wg.Go(func() {
			conn, err := pgx.Connect(context.Background(), url)
			if err != nil {
				errs <- err
				return
			}
			defer conn.Close(context.Background())
			errs <- Migrate(context.Background(), conn)
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatalf("nodes migrating together: %v", err)
		}
	}
	conn, err := pgx.Connect(context.Background(), url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	var version int
	if err := conn.QueryRow(context.Background(), "SELECT version FROM presence_schema_version").Scan(&version); err != nil {
		t.Fatal(err)
	}
	files, err := fs.Glob(migrations, "migrations/*.sql")
	if err != nil {
		t.Fatal(err)
	}
	if version != len(files) || version < 3 {
		t.Fatalf("schema version %d, want %d: one per migration", version, len(files))
	}
}

func TestNodesVouchTogether(t *testing.T) {
	url := pgtest.Schema(t)
	t.Parallel()
	a := open(t, url, Config{NodeID: "a"})
	b := open(t, url, Config{NodeID: "b"})
	ctx := context.Background()
	step := func(s *Store, kind hub.OpKind, online bool, vouchers int) {
		t.Helper()
		rec, err := s.Apply(ctx, hub.Op{Kind: kind, UserID: 1})
		if err != nil {
			t.Fatal(err)
		}
		if rec.Online != online || rec.Vouchers != vouchers {
			t.Fatalf("node %s op %d: online %v with %d vouchers, want %v with %d", s.NodeID(), kind, rec.Online, rec.Vouchers, online, vouchers)
		}
	}
	step(a, hub.OpConnect, true, 1)
	step(b, hub.OpConnect, true, 2)
	step(a, hub.OpRelease, true, 1) // still connected on b
	step(b, hub.OpRelease, false, 0)
}

// TestVouchesOfThePreviousVersionStillCount runs, on the migrated schema,
// the statements by which a node of the version before presence_vouches
// (still running during a rolling deploy) vouches and stops vouching,
// through the table's old name: its vouches must count for this version.
func TestVouchesOfThePreviousVersionStillCount(t *testing.T) {
	url := pgtest.Schema(t)
	t.Parallel()
	a := open(t, url, Config{NodeID: "a"})
	ctx := context.Background()
	old, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer old.Close(ctx)
	for _, sql := range []string{
		`INSERT INTO presence_nodes (node_id, lease_until, lease_ttl) VALUES ('old', now() + interval '1 hour', interval '1 hour')`,
		`INSERT INTO presence_sessions (user_id, node_id) SELECT u, 'old' FROM unnest(ARRAY[1, 2]::bigint[]) AS u ON CONFLICT DO NOTHING`,
		`INSERT INTO presence_sessions (user_id, node_id) SELECT u, 'old' FROM unnest(ARRAY[1]::bigint[]) AS u ON CONFLICT DO NOTHING`,
		`DELETE FROM presence_sessions s USING presence_nodes n WHERE s.user_id = 2 AND s.node_id = n.node_id`,
	} {
		if _, err := old.Exec(ctx, sql); err != nil {
			t.Fatalf("%s: %v", sql, err)
		}
	}
	if rec, err := a.Apply(ctx, hub.Op{Kind: hub.OpConnect, UserID: 1}); err != nil || rec.Vouchers != 2 {
		t.Fatalf("connect beside the old node's vouch: %d vouchers, err %v; want 2", rec.Vouchers, err)
	}
	if _, err := old.Exec(ctx, `DELETE FROM presence_sessions WHERE user_id = ANY(ARRAY[1]::bigint[]) AND node_id = 'old'`); err != nil {
		t.Fatal(err)
	}
	if rec, err := a.Apply(ctx, hub.Op{Kind: hub.OpRefresh, UserID: 1}); err != nil || rec.Vouchers != 1 {
		t.Fatalf("after the old node let go: %d vouchers, err %v; want 1", rec.Vouchers, err)
	}
	var n int
	if err := old.QueryRow(ctx, `SELECT count(*) FROM presence_vouches`).Scan(&n); err != nil || n != 1 {
		t.Fatalf("%d vouches stored, err %v; want a's alone", n, err)
	}
}

// feed runs s's feed and collects what it delivers.
type feed struct {
	mu      sync.Mutex
	changes []hub.Change
	more    chan struct{}
	stop    context.CancelFunc
	done    chan struct{}
}

func runFeed(t *testing.T, s *Store) *feed {
	ctx, cancel := context.WithCancel(context.Background())
	f := &feed{more: make(chan struct{}, 1), stop: cancel, done: make(chan struct{})}
	go func() {
		defer close(f.done)
		s.Run(ctx, func(c hub.Change) {
			f.mu.Lock()
			f.changes = append(f.changes, c)
			f.mu.Unlock()
			select {
			case f.more <- struct{}{}:
			default:
			}
		})
	}()
	t.Cleanup(func() { cancel(); <-f.done })
	return f
}

// waitFor waits until some delivered change satisfies ok.
func (f *feed) waitFor(t *testing.T, what string, ok func(hub.Change) bool) {
	t.Helper()
	deadline := time.After(20 * time.Second)
	seen := 0
	for {
		f.mu.Lock()
		for ; seen < len(f.changes); seen++ {
			if ok(f.changes[seen]) {
				f.mu.Unlock()
				return
			}
		}
		f.mu.Unlock()
		select {
		case <-f.more:
		case <-deadline:
			t.Fatalf("no %s within 20s", what)
		}
	}
}

func hasRecord(id int64, pred func(hub.Record) bool) func(hub.Change) bool {
	return func(c hub.Change) bool {
		for _, r := range c.Records {
			if r.UserID == id && pred(r) {
				return true
			}
		}
		return false
	}
}

// twoNodes opens nodes a and b on a schema of their own and waits until
// b's feed listens.
func twoNodes(t *testing.T) (a, b *Store, f *feed) {
	url := pgtest.Schema(t)
	a = open(t, url, Config{NodeID: "a"})
	b = open(t, url, Config{NodeID: "b"})
	f = runFeed(t, b)
	f.waitFor(t, "first snapshot", func(c hub.Change) bool { return c.Snapshot })
	return a, b, f
}

func TestFeedCarriesChangesBetweenNodes(t *testing.T) {
	t.Parallel()
	a, _, f := twoNodes(t)
	ctx := context.Background()
	rec, err := a.Apply(ctx, hub.Op{Kind: hub.OpUpdate, UserID: 5, Username: "alice", Update: hub.StatusUpdate{Busy: ptr(true), WaitTimeSet: true, WaitTime: ptr(15)}})
	if err != nil {
		t.Fatal(err)
	}
	f.waitFor(t, "busy record from node a", hasRecord(5, func(r hub.Record) bool {
		return r.Version == rec.Version && r.Busy && r.WaitTime != nil && *r.WaitTime == 15 && r.Username == "alice" &&
			r.LastSeen.Equal(rec.LastSeen) && r.CreatedAt.Equal(rec.CreatedAt)
	}))
	// A name too long for a NOTIFY payload still reaches the others.
	long := strings.Repeat("x", 9000)
	if _, err := a.Apply(ctx, hub.Op{Kind: hub.OpConnect, UserID: 6, Username: long}); err != nil {
		t.Fatal(err)
	}
	f.waitFor(t, "record with a 9000-byte name", hasRecord(6, func(r hub.Record) bool { return r.Username == long && r.Online }))
	// last_seen flushes travel too.
	at := rec.LastSeen.Add(time.Minute)
	if err := a.SaveLastSeen(ctx, []hub.LastSeen{{UserID: 5, At: at}}); err != nil {
		t.Fatal(err)
	}
	f.waitFor(t, "last_seen of user 5", func(c hub.Change) bool {
		for _, ls := range c.LastSeen {
			if ls.UserID == 5 && ls.At.Equal(at) {
				return true
			}
		}
		return false
	})
}

func TestListenerComesBackAndResyncs(t *testing.T) {
	t.Parallel()
	a, b, f := twoNodes(t)
	ctx := context.Background()
	// Drop b's listening connection from the server side.
	var killed int
	err := a.pool.QueryRow(ctx, `SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
		WHERE query = $1`, "LISTEN "+pgx.Identifier{b.channel}.Sanitize()).Scan(&killed)
	if err != nil || killed != 1 {
		t.Fatalf("terminate the listener: %d killed, %v", killed, err)
	}
	// A change while nobody listens on b: its NOTIFY is lost to b.
	rec, err := a.Apply(ctx, hub.Op{Kind: hub.OpConnect, UserID: 9, Username: "missed"})
	if err != nil {
		t.Fatal(err)
	}
	f.waitFor(t, "resync carrying the missed change", func(c hub.Change) bool {
		return c.Snapshot && hasRecord(9, func(r hub.Record) bool { return r.Version >= rec.Version && r.Online })(c)
	})
	// Ready again once the resync is delivered.
	testkit.Eventually(t, 10*time.Second, func() error {
		if err := b.CheckListener(ctx); err != nil {
			return fmt.Errorf("listener not ready after its resync: %w", err)
		}
		return nil
	})
}

func TestSilentListenerIsFoundAndReplaced(t *testing.T) {
	url := pgtest.Schema(t)
	t.Parallel()
	cfg, err := pgx.ParseConfig(url)
	if err != nil {
		t.Fatal(err)
	}
	proxy, err := faultproxy.Start(fmt.Sprintf("%s:%d", cfg.Host, cfg.Port))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = proxy.Close() })
	a := open(t, url, Config{NodeID: "a"})
	b := open(t, pgtest.Via(t, url, proxy.Addr()), Config{NodeID: "b", ListenerPing: 300 * time.Millisecond})
	f := runFeed(t, b)
	f.waitFor(t, "first snapshot", func(c hub.Change) bool { return c.Snapshot })
	ctx := context.Background()
	// The listener says it listens only once its snapshot is out; a
	// check before then would find it "silent" for the wrong reason.
	testkit.Eventually(t, 20*time.Second, func() error { return b.CheckListener(ctx) })

	// The network drops b's traffic without a word: no FIN, no reset.
	proxy.Blackhole()
	lost := time.Now()
	testkit.Eventually(t, 20*time.Second, func() error {
		if b.CheckListener(ctx) == nil {
			return errors.New("a silent listening connection goes unnoticed")
		}
		return nil
	})
	t.Logf("silent listener found after %v (ping after %v of silence, 5s to answer)", time.Since(lost), 300*time.Millisecond)
	rec, err := a.Apply(ctx, hub.Op{Kind: hub.OpConnect, UserID: 7, Username: "unheard"})
	if err != nil {
		t.Fatal(err)
	}
	proxy.Restore()
	f.waitFor(t, "the change made while b heard nothing", hasRecord(7, func(r hub.Record) bool { return r.Version >= rec.Version && r.Online }))
}

func TestDeadNodeIsSweptAndGracefulStopKeepsGrace(t *testing.T) {
	url := pgtest.Schema(t)
	t.Parallel()
	logs := &testkit.Buffer{}
	fast := Config{LeaseTTL: time.Second, SweepInterval: 200 * time.Millisecond, Grace: 2 * time.Second,
		Logger: slog.New(slog.NewTextHandler(logs, nil))}
	cfgA, cfgB, cfgC := fast, fast, fast
	cfgA.NodeID, cfgB.NodeID, cfgC.NodeID = "a", "b", "c"
	a := open(t, url, cfgA)
	c := open(t, url, cfgC)
	b := open(t, url, cfgB)
	f := runFeed(t, b)
	f.waitFor(t, "first snapshot", func(c hub.Change) bool { return c.Snapshot })
	ctx := context.Background()
	if _, err := a.Apply(ctx, hub.Op{Kind: hub.OpConnect, UserID: 1}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Apply(ctx, hub.Op{Kind: hub.OpConnect, UserID: 2}); err != nil {
		t.Fatal(err)
	}
	// a dies without a word: no renewal, no release.
	a.stop()
	<-a.stopped
	a.pool.Close()
	died := time.Now()
	f.waitFor(t, "user 1 offline after node a died", hasRecord(1, func(r hub.Record) bool { return !r.Online }))
	if took := time.Since(died); took > fast.LeaseTTL+fast.SweepInterval+5*time.Second {
		t.Fatalf("offline %v after the node died; the bound is lease + sweep", took)
	}
	// The death is logged once, by the node whose sweep removed it, and
	// the sweep says how many users it turned offline.
	waitOnce(t, logs, `msg="node died: its lease ran out" node_id=a`)
	waitOnce(t, logs, `msg="swept users of dead nodes and expired heartbeats" users=1 turned_offline=1`)
	// c stops gracefully: its user stays online for the grace, then not.
	stopped := time.Now()
	if err := c.Close(ctx); err != nil {
		t.Fatal(err)
	}
	f.waitFor(t, "user 2 offline after node c stopped", hasRecord(2, func(r hub.Record) bool { return !r.Online }))
	if took := time.Since(stopped); took < fast.Grace-100*time.Millisecond {
		t.Fatalf("user of a gracefully stopped node offline after %v, before the grace of %v", took, fast.Grace)
	}
	// The sweep removes the nodes once their users are decided, and tells
	// a stop from a death.
	pgtest.WaitUntil(t, url, `SELECT array_agg(node_id) = ARRAY['b'] FROM presence_nodes`)
	waitOnce(t, logs, `msg="node left: it stopped and its grace ended" node_id=c`)
	if strings.Contains(logs.String(), `msg="node died: its lease ran out" node_id=c`) {
		t.Fatalf("a graceful stop logged as a death:\n%s", logs.String())
	}
}

// waitOnce waits until logs hold line, and fails the test if they hold
// it more than once.
func waitOnce(t *testing.T, logs *testkit.Buffer, line string) {
	t.Helper()
	logs.Await(t, 20*time.Second, "line "+line, func(s string) bool {
		n := strings.Count(s, line)
		if n > 1 {
			t.Fatalf("%q logged %d times, want once:\n%s", line, n, s)
		}
		return n == 1
	})
}

// countNodes is a hub.StoreObserver that keeps the latest node count.
type countNodes struct {
	mu    sync.Mutex
	nodes int
	seen  bool
}

func (c *countNodes) StoreWrite(string, time.Duration, error) {}
func (c *countNodes) ClusterNodes(n int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.nodes, c.seen = n, true
}

// TestNodeCountIsKnownAtOpen holds the cluster-size gauge right from the
// start: a node reports the live nodes when it opens, not at its first
// sweep (an hour away here).
func TestNodeCountIsKnownAtOpen(t *testing.T) {
	url := pgtest.Schema(t)
	t.Parallel()
	open(t, url, Config{NodeID: "a", SweepInterval: time.Hour})
	var obs countNodes
	b := open(t, url, Config{NodeID: "b", SweepInterval: time.Hour, Observer: &obs})
	obs.mu.Lock()
	nodes, seen := obs.nodes, obs.seen
	obs.mu.Unlock()
	if !seen || nodes != 2 {
		t.Fatalf("at open the observer heard of %d nodes (told: %v), want 2", nodes, seen)
	}
	// The start-up log names the database and schema, never the user.
	where := b.Database()
	if !regexp.MustCompile(`^127\.0\.0\.1:\d+/\w+, schema t_[0-9a-f]{12}$`).MatchString(where) || strings.Contains(where, "postgres@") {
		t.Fatalf("Database() = %q, want host:port/database, schema t_…", where)
	}
}

func TestLostLeaseIsTakenAgain(t *testing.T) {
	url := pgtest.Schema(t)
	t.Parallel()
	cfg := Config{NodeID: "a", LeaseTTL: 900 * time.Millisecond, SweepInterval: time.Hour}
	a := open(t, url, cfg)
	ctx := context.Background()
	if _, err := a.Apply(ctx, hub.Op{Kind: hub.OpConnect, UserID: 3}); err != nil {
		t.Fatal(err)
	}
	// Another node swept a while a was stalled: its lease and rows are gone.
	if _, err := a.pool.Exec(ctx, `DELETE FROM presence_nodes WHERE node_id = 'a'`); err != nil {
		t.Fatal(err)
	}
	// The renewal finds the lease gone, takes it again and writes back
	// the user it holds.
	pgtest.WaitUntil(t, url, `SELECT count(*) = 1 FROM presence_vouches s JOIN presence_nodes n USING (node_id)
		WHERE s.user_id = 3 AND n.node_id = 'a' AND presence_lease_end(n.lease_until, n.lease_ttl) > now()`)
	if rec, err := a.Apply(ctx, hub.Op{Kind: hub.OpRefresh, UserID: 3}); err != nil || !rec.Online || rec.Vouchers != 1 {
		t.Fatalf("after the lease was taken again: %+v, %v", rec, err)
	}
}

func TestOutageIsUnavailable(t *testing.T) {
	url := pgtest.Schema(t)
	t.Parallel()
	a := open(t, url, Config{})
	a.pool.Close() // as good as a database that is gone
	_, err := a.Apply(context.Background(), hub.Op{Kind: hub.OpConnect, UserID: 1})
	if !errors.Is(err, hub.ErrUnavailable) {
		t.Fatalf("apply without a database: %v, want ErrUnavailable", err)
	}
}

func ptr[T any](v T) *T { return &v }

// BenchmarkApply measures one change of state: a transaction under the
// user's row lock, with its NOTIFY, over 100 users.
func BenchmarkApply(b *testing.B) {
	s := open(b, pgtest.Schema(b), Config{})
	ctx := context.Background()
	busy := false
	for i := 0; b.Loop(); i++ {
		busy = !busy
		op := hub.Op{Kind: hub.OpUpdate, UserID: int64(i%100 + 1), Update: hub.StatusUpdate{Busy: &busy}}
		if _, err := s.Apply(ctx, op); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkSaveLastSeen measures one flush of 1000 users' last_seen in
// one statement; ns/op divided by 1000 is the cost per user.
func BenchmarkSaveLastSeen(b *testing.B) {
	s := open(b, pgtest.Schema(b), Config{})
	ctx := context.Background()
	batch := make([]hub.LastSeen, 1000)
	for i := range batch {
		if _, err := s.Apply(ctx, hub.Op{Kind: hub.OpHeartbeat, UserID: int64(i + 1), HeartbeatTTL: time.Minute}); err != nil {
			b.Fatal(err)
		}
		batch[i] = hub.LastSeen{UserID: int64(i + 1)}
	}
	for b.Loop() {
		now := time.Now()
		for i := range batch {
			batch[i].At = now
		}
		if err := s.SaveLastSeen(ctx, batch); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkApplyBatch measures batches of changes, each batch one
// transaction over 1000 users; ns/change is the cost of one change.
func BenchmarkApplyBatch(b *testing.B) {
	for _, n := range []int{1, 16, 64, 256} {
		b.Run(fmt.Sprintf("changes=%d", n), func(b *testing.B) {
			s := open(b, pgtest.Schema(b), Config{})
			ctx := context.Background()
			ops := make([]hub.Op, n)
			busy := false
			next := 0
			for b.Loop() {
				busy = !busy
				for i := range ops {
					ops[i] = hub.Op{Kind: hub.OpUpdate, UserID: int64(next%1000 + 1), Update: hub.StatusUpdate{Busy: &busy}}
					next++
				}
				out, err := s.ApplyBatch(ctx, ops)
				if err != nil {
					b.Fatal(err)
				}
				for _, a := range out {
					if a.Err != nil {
						b.Fatal(a.Err)
					}
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/change")
		})
	}
}
