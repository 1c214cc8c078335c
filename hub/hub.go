package hub

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"
)

// Config tunes a Hub. The zero value of each field means the default
// given beside it.
type Config struct {
	// Grace is how long a user stays online after their last connection
	// ends, so that a quick reconnect does not flap. Default 5s.
	Grace time.Duration
	// HeartbeatTTL is how long one REST heartbeat (or REST status update)
	// keeps a device, or a user whose client sent no device id, online.
	// Default 90s.
	HeartbeatTTL time.Duration
	// FlushInterval is how often coalesced last_seen times (and heartbeat
	// extensions) are written to the store. Default 5s.
	FlushInterval time.Duration
	// MaxQueueBytes caps the encoded bytes waiting for one session; a
	// session that would exceed it is closed as a slow consumer.
	// Default 256 KiB.
	MaxQueueBytes int
	// MaxSubscriptions caps the users one session may watch. Default 1000.
	MaxSubscriptions int
	// MaxSessionsPerUser caps the live sessions of one user. Default 20.
	MaxSessionsPerUser int
	// MaxPendingWrites caps the changes waiting for the store, counted in
	// changes. While the store is down they wait here; once the cap is
	// reached, new changes are refused with ErrUnavailable rather than
	// acknowledged and lost. Default 10000.
	MaxPendingWrites int
	// StoreTimeout bounds one store call; a call that takes longer counts
	// as an outage and is retried. It also bounds how long Run waits for
	// queued writes when it stops. Default 5s.
	StoreTimeout time.Duration
	// Feed, when set, delivers changes made by other nodes that share the
	// store; the hub then takes its first snapshot from it instead of
	// Store.LoadAll. Nil for a single node.
	Feed Feed
	// EncodeEvent turns a presence change into the bytes sent to every
	// watcher; it is called once per change, not once per watcher.
	// Required.
	EncodeEvent func(Presence) []byte
	// Logger receives the hub's logs. Default slog.Default().
	Logger *slog.Logger
}

