package hub

import (
	"container/heap"
	"time"
)

// deadline asks the hub to look at a user again at a given time: when a
// grace period or a heartbeat's lifetime runs out.
type deadline struct {
	at     time.Time
	userID int64
}

// deadlines is a min-heap by time. Entries are never removed early: when one
// comes due the hub simply recomputes the user's status, which is cheap and
// idempotent, so a stale entry costs one map lookup.
type deadlines []deadline

func (d deadlines) Len() int           { return len(d) }
func (d deadlines) Less(i, j int) bool { return d[i].at.Before(d[j].at) }
func (d deadlines) Swap(i, j int)      { d[i], d[j] = d[j], d[i] }
func (d *deadlines) Push(x any)        { *d = append(*d, x.(deadline)) }
func (d *deadlines) Pop() any {
	old := *d
	n := len(old)
	x := old[n-1]
	*d = old[:n-1]
	return x
}

func (d *deadlines) add(at time.Time, userID int64) { heap.Push(d, deadline{at, userID}) }

// due pops every entry at or before now.
func (d *deadlines) due(now time.Time, fn func(userID int64)) {
	for d.Len() > 0 && !(*d)[0].at.After(now) {
		fn(heap.Pop(d).(deadline).userID)
	}
}

// next returns the earliest pending time.
func (d deadlines) next() (time.Time, bool) {
	if len(d) == 0 {
		return time.Time{}, false
	}
	return d[0].at, true
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
