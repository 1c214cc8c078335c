package hub

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"time"
)

// EventType names a change of presence that the app's backend hears of.
type EventType string

// The events of a stored change. Each is about what others can see of
// the user, so a user who appears offline goes offline, and changes
// nothing while invisible; and since the store turns a user offline only
// once the grace is over, a reconnect within the grace makes no event.
const (
	// EventOnline: the user came online.
	EventOnline EventType = "user.online"
	// EventOffline: the user went offline (after the grace).
	EventOffline EventType = "user.offline"
	// EventStatus: is_busy, wait_time or busy_since changed.
	EventStatus EventType = "user.status"
)

// Event is one change of presence, as a store keeps it for delivery.
type Event struct {
	// ID is unique to the event; a receiver that is sent it twice (at
	// least once means that it may be) can tell.
	ID   string
	Type EventType
	// At is when the store made the change, by its clock.
	At time.Time
	// Presence is the user as others see them after the change.
	Presence Presence
}

// EventsOf returns the types of the events a change makes, in the order
// they are sent: from before (existed says whether the user had a
// status) to after, both as others see them.
func EventsOf(before Presence, existed bool, after Presence) []EventType {
	var out []EventType
	if (existed && before.Online != after.Online) || (!existed && after.Online) {
		if after.Online {
			out = append(out, EventOnline)
		} else {
			out = append(out, EventOffline)
		}
	}
	sameWait := (before.WaitTime == nil) == (after.WaitTime == nil) && (before.WaitTime == nil || *before.WaitTime == *after.WaitTime)
	if existed && (before.Busy != after.Busy || !sameWait || !before.BusySince.Equal(after.BusySince)) ||
		!existed && after.Busy {
		out = append(out, EventStatus)
	}
	return out
}

// NewEvents returns the events of a change made at at, each with an ID of
// its own; see EventsOf.
func NewEvents(before Presence, existed bool, after Presence, at time.Time) []Event {
	types := EventsOf(before, existed, after)
	if len(types) == 0 {
		return nil
	}
	out := make([]Event, len(types))
	for i, t := range types {
		out[i] = Event{ID: newEventID(), Type: t, At: at, Presence: after}
	}
	return out
}

// newEventID is "evt_" and 128 random bits in hex.
func newEventID() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails on Linux
	return "evt_" + hex.EncodeToString(b[:])
}

// Outbox holds, for each webhook URL, the events waiting to be sent
// there. A store implements it and writes each change's events with the
// change itself, so that an event survives what the change survives; the
// webhook sender in transport uses it. It lives here, beside Store, so
// that storage and transport need not know each other.
type Outbox interface {
	// Claim waits until this node may send target's events (in a cluster,
	// one node at a time does, so that each event goes once and in order)
	// and returns the claim, or ctx's error.
	Claim(ctx context.Context, target string) (OutboxClaim, error)
}

// OutboxClaim is one node's right to send one URL's events. It holds until
// Release, or until one of its calls fails; the sender then claims
// again.
type OutboxClaim interface {
	// Pending returns up to max events waiting, oldest first.
	Pending(ctx context.Context, max int) ([]Event, error)
	// Delivered removes events once sent (or given up).
	Delivered(ctx context.Context, events []Event) error
	// Trim drops the oldest events beyond max and says how many it
	// dropped: the bound on what waits for a receiver that stays down.
	Trim(ctx context.Context, max int) (int, error)
	// Added is readied when events may have been added since it was last
	// read; events added by other nodes may come without it.
	Added() <-chan struct{}
	// Release gives the claim up.
	Release()
}
