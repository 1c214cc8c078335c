package hub

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"
)

// Config tunes a Hub. The zero value of each field means the default
// given beside it.
type Config struct {
	// Grace is how long a user stays online after their last connection
	// ends, so that a quick reconnect does not flap. Default 5s.
	Grace time.Duration
	// HeartbeatTTL is how long one REST heartbeat keeps a user online.
	// Default 90s.
	HeartbeatTTL time.Duration
	// FlushInterval is how often coalesced last_seen times are written to
	// the store. Default 5s.
	FlushInterval time.Duration
	// MaxQueueBytes caps the encoded bytes waiting for one session; a
	// session that would exceed it is closed as a slow consumer.
	// Default 256 KiB.
	MaxQueueBytes int
	// MaxSubscriptions caps the users one session may watch. Default 1000.
	MaxSubscriptions int
	// MaxSessionsPerUser caps the live sessions of one user. Default 20.
	MaxSessionsPerUser int
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
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
}

// user is the hub's view of one user id: the stored status, if any, and
// the live things that decide whether the user is online.
type user struct {
	status Status
	known  bool // a status exists (stored or created here)

	sessions       int
	heartbeatUntil time.Time // a REST heartbeat keeps the user alive until then
	graceUntil     time.Time // the last session ended; alive until then

	watchers map[*Session]struct{}

	// countedOnline is what the online counter last counted for this
	// user; commit brings it in line with status.Online.
	countedOnline bool
}

func (u *user) alive(now time.Time) bool {
	return u.sessions > 0 || now.Before(u.heartbeatUntil) || now.Before(u.graceUntil)
}

// Hub tracks presence for one node. Create it with New, start it with Run.
type Hub struct {
	cfg   Config
	store Store
	log   *slog.Logger

	requests chan func()
	stopped  chan struct{} // closed when Run returns

	// Owned by the Run goroutine.
	users     map[int64]*user
	sessions  map[*Session]struct{}
	deadlines deadlines
	dirty     map[int64]struct{} // last_seen changed since the last flush
	nextID    uint64
	counts    counters // sizes of the above, for readers on other goroutines
}

// New returns a hub that keeps statuses in store.
func New(store Store, cfg Config) *Hub {
	cfg.setDefaults()
	if cfg.EncodeEvent == nil {
		panic("hub: Config.EncodeEvent is required")
	}
	return &Hub{
		cfg:      cfg,
		store:    store,
		log:      cfg.Logger,
		requests: make(chan func(), 256),
		stopped:  make(chan struct{}),
		users:    make(map[int64]*user),
		sessions: make(map[*Session]struct{}),
		dirty:    make(map[int64]struct{}),
	}
}

// Run loads the stored statuses and serves requests until ctx is done. It
// then closes every session with CloseShutdown, flushes last_seen times
// and returns. Run must be called once.
func (h *Hub) Run(ctx context.Context) error {
	defer close(h.stopped)
	if err := h.load(ctx); err != nil {
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
		case <-timer.C:
			now := time.Now()
			h.deadlines.due(now, func(id int64) {
				if u := h.users[id]; u != nil {
					h.refresh(u, now)
				}
			})
		case <-flush.C:
			h.flushLastSeen(ctx)
		}
	}
}

