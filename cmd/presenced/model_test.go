package main

import (
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/presenced/presenced/internal/pgtest"
)

// The model test drives several users, each with one or more devices,
// through random sequences of what apps do — bursts of status updates,
// sockets closed with and without a close frame, sockets that stop
// answering pings, fallback to REST polling and back, appearing offline,
// server restarts on the memory store, a node killed in a two-node
// PostgreSQL cluster — against real presenced processes, and checks after
// each stretch, once things have settled within the documented bounds:
//
//   - every watcher's view equals what its node answers over REST, and
//     the nodes agree;
//   - each user's status is their last request;
//   - a user is online exactly while a device of theirs is alive, and
//     one whose last device is gone is offline within the grace (plus the
//     pong deadline for a silent one), never the heartbeat TTL.
//
// The devices behave as presence.js does: after every reconnect or switch
// of transport a device sets its user's status again. The sequence comes
// from a seed; a failure prints it with the actions taken. CI runs a
// fixed budget of seeds; PRESENCE_MODEL_SEEDS=a,b,c runs others, and
// PRESENCE_MODEL_STEPS sets the steps per seed.

const (
	mGrace = 500 * time.Millisecond
	mPing  = 500 * time.Millisecond
	mPong  = 500 * time.Millisecond
	// mTTL is far above every offline bound, so that a user kept online
	// by a heartbeat that should have ended shows.
	mTTL        = 30 * time.Second
	mBeatEvery  = time.Second
	mSlack      = 2 * time.Second // for a loaded machine
	mCheckEvery = 8               // steps between two checks
)

// modelSeeds returns the seeds to run: PRESENCE_MODEL_SEEDS, else def.
func modelSeeds(t *testing.T, def ...uint64) []uint64 {
	v := os.Getenv("PRESENCE_MODEL_SEEDS")
	if v == "" {
		return def
	}
	var out []uint64
	for _, f := range strings.Split(v, ",") {
		s, err := strconv.ParseUint(strings.TrimSpace(f), 10, 64)
		if err != nil {
			t.Fatalf("PRESENCE_MODEL_SEEDS: %v", err)
		}
		out = append(out, s)
	}
	return out
}

func modelSteps(t *testing.T, def int) int {
	if v := os.Getenv("PRESENCE_MODEL_STEPS"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n <= 0 {
			t.Fatalf("PRESENCE_MODEL_STEPS=%q: want a positive number", v)
		}
		return n
	}
	return def
}

func TestModelMemoryStoreWithRestarts(t *testing.T) {
	t.Parallel()
	for _, seed := range modelSeeds(t, 1, 2, 3, 4) {
		t.Run(fmt.Sprint("seed=", seed), func(t *testing.T) {
			t.Parallel()
			runModel(t, seed, "", 1, modelSteps(t, 40))
		})
	}
}

func TestModelPostgresClusterWithAKilledNode(t *testing.T) {
	t.Parallel()
	for _, seed := range modelSeeds(t, 5, 6) {
		t.Run(fmt.Sprint("seed=", seed), func(t *testing.T) {
			t.Parallel()
			runModel(t, seed, pgtest.Schema(t), 2, modelSteps(t, 40))
		})
	}
}

type deviceMode int

const (
	gone    deviceMode = iota
	socket             // a socket that answers
	frozen             // a socket that stopped reading: no pongs
	polling            // REST heartbeats, no socket
)

func (m deviceMode) String() string { return [...]string{"gone", "socket", "frozen", "polling"}[m] }

type world struct {
	t     *testing.T
	rng   *rand.Rand
	seed  uint64
	db    string
	mu    sync.Mutex
	log   []string
	nodes []*mnode
	users []*muser
	watch []*mwatcher // one per node
	// settleBy is when every change made so far must show.
	settleBy time.Time
}

type mnode struct {
	name string
	addr string
	n    *node
}

type muser struct {
	id      int64
	hidden  bool
	busy    bool
	wait    *int
	everSet bool // the user asked for a status at least once
	known   bool // the server must hold a status
	devices []*mdevice
}

