package hub

import (
	"context"
	"time"
)

// Store keeps statuses beyond the life of the process and, in a cluster,
// decides each user's status from what every node knows. The hub calls
// it only from its writer goroutine, one call at a time and in the order
// the changes happened, never from the hub goroutine: an implementation
// may block on I/O, and must honour ctx. A store that can commit several
// changes at once implements [BatchStore] too.
//
// An implementation reports an outage (the change could not be made now
// but may succeed later) by wrapping [ErrUnavailable]; the hub then keeps
// the change queued and retries it. Every other error is final for that
// change.
type Store interface {
	// LoadAll returns every stored status. The hub calls it once in Run
	// when it has no [Feed].
	LoadAll(ctx context.Context) ([]Record, error)
	// Apply makes one change with [Decide], atomically for the user, and
	// returns the record after it. OpRelease and OpRefresh of a user
	// without a status return [ErrNotFound]. Applying the same op twice
	// must be harmless, because a change whose answer was lost in an
	// outage is sent again.
	Apply(ctx context.Context, op Op) (Record, error)
	// SaveLastSeen stores many last_seen times (and heartbeat extensions)
	// in one go. The hub coalesces pongs and heartbeats into one call per
	// flush interval. Unknown users are skipped; last_seen never moves
	// back.
	SaveLastSeen(ctx context.Context, seen []LastSeen) error
}

// BatchStore is a [Store] that can apply several changes at once, in one
// commit. The writer hands it every change queued at the time (up to a
// bound) instead of one per call, so that a burst of changes (a reconnect
// storm after a restart, a busy cluster) costs one round of I/O, not one
// per change. A Store without it gets one Apply per change.
type BatchStore interface {
	// ApplyBatch makes the ops, in order, as Apply would one after the
	// other, and returns one answer per op, in the same order. An op's own
	// final error (ErrNotFound for OpRelease or OpRefresh of a user
	// without a status, or a change the store refuses) is in its answer
	// and leaves the other ops applied. A returned error is about the
	// batch as a whole: one wrapping [ErrUnavailable] means it may succeed
	// later, and the hub sends the whole batch again (ops are idempotent);
	// any other is final for every op of the batch.
	ApplyBatch(ctx context.Context, ops []Op) ([]Applied, error)
}

// Applied is a store's answer to one op of a batch.
type Applied struct {
	// Record is the status after the op, when Err is nil.
	Record Record
	// Err is the op's own final error, or nil.
	Err error
}

// Feed tells a node about changes that other nodes made. A store shared
// by several nodes implements it; a store of one node has none.
type Feed interface {
	// Run calls deliver for every change made elsewhere until ctx is done,
	// then returns. The first call carries a snapshot of every record;
	// after any interruption in which changes may have been missed, Run
	// delivers a fresh snapshot, so that nothing is lost. deliver may
	// block while the hub is busy.
	Run(ctx context.Context, deliver func(Change))
}

// Change is what a Feed delivers: records changed elsewhere, or all of
// them, and last_seen times flushed elsewhere.
type Change struct {
	Records  []Record
	LastSeen []LastSeen
	// Snapshot says that Records holds every stored status.
	Snapshot bool
}

// Record is a status as a store answers it.
type Record struct {
	Status
	// Version grows with every stored change of the user's status; a node
	// applies a record only when it is newer than the one it holds, so
	// that no node shows an older state after a newer one.
	Version int64
	// HeartbeatLeft is how long the latest REST heartbeat still keeps the
	// user online, by the store's clock at the time of the answer; zero
	// when none does. Durations, not instants, cross between clocks.
	HeartbeatLeft time.Duration
	// Vouchers counts the nodes that held a connection of the user (or
	// were within its grace) at the time of the answer.
	Vouchers int
}

// Row is what a store keeps for one user, in the store's clock.
type Row struct {
	Status
	Version        int64
	HeartbeatUntil time.Time
}

// Record returns the answer for r at time now, with vouchers nodes
// vouching for the user.
func (r Row) Record(now time.Time, vouchers int) Record {
	left := r.HeartbeatUntil.Sub(now)
	if left < 0 {
		left = 0
	}
	return Record{Status: r.Status, Version: r.Version, HeartbeatLeft: left, Vouchers: vouchers}
}