func (c *Config) setDefaults() {
	if c.Grace == 0 {
		c.Grace = 5 * time.Second
	}
	if c.HeartbeatTTL == 0 {
		c.HeartbeatTTL = 90 * time.Second
	}
	if c.FlushInterval == 0 {
		c.FlushInterval = 5 * time.Second
	}
	if c.MaxQueueBytes == 0 {
		c.MaxQueueBytes = 256 << 10
	}
	if c.MaxSubscriptions == 0 {
		c.MaxSubscriptions = 1000
	}
	if c.MaxSessionsPerUser == 0 {
		c.MaxSessionsPerUser = 20
	}
	if c.MaxPendingWrites == 0 {
		c.MaxPendingWrites = 10000
	}
	if c.StoreTimeout == 0 {
		c.StoreTimeout = 5 * time.Second
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
}

// user is the hub's view of one user id: the latest record the store
// gave (or, while the store is down, the hub's own decision), and what
// this node knows first hand.
type user struct {
	rec   Record
	known bool // a status exists

	sessions   int
	graceUntil time.Time // the last session ended; this node vouches until then
	// vouched is what this node last told the store: that it holds a
	// connection of the user (or is within the grace).
	vouched bool
	others  int // other nodes vouching, as of the latest record

	// localHB holds the heartbeats received here, by device ("" for a
	// client without a device id): each keeps the user alive until then,
	// whether or not it has reached the store yet.
	localHB    map[string]time.Time
	storeHB    time.Time            // the store's heartbeat without a device, on this node's clock
	storeDevHB map[string]time.Time // the store's device heartbeats, on this node's clock
	refreshAt  time.Time            // ask the store again then: a heartbeat may expire
	// devices counts the sessions this node holds per device id. A device
	// with a session here is alive by its socket; its REST requests prove
	// nothing more, and any REST heartbeat the store holds for it ends.
	devices map[string]int

	pending     int     // jobs queued for this user
	provisional uint64  // the latest job answered without the store, 0 if none
	held        *Record // the newest record from elsewhere while provisional

	watchers map[*Session]struct{}

	// countedOnline is what the online counter last counted for this
	// user; install brings it in line with rec.Online.
	countedOnline bool
}

// Hub tracks presence for one node. Create it with New, start it with Run.
type Hub struct {
	cfg   Config
	store Store
	log   *slog.Logger
	w     *writer

	requests chan func()
	changes  chan Change
	stopped  chan struct{} // closed when Run stops serving

	// Owned by the Run goroutine.
	users     map[int64]*user
	sessions  map[*Session]struct{}
	deadlines deadlines
	dirty     map[int64]struct{} // last_seen changed since the last flush
	nextID    uint64
	jobs      []*job // queued for the writer, oldest first
	seq       uint64
	down      bool     // the store is unavailable; answers come from memory
	flushing  bool     // a last_seen flush is queued
	counts    counters // sizes of the above, for readers on other goroutines
}

// New returns a hub that keeps statuses in store.
func New(store Store, cfg Config) *Hub {
	cfg.setDefaults()
	if cfg.EncodeEvent == nil {
		panic("hub: Config.EncodeEvent is required")
	}
	h := &Hub{
		cfg:      cfg,
		store:    store,
		log:      cfg.Logger,
		w:        newWriter(store, cfg.StoreTimeout),
		requests: make(chan func(), 256),
		changes:  make(chan Change),
		stopped:  make(chan struct{}),
		users:    make(map[int64]*user),
		sessions: make(map[*Session]struct{}),
		dirty:    make(map[int64]struct{}),
	}
	h.w.report = func(jobs []*job, answers []Applied, outage error) {
		h.post(func() { h.finished(jobs, answers, outage) })
	}
	return h
}

// Run loads the statuses and serves requests until ctx is done. It then
// closes every session with CloseShutdown, flushes last_seen times, gives
// queued writes up to Config.StoreTimeout to reach the store, and
// returns. Run must be called once.
func (h *Hub) Run(ctx context.Context) error {
	var bg sync.WaitGroup
	bgCtx, stopBg := context.WithCancel(context.Background())
	defer func() {
		close(h.stopped)
		stopBg()
		bg.Wait()
	}()
	bg.Go(func() { h.w.run(bgCtx) })
	if h.cfg.Feed != nil {
		bg.Go(func() { h.cfg.Feed.Run(bgCtx, h.deliver) })
	}
	if err := h.load(ctx); err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return err
	}
	flush := time.NewTicker(h.cfg.FlushInterval)
	defer flush.Stop()
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		h.resetTimer(timer)
		select {
		case <-ctx.Done():
			h.shutdown()
			return nil
		case fn := <-h.requests:
			fn()
		case c := <-h.changes:
			h.applyChange(c, time.Now())
		case <-timer.C:
			now := time.Now()
			h.deadlines.due(now, func(id int64) {
				if u := h.users[id]; u != nil {
					h.wake(u, now)
				}
			})
		case <-flush.C:
			h.flush(time.Now())
		}
	}
}

// deliver hands a change from the feed to the hub goroutine.
func (h *Hub) deliver(c Change) {
	select {
	case h.changes <- c:
	case <-h.stopped:
	}
}

func (h *Hub) load(ctx context.Context) error {
	if h.cfg.Feed != nil {
		// The feed listens before it takes its snapshot, so no change
		// falls between the two.
		for {
			select {
			case <-ctx.Done():
				return ctx.Err()
			case c := <-h.changes:
				h.applyChange(c, time.Now())
				if c.Snapshot {
					return nil
				}
			}
		}
	}
	all, err := h.store.LoadAll(ctx)
	if err != nil {
		return fmt.Errorf("load statuses: %w", err)
	}
	now := time.Now()
	for _, r := range all {
		u := h.userFor(r.UserID)
		h.install(u, r, now)
		if r.Online {
			// Their sessions died with the previous process; give them the
			// grace to reconnect, then let the store decide again.
			u.refreshAt = now.Add(h.cfg.Grace)
			h.deadlines.add(u.refreshAt, r.UserID)
		}
	}
	return nil
}