type mdevice struct {
	w    *world
	user *muser
	id   string
	mode deviceMode
	node int
	ws   *websocket.Conn
	// replies carries the socket's answers other than events; the reader
	// closes it when the socket ends.
	replies  chan map[string]any
	freeze   chan struct{} // closed: the reader stops reading
	readDone chan struct{}
	pollStop chan struct{}
	pollDone chan struct{}
}

func (w *world) logf(format string, args ...any) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.log = append(w.log, fmt.Sprintf("%6.2fs ", time.Since(start).Seconds())+fmt.Sprintf(format, args...))
}

var start = time.Now()

func (w *world) fatalf(format string, args ...any) {
	w.t.Helper()
	w.mu.Lock()
	log := strings.Join(w.log, "\n")
	w.mu.Unlock()
	w.t.Fatalf("model seed %d (rerun: PRESENCE_MODEL_SEEDS=%d go test -run 'TestModel' ./cmd/presenced): %s\nactions:\n%s",
		w.seed, w.seed, fmt.Sprintf(format, args...), log)
}

// settleIn says that what was just done must show within d.
func (w *world) settleIn(d time.Duration) {
	if by := time.Now().Add(d + mSlack); by.After(w.settleBy) {
		w.settleBy = by
	}
}

func runModel(t *testing.T, seed uint64, db string, nodes, steps int) {
	w := &world{t: t, rng: rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)), seed: seed, db: db}
	for i := range nodes {
		mn := &mnode{name: fmt.Sprintf("m%d-%d", seed, i)}
		mn.n = w.startNode(mn, "127.0.0.1:0")
		mn.addr = mn.n.addr
		w.nodes = append(w.nodes, mn)
	}
	for i := range 5 {
		u := &muser{id: int64(10 + i)}
		for d := range 1 + w.rng.IntN(2) {
			u.devices = append(u.devices, &mdevice{w: w, user: u, id: fmt.Sprintf("u%d-d%d", u.id, d)})
		}
		w.users = append(w.users, u)
	}
	for i := range w.nodes {
		w.watch = append(w.watch, w.newWatcher(i))
	}
	t.Cleanup(func() {
		for _, u := range w.users {
			for _, d := range u.devices {
				d.leave(false)
			}
		}
		for _, mw := range w.watch {
			mw.close()
		}
	})
	// Everyone starts with a socket.
	for _, u := range w.users {
		for _, d := range u.devices {
			d.toSocket(w.rng.IntN(len(w.nodes)))
		}
	}
	w.settleIn(0)
	w.check("start")
	for step := 1; step <= steps; step++ {
		w.step()
		if step%mCheckEvery == 0 || step == steps {
			w.check(fmt.Sprint("after step ", step))
		}
	}
	if os.Getenv("MODEL_DUMP") != "" {
		t.Logf("actions:\n%s", strings.Join(w.log, "\n"))
	}
}

func (w *world) startNode(mn *mnode, addr string) *node {
	return startNode(w.t, w.db, mn.name, "-addr", addr,
		"-grace", mGrace.String(), "-ping-interval", mPing.String(), "-pong-timeout", mPong.String(),
		"-heartbeat-ttl", mTTL.String(), "-max-requests-per-second", "0", "-max-sockets-per-second-per-ip", "0")
}

// step takes one random action.
func (w *world) step() {
	u := w.users[w.rng.IntN(len(w.users))]
	d := u.devices[w.rng.IntN(len(u.devices))]
	switch r := w.rng.IntN(100); {
	case r < 25:
		if d.mode == socket || d.mode == polling {
			d.burst()
		} else {
			d.toSocket(w.rng.IntN(len(w.nodes)))
		}
	case r < 35:
		// presence.js sends an update over REST while its socket is not
		// answered yet, with the same device id.
		if d.mode == socket {
			d.restUpdate(w.randomUpdate())
		}
	case r < 45:
		if d.mode == socket {
			w.logf("%s closes its socket", d.id)
			d.leave(true)
		}
	case r < 52:
		if d.mode == socket {
			w.logf("%s drops its connection without a close frame", d.id)
			d.leave(false)
		}
	case r < 58:
		if d.mode == socket {
			w.logf("%s stops answering pings", d.id)
			d.mode = frozen
			close(d.freeze)
			w.settleIn(mPing + mPong + mGrace)
		}
	case r < 66:
		if d.mode == socket || d.mode == frozen {
			d.toPolling()
		}
	case r < 78:
		if d.mode != socket {
			d.toSocket(w.rng.IntN(len(w.nodes)))
		}
	case r < 86:
		if d.mode == socket || d.mode == polling {
			d.request([]map[string]any{{"is_online": u.hidden}})
		}
	case r < 96:
		// The user closes every app: polling ones stop polling first, so
		// that they go within the grace too (a device that just stops
		// polling is alive until its heartbeat's TTL).
		w.logf("user %d leaves", u.id)
		for _, d := range u.devices {
			if d.mode == polling {
				d.toSocket(w.rng.IntN(len(w.nodes)))
			}
		}
		for _, d := range u.devices {
			if d.mode == frozen {
				d.leave(false)
			} else {
				d.leave(w.rng.IntN(2) == 0)
			}
		}
	default:
		w.restartNode(w.rng.IntN(len(w.nodes)))
	}
}

