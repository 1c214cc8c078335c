package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/jackc/pgx/v5"

	"github.com/presenced/presenced/auth"
	"github.com/presenced/presenced/internal/needs"
	"github.com/presenced/presenced/internal/pgtest"
	"github.com/presenced/presenced/internal/testkit"
	"github.com/presenced/presenced/metrics/metricstest"
	"github.com/presenced/presenced/storage/postgres"
)

// The cluster tests run real presenced processes on one database, so that
// a node can be killed with SIGKILL. Leases and sweeps are short so that
// the tests take seconds; the bounds they check are computed from them.
const (
	clusterSecret = "cluster-test-secret-0123456789abcdef"
	leaseTTL      = 2 * time.Second
	sweepInterval = 500 * time.Millisecond
	clusterGrace  = time.Second
	heartbeatTTL  = 2 * time.Second
	// deadBound is the documented bound on offline events after a node
	// dies: lease + sweep, with room for a loaded machine.
	deadBound = leaseTTL + sweepInterval + 5*time.Second
)

var (
	buildOnce sync.Once
	binary    string
	buildErr  error
)

// presencedBinary builds cmd/presenced once per test run.
func presencedBinary(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "presenced-bin-")
		if err != nil {
			buildErr = err
			return
		}
		if !needs.AtEnd(func() { _ = os.RemoveAll(dir) }) {
			buildErr = errors.New("TestMain must run the tests through needs.Main, which removes the binary")
			return
		}
		binary = filepath.Join(dir, "presenced")
		out, err := exec.Command("go", "build", "-o", binary, ".").CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binary
}

// node is one presenced process.
type node struct {
	t      *testing.T
	id     string
	cmd    *exec.Cmd
	addr   string
	logs   *testkit.Buffer
	exited chan struct{} // closed when the process has ended
}

var listeningRE = regexp.MustCompile(`"msg":"listening","addr":"([^"]+)"`)

func startNode(t *testing.T, dbURL, name string, extra ...string) *node {
	t.Helper()
	// Node ids are unique in the database, which parallel tests share.
	id := name + "-" + strings.TrimPrefix(regexp.MustCompile(`search_path=\w+`).FindString(dbURL), "search_path=")
	return startProcess(t, presencedBinary(t), id, append([]string{"-addr", "127.0.0.1:0", "-node-id", id}, extra...), append(os.Environ(),
		"PRESENCE_JWT_SECRET="+clusterSecret,
		"DATABASE_URL="+dbURL,
		"PRESENCE_DATABASE_URL=",
		"PRESENCE_LEASE_TTL="+leaseTTL.String(),
		"PRESENCE_SWEEP_INTERVAL="+sweepInterval.String(),
		"PRESENCE_GRACE="+clusterGrace.String(),
		"PRESENCE_HEARTBEAT_TTL="+heartbeatTTL.String(),
		"PRESENCE_LOG_FORMAT=json",
		"PRESENCE_LOG_LEVEL=info",
	))
}

// startProcess runs the presenced binary bin as node id, with args and
// the environment env (JSON logs, so that its address is read from the
// start-up line), and waits until it is ready.
func startProcess(t *testing.T, bin, id string, args, env []string) *node {
	t.Helper()
	cmd := exec.Command(bin, args...)
	cmd.Env = env
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	n := &node{t: t, id: id, cmd: cmd, logs: &testkit.Buffer{}, exited: make(chan struct{})}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	addrc := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			line := sc.Text()
			_, _ = n.logs.Write([]byte(line + "\n"))
			if m := listeningRE.FindStringSubmatch(line); m != nil {
				addrc <- m[1]
			}
		}
		_, _ = io.Copy(io.Discard, stderr)
		_ = cmd.Wait()
		close(n.exited)
	}()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-n.exited
		if t.Failed() {
			t.Logf("node %s log:\n%s", id, n.logs)
		}
	})
	select {
	case n.addr = <-addrc:
	case <-n.exited:
		t.Fatalf("node %s exited at start:\n%s", id, n.logs)
	case <-time.After(30 * time.Second):
		t.Fatalf("node %s did not listen within 30s:\n%s", id, n.logs)
	}
	n.waitReady()
	return n
}

