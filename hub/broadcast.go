package hub

import "time"

// install makes r the user's record and tells the watchers if what they
// see has changed. It queues no write; queueCorrections, called after it
// with the store's records, does.
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
}

// queueCorrections queues the writes by which the store's record of u,
// just installed, falls short of what this node knows first hand. It
// waits while writes of u are queued or the store is down: the answers
// still to come decide again.
func (h *Hub) queueCorrections(u *user, now time.Time) {
	if u.pending > 0 || h.down {
		return
	}
	r := u.rec
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