// restUpdate sends one update over REST from a device whose socket is
// open.
func (d *mdevice) restUpdate(up map[string]any) {
	w := d.w
	w.logf("%s sends an update over REST while its socket is open: %v", d.id, up)
	d.user.apply(up)
	w.settleIn(0)
	b, _ := json.Marshal(up)
	if code, body := d.rest(http.MethodPut, "/users/me/status", string(b)); code != http.StatusOK {
		w.fatalf("%s: PUT %s: %d %s", d.id, b, code, body)
	}
}

// alive is what the server must make of the user's devices once settled.
func (u *muser) alive() bool {
	for _, d := range u.devices {
		if d.mode == socket || d.mode == polling {
			return true
		}
	}
	return false
}

// apply is the model of hub.Decide for one update.
func (u *muser) apply(up map[string]any) {
	u.everSet = true
	if v, ok := up["is_online"]; ok {
		u.hidden = !v.(bool)
	}
	if v, ok := up["is_busy"]; ok {
		u.busy = v.(bool)
	}
	if v, ok := up["wait_time"]; ok {
		if v == nil {
			u.wait = nil
		} else {
			n := v.(int)
			u.wait = &n
		}
	}
	if !u.busy {
		u.wait = nil
	}
}

// desired is the whole status the user asked for, as a device sends it
// again after a reconnect.
func (u *muser) desired() map[string]any {
	m := map[string]any{"is_online": !u.hidden, "is_busy": u.busy, "wait_time": nil}
	if u.wait != nil {
		m["wait_time"] = *u.wait
	}
	return m
}

func (w *world) randomUpdate() map[string]any {
	up := map[string]any{}
	for len(up) == 0 {
		if w.rng.IntN(2) == 0 {
			up["is_busy"] = w.rng.IntN(2) == 0
		}
		if w.rng.IntN(2) == 0 {
			if w.rng.IntN(4) == 0 {
				up["wait_time"] = nil
			} else {
				up["wait_time"] = w.rng.IntN(60)
			}
		}
		if w.rng.IntN(8) == 0 {
			up["is_online"] = w.rng.IntN(3) > 0
		}
	}
	return up
}

// burst sends several updates at once (over the socket, faster than its
// message rate at times), or one after the other over REST.
func (d *mdevice) burst() {
	n := 1 + d.w.rng.IntN(10)
	if d.mode == socket && d.w.rng.IntN(3) == 0 {
		n = 40 + d.w.rng.IntN(40) // over the message burst
	}
	ups := make([]map[string]any, n)
	for i := range ups {
		ups[i] = d.w.randomUpdate()
	}
	d.request(ups)
}