func (h *Hub) resetTimer(t *time.Timer) {
	next, ok := h.deadlines.next()
	if !ok {
		next = time.Now().Add(time.Hour)
	}
	t.Reset(time.Until(next))
}

func (h *Hub) shutdown() {
	for s := range h.sessions {
		s.close(CloseShutdown)
	}
	clear(h.sessions)
	h.counts.sessions.Store(0)
	// This node keeps vouching for its users: the store lets the vouches
	// lapse after the grace, so that they can reconnect elsewhere first.
	h.flush(time.Now())
	if len(h.jobs) == 0 {
		return
	}
	limit := time.NewTimer(h.cfg.StoreTimeout)
	defer limit.Stop()
	for len(h.jobs) > 0 {
		select {
		case fn := <-h.requests:
			fn()
		case <-limit.C:
			h.log.Error("stopping with writes the store has not taken", "writes", len(h.jobs))
			return
		}
	}
}

// call runs fn on the hub goroutine and waits for it.
func (h *Hub) call(ctx context.Context, fn func()) error {
	return h.await(ctx, func(reply func(error)) { fn(); reply(nil) })
}

// await runs fn on the hub goroutine and waits until fn, or a job that fn
// queued, calls reply. Only the wait to be served honours ctx: once
// queued, a change is answered within the store timeout, by the store or
// from memory.
func (h *Hub) await(ctx context.Context, fn func(reply func(error))) error {
	done := make(chan error, 1)
	reply := func(err error) {
		select {
		case done <- err:
		default: // answered already
		}
	}
	select {
	case h.requests <- func() { fn(reply) }:
	case <-h.stopped:
		return ErrClosed
	case <-ctx.Done():
		return ctx.Err()
	}
	select {
	case err := <-done:
		return err
	case <-h.stopped:
		select {
		case err := <-done:
			return err
		default:
			return ErrClosed
		}
	}
}

// post runs fn on the hub goroutine without waiting for it to finish.
func (h *Hub) post(fn func()) {
	select {
	case h.requests <- fn:
	case <-h.stopped:
	}
}

// userFor returns the entry for id, creating an unknown one if needed.
func (h *Hub) userFor(id int64) *user {
	u := h.users[id]
	if u == nil {
		u = &user{rec: Record{Status: Status{UserID: id}}}
		h.users[id] = u
	}
	return u
}

// forget drops an entry that holds nothing worth keeping.
func (h *Hub) forget(u *user) {
	if !u.known && len(u.watchers) == 0 && u.sessions == 0 && u.pending == 0 && !u.vouched {
		delete(h.users, u.rec.UserID)
	}
}

// enqueue queues op for the store. done, if not nil, gets the answer on
// the hub goroutine. With limit > 0 the op is refused (false) when that
// many writes are waiting already.
func (h *Hub) enqueue(u *user, op Op, limit int, done func(Record, error)) bool {
	if limit > 0 && len(h.jobs) >= limit {
		return false
	}
	h.seq++
	j := &job{seq: h.seq, op: op, made: time.Now(), vouched: u.vouched, done: done}
	h.jobs = append(h.jobs, j)
	u.pending++
	h.w.push(j)
	if h.down {
		h.answerProvisionally(u, j, time.Now())
	}
	return true
}

// answerProvisionally decides j from memory while the store is down, by
// the same rule the store follows, with what this node last heard of the
// other nodes. The job stays queued and reaches the store when it returns.
func (h *Hub) answerProvisionally(u *user, j *job, now time.Time) {
	j.provisional = true
	done := j.done
	j.done = nil
	if !u.known && !j.op.Creates() {
		if done != nil {
			done(Record{}, ErrNotFound)
		}
		return
	}
	vouchers := u.others
	if j.vouched {
		vouchers++
	}
	row := Row{Status: u.rec.Status, Version: u.rec.Version, HeartbeatUntil: u.storeHB, DeviceHeartbeats: u.storeDevHB}
	out, _ := Decide(row, u.known, j.op, vouchers, now)
	rec := out.Record(now, vouchers)
	// Keep the store's version: the store's own answer, when it comes,
	// must count as newer.
	rec.Version = u.rec.Version
	u.provisional = j.seq
	h.install(u, rec, now)
	if done != nil {
		done(rec, nil)
	}
}

