package hub

import (
	"errors"
	"time"
)

// Status is the stored presence record of one user.
type Status struct {
	UserID   int64
	Username string
	// Online is the effective status that watchers see: false while the
	// user appears offline, whatever their connections.
	Online bool
	// AppearOffline records that the user set is_online=false themselves;
	// it holds until they set is_online=true again.
	AppearOffline bool
	// HideLastSeen records that the user set last_seen_visible=false:
	// others then read no last_seen, only whether they are online.
	HideLastSeen bool
	Busy         bool
	// BusySince is when Busy last turned true; zero while not busy.
	BusySince time.Time
	// WaitTime is the expected call length in minutes; nil when unknown.
	WaitTime  *int
	LastSeen  time.Time
	CreatedAt time.Time
	UpdatedAt time.Time
}

// Clone returns a copy of s that shares nothing with it.
func (s Status) Clone() Status {
	s.WaitTime = clonePtr(s.WaitTime)
	return s
}

// Presence returns the public view of s that other users may see. A
// user who appears offline shows as offline and not busy, as of the
// moment they went invisible, whatever they do meanwhile.
func (s Status) Presence() Presence {
	p := Presence{UserID: s.UserID, Username: s.Username, LastSeen: s.LastSeen}
	if !s.AppearOffline {
		p.Online, p.Busy, p.BusySince, p.WaitTime = s.Online, s.Busy, s.BusySince, s.WaitTime
	}
	if s.HideLastSeen {
		p.LastSeen = time.Time{}
	}
	return p
}

// Presence is what a watcher learns about a user.
type Presence struct {
	UserID    int64
	Username  string
	Online    bool
	Busy      bool
	BusySince time.Time // zero while not busy
	WaitTime  *int
	LastSeen  time.Time
}

// Client says who a request comes from.
type Client struct {
	UserID int64
	// Username is the name from the client's credentials; empty keeps the
	// stored one.
	Username string
	// Device is the client's device id (an app install, a browser tab);
	// empty when the client sent none. A device is alive while its socket
	// is open, or while its latest REST heartbeat is fresh; the end of its
	// socket ends its REST liveness too.
	Device string
}

// StatusRequest is a change of status that a client asks for.
type StatusRequest struct {
	Client
	Update StatusUpdate
	// Heartbeat says that the request itself proves the client alive for
	// the heartbeat TTL, as a REST client's does: it has no socket to
	// prove it. A request of a device whose socket this node holds proves
	// nothing the socket does not.
	Heartbeat bool
}

// StatusUpdate is a change a user asks for. A nil field is left as it is.
type StatusUpdate struct {
	Online *bool
	Busy   *bool
	// WaitTimeSet says that WaitTime was given; WaitTime nil then clears it.
	WaitTimeSet bool
	WaitTime    *int
	// LastSeenVisible, when set, says whether others may read last_seen.
	LastSeenVisible *bool
}

// Then returns one update with the effect of u followed by next, from
// any status, and whether there is one. A client's burst of updates is
// merged this way, so that the latest wins with one write instead of
// many; the states in between are skipped, as if they had been too
// brief to see. So when u ends a call and next starts one, a user busy
// before stays busy since the first call's start. There is no such
// update when u sets a wait time without saying busy and next says busy:
// whether u's wait time held depends on the status before.
func (u StatusUpdate) Then(next StatusUpdate) (StatusUpdate, bool) {
	endsCall := u.Busy != nil && !*u.Busy
	startsCall := next.Busy != nil && *next.Busy
	m := StatusUpdate{Online: next.Online, Busy: next.Busy, LastSeenVisible: next.LastSeenVisible}
	if m.Online == nil {
		m.Online = u.Online
	}
	if m.LastSeenVisible == nil {
		m.LastSeenVisible = u.LastSeenVisible
	}
	if m.Busy == nil {
		m.Busy = u.Busy
	}
	switch {
	case next.WaitTimeSet:
		m.WaitTimeSet, m.WaitTime = true, clonePtr(next.WaitTime)
	case endsCall:
		m.WaitTimeSet = true // the call's end cleared the wait time, even if another began
	case u.WaitTimeSet:
		if u.Busy == nil && startsCall {
			return u, false
		}
		m.WaitTimeSet, m.WaitTime = true, clonePtr(u.WaitTime)
	}
	return m, true
}

// Empty reports whether u changes nothing.
func (u StatusUpdate) Empty() bool {
	return u.Online == nil && u.Busy == nil && !u.WaitTimeSet && u.LastSeenVisible == nil
}

// Errors returned by the hub. Transports map them to status codes.
var (
	// ErrNotFound means no status is stored for the user.
	ErrNotFound = errors.New("user status not found")
	// ErrLimit means a configured limit would be exceeded.
	ErrLimit = errors.New("limit exceeded")
	// ErrClosed means the hub has shut down.
	ErrClosed = errors.New("hub closed")
	// ErrUnavailable means the store cannot take a change now, or too many
	// changes wait for it already; the caller may try again later.
	ErrUnavailable = errors.New("storage unavailable")
)

// CloseReason says why the hub ended a session.
type CloseReason int

// Reasons for the hub to end a session.
const (
	// CloseNone means the session is still open or closed by its client.
	CloseNone CloseReason = iota
	// CloseSlowConsumer means the session's send queue overflowed.
	CloseSlowConsumer
	// CloseShutdown means the hub is shutting down.
	CloseShutdown
)
