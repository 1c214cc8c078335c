package hub

import (
	"context"
	"log/slog"
	"sync"
	"time"
)

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
	h.w.report = func(first uint64, answers []Applied, outage error) {
		h.post(func() { h.takeReport(first, answers, outage) })
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