// finished takes the writer's answers to the oldest queued jobs, in
// order, or the news that the store is down.
func (h *Hub) finished(jobs []*job, answers []Applied, outage error) {
	if outage != nil {
		h.storeDown(outage)
		return
	}
	for i, j := range jobs {
		h.finish(j, answers[i].Record, answers[i].Err)
	}
}

// storeDown switches to answering from memory: every queued change is
// decided now and stays queued for the store's return.
func (h *Hub) storeDown(err error) {
	if h.down {
		return
	}
	h.down = true
	h.log.Warn("store unavailable: answering from memory, writes queued", "writes", len(h.jobs), "err", err)
	now := time.Now()
	for _, q := range h.jobs {
		if q.lastSeen == nil && !q.provisional {
			h.answerProvisionally(h.users[q.op.UserID], q, now)
		}
	}
}

// finish takes the store's answer to the oldest queued job.
func (h *Hub) finish(j *job, rec Record, err error) {
	now := time.Now()
	if h.down {
		h.down = false
		h.log.Info("store available again", "writes", len(h.jobs))
	}
	h.jobs[0] = nil
	h.jobs = h.jobs[1:]
	if j.lastSeen != nil {
		h.flushing = false
		if err != nil {
			h.log.Error("store last_seen", "users", len(j.lastSeen), "err", err)
		}
		return
	}
	u := h.users[j.op.UserID]
	u.pending--
	defer h.forget(u)
	switch {
	case err != nil:
		if !errors.Is(err, ErrNotFound) {
			h.log.Error("store status", "user_id", j.op.UserID, "err", err)
		}
		if j.done != nil {
			j.done(Record{}, err)
		}
		return
	case j.provisional:
		if u.provisional != j.seq {
			return // a later change of the user is shown already
		}
		u.provisional = 0
		if u.held != nil && u.held.Version > rec.Version {
			rec = *u.held
		}
		u.held = nil
		if rec.Version > u.rec.Version {
			h.install(u, rec, now)
		}
	default:
		if !u.known || rec.Version > u.rec.Version {
			h.install(u, rec, now)
		}
		if j.done != nil {
			j.done(rec, nil)
		}
	}
	// Nobody holds the user; only a heartbeat does, so someone must
	// look again when it runs out.
	if left := rec.AliveFor(); rec.Online && rec.Vouchers == 0 && left > 0 {
		u.refreshAt = now.Add(left)
		h.deadlines.add(u.refreshAt, u.rec.UserID)
	}
}

// applyChange takes what the feed says other nodes changed.
func (h *Hub) applyChange(c Change, now time.Time) {
	for _, r := range c.Records {
		u := h.userFor(r.UserID)
		switch {
		case u.known && r.Version <= u.rec.Version:
			// This node has it already.
		case u.provisional != 0:
			// This node's own changes are on their way to the store and
			// will come back newer; keep the newest for then.
			if u.held == nil || r.Version > u.held.Version {
				held := r
				u.held = &held
			}
		default:
			h.install(u, r, now)
		}
		h.forget(u)
	}
	for _, ls := range c.LastSeen {
		if u := h.users[ls.UserID]; u != nil && u.known && !u.rec.AppearOffline && ls.At.After(u.rec.LastSeen) {
			u.rec.LastSeen = ls.At
		}
	}
}

