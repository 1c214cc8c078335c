package hub

import (
	"context"
	"time"
)

// Store keeps statuses beyond the life of the process and, in a cluster,
// decides each user's status from what every node knows. The hub makes
// its writes (Apply, ApplyBatch, SaveLastSeen) only from its writer
// goroutine, one call at a time and in the order the changes happened,
// never from the hub goroutine, and calls LoadAll once before it serves:
// an implementation may block on I/O, and must honour ctx. A store that can commit several
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
	// Changed says that this op changed the stored status, as [Decide]
	// answered it; false when the status was as the op leaves it already,
	// perhaps because another node's change got there first. A store's
	// own changes (a sweep) count by it what they did; the hub reads
	// Record alone.
	Changed bool
	// Err is the op's own final error, or nil.
	Err error
}

// Feed tells a node about changes made to the store: by other nodes, by
// the store itself (a sweep after a dead node), and by this node, whose
// own changes come back as an echo that the hub skips by version (see
// feed.go). A store shared by several nodes implements it; a store of one
// node has none.
type Feed interface {
	// Run calls deliver for every change made to the store until ctx is done,
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
	// HeartbeatLeft is how long the latest REST heartbeat without a device
	// id still keeps the user online, by the store's clock at the time of
	// the answer; zero when none does. Durations, not instants, cross
	// between clocks.
	HeartbeatLeft time.Duration
	// DeviceHeartbeats holds, for each device whose REST heartbeat still
	// keeps the user online, how long it still does; nil when none does.
	DeviceHeartbeats map[string]time.Duration
	// Vouchers counts the nodes that held a connection of the user (or
	// were within its grace) at the time of the answer.
	Vouchers int
}

// AliveFor is how long the longest of the user's REST heartbeats, with
// or without a device, still keeps them online; zero when none does.
func (r Record) AliveFor() time.Duration {
	left := r.HeartbeatLeft
	for _, d := range r.DeviceHeartbeats {
		left = max(left, d)
	}
	return left
}

// Row is what a store keeps for one user, in the store's clock.
type Row struct {
	Status
	Version int64
	// HeartbeatUntil is when the latest REST heartbeat without a device
	// id stops keeping the user online: the heartbeat of the REST clients
	// that were there before device ids (the seed API's, in package
	// transport).
	HeartbeatUntil time.Time
	// DeviceHeartbeats holds, per device id, when that device's latest
	// REST heartbeat stops keeping the user online. A socket of the
	// device ends it early: the device's liveness is then the socket's.
	// At most MaxDeviceHeartbeats entries; the map is never modified in
	// place, so a Row may be copied freely.
	DeviceHeartbeats map[string]time.Time
}

// MaxDeviceHeartbeats bounds the devices of one user whose REST
// heartbeats a store keeps; a new one beyond it replaces the one that
// would expire first.
const MaxDeviceHeartbeats = 16

// Record returns the answer for r at time now, with vouchers nodes
// vouching for the user.
func (r Row) Record(now time.Time, vouchers int) Record {
	rec := Record{Status: r.Status, Version: r.Version, HeartbeatLeft: max(0, r.HeartbeatUntil.Sub(now)), Vouchers: vouchers}
	for dev, until := range r.DeviceHeartbeats {
		if left := until.Sub(now); left > 0 {
			if rec.DeviceHeartbeats == nil {
				rec.DeviceHeartbeats = make(map[string]time.Duration, len(r.DeviceHeartbeats))
			}
			rec.DeviceHeartbeats[dev] = left
		}
	}
	return rec
}

// AliveUntil is when the last of the row's REST heartbeats, with or
// without a device, stops keeping the user online.
func (r Row) AliveUntil() time.Time {
	until := r.HeartbeatUntil
	for _, t := range r.DeviceHeartbeats {
		until = latest(until, t)
	}
	return until
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
	// OpEndHeartbeat: a socket of Op.Device is held or has ended, so the
	// device's REST heartbeat, if any, keeps the user online no longer:
	// the device's liveness is its socket's.
	OpEndHeartbeat
)

// Op is one change to a user's status.
type Op struct {
	Kind   OpKind
	UserID int64
	// Username, when not empty, replaces the stored name (not while the
	// user appears offline: a new name would give them away).
	Username string
	// Device is the device the op comes from; empty when the client sent
	// no device id. OpHeartbeat and OpUpdate with a HeartbeatTTL keep that
	// device alive; OpConnect and OpEndHeartbeat end its REST heartbeat,
	// because its socket takes over.
	Device string
	// Update is the change of an OpUpdate.
	Update StatusUpdate
	// HeartbeatTTL is how long a heartbeat keeps the user online; zero
	// means the op is no heartbeat.
	HeartbeatTTL time.Duration
	// SeenAt, when not zero, is a sign of life at that time by the node's
	// clock: the end of the last connection, for OpRelease.
	SeenAt time.Time
	// Age is how long ago the node made the change: an OpUpdate replayed
	// after an outage keeps its own time for updated_at and busy_since.
	Age time.Duration
}

// Creates reports whether op makes a status for a user that has none;
// [Decide] refuses the others for such a user with ErrNotFound.
func (op Op) Creates() bool {
	return op.Kind != OpRelease && op.Kind != OpRefresh && op.Kind != OpEndHeartbeat
}

