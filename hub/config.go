package hub

import (
	"log/slog"
	"time"
)

// Config tunes a Hub. The zero value of each field means the default
// given beside it.
type Config struct {
	// Grace is how long a user stays online after their last connection
	// ends, so that a quick reconnect does not flap. Default 5s.
	Grace time.Duration
	// HeartbeatTTL is how long one REST heartbeat (or REST status update)
	// keeps a device, or a user whose client sent no device id, online.
	// Default 90s.
	HeartbeatTTL time.Duration
	// FlushInterval is how often coalesced last_seen times (and heartbeat
	// extensions) are written to the store. Default 5s.
	FlushInterval time.Duration
	// MaxQueueBytes caps the encoded bytes waiting for one session; a
	// session that would exceed it is closed as a slow consumer.
	// Default 256 KiB.
	MaxQueueBytes int
	// MaxSubscriptions caps the users one session may watch. Default 1000.
	MaxSubscriptions int
	// MaxSessionsPerUser caps the live sessions of one user. Default 20.
	MaxSessionsPerUser int
	// MaxPendingWrites caps the changes waiting for the store, counted in
	// changes. While the store is down they wait here; once the cap is
	// reached, new changes are refused with ErrUnavailable rather than
	// acknowledged and lost. Default 10000.
	MaxPendingWrites int
	// StoreTimeout bounds one store call; a call that takes longer counts
	// as an outage and is retried. It also bounds how long Run waits for
	// queued writes when it stops. Default 5s.
	StoreTimeout time.Duration
	// Feed, when set, delivers changes made by other nodes that share the
	// store; the hub then takes its first snapshot from it instead of
	// Store.LoadAll. Nil for a single node.
	Feed Feed
	// EncodeEvent turns a presence change into the bytes sent to every
	// watcher; it is called once per change, not once per watcher.
	// Required.
	EncodeEvent func(Presence) []byte
	// Logger receives the hub's logs. Default slog.Default().
	Logger *slog.Logger
}

// DefaultConfig returns the values that the zero fields stand for:
// presenced's defaults, which its flags and README show.
func DefaultConfig() Config {
	return Config{
		Grace: 5 * time.Second, HeartbeatTTL: 90 * time.Second, FlushInterval: 5 * time.Second,
		MaxQueueBytes: 256 << 10, MaxSubscriptions: 1000, MaxSessionsPerUser: 20,
		MaxPendingWrites: 10000, StoreTimeout: 5 * time.Second,
	}
}

func (c *Config) setDefaults() {
	d := DefaultConfig()
	orDefault(&c.Grace, d.Grace)
	orDefault(&c.HeartbeatTTL, d.HeartbeatTTL)
	orDefault(&c.FlushInterval, d.FlushInterval)
	orDefault(&c.MaxQueueBytes, d.MaxQueueBytes)
	orDefault(&c.MaxSubscriptions, d.MaxSubscriptions)
	orDefault(&c.MaxSessionsPerUser, d.MaxSessionsPerUser)
	orDefault(&c.MaxPendingWrites, d.MaxPendingWrites)
	orDefault(&c.StoreTimeout, d.StoreTimeout)
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
}

// orDefault sets a zero *v to d.
func orDefault[T comparable](v *T, d T) {
	var zero T
	if *v == zero {
		*v = d
	}
}