// install makes r the user's record and tells the watchers if what they
// see has changed.
func (h *Hub) install(u *user, r Record, now time.Time) {
	old, wasKnown := u.rec.Presence(), u.known
	r.Status = r.Status.Clone()
	r.LastSeen = latest(r.LastSeen, u.rec.LastSeen)
	u.rec, u.known = r, true
	h.countOnline(u)
	u.storeHB = time.Time{}
	if r.HeartbeatLeft > 0 {
		u.storeHB = now.Add(r.HeartbeatLeft)
	}
	// A device heartbeat the store held and holds no more was ended there
	// (a socket of the device took it over, perhaps on another node): the
	// copy this node received must not bring it back.
	for dev := range u.storeDevHB {
		if _, still := r.DeviceHeartbeats[dev]; !still && dev != "" {
			delete(u.localHB, dev)
		}
	}
	u.storeDevHB = nil
	for dev, left := range r.DeviceHeartbeats {
		if u.storeDevHB == nil {
			u.storeDevHB = make(map[string]time.Time, len(r.DeviceHeartbeats))
		}
		u.storeDevHB[dev] = now.Add(left)
	}
	u.others = r.Vouchers
	if u.vouched && u.others > 0 {
		u.others--
	}
	if !wasKnown || !samePresence(old, r.Presence()) {
		h.broadcast(u, now)
	}
	if u.pending > 0 || h.down {
		return // the answers still to come decide again
	}
	// A REST heartbeat of a device whose socket this node holds (it came
	// through another node, or before the socket): the socket takes over,
	// so that the device's liveness ends when its socket does.
	for dev := range r.DeviceHeartbeats {
		if u.devices[dev] > 0 {
			h.enqueue(u, Op{Kind: OpEndHeartbeat, UserID: r.UserID, Device: dev}, h.cfg.MaxPendingWrites, nil)
		}
	}
	// A heartbeat that reached this node but not yet the store must not
	// let the user go offline.
	if !r.Online && !r.AppearOffline {
		h.resendHeartbeats(u, now)
	}
}

// resendHeartbeats sends the store the heartbeats received here that
// still keep the user alive, as their own changes.
func (h *Hub) resendHeartbeats(u *user, now time.Time) {
	for dev, until := range u.localHB {
		if now.Before(until) {
			h.enqueue(u, Op{Kind: OpHeartbeat, UserID: u.rec.UserID, Device: dev, HeartbeatTTL: until.Sub(now)}, h.cfg.MaxPendingWrites, nil)
		}
	}
}

// storedHeartbeat reports whether the store, as last heard, holds a live
// REST heartbeat of device for u.
func (u *user) storedHeartbeat(device string, now time.Time) bool {
	return now.Before(u.storeDevHB[device])
}

// pruneHeartbeats forgets the heartbeats received here that ran out.
func (u *user) pruneHeartbeats(now time.Time) {
	for dev, until := range u.localHB {
		if !now.Before(until) {
			delete(u.localHB, dev)
		}
	}
}

// samePresence reports whether a watcher would see no change. BusySince
// is left out: it moves only with Busy, which is compared, and a later
// record may carry it a little apart from an earlier one (a change
// decided from memory during an outage, then stored).
func samePresence(a, b Presence) bool {
	return a.UserID == b.UserID && a.Username == b.Username && a.Online == b.Online &&
		a.LastSeen.IsZero() == b.LastSeen.IsZero() &&
		a.Busy == b.Busy && (a.WaitTime == nil) == (b.WaitTime == nil) &&
		(a.WaitTime == nil || *a.WaitTime == *b.WaitTime)
}

func (h *Hub) broadcast(u *user, now time.Time) {
	if len(u.watchers) == 0 {
		return
	}
	msg := Message{Data: h.cfg.EncodeEvent(u.rec.Presence()), Event: true, At: now}
	for s := range u.watchers {
		if !s.Send(msg) {
			h.drop(s, CloseSlowConsumer)
		}
	}
}

// wake handles a user's deadline: the grace or a heartbeat ran out.
func (h *Hub) wake(u *user, now time.Time) {
	if u.vouched && u.sessions == 0 && !now.Before(u.graceUntil) {
		u.vouched = false
		h.enqueue(u, Op{Kind: OpRelease, UserID: u.rec.UserID, SeenAt: u.rec.LastSeen}, 0, nil)
	}
	if !u.refreshAt.IsZero() && !now.Before(u.refreshAt) {
		u.refreshAt = time.Time{}
		u.pruneHeartbeats(now)
		if len(u.localHB) > 0 {
			h.resendHeartbeats(u, now)
		} else {
			h.enqueue(u, Op{Kind: OpRefresh, UserID: u.rec.UserID}, h.cfg.MaxPendingWrites, nil)
		}
	}
	h.forget(u)
}