// request sends updates as presence.js would: over the socket, or, when
// polling, over REST one at a time. It returns once each is answered.
func (d *mdevice) request(ups []map[string]any) {
	w := d.w
	w.logf("%s sends %d updates over %s, last %v", d.id, len(ups), d.mode, ups[len(ups)-1])
	for _, up := range ups {
		d.user.apply(up)
	}
	d.user.known = true
	w.settleIn(0)
	if d.mode == polling {
		for _, up := range ups {
			b, _ := json.Marshal(up)
			if code, body := d.rest(http.MethodPut, "/users/me/status", string(b)); code != http.StatusOK {
				w.fatalf("%s: PUT %s: %d %s", d.id, b, code, body)
			}
		}
		return
	}
	want := map[string]bool{}
	for i, up := range ups {
		msg := map[string]any{"type": "set_status", "id": fmt.Sprintf("%s-%d", d.id, i)}
		for k, v := range up {
			msg[k] = v
		}
		want[msg["id"].(string)] = true
		b, _ := json.Marshal(msg)
		if err := d.ws.WriteMessage(websocket.TextMessage, b); err != nil {
			w.fatalf("%s: send: %v", d.id, err)
		}
	}
	deadline := time.After(20 * time.Second)
	for len(want) > 0 {
		select {
		case m, ok := <-d.replies:
			if !ok {
				w.fatalf("%s: socket closed with %d updates unanswered", d.id, len(want))
			}
			switch m["type"] {
			case "status":
				delete(want, m["id"].(string))
			case "error":
				w.fatalf("%s: error %v", d.id, m)
			}
		case <-deadline:
			w.fatalf("%s: %d of %d updates unanswered after 20s", d.id, len(want), len(ups))
		}
	}
}

func (d *mdevice) rest(method, path, body string) (int, string) {
	req, err := http.NewRequest(method, "http://"+d.w.nodes[d.node].addr+path, strings.NewReader(body))
	if err != nil {
		d.w.fatalf("%v", err)
	}
	req.Header.Set("Authorization", "Bearer "+token(d.w.t, d.user.id, fmt.Sprint("user", d.user.id)))
	req.Header.Set("X-Device-ID", d.id)
	c := http.Client{Timeout: 10 * time.Second}
	resp, err := c.Do(req)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// toSocket connects the device's socket to node i and sets the status
// again, as presence.js does after every reconnect.
func (d *mdevice) toSocket(i int) {
	w := d.w
	d.leave(true)
	d.node = i
	h := http.Header{"Authorization": {"Bearer " + token(w.t, d.user.id, fmt.Sprint("user", d.user.id))}, "X-Device-ID": {d.id}}
	ws, _, err := websocket.DefaultDialer.Dial("ws://"+w.nodes[i].addr+"/ws", h)
	if err != nil {
		w.fatalf("%s: dial node %d: %v", d.id, i, err)
	}
	w.logf("%s opens a socket on node %d", d.id, i)
	d.ws, d.mode = ws, socket
	d.replies = make(chan map[string]any, 256)
	d.freeze = make(chan struct{})
	d.readDone = make(chan struct{})
	go d.read(ws, d.replies, d.freeze, d.readDone)
	d.user.known = true
	w.settleIn(0)
	d.resend()
}

// resend sets the user's whole status again, if they ever set one.
func (d *mdevice) resend() {
	if d.user.everSet {
		d.request([]map[string]any{d.user.desired()})
	}
}

func (d *mdevice) read(ws *websocket.Conn, replies chan map[string]any, freeze, done chan struct{}) {
	defer close(done)
	defer close(replies)
	// Pings are answered while reading, unless the device froze: then it
	// is a phone whose app hangs, or whose network vanished.
	ws.SetPingHandler(func(data string) error {
		select {
		case <-freeze:
			return nil
		default:
		}
		_ = ws.WriteControl(websocket.PongMessage, []byte(data), time.Now().Add(time.Second))
		return nil
	})
	for {
		_, data, err := ws.ReadMessage()
		if err != nil {
			return
		}
		if len(data) > 0 && data[0] == '[' {
			continue // events; this device watches nobody
		}
		var m map[string]any
		if json.Unmarshal(data, &m) == nil && m["type"] != "presence" {
			select {
			case replies <- m:
			default:
			}
		}
	}
}

// toPolling closes the socket cleanly, as presence.js does when its
// socket fails or the app goes to the background in a call, and keeps
// the device alive with REST heartbeats.
func (d *mdevice) toPolling() {
	w := d.w
	w.logf("%s falls back to polling on node %d", d.id, d.node)
	d.leave(true)
	d.mode = polling
	d.pollStop, d.pollDone = make(chan struct{}), make(chan struct{})
	stop, done := d.pollStop, d.pollDone
	go func() {
		defer close(done)
		for {
			d.rest(http.MethodPost, "/users/me/heartbeat", "") // failures are retried at the next beat
			select {
			case <-stop:
				return
			case <-time.After(mBeatEvery):
			}
		}
	}()
	d.user.known = true
	w.settleIn(0)
	d.resend()
}

// leave ends the device's socket or polling. A clean leave sends a close
// frame and waits for the server's answer, as a browser's close does.
func (d *mdevice) leave(clean bool) {
	was := d.mode
	switch d.mode {
	case socket, frozen:
		if clean && d.mode == socket {
			_ = d.ws.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseNormalClosure, ""), time.Now().Add(time.Second))
			select {
			case <-d.readDone:
			case <-time.After(5 * time.Second):
			}
		}
		_ = d.ws.Close()
		if d.mode == socket {
			<-d.readDone
		}
	case polling:
		close(d.pollStop)
		<-d.pollDone
	}
	d.mode = gone
	switch {
	case was == frozen:
		d.w.settleIn(mPing + mPong + mGrace)
	case was != gone:
		d.w.settleIn(mGrace)
	}
}