// waitReady waits until /readyz answers 200.
func (n *node) waitReady() {
	n.t.Helper()
	n.waitReadyz(http.StatusOK, 30*time.Second)
}

// waitReadyz waits until /readyz answers want: the one way these tests
// wait for a node's readiness, which no event announces.
func (n *node) waitReadyz(want int, within time.Duration) {
	n.t.Helper()
	testkit.Eventually(n.t, within, func() error {
		if code, body := n.readyz(); code != want {
			return fmt.Errorf("node %s's /readyz answers %d %s, want %d", n.id, code, body, want)
		}
		return nil
	})
}

func (n *node) readyz() (int, string) {
	c := http.Client{Timeout: 5 * time.Second}
	resp, err := c.Get("http://" + n.addr + "/readyz")
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// waitLog waits until the node has logged a line that contains want.
func (n *node) waitLog(want string) {
	n.t.Helper()
	n.logs.Await(n.t, 20*time.Second, "line "+want+" from node "+n.id, func(s string) bool { return strings.Contains(s, want) })
}

// kill ends the node with SIGKILL: no close frames, no lease release.
func (n *node) kill() {
	n.t.Helper()
	if err := n.cmd.Process.Kill(); err != nil {
		n.t.Fatal(err)
	}
	<-n.exited
}

// terminate asks the node to stop gracefully; n.exited says when it has.
func (n *node) terminate() {
	n.t.Helper()
	if err := n.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		n.t.Fatal(err)
	}
}