// seen records a sign of life; it is written at the next flush. While
// the user appears offline it moves nothing that others can see, but a
// heartbeat extension still travels with the flush.
func (h *Hub) seen(u *user, now time.Time) {
	if !u.rec.AppearOffline {
		u.rec.LastSeen = latest(u.rec.LastSeen, now)
	}
	h.dirty[u.rec.UserID] = struct{}{}
}

// flush queues the coalesced last_seen times, one batch at a time.
func (h *Hub) flush(now time.Time) {
	if h.flushing || len(h.dirty) == 0 {
		return
	}
	batch := make([]LastSeen, 0, len(h.dirty))
	for id := range h.dirty {
		u := h.users[id]
		if u == nil || !u.known {
			continue
		}
		ls := LastSeen{UserID: id, At: u.rec.LastSeen}
		u.pruneHeartbeats(now)
		for dev, until := range u.localHB {
			switch {
			case dev == "":
				ls.HeartbeatTTL = until.Sub(now)
			case u.storedHeartbeat(dev, now):
				// A device heartbeat the store does not hold went as a
				// change of its own; the flush only extends.
				if ls.DeviceHeartbeats == nil {
					ls.DeviceHeartbeats = make(map[string]time.Duration, len(u.localHB))
				}
				ls.DeviceHeartbeats[dev] = until.Sub(now)
			}
		}
		batch = append(batch, ls)
	}
	clear(h.dirty)
	if len(batch) == 0 {
		return
	}
	h.flushing = true
	h.seq++
	j := &job{seq: h.seq, lastSeen: batch}
	h.jobs = append(h.jobs, j)
	h.w.push(j)
}

// Connect opens a session for a client. The user is online once it
// returns: the store has taken the change, or, while the store is down,
// the hub has decided from memory.
func (h *Hub) Connect(ctx context.Context, c Client) (*Session, error) {
	var s *Session
	userID, username := c.UserID, c.Username
	err := h.await(ctx, func(reply func(error)) {
		u := h.userFor(userID)
		if u.sessions >= h.cfg.MaxSessionsPerUser {
			reply(fmt.Errorf("%w: %d connections for user %d", ErrLimit, u.sessions, userID))
			return
		}
		now := time.Now()
		h.nextID++
		sess := newSession(h.nextID, c, h.cfg.MaxQueueBytes)
		// The store hears of the user's first session here, of a new name,
		// and of a socket that takes over its device's REST heartbeat;
		// further sessions only count.
		needOp := !u.vouched || (username != "" && username != u.rec.Username) ||
			(c.Device != "" && u.storedHeartbeat(c.Device, now))
		if needOp {
			wasVouched := u.vouched
			u.vouched = true
			op := Op{Kind: OpConnect, UserID: userID, Username: username, Device: c.Device}
			ok := h.enqueue(u, op, h.cfg.MaxPendingWrites, func(_ Record, err error) {
				if err != nil {
					h.drop(sess, CloseNone)
					reply(err)
					return
				}
				s = sess
				reply(nil)
			})
			if !ok {
				u.vouched = wasVouched
				h.forget(u)
				reply(fmt.Errorf("%w: %d writes waiting for the store", ErrUnavailable, len(h.jobs)))
				return
			}
		}
		h.sessions[sess] = struct{}{}
		h.counts.sessions.Add(1)
		u.sessions++
		u.graceUntil = time.Time{}
		if c.Device != "" {
			if u.devices == nil {
				u.devices = make(map[string]int)
			}
			u.devices[c.Device]++
			delete(u.localHB, c.Device) // the socket proves the device alive now
		}
		if !needOp {
			h.seen(u, now)
			s = sess
			reply(nil)
		}
	})
	if err != nil {
		return nil, err
	}
	return s, nil
}

// Disconnect ends a session that its client closed or lost, and returns
// once the hub has let go of it (or has stopped), so that what the client
// does next comes after. It may be called more than once.
func (h *Hub) Disconnect(s *Session) {
	_ = h.call(context.Background(), func() { h.drop(s, CloseNone) })
}