// restartNode stops node i (gracefully, or with kill -9) and starts it
// again on the same address (and node id). Its sockets are gone; their
// devices reconnect to some node and set their status again.
func (w *world) restartNode(i int) {
	mn := w.nodes[i]
	kill := w.rng.IntN(2) == 0
	w.logf("node %d restarts (kill -9: %t)", i, kill)
	if kill {
		mn.n.kill()
	} else {
		mn.n.terminate()
		<-mn.n.exited
	}
	memory := w.db == ""
	var moved []*mdevice
	for _, u := range w.users {
		for _, d := range u.devices {
			if (d.mode == socket || d.mode == frozen) && d.node == i {
				d.leave(false)
				moved = append(moved, d)
			}
		}
	}
	mn.n = w.startNode(mn, mn.addr)
	w.watch[i].close()
	w.watch[i] = w.newWatcher(i)
	if memory {
		// Statuses lived in the process: only users whose devices come
		// back have one again.
		for _, u := range w.users {
			u.known = false
		}
	}
	for _, d := range moved {
		d.toSocket(w.rng.IntN(len(w.nodes)))
	}
	for _, u := range w.users {
		for _, d := range u.devices {
			if d.mode == polling && (memory || d.node == i) {
				d.user.known = true
				d.resend()
			}
		}
	}
	if memory {
		// Polling devices were heard again by their next beat at the
		// latest, and sent their status after that.
		w.settleIn(mBeatEvery)
	} else {
		w.settleIn(leaseTTL + sweepInterval + mGrace)
	}
}

// mwatcher is a watcher of every model user, connected to one node; its
// view is what its snapshot and events say.
type mwatcher struct {
	w    *world
	ws   *websocket.Conn
	mu   sync.Mutex
	view map[int64]map[string]any
	done chan struct{}
}

func (w *world) newWatcher(i int) *mwatcher {
	h := http.Header{"Authorization": {"Bearer " + token(w.t, int64(1000+i), "watcher")}}
	ws, _, err := websocket.DefaultDialer.Dial("ws://"+w.nodes[i].addr+"/ws", h)
	if err != nil {
		w.fatalf("watcher dial node %d: %v", i, err)
	}
	mw := &mwatcher{w: w, ws: ws, view: map[int64]map[string]any{}, done: make(chan struct{})}
	var ids []int64
	for _, u := range w.users {
		ids = append(ids, u.id)
	}
	b, _ := json.Marshal(map[string]any{"type": "subscribe", "user_ids": ids, "id": "all"})
	if err := ws.WriteMessage(websocket.TextMessage, b); err != nil {
		w.fatalf("watcher subscribe: %v", err)
	}
	subscribed := make(chan struct{})
	go mw.read(subscribed)
	select {
	case <-subscribed:
	case <-time.After(20 * time.Second):
		w.fatalf("watcher on node %d got no snapshot", i)
	}
	return mw
}

