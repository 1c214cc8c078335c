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

func (c *Config) setDefaults() {
	if c.Grace == 0 {
		c.Grace = 5 * time.Second
	}
	if c.HeartbeatTTL == 0 {
		c.HeartbeatTTL = 90 * time.Second
	}
	if c.FlushInterval == 0 {
		c.FlushInterval = 5 * time.Second
	}
	if c.MaxQueueBytes == 0 {
		c.MaxQueueBytes = 256 << 10
	}
	if c.MaxSubscriptions == 0 {
		c.MaxSubscriptions = 1000
	}
	if c.MaxSessionsPerUser == 0 {
		c.MaxSessionsPerUser = 20
	}
	if c.MaxPendingWrites == 0 {
		c.MaxPendingWrites = 10000
	}
	if c.StoreTimeout == 0 {
		c.StoreTimeout = 5 * time.Second
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
}