// OpKind says what a change is.
type OpKind int

// The changes a hub asks of its store.
const (
	// OpConnect: this node now holds a connection of the user; creates
	// the status if missing.
	OpConnect OpKind = iota + 1
	// OpRelease: this node no longer holds a connection of the user and
	// its grace is over.
	OpRelease
	// OpHeartbeat: a REST heartbeat keeps the user online for
	// Op.HeartbeatTTL; creates the status if missing.
	OpHeartbeat
	// OpUpdate: the user changed their status (Op.Update); creates the
	// status if missing. With Op.HeartbeatTTL set it is a heartbeat too.
	OpUpdate
	// OpRefresh: decide again, because a heartbeat may have expired.
	OpRefresh
)

// Op is one change to a user's status.
type Op struct {
	Kind   OpKind
	UserID int64
	// Username, when not empty, replaces the stored name.
	Username string
	// Update is the change of an OpUpdate.
	Update StatusUpdate
	// HeartbeatTTL is how long a heartbeat keeps the user online; zero
	// means the op is no heartbeat.
	HeartbeatTTL time.Duration
	// SeenAt, when not zero, is a sign of life at that time by the node's
	// clock: the end of the last connection, for OpRelease.
	SeenAt time.Time
}

// creates reports whether op makes a status for a user that has none.
func (op Op) creates() bool { return op.Kind != OpRelease && op.Kind != OpRefresh }

// Decide is the one rule by which every store turns an op into a new
// row, so that every node and every store agree. exists says whether row
// holds a stored status; vouchers counts the nodes that hold a connection
// of the user (or are within its grace) once op is applied; now is the
// store's clock. It returns the new row and whether anything changed; a
// changed row has its Version raised by one. A user is online unless they
// chose to appear offline, while a node vouches for them or a heartbeat
// is fresh.
func Decide(row Row, exists bool, op Op, vouchers int, now time.Time) (Row, bool) {
	if !exists {
		if !op.creates() {
			return row, false
		}
		row = Row{Status: Status{UserID: op.UserID, LastSeen: now, CreatedAt: now, UpdatedAt: now}}
	}
	changed := !exists
	if op.Username != "" && op.Username != row.Username {
		row.Username = op.Username
		changed = true
	}
	if op.HeartbeatTTL > 0 {
		row.HeartbeatUntil = now.Add(op.HeartbeatTTL)
		changed = true
	}
	if !op.SeenAt.IsZero() && op.SeenAt.After(row.LastSeen) {
		row.LastSeen = op.SeenAt
		changed = true
	}
	switch op.Kind {
	case OpConnect, OpHeartbeat:
		row.LastSeen = latest(row.LastSeen, now)
		changed = true
	case OpUpdate:
		st := &row.Status
		if op.HeartbeatTTL > 0 {
			st.LastSeen = latest(st.LastSeen, now)
		}
		up := op.Update
		if up.Online != nil {
			st.AppearOffline = !*up.Online
		}
		if up.Busy != nil {
			st.Busy = *up.Busy
		}
		if up.WaitTimeSet {
			st.WaitTime = clonePtr(up.WaitTime)
		}
		if !st.Busy {
			st.WaitTime = nil // a wait time means nothing without a call
		}
		st.UpdatedAt = now
		changed = true
	}
	if online := !row.AppearOffline && (vouchers > 0 || now.Before(row.HeartbeatUntil)); online != row.Online {
		row.Online = online
		row.UpdatedAt = now
		changed = true
	}
	if changed {
		row.Version++
	}
	return row, changed
}

func latest(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}

func clonePtr(p *int) *int {
	if p == nil {
		return nil
	}
	v := *p
	return &v
}

// LastSeen is one user's latest sign of life.
type LastSeen struct {
	UserID int64
	At     time.Time
	// HeartbeatTTL, when not zero, extends the user's heartbeat to at
	// least this long from the time the store writes it: heartbeats that
	// change nothing else travel in the batch instead of costing a write
	// each.
	HeartbeatTTL time.Duration
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