func (mw *mwatcher) read(subscribed chan struct{}) {
	defer close(mw.done)
	for {
		_, data, err := mw.ws.ReadMessage()
		if err != nil {
			return
		}
		var msgs []map[string]any
		if len(data) > 0 && data[0] == '[' {
			_ = json.Unmarshal(data, &msgs)
		} else {
			var m map[string]any
			_ = json.Unmarshal(data, &m)
			msgs = []map[string]any{m}
		}
		mw.mu.Lock()
		for _, m := range msgs {
			switch m["type"] {
			case "subscribed":
				for _, p := range m["presences"].([]any) {
					p := p.(map[string]any)
					mw.view[int64(p["user_id"].(float64))] = p
				}
				close(subscribed)
			case "presence":
				mw.view[int64(m["user_id"].(float64))] = m
			}
		}
		mw.mu.Unlock()
	}
}

func (mw *mwatcher) close() {
	_ = mw.ws.Close()
	<-mw.done
}

// check waits until the world has settled and everything agrees, or
// fails at the bound.
func (w *world) check(when string) {
	w.logf("check %s", when)
	var last string
	for {
		last = w.mismatch()
		if last == "" {
			return
		}
		if time.Now().After(w.settleBy) {
			w.fatalf("%s, past the bound: %s", when, last)
		}
		<-time.After(100 * time.Millisecond)
	}
}

// mismatch says what disagrees, or "".
func (w *world) mismatch() string {
	var ids []string
	for _, u := range w.users {
		ids = append(ids, fmt.Sprint(u.id))
	}
	var answers []map[int64]map[string]any
	for i, mn := range w.nodes {
		req, _ := http.NewRequest(http.MethodGet, "http://"+mn.addr+"/users/presence?user_ids="+strings.Join(ids, ","), nil)
		req.Header.Set("Authorization", "Bearer "+token(w.t, 999, "checker"))
		resp, err := (&http.Client{Timeout: 5 * time.Second}).Do(req)
		if err != nil {
			return fmt.Sprintf("node %d: %v", i, err)
		}
		var list []map[string]any
		err = json.NewDecoder(resp.Body).Decode(&list)
		resp.Body.Close()
		if err != nil {
			return fmt.Sprintf("node %d: %v", i, err)
		}
		got := map[int64]map[string]any{}
		for _, p := range list {
			got[int64(p["user_id"].(float64))] = p
		}
		answers = append(answers, got)
		mw := w.watch[i]
		mw.mu.Lock()
		for _, u := range w.users {
			if a, b := show(got[u.id]), show(mw.view[u.id]); a != b {
				mw.mu.Unlock()
				return fmt.Sprintf("user %d: node %d answers %s, its watcher sees %s", u.id, i, a, b)
			}
		}
		mw.mu.Unlock()
	}
	for i := 1; i < len(answers); i++ {
		for _, u := range w.users {
			if a, b := show(answers[0][u.id]), show(answers[i][u.id]); a != b {
				return fmt.Sprintf("user %d: node 0 answers %s, node %d %s", u.id, a, i, b)
			}
		}
	}
	for _, u := range w.users {
		got := answers[0][u.id]
		if !u.known {
			if got != nil {
				return fmt.Sprintf("user %d: no status expected, got %s", u.id, show(got))
			}
			continue
		}
		if got == nil {
			return fmt.Sprintf("user %d: a status expected, got none", u.id)
		}
		wantOnline := u.alive() && !u.hidden
		want := map[string]any{"is_online": wantOnline, "is_busy": u.busy && !u.hidden, "wait_time": nil}
		if u.wait != nil && !u.hidden {
			want["wait_time"] = float64(*u.wait)
		}
		if a, b := show(got), show(want); a != b {
			var modes []string
			for _, d := range u.devices {
				modes = append(modes, d.id+":"+d.mode.String())
			}
			return fmt.Sprintf("user %d (hidden %t, devices %v): server %s, want %s", u.id, u.hidden, modes, a, b)
		}
	}
	return ""
}

// show renders what a watcher sees of a presence: "none" when unknown.
func show(p map[string]any) string {
	if p == nil {
		return "none"
	}
	keys := []string{"is_online", "is_busy", "wait_time"}
	var parts []string
	for _, k := range keys {
		parts = append(parts, fmt.Sprintf("%s=%v", k, p[k]))
	}
	slices.Sort(parts)
	return strings.Join(parts, " ")
}