// drop removes s from the hub and closes it with reason.
func (h *Hub) drop(s *Session, reason CloseReason) {
	s.close(reason)
	if _, ok := h.sessions[s]; !ok {
		return
	}
	delete(h.sessions, s)
	h.counts.sessions.Add(-1)
	for id := range s.subs {
		h.unwatch(s, id)
	}
	u := h.users[s.UserID]
	u.sessions--
	now := time.Now()
	h.seen(u, now)
	if s.Device != "" {
		if u.devices[s.Device]--; u.devices[s.Device] == 0 {
			// The device's liveness was its socket's, and ends with it,
			// REST heartbeat and all.
			delete(u.devices, s.Device)
			delete(u.localHB, s.Device)
			if u.storedHeartbeat(s.Device, now) {
				h.enqueue(u, Op{Kind: OpEndHeartbeat, UserID: s.UserID, Device: s.Device}, h.cfg.MaxPendingWrites, nil)
			}
		}
	}
	if u.sessions == 0 {
		u.graceUntil = now.Add(h.cfg.Grace)
		h.deadlines.add(u.graceUntil, u.rec.UserID)
	}
}

func (h *Hub) unwatch(s *Session, id int64) {
	if _, ok := s.subs[id]; ok {
		delete(s.subs, id)
		h.counts.subscriptions.Add(-1)
	}
	if u := h.users[id]; u != nil {
		delete(u.watchers, s)
		h.forget(u)
	}
}

// Touch records that a session's client answered a ping.
func (h *Hub) Touch(s *Session) {
	h.post(func() {
		if _, ok := h.sessions[s]; ok {
			h.seen(h.users[s.UserID], time.Now())
		}
	})
}

// Heartbeat keeps a client's device (or a user whose client sent no
// device id) online for the heartbeat TTL without a connection, creating
// the user's status if needed. A heartbeat of a user who is online
// already costs no write of its own: it travels with the next last_seen
// flush. A heartbeat of a device whose socket this node holds is only a
// sign of life: the socket keeps the device alive, and its end must end
// the device's liveness.
func (h *Hub) Heartbeat(ctx context.Context, c Client) error {
	userID, username := c.UserID, c.Username
	return h.await(ctx, func(reply func(error)) {
		u := h.userFor(userID)
		now := time.Now()
		sameName := username == "" || username == u.rec.Username || u.rec.AppearOffline
		ttl := h.cfg.HeartbeatTTL
		if c.Device != "" && u.devices[c.Device] > 0 {
			ttl = 0
		} else {
			if u.localHB == nil {
				u.localHB = make(map[string]time.Time)
			}
			u.localHB[c.Device] = now.Add(ttl)
		}
		stored := ttl == 0 || c.Device == "" || u.storedHeartbeat(c.Device, now)
		// While the user appears offline the store's online flag says
		// nothing of their liveness; the flush still extends it.
		if u.known && (u.rec.Online || u.rec.AppearOffline) && u.pending == 0 && sameName && stored {
			h.seen(u, now)
			reply(nil)
			return
		}
		op := Op{Kind: OpHeartbeat, UserID: userID, Username: username, Device: c.Device, HeartbeatTTL: ttl}
		if !h.enqueue(u, op, h.cfg.MaxPendingWrites, func(_ Record, err error) { reply(err) }) {
			h.forget(u)
			reply(fmt.Errorf("%w: %d writes waiting for the store", ErrUnavailable, len(h.jobs)))
		}
	})
}