func token(t *testing.T, userID int64, name string) string {
	t.Helper()
	tok, err := auth.NewIssuer([]byte(clusterSecret), time.Hour).Issue(userID, name)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// presence is a presence event as a client reads it.
type presence struct {
	UserID   int64  `json:"user_id"`
	Username string `json:"username"`
	IsOnline bool   `json:"is_online"`
	IsBusy   bool   `json:"is_busy"`
	WaitTime *int   `json:"wait_time"`
}

func (p presence) String() string {
	w := "-"
	if p.WaitTime != nil {
		w = fmt.Sprint(*p.WaitTime)
	}
	return fmt.Sprintf("%d:%s:online=%t:busy=%t:wait=%s", p.UserID, p.Username, p.IsOnline, p.IsBusy, w)
}

// client is one WebSocket client; it records the presence events it
// reads, in order.
type client struct {
	t       *testing.T
	ws      *websocket.Conn
	mu      sync.Mutex
	events  []presence
	replies map[string]int // other messages read, by type
	closed  error          // why reading stopped
	more    chan struct{}
	done    chan struct{}
}

func dial(t *testing.T, n *node, userID int64, name string) *client {
	t.Helper()
	c, _, err := dialURL(t, websocket.DefaultDialer, "ws://"+n.addr+"/ws", nil, userID, name)
	if err != nil {
		t.Fatalf("dial node %s: %v", n.id, err)
	}
	return c
}

// dialURL opens a socket at url with d, as userID, with the headers h
// besides the token, and reads it as dial's clients do. A refused
// handshake is returned, with the response, for the caller to judge.
func dialURL(t *testing.T, d *websocket.Dialer, url string, h http.Header, userID int64, name string) (*client, *http.Response, error) {
	t.Helper()
	h = h.Clone()
	if h == nil {
		h = http.Header{}
	}
	h.Set("Authorization", "Bearer "+token(t, userID, name))
	ws, resp, err := d.Dial(url, h)
	if err != nil {
		return nil, resp, err
	}
	c := &client{t: t, ws: ws, replies: map[string]int{}, more: make(chan struct{}, 1), done: make(chan struct{})}
	go c.read()
	t.Cleanup(func() { _ = ws.Close(); <-c.done })
	return c, resp, nil
}

func (c *client) read() {
	defer close(c.done)
	for {
		_, data, err := c.ws.ReadMessage()
		c.mu.Lock()
		if err != nil {
			c.closed = err
			c.mu.Unlock()
			c.signal()
			return
		}
		var batch []json.RawMessage
		if len(data) > 0 && data[0] == '[' {
			_ = json.Unmarshal(data, &batch)
		} else {
			batch = []json.RawMessage{data}
		}
		for _, raw := range batch {
			var typ struct {
				Type string `json:"type"`
			}
			_ = json.Unmarshal(raw, &typ)
			if typ.Type == "presence" {
				var p presence
				_ = json.Unmarshal(raw, &p)
				c.events = append(c.events, p)
			} else {
				c.replies[typ.Type]++
			}
		}
		c.mu.Unlock()
		c.signal()
	}
}

func (c *client) signal() {
	select {
	case c.more <- struct{}{}:
	default:
	}
}

func (c *client) send(msg string) {
	c.t.Helper()
	if err := c.ws.WriteMessage(websocket.TextMessage, []byte(msg)); err != nil {
		c.t.Fatal(err)
	}
}

// eventsOf returns the events about one user so far.
func (c *client) eventsOf(userID int64) []presence {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []presence
	for _, p := range c.events {
		if p.UserID == userID {
			out = append(out, p)
		}
	}
	return out
}

// await waits until an event about userID satisfies ok and returns when it
// arrived.
func (c *client) await(userID int64, what string, within time.Duration, ok func(presence) bool) time.Time {
	c.t.Helper()
	deadline := time.After(within)
	for {
		for _, p := range c.eventsOf(userID) {
			if ok(p) {
				return time.Now()
			}
		}
		select {
		case <-c.more:
		case <-deadline:
			c.t.Fatalf("no event %s for user %d within %v; events: %v", what, userID, within, c.eventsOf(userID))
		}
	}
}

// closeErr waits until the server closes the socket and returns why.
func (c *client) closeErr() error {
	c.t.Helper()
	select {
	case <-c.done:
	case <-time.After(30 * time.Second):
		c.t.Fatal("socket not closed within 30s")
	}
	return c.closed
}

func online(p presence) bool  { return p.IsOnline }
func offline(p presence) bool { return !p.IsOnline }

// subscribe watches ids and waits for the snapshot.
func (c *client) subscribe(ids ...int64) {
	c.t.Helper()
	b, _ := json.Marshal(ids)
	c.request(`{"type":"subscribe","user_ids":`+string(b)+`}`, "subscribed")
}

// request sends msg and waits for one more reply of type answer.
func (c *client) request(msg, answer string) {
	c.t.Helper()
	c.mu.Lock()
	before := c.replies[answer]
	c.mu.Unlock()
	c.send(msg)
	deadline := time.After(20 * time.Second)
	for {
		c.mu.Lock()
		n, closed := c.replies[answer], c.closed
		c.mu.Unlock()
		if n > before {
			return
		}
		if closed != nil {
			c.t.Fatalf("socket closed while waiting for %s: %v", answer, closed)
		}
		select {
		case <-c.more:
		case <-deadline:
			c.t.Fatalf("no %s within 20s", answer)
		}
	}
}

// rest sends a JSON request with userID's token to n.
func rest(t *testing.T, n *node, method, path string, userID int64, name, body string) (int, string) {
	t.Helper()
	return restAt(t, n.addr, method, path, userID, name, body)
}

// restAt is rest at the address addr: a node's, or a proxy's.
func restAt(t *testing.T, addr, method, path string, userID int64, name, body string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, "http://"+addr+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+token(t, userID, name))
	c := http.Client{Timeout: 20 * time.Second}
	resp, err := c.Do(req)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// twoNodes starts nodes a and b on a schema of their own.
func twoNodes(t *testing.T, extra ...string) (db string, a, b *node) {
	db = pgtest.Schema(t)
	return db, startNode(t, db, "a", extra...), startNode(t, db, "b", extra...)
}

func TestClusterEventsCrossNodesInTheSameOrder(t *testing.T) {
	t.Parallel()
	_, a, b := twoNodes(t)
	onA := dial(t, a, 1, "watcher-a")
	onB := dial(t, b, 3, "watcher-b")
	onA.subscribe(2)
	onB.subscribe(2)

	alice := dial(t, a, 2, "alice")
	onB.await(2, "online", 20*time.Second, online)
	alice.send(`{"type":"set_status","is_busy":true,"wait_time":15}`)
	onB.await(2, "busy 15", 20*time.Second, func(p presence) bool { return p.IsBusy && p.WaitTime != nil && *p.WaitTime == 15 })
	// A REST change on the other node comes back to both.
	if code, body := rest(t, b, http.MethodPut, "/users/me/status", 2, "alice", `{"is_busy":false}`); code != 200 {
		t.Fatalf("PUT on node b: %d %s", code, body)
	}
	onA.await(2, "free", 20*time.Second, func(p presence) bool { return p.IsOnline && !p.IsBusy })
	onB.await(2, "free", 20*time.Second, func(p presence) bool { return p.IsOnline && !p.IsBusy })
	// Leaving: offline after the grace (and the REST call's heartbeat),
	// on both nodes.
	_ = alice.ws.Close()
	onA.await(2, "offline", 20*time.Second, offline)
	onB.await(2, "offline", 20*time.Second, offline)
	// GET on either node agrees.
	for _, n := range []*node{a, b} {
		code, body := rest(t, n, http.MethodGet, "/users/2/presence", 1, "watcher-a", "")
		if code != 200 || !strings.Contains(body, `"is_online":false`) || !strings.Contains(body, `"username":"alice"`) {
			t.Fatalf("GET on node %s: %d %s", n.id, code, body)
		}
	}
	if got, want := fmt.Sprint(onB.eventsOf(2)), fmt.Sprint(onA.eventsOf(2)); got != want {
		t.Fatalf("watchers on two nodes saw different events:\n b: %s\n a: %s", got, want)
	}
	want := "[2:alice:online=true:busy=false:wait=- 2:alice:online=true:busy=true:wait=15 2:alice:online=true:busy=false:wait=- 2:alice:online=false:busy=false:wait=-]"
	if got := fmt.Sprint(onB.eventsOf(2)); got != want {
		t.Fatalf("events %s\nwant   %s", got, want)
	}
}

func TestClusterKilledNodesUsersGoOfflineWithinTheBound(t *testing.T) {
	t.Parallel()
	_, a, b := twoNodes(t)
	watcher := dial(t, b, 1, "watcher")
	watcher.subscribe(2, 3, 4)
	dial(t, a, 2, "two")
	dial(t, a, 3, "three")
	dial(t, b, 4, "four") // on the node that lives
	for _, id := range []int64{2, 3, 4} {
		watcher.await(id, "online", 20*time.Second, online)
	}
	a.kill()
	killed := time.Now()
	for _, id := range []int64{2, 3} {
		at := watcher.await(id, "offline after kill -9", deadBound+10*time.Second, offline)
		if took := at.Sub(killed); took > deadBound {
			t.Fatalf("user %d offline %v after node a was killed; bound %v", id, took, deadBound)
		} else {
			t.Logf("user %d offline %v after kill -9 (lease %v, sweep %v)", id, took, leaseTTL, sweepInterval)
		}
	}
	if evs := watcher.eventsOf(4); len(evs) != 1 {
		t.Fatalf("user 4, connected to the live node, got %v", evs)
	}
	// The node that lives says that a died, and whom its sweep turned
	// offline.
	b.waitLog(`"level":"WARN","msg":"node died: its lease ran out","node_id":"` + a.id + `"`)
	b.waitLog(`"msg":"swept users of dead nodes and expired heartbeats","users":2,"turned_offline":2`)
	code, body := rest(t, b, http.MethodGet, "/users/2/presence", 1, "watcher", "")
	if code != 200 || !strings.Contains(body, `"is_online":false`) {
		t.Fatalf("GET on node b after a died: %d %s", code, body)
	}
}

// TestClusterNodesGaugeIsRightFromTheFirstScrape scrapes each node as
// soon as it is ready, long before its first sweep (an hour away): an
// alert on min(presenced_cluster_nodes) must not fire at every deploy.
func TestClusterNodesGaugeIsRightFromTheFirstScrape(t *testing.T) {
	t.Parallel()
	db := pgtest.Schema(t)
	for i, name := range []string{"a", "b"} {
		n := startNode(t, db, name, "-sweep-interval", "1h")
		if got := metricstest.Scrape(t, "http://"+n.addr+"/metrics").Value(t, "presenced_cluster_nodes"); got != float64(i+1) {
			t.Fatalf("node %s's first scrape says %v nodes, want %d", name, got, i+1)
		}
	}
}

func TestClusterGracefulStopLetsUsersMoveWithoutFlap(t *testing.T) {
	t.Parallel()
	// A grace long enough to reconnect on a loaded machine.
	db, a, b := twoNodes(t, "-grace", "5s")
	watcher := dial(t, b, 1, "watcher")
	watcher.subscribe(2, 3)
	alice := dial(t, a, 2, "alice")
	dial(t, a, 3, "bob") // bob does not come back
	watcher.await(2, "online", 20*time.Second, online)
	watcher.await(3, "online", 20*time.Second, online)

	a.terminate()
	var ce *websocket.CloseError
	if err := alice.closeErr(); !errors.As(err, &ce) || ce.Code != websocket.CloseGoingAway {
		t.Fatalf("alice's socket on the stopping node: %v, want close 1001", err)
	}
	dial(t, b, 2, "alice") // she reconnects elsewhere within the grace
	select {
	case <-a.exited:
	case <-time.After(30 * time.Second):
		t.Fatal("node a did not stop within 30s after SIGTERM")
	}
	// bob, who did not come back, goes offline after the grace.
	watcher.await(3, "bob offline", 30*time.Second, offline)
	// Wait until node a is swept away entirely, then make one more change:
	// NOTIFYs arrive in commit order, so any event the sweep caused for
	// alice is in before this one.
	pgtest.WaitUntil(t, db, `SELECT count(*) = 0 FROM presence_vouches WHERE node_id = '`+a.id+`'`)
	if code, body := rest(t, b, http.MethodPut, "/users/me/status", 3, "bob", `{"is_busy":true}`); code != 200 {
		t.Fatalf("PUT: %d %s", code, body)
	}
	watcher.await(3, "bob busy", 20*time.Second, func(p presence) bool { return p.IsBusy })
	if evs := watcher.eventsOf(2); len(evs) != 1 || !evs[0].IsOnline {
		t.Fatalf("alice moved nodes within the grace, yet watchers saw %v", evs)
	}
}

func TestClusterDroppedListenerStillDeliversTheMissedChange(t *testing.T) {
	t.Parallel()
	db, a, b := twoNodes(t)
	watcher := dial(t, b, 1, "watcher")
	watcher.subscribe(5)
	dial(t, a, 5, "eve")
	watcher.await(5, "online", 20*time.Second, online)

	ctx := context.Background()
	conn, err := pgx.Connect(ctx, db)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var killed int
	if err := conn.QueryRow(ctx, `SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE application_name = $1`,
		postgres.ListenerName(b.id)).Scan(&killed); err != nil || killed != 1 {
		t.Fatalf("terminate node b's listener: %d, %v", killed, err)
	}
	// Made while b's listener is down or coming back: its NOTIFY may be
	// lost to b, the resync must bring it.
	if code, body := rest(t, a, http.MethodPatch, "/users/me/status", 5, "eve", `{"is_busy":true,"wait_time":30}`); code != 200 {
		t.Fatalf("PATCH on node a: %d %s", code, body)
	}
	watcher.await(5, "busy 30 after the listener came back", 30*time.Second, func(p presence) bool {
		return p.IsBusy && p.WaitTime != nil && *p.WaitTime == 30
	})
	if !strings.Contains(b.logs.String(), "listener down; reconnecting") {
		t.Fatalf("node b never noticed its listener dropped:\n%s", b.logs)
	}
	b.waitReady()
}

// TestClusterPostgresRestartMidTrafficLosesNothing restarts PostgreSQL
// (a private server, so that other tests are not disturbed) while REST
// changes flow into one node and a watcher listens on the other. Sockets
// stay open, every change acknowledged during the outage reaches the
// database when it returns, and the watcher ends at the last state.
func TestClusterPostgresRestartMidTrafficLosesNothing(t *testing.T) {
	pg := pgtest.StartPrivate(t)
	t.Parallel()
	a := startNode(t, pg.URL, "a")
	b := startNode(t, pg.URL, "b")
	users := []int64{10, 11, 12, 13, 14}
	watcher := dial(t, b, 1, "watcher")
	watcher.subscribe(users...)
	sockets := map[int64]*client{}
	for _, id := range users {
		sockets[id] = dial(t, a, id, fmt.Sprint("u", id))
		watcher.await(id, "online", 20*time.Second, online)
	}

	type state struct {
		busy bool
		wait int
	}
	acked := map[int64]state{}
	change := func(i int) {
		t.Helper()
		id := users[i%len(users)]
		st := state{busy: i%2 == 0, wait: i}
		code, body := rest(t, a, http.MethodPut, "/users/me/status", id, fmt.Sprint("u", id),
			fmt.Sprintf(`{"is_busy":%t,"wait_time":%d}`, st.busy, st.wait))
		switch code {
		case http.StatusOK:
			if !st.busy {
				st.wait = -1 // not busy: no wait time
			}
			acked[id] = st
		case http.StatusServiceUnavailable: // refused, not acknowledged: fine
		default:
			t.Fatalf("PUT %d: %d %s", i, code, body)
		}
	}
	for i := 0; i < 20; i++ {
		change(i)
	}
	pg.Stop()
	// The database is down: a node says it is not ready, and keeps
	// answering from memory.
	for _, n := range []*node{a, b} {
		n.waitReadyz(http.StatusServiceUnavailable, 20*time.Second)
	}
	for i := 20; i < 40; i++ {
		change(i)
	}
	for _, id := range users {
		sockets[id].request(`{"type":"ping"}`, "pong")
	}
	code, body := rest(t, a, http.MethodGet, "/users/presence?user_ids=10,11", 1, "watcher", "")
	if code != 200 || !strings.Contains(body, `"user_id":10`) {
		t.Fatalf("a read while the database is down: %d %s", code, body)
	}
	pg.Start()
	for i := 40; i < 50; i++ {
		change(i)
	}
	a.waitReady()
	b.waitReady()

	// Every acknowledged change is in the database, and the watcher on the
	// other node ends at it.
	conn, err := pgx.Connect(context.Background(), pg.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	for _, id := range users {
		want := acked[id]
		watcher.await(id, fmt.Sprintf("final state %+v", want), 30*time.Second, func(p presence) bool {
			return p.IsOnline && p.IsBusy == want.busy && (want.wait < 0) == (p.WaitTime == nil) && (p.WaitTime == nil || *p.WaitTime == want.wait)
		})
		testkit.Eventually(t, 30*time.Second, func() error {
			var busy, on bool
			var wait *int32
			if err := conn.QueryRow(context.Background(), `SELECT busy, wait_time, online FROM presence_status WHERE user_id = $1`, id).Scan(&busy, &wait, &on); err != nil {
				t.Fatal(err)
			}
			if busy == want.busy && on && (wait == nil) == (want.wait < 0) && (wait == nil || int(*wait) == want.wait) {
				return nil
			}
			return fmt.Errorf("user %d in the database: busy %v wait %v online %v; last acknowledged %+v", id, busy, wait, on, want)
		})
	}
	// The sockets lived through it all.
	for _, id := range users {
		sockets[id].request(`{"type":"ping"}`, "pong")
	}
	for _, want := range []string{"store unavailable: answering from memory", "store available again", "listener down; reconnecting"} {
		if !strings.Contains(a.logs.String(), want) {
			t.Errorf("node a never logged %q", want)
		}
	}
}

// TestDefaultDeadNodeBound keeps the defaults within the documented bound:
// a killed node's users go offline within lease + sweep, at most 30s.
func TestDefaultDeadNodeBound(t *testing.T) {
	o, err := parseFlags(nil, env(nil), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if bound := o.leaseTTL + o.sweepInterval; bound > 30*time.Second || bound != 20*time.Second {
		t.Fatalf("default lease %v + sweep %v = %v; the README promises 20s, at most 30s", o.leaseTTL, o.sweepInterval, bound)
	}
	o, err = parseFlags(nil, env(map[string]string{"DATABASE_URL": "postgres://x@h/db"}), io.Discard)
	if err != nil || o.databaseURL != "postgres://x@h/db" {
		t.Fatalf("DATABASE_URL not taken: %q, %v", o.databaseURL, err)
	}
	o, err = parseFlags(nil, env(map[string]string{"DATABASE_URL": "postgres://x@h/db", "PRESENCE_DATABASE_URL": "postgres://y@h/db"}), io.Discard)
	if err != nil || o.databaseURL != "postgres://y@h/db" {
		t.Fatalf("PRESENCE_DATABASE_URL must win over DATABASE_URL: %q, %v", o.databaseURL, err)
	}
	o, err = parseFlags([]string{"-database-url", "postgres://z@h/db"}, env(map[string]string{"PRESENCE_DATABASE_URL": "postgres://y@h/db"}), io.Discard)
	if err != nil || o.databaseURL != "postgres://z@h/db" {
		t.Fatalf("-database-url must win: %q, %v", o.databaseURL, err)
	}
}

// TestBadUsernamesNeverReachPostgreSQL: PostgreSQL cannot store a NUL in
// text, so a token whose name held one made every write fail with 500 and
// its socket close with 1001 ("shutting down"), and the client reconnected
// in a loop. The name is refused where it enters, with 401 and 4401, and
// the node goes on storing everyone else's changes.
func TestBadUsernamesNeverReachPostgreSQL(t *testing.T) {
	t.Parallel()
	n := startNode(t, pgtest.Schema(t), "names")
	for name, detail := range map[string]string{
		"nul\x00name":           "control characters; it has U+0000",
		strings.Repeat("n", 65): "username is 65 characters; at most 64 are allowed",
	} {
		code, body := rest(t, n, "PUT", "/users/me/status", 11, name, `{"is_busy":true}`)
		if code != http.StatusUnauthorized || !strings.Contains(body, detail) {
			t.Fatalf("PUT with the name %q: %d %s, want 401 saying %q", name, code, body, detail)
		}
		ws, _, err := websocket.DefaultDialer.Dial("ws://"+n.addr+"/ws", http.Header{"Authorization": {"Bearer " + token(t, 11, name)}})
		if err != nil {
			t.Fatal(err)
		}
		_, _, err = ws.ReadMessage()
		ws.Close()
		var ce *websocket.CloseError
		if !errors.As(err, &ce) || ce.Code != 4401 {
			t.Fatalf("socket with the name %q: %v, want close 4401", name, err)
		}
	}
	if code, body := rest(t, n, "PUT", "/users/me/status", 11, "good name", `{"is_busy":true}`); code != http.StatusOK {
		t.Fatalf("PUT with a good name: %d %s", code, body)
	}
	if strings.Contains(n.logs.String(), `"status":500`) {
		t.Fatalf("a request got 500:\n%s", n.logs)
	}
}
