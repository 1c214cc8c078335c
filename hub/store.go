package hub

import (
	"context"
	"time"
)

// Store keeps statuses beyond the life of the process. The hub calls it
// from its own goroutine, so an implementation must answer quickly and
// never wait on a client.
type Store interface {
	// LoadAll returns every stored status; the hub calls it once in Run.
	LoadAll(ctx context.Context) ([]Status, error)
	// Save stores one status, created if missing.
	Save(ctx context.Context, s Status) error
	// SaveLastSeen stores many last_seen times in one go. The hub
	// coalesces heartbeats and pongs into one call per flush interval.
	SaveLastSeen(ctx context.Context, seen []LastSeen) error
}

// LastSeen is one user's latest sign of life.
type LastSeen struct {
	UserID int64
	At     time.Time
}
