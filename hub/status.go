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
	Busy          bool
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

// Presence returns the public view of s that other users may see.
func (s Status) Presence() Presence {
	return Presence{
		UserID:   s.UserID,
		Username: s.Username,
		Online:   s.Online,
		Busy:     s.Busy,
		WaitTime: s.WaitTime,
		LastSeen: s.LastSeen,
	}
}

// Presence is what a watcher learns about a user.
type Presence struct {
	UserID   int64
	Username string
	Online   bool
	Busy     bool
	WaitTime *int
	LastSeen time.Time
}

// StatusUpdate is a change a user asks for. A nil field is left as it is.
type StatusUpdate struct {
	Online *bool
	Busy   *bool
	// WaitTimeSet says that WaitTime was given; WaitTime nil then clears it.
	WaitTimeSet bool
	WaitTime    *int
}

// Empty reports whether u changes nothing.
func (u StatusUpdate) Empty() bool {
	return u.Online == nil && u.Busy == nil && !u.WaitTimeSet
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