// SetStatus applies a change the client asked for and returns the
// result. The status is created if missing.
func (h *Hub) SetStatus(ctx context.Context, req StatusRequest) (Status, error) {
	var out Status
	err := h.await(ctx, func(reply func(error)) {
		u := h.userFor(req.UserID)
		op := Op{Kind: OpUpdate, UserID: req.UserID, Username: req.Username, Device: req.Device, Update: req.Update}
		if req.Heartbeat && (req.Device == "" || u.devices[req.Device] == 0) {
			op.HeartbeatTTL = h.cfg.HeartbeatTTL
			if u.localHB == nil {
				u.localHB = make(map[string]time.Time)
			}
			u.localHB[req.Device] = time.Now().Add(h.cfg.HeartbeatTTL)
		}
		ok := h.enqueue(u, op, h.cfg.MaxPendingWrites, func(r Record, err error) {
			out = r.Status.Clone()
			reply(err)
		})
		if !ok {
			h.forget(u)
			reply(fmt.Errorf("%w: %d writes waiting for the store", ErrUnavailable, len(h.jobs)))
		}
	})
	return out, err
}

// Status returns a user's stored status.
func (h *Hub) Status(ctx context.Context, userID int64) (Status, error) {
	var out Status
	found := false
	err := h.call(ctx, func() {
		if u := h.users[userID]; u != nil && u.known {
			out, found = u.rec.Status.Clone(), true
		}
	})
	if err == nil && !found {
		err = ErrNotFound
	}
	return out, err
}

// Presences returns the presence of each known user among ids, in the
// order of ids.
func (h *Hub) Presences(ctx context.Context, ids []int64) ([]Presence, error) {
	out := make([]Presence, 0, len(ids))
	err := h.call(ctx, func() { out = h.snapshot(ids, out) })
	return out, err
}

func (h *Hub) snapshot(ids []int64, out []Presence) []Presence {
	for _, id := range ids {
		if u := h.users[id]; u != nil && u.known {
			out = append(out, u.rec.Presence())
		}
	}
	return out
}

// Subscribe makes s watch the users in ids. reply turns the snapshot of the
// known ones into the answer; the hub queues it on s before any later
// event, so the client never sees an event older than its snapshot.
func (h *Hub) Subscribe(ctx context.Context, s *Session, ids []int64, reply func([]Presence) Message) error {
	var err error
	callErr := h.call(ctx, func() {
		if _, ok := h.sessions[s]; !ok {
			err = ErrClosed
			return
		}
		if s.subs == nil {
			s.subs = make(map[int64]struct{}, len(ids))
		}
		added := 0
		for _, id := range ids {
			if _, ok := s.subs[id]; !ok {
				added++
			}
		}
		if len(s.subs)+added > h.cfg.MaxSubscriptions {
			err = fmt.Errorf("%w: at most %d subscriptions per connection", ErrLimit, h.cfg.MaxSubscriptions)
			return
		}
		for _, id := range ids {
			if _, ok := s.subs[id]; !ok {
				h.counts.subscriptions.Add(1)
			}
			s.subs[id] = struct{}{}
			u := h.userFor(id)
			if u.watchers == nil {
				u.watchers = make(map[*Session]struct{})
			}
			u.watchers[s] = struct{}{}
		}
		if !s.Send(reply(h.snapshot(ids, nil))) {
			h.drop(s, CloseSlowConsumer)
		}
	})
	return errors.Join(callErr, err)
}

// Unsubscribe stops s watching the users in ids.
func (h *Hub) Unsubscribe(ctx context.Context, s *Session, ids []int64) error {
	return h.call(ctx, func() {
		if _, ok := h.sessions[s]; !ok {
			return
		}
		for _, id := range ids {
			h.unwatch(s, id)
		}
	})
}

// Stats is a point-in-time count of what the hub holds.
type Stats struct {
	Sessions      int
	OnlineUsers   int
	Subscriptions int
	// PendingWrites counts the changes waiting for the store.
	PendingWrites int
	// StoreDown says that the store is unavailable and the hub answers
	// from memory.
	StoreDown bool
}

// Stats counts sessions, online users and subscriptions.
func (h *Hub) Stats(ctx context.Context) (Stats, error) {
	var st Stats
	err := h.call(ctx, func() {
		st.Sessions = len(h.sessions)
		st.PendingWrites = len(h.jobs)
		st.StoreDown = h.down
		for _, u := range h.users {
			if u.known && u.rec.Online {
				st.OnlineUsers++
			}
			st.Subscriptions += len(u.watchers)
		}
	})
	return st, err
}
