package hub

import (
	"context"
	"fmt"
	"time"
)

// Changes from elsewhere: the first snapshot, and what the Feed delivers
// after it.
//
// The feed carries every change the store makes, this node's own
// included: the postgres store's feed is PostgreSQL NOTIFY, which reaches
// every listener, the notifying node's too. The echo of a change this node's writer made is harmless:
// it carries the version that the writer's answer installs, so
// applyChange finds it known already (r.Version <= u.rec.Version) and
// skips it; when it overtakes the answer, the answer is the one skipped
// (takeAnswer installs only a newer version), and while the user has a
// provisional answer it is held like any other record. The echo is also
// load-bearing: the changes the store makes on its own (a sweep of dead
// nodes' users or of expired heartbeats, a refresh after a lease is taken
// again) pass through no writer, and reach the hub of the node whose
// store made them only through the feed.

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
		h.queueCorrections(u, now)
		if r.Online {
			// Their sessions died with the previous process; give them the
			// grace to reconnect, then let the store decide again.
			u.refreshAt = now.Add(h.cfg.Grace)
			h.deadlines.add(u.refreshAt, r.UserID)
		}
	}
	return nil
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
			h.queueCorrections(u, now)
		}
		h.forget(u)
	}
	for _, ls := range c.LastSeen {
		if u := h.users[ls.UserID]; u != nil && u.known && !u.rec.AppearOffline && ls.At.After(u.rec.LastSeen) {
			u.rec.LastSeen = ls.At
		}
	}
}
