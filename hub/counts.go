package hub

import "sync/atomic"

// counters mirror the sizes of the hub's state for readers on other
// goroutines. Only the hub goroutine writes them, next to each change.
type counters struct {
	sessions      atomic.Int64
	online        atomic.Int64
	subscriptions atomic.Int64
	pendingWrites atomic.Int64 // len(h.jobs)
	storeDown     atomic.Bool  // h.down
}

// countOnline brings the online count in line with u's status.
func (h *Hub) countOnline(u *user) {
	online := u.known && u.rec.Online
	if online == u.countedOnline {
		return
	}
	u.countedOnline = online
	if online {
		h.counts.online.Add(1)
	} else {
		h.counts.online.Add(-1)
	}
}

// Counts returns what [Hub.Stats] returns, from counters the hub keeps
// as it goes. It costs five atomic loads instead of a round trip to the
// hub goroutine and a walk over every user, so that metrics can read it
// on every scrape without stalling broadcasts, and while the hub is too
// busy to answer: the pending writes and the store being down are what
// shows an outage coming. The numbers are each current but not taken at
// one instant.
func (h *Hub) Counts() Stats {
	return Stats{
		Sessions:      int(h.counts.sessions.Load()),
		OnlineUsers:   int(h.counts.online.Load()),
		Subscriptions: int(h.counts.subscriptions.Load()),
		PendingWrites: int(h.counts.pendingWrites.Load()),
		StoreDown:     h.counts.storeDown.Load(),
	}
}
