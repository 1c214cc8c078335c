package hub

import (
	"context"
	"errors"
	"fmt"
	"time"
)

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

// Stats counts sessions, online users, subscriptions and pending writes,
// and says whether the store is down, on the hub goroutine: exact at one
// instant, at the cost of a walk over every user. [Hub.Counts] returns
// the same from counters, without waiting for the hub.
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