func (h *Hub) load(ctx context.Context) error {
	all, err := h.store.LoadAll(ctx)
	if err != nil {
		return fmt.Errorf("load statuses: %w", err)
	}
	now := time.Now()
	for _, s := range all {
		u := &user{status: s, known: true}
		if s.Online {
			// Their sessions died with the previous process; give them the
			// grace to reconnect before they are shown offline.
			u.graceUntil = now.Add(h.cfg.Grace)
			h.deadlines.add(u.graceUntil, s.UserID)
			h.countOnline(u)
		}
		h.users[s.UserID] = u
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
	// A last chance: the context of Run is done, so use a fresh one.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	h.flushLastSeen(ctx)
}

// call runs fn on the hub goroutine and waits for it.
func (h *Hub) call(ctx context.Context, fn func()) error {
	done := make(chan struct{})
	select {
	case h.requests <- func() { fn(); close(done) }:
	case <-h.stopped:
		return ErrClosed
	case <-ctx.Done():
		return ctx.Err()
	}
	select {
	case <-done:
		return nil
	case <-h.stopped:
		return ErrClosed
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
		u = &user{status: Status{UserID: id}}
		h.users[id] = u
	}
	return u
}

// create makes u a known user as of now.
func (h *Hub) create(u *user, username string, now time.Time) {
	if !u.known {
		u.known = true
		u.status.CreatedAt = now
		u.status.UpdatedAt = now
		u.status.LastSeen = now
	}
	if username != "" {
		u.status.Username = username
	}
}

// forget drops an entry that holds nothing worth keeping.
func (h *Hub) forget(u *user) {
	if !u.known && len(u.watchers) == 0 {
		delete(h.users, u.status.UserID)
	}
}

// refresh recomputes u's online status; a change is stored and broadcast.
func (h *Hub) refresh(u *user, now time.Time) {
	online := !u.status.AppearOffline && u.alive(now)
	if online == u.status.Online {
		return
	}
	u.status.Online = online
	h.commit(u, now)
}

// commit stores u's changed status and then tells its watchers. Every
// change of status.Online goes through here, which keeps the online count.
func (h *Hub) commit(u *user, now time.Time) {
	h.countOnline(u)
	u.status.UpdatedAt = now
	delete(h.dirty, u.status.UserID) // Save carries last_seen too
	if err := h.store.Save(context.Background(), u.status); err != nil {
		h.log.Error("store status", "user_id", u.status.UserID, "err", err)
	}
	h.broadcast(u, now)
}

func (h *Hub) broadcast(u *user, now time.Time) {
	if len(u.watchers) == 0 {
		return
	}
	msg := Message{Data: h.cfg.EncodeEvent(u.status.Presence()), Event: true, At: now}
	for s := range u.watchers {
		if !s.Send(msg) {
			h.drop(s, CloseSlowConsumer)
		}
	}
}

// seen records a sign of life; it is written at the next flush.
func (h *Hub) seen(u *user, now time.Time) {
	u.status.LastSeen = now
	h.dirty[u.status.UserID] = struct{}{}
}

func (h *Hub) flushLastSeen(ctx context.Context) {
	if len(h.dirty) == 0 {
		return
	}
	batch := make([]LastSeen, 0, len(h.dirty))
	for id := range h.dirty {
		if u := h.users[id]; u != nil && u.known {
			batch = append(batch, LastSeen{UserID: id, At: u.status.LastSeen})
		}
	}
	clear(h.dirty)
	if err := h.store.SaveLastSeen(ctx, batch); err != nil {
		h.log.Error("store last_seen", "users", len(batch), "err", err)
	}
}

// Connect opens a session for a user. The user becomes online at once.
func (h *Hub) Connect(ctx context.Context, userID int64, username string) (*Session, error) {
	var s *Session
	var err error
	callErr := h.call(ctx, func() {
		u := h.userFor(userID)
		if u.sessions >= h.cfg.MaxSessionsPerUser {
			err = fmt.Errorf("%w: %d connections for user %d", ErrLimit, u.sessions, userID)
			return
		}
		h.nextID++
		s = newSession(h.nextID, userID, username, h.cfg.MaxQueueBytes)
		h.sessions[s] = struct{}{}
		h.counts.sessions.Add(1)
		now := time.Now()
		created := !u.known
		h.create(u, username, now)
		u.sessions++
		u.graceUntil = time.Time{}
		h.seen(u, now)
		if online := !u.status.AppearOffline; online != u.status.Online || created {
			u.status.Online = online
			h.commit(u, now)
		}
	})
	if callErr != nil {
		return nil, callErr
	}
	return s, err
}

// Disconnect ends a session that its client closed or lost. It does not
// wait for the hub and may be called more than once.
func (h *Hub) Disconnect(s *Session) {
	h.post(func() { h.drop(s, CloseNone) })
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
	if u.sessions == 0 {
		u.graceUntil = now.Add(h.cfg.Grace)
		h.deadlines.add(u.graceUntil, u.status.UserID)
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

// Heartbeat keeps a user online for the heartbeat TTL without a
// connection, creating their status if needed.
func (h *Hub) Heartbeat(ctx context.Context, userID int64, username string) error {
	return h.call(ctx, func() {
		h.heartbeat(h.userFor(userID), username, time.Now())
	})
}

func (h *Hub) heartbeat(u *user, username string, now time.Time) {
	created := !u.known
	h.create(u, username, now)
	u.heartbeatUntil = now.Add(h.cfg.HeartbeatTTL)
	h.deadlines.add(u.heartbeatUntil, u.status.UserID)
	h.seen(u, now)
	if online := !u.status.AppearOffline; online != u.status.Online || created {
		u.status.Online = online
		h.commit(u, now)
	}
}

// SetStatus applies a change the user asked for and returns the result.
// The status is created if missing. When alive is true the request itself
// counts as a heartbeat: a REST client has no socket to prove it is there.
func (h *Hub) SetStatus(ctx context.Context, userID int64, username string, up StatusUpdate, alive bool) (Status, error) {
	var out Status
	err := h.call(ctx, func() {
		now := time.Now()
		u := h.userFor(userID)
		h.create(u, username, now)
		st := &u.status
		if alive {
			u.heartbeatUntil = now.Add(h.cfg.HeartbeatTTL)
			h.deadlines.add(u.heartbeatUntil, userID)
			h.seen(u, now)
		}
		if up.Online != nil {
			st.AppearOffline = !*up.Online
		}
		if up.Busy != nil {
			st.Busy = *up.Busy
		}
		if up.WaitTimeSet {
			st.WaitTime = up.WaitTime
		}
		if !st.Busy {
			st.WaitTime = nil // a wait time means nothing without a call
		}
		st.Online = !st.AppearOffline && u.alive(now)
		h.commit(u, now)
		out = *st
	})
	return out, err
}

// Status returns a user's stored status.
func (h *Hub) Status(ctx context.Context, userID int64) (Status, error) {
	var out Status
	found := false
	err := h.call(ctx, func() {
		if u := h.users[userID]; u != nil && u.known {
			out, found = u.status, true
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
			out = append(out, u.status.Presence())
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
}

// Stats counts sessions, online users and subscriptions.
func (h *Hub) Stats(ctx context.Context) (Stats, error) {
	var st Stats
	err := h.call(ctx, func() {
		st.Sessions = len(h.sessions)
		for _, u := range h.users {
			if u.status.Online {
				st.OnlineUsers++
			}
			st.Subscriptions += len(u.watchers)
		}
	})
	return st, err
}