// Decide is the one rule by which every store turns an op into a new
// row, so that every node and every store agree. exists says whether row
// holds a stored status; vouchers counts the nodes that hold a connection
// of the user (or are within its grace) once op is applied; now is the
// store's clock. It returns the new row and whether anything changed; a
// changed row has its Version raised by one. An op that needs a stored
// status (one that does not [Op.Creates] one) on a user without one is
// refused with [ErrNotFound]: every store, and the hub when it decides
// from memory, refuse the same ops because they all ask here. A user is
// online unless they chose to appear offline, while a node vouches for
// them or a REST heartbeat (of a device, or without one) is fresh.
//
// While a user appears offline nothing that others can see moves:
// last_seen stays at the moment they went invisible, and their name is
// not replaced.
func Decide(row Row, exists bool, op Op, vouchers int, now time.Time) (Row, bool, error) {
	if !exists {
		if !op.Creates() {
			return row, false, ErrNotFound
		}
		row = Row{Status: Status{UserID: op.UserID, LastSeen: now, CreatedAt: now, UpdatedAt: now}}
	}
	changed := !exists
	wasHidden := row.AppearOffline
	var seen time.Time // a sign of life, applied below unless hidden
	if op.HeartbeatTTL > 0 {
		if op.Device == "" {
			row.HeartbeatUntil = now.Add(op.HeartbeatTTL)
		} else {
			row.DeviceHeartbeats = withHeartbeat(row.DeviceHeartbeats, op.Device, now.Add(op.HeartbeatTTL), now)
		}
		changed = true
	}
	if op.Device != "" && (op.Kind == OpConnect || op.Kind == OpEndHeartbeat) {
		if _, ok := row.DeviceHeartbeats[op.Device]; ok {
			row.DeviceHeartbeats = without(row.DeviceHeartbeats, op.Device)
			changed = true
		}
	}
	if !op.SeenAt.IsZero() {
		seen = op.SeenAt
	}
	switch op.Kind {
	case OpConnect, OpHeartbeat:
		seen = now
		changed = true
	case OpUpdate:
		st := &row.Status
		if op.HeartbeatTTL > 0 {
			seen = now
		}
		made := now.Add(-max(op.Age, 0))
		up := op.Update
		if up.Online != nil {
			st.AppearOffline = !*up.Online
		}
		if up.LastSeenVisible != nil {
			st.HideLastSeen = !*up.LastSeenVisible
		}
		if up.Busy != nil {
			if *up.Busy && !st.Busy {
				st.BusySince = made
			}
			st.Busy = *up.Busy
		}
		if up.WaitTimeSet {
			st.WaitTime = clonePtr(up.WaitTime)
		}
		if !st.Busy {
			st.WaitTime = nil // a wait time means nothing without a call
			st.BusySince = time.Time{}
		}
		st.UpdatedAt = latest(st.UpdatedAt, made)
		changed = true
	}
	switch {
	case row.AppearOffline && !wasHidden:
		// Going invisible is the last thing others see.
		seen = now
		fallthrough
	case !row.AppearOffline:
		if seen.After(row.LastSeen) {
			row.LastSeen = seen
			changed = true
		}
		if op.Username != "" && op.Username != row.Username {
			row.Username = op.Username
			changed = true
		}
	}
	alive := vouchers > 0 || now.Before(row.AliveUntil())
	if online := !row.AppearOffline && alive; online != row.Online {
		row.Online = online
		row.UpdatedAt = now
		changed = true
	}
	if changed {
		row.DeviceHeartbeats = withoutExpired(row.DeviceHeartbeats, now)
		row.Version++
	}
	return row, changed, nil
}

// withHeartbeat returns a copy of hb with device alive until until,
// bounded to MaxDeviceHeartbeats entries: the one that expires first
// makes room.
func withHeartbeat(hb map[string]time.Time, device string, until, now time.Time) map[string]time.Time {
	out := make(map[string]time.Time, len(hb)+1)
	for d, t := range hb {
		if t.After(now) {
			out[d] = t
		}
	}
	out[device] = until
	for len(out) > MaxDeviceHeartbeats {
		first := ""
		for d, t := range out {
			if d != device && (first == "" || t.Before(out[first])) {
				first = d
			}
		}
		delete(out, first)
	}
	return out
}

func without(hb map[string]time.Time, device string) map[string]time.Time {
	out := make(map[string]time.Time, len(hb))
	for d, t := range hb {
		if d != device {
			out[d] = t
		}
	}
	if len(out) == 0 {
		return nil
	}
	return out
}

// ExtendHeartbeats returns hb with each device of ext that hb holds alive
// until at least now plus its duration, as SaveLastSeen does; hb itself
// is not modified. A device hb does not hold is not added: its socket
// took its heartbeat over.
func ExtendHeartbeats(hb map[string]time.Time, ext map[string]time.Duration, now time.Time) map[string]time.Time {
	var out map[string]time.Time
	for dev, ttl := range ext {
		old, ok := hb[dev]
		if until := now.Add(ttl); ok && until.After(old) {
			if out == nil {
				out = make(map[string]time.Time, len(hb))
				for d, t := range hb {
					out[d] = t
				}
			}
			out[dev] = until
		}
	}
	if out == nil {
		return hb
	}
	return out
}

// withoutExpired drops the heartbeats that keep nobody online any more.
func withoutExpired(hb map[string]time.Time, now time.Time) map[string]time.Time {
	for _, t := range hb {
		if !t.After(now) {
			out := make(map[string]time.Time, len(hb))
			for d, t := range hb {
				if t.After(now) {
					out[d] = t
				}
			}
			if len(out) == 0 {
				return nil
			}
			return out
		}
	}
	return hb
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
	// At is the sign of life; a store ignores it while the user appears
	// offline.
	At time.Time
	// HeartbeatTTL, when not zero, extends the user's heartbeat without a
	// device to at least this long from the time the store writes it:
	// heartbeats that change nothing else travel in the batch instead of
	// costing a write each.
	HeartbeatTTL time.Duration
	// DeviceHeartbeats extends, in the same way, the heartbeats of these
	// devices, but only those the store still holds: one that a socket
	// took over since is not brought back.
	DeviceHeartbeats map[string]time.Duration
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
