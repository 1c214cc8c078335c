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

// StoreObserver is told how a Store's database is doing, for metrics. A
// Store backed by a database takes one in its configuration and calls it
// after each write, and a cluster after each look at its nodes' leases;
// cmd hands it the process's metrics. It lives here, beside Store, so
// that every store reports the same way. Methods must be safe for
// concurrent use and return at once.
type StoreObserver interface {
	// StoreWrite reports one write to the database: op names it ("save",
	// "last_seen"), took is how long it took, err is its error or nil.
	StoreWrite(op string, took time.Duration, err error)
	// ClusterNodes reports how many live nodes, this one included, the
	// latest look at the leases found.
	ClusterNodes(n int)
}
