package postgres

import (
	"context"
	"errors"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/presenced/presenced/hub"
)

// Apply makes one change: a batch of one.
func (s *Store) Apply(ctx context.Context, op hub.Op) (hub.Record, error) {
	out, err := s.ApplyBatch(ctx, []hub.Op{op})
	if err != nil {
		return hub.Record{}, err
	}
	return out[0].Record, out[0].Err
}

// ApplyBatch makes the changes by hub.Decide, in order, in one
// transaction: one commit, so one wait for the disk, however many changes
// it carries. The transaction first locks the rows of all the batch's
// users in user id order, in one statement, so that two nodes' batches
// over the same users wait for each other instead of deadlocking, and
// each node's changes to a user are serialised with every other node's.
// Every change of state is announced with its own NOTIFY in the same
// transaction, so the other nodes see each one, in order, once it is
// committed.
//
// A change that the database refuses fails the transaction; the batch is
// then made again one change at a time, so that only that change fails.
func (s *Store) ApplyBatch(ctx context.Context, ops []hub.Op) ([]hub.Applied, error) {
	if len(ops) == 0 {
		return nil, nil
	}
	start := time.Now()
	var out []hub.Applied
	err := s.transact(ctx, func(tx pgx.Tx) error {
		var err error
		out, err = s.applyBatch(ctx, tx, ops)
		return err
	})
	s.observe("save", start, err)
	if err = classify("apply", err); err != nil {
		if len(ops) == 1 || errors.Is(err, hub.ErrUnavailable) {
			return nil, err
		}
		return s.oneByOne(ctx, ops)
	}
	s.track(ops, out)
	s.eventsAdded()
	return out, nil
}

// oneByOne makes each op in a transaction of its own, after a batch
// failed as a whole for one change the database refused.
func (s *Store) oneByOne(ctx context.Context, ops []hub.Op) ([]hub.Applied, error) {
	out := make([]hub.Applied, len(ops))
	for i, op := range ops {
		rec, err := s.Apply(ctx, op)
		if errors.Is(err, hub.ErrUnavailable) {
			// The ops made so far are made again with the rest: harmless.
			return nil, err
		}
		out[i] = hub.Applied{Record: rec, Err: err}
	}
	return out, nil
}

// transact runs fn in a transaction. A deadlock or serialization failure
// means another transaction crossed this one; it is tried again at once,
// three times in all, before it counts as an outage.
func (s *Store) transact(ctx context.Context, fn func(pgx.Tx) error) error {
	var err error
	for range 3 {
		err = pgx.BeginFunc(ctx, s.pool, fn)
		var pgErr *pgconn.PgError
		if !errors.As(err, &pgErr) || (pgErr.Code != "40P01" && pgErr.Code != "40001") {
			return err
		}
	}
	return err
}

// track remembers which users this node vouches for.
func (s *Store) track(ops []hub.Op, out []hub.Applied) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i, op := range ops {
		if out[i].Err != nil {
			continue
		}
		switch op.Kind {
		case hub.OpConnect:
			s.vouched[op.UserID] = struct{}{}
		case hub.OpRelease:
			delete(s.vouched, op.UserID)
		}
	}
}

// batchUser is what a batch knows of one of its users while it decides.
type batchUser struct {
	row     hub.Row
	exists  bool // a status is stored (version > 0)
	others  int  // live nodes other than this one vouching for the user
	vouched bool // this node vouches for the user, after the ops so far
	changed bool
	connect bool // an op made this node vouch
	release bool // an op made this node stop vouching
}

// nodeState is what the database holds of this node.
type nodeState int

const (
	nodeMissing nodeState = iota // swept while this node stalled
	nodeLive
	nodeDead // its lease ran out; its vouches no longer count
)

func (s *Store) applyBatch(ctx context.Context, tx pgx.Tx, ops []hub.Op) ([]hub.Applied, error) {
	users := make(map[int64]*batchUser, len(ops))
	ids := make([]int64, 0, len(ops))
	for _, op := range ops {
		if users[op.UserID] == nil {
			users[op.UserID] = &batchUser{}
			ids = append(ids, op.UserID)
		}
	}
	slices.Sort(ids)

	// Lock every row in id order in one statement; a placeholder (version
	// 0) stands for a user without a status, so that a user about to be
	// created is locked as well. Rows that no op creates are removed again
	// below.
	var now time.Time
	node := nodeMissing
	b := &pgx.Batch{}
	b.Queue(`INSERT INTO presence_status (user_id, last_seen, created_at, updated_at)
		SELECT u, now(), now(), now() FROM unnest($1::bigint[]) AS u ORDER BY u
		ON CONFLICT (user_id) DO UPDATE SET version = presence_status.version WHERE false`, ids)
	// Then read the rows, whether this node's lease is live, and which
	// nodes vouch for each user. Nodes change their vouches for a user
	// under the user's row lock (a node that takes back a lapsed lease
	// decides its users again afterwards), so the counts hold until the
	// commit. Vouches of dead nodes go on the way; the counts leave them
	// out.
	b.Queue(`WITH dead AS (
			DELETE FROM presence_vouches v USING presence_nodes n
			WHERE v.user_id = ANY($1) AND v.node_id = n.node_id AND presence_lease_end(n.lease_until, n.lease_ttl) <= now())
		SELECT now(), `+columns+`, self.live, coalesce(v.others, 0), coalesce(v.vouched, false)
		FROM presence_status p
		LEFT JOIN (SELECT presence_lease_end(lease_until, lease_ttl) > now() AS live FROM presence_nodes WHERE node_id = $2) self ON true
		LEFT JOIN LATERAL (
			SELECT count(*) FILTER (WHERE s.node_id <> $2) AS others, bool_or(s.node_id = $2) AS vouched
			FROM presence_vouches s JOIN presence_nodes n USING (node_id)
			WHERE s.user_id = p.user_id AND presence_lease_end(n.lease_until, n.lease_ttl) > now()) v ON true
		WHERE p.user_id = ANY($1)`, ids, s.cfg.NodeID).Query(func(rows pgx.Rows) error {
		for rows.Next() {
			var cols rowWithNow
			var live *bool
			var others int
			var vouched bool
			if err := rows.Scan(append(cols.dest(), &live, &others, &vouched)...); err != nil {
				return err
			}
			u := users[cols.r.UserID]
			now, u.row = cols.now, cols.row()
			u.exists, u.others, u.vouched = u.row.Version > 0, others, vouched
			switch {
			case live == nil:
				node = nodeMissing
			case *live:
				node = nodeLive
			default:
				node = nodeDead
			}
		}
		return rows.Err()
	})
	if err := tx.SendBatch(ctx, b).Close(); err != nil {
		return nil, err
	}

	out := make([]hub.Applied, len(ops))
	var notices []string
	var events []hub.Event
	for i, op := range ops {
		u := users[op.UserID]
		// Only OpRelease of these can be refused below, and this node
		// vouches only for users with a status: a refused op releases
		// nothing.
		switch op.Kind {
		case hub.OpConnect:
			u.vouched, u.connect = true, true
			if node == nodeMissing {
				node = nodeLive // written back below
			}
		case hub.OpRelease:
			u.vouched, u.release = false, true
		}
		vouchers := u.others
		if u.vouched && node == nodeLive {
			vouchers++
		}
		before, existed := u.row.Presence(), u.exists
		row, changed, err := hub.Decide(u.row, u.exists, op, vouchers, now)
		if err != nil {
			out[i].Err = err
			continue
		}
		row = truncate(row)
		rec := row.Record(now, vouchers)
		rec.Status = rec.Status.Clone()
		out[i].Record, out[i].Changed = rec, changed
		if changed {
			u.row, u.exists, u.changed = row, true, true
			notices = append(notices, encodeRecord(rec))
			if len(s.cfg.WebhookURLs) > 0 {
				events = append(events, hub.NewEvents(before, existed, row.Presence(), now)...)
			}
		}
	}
	wb := s.writeBatch(ids, users, node, notices)
	s.queueEvents(wb, events)
	return out, tx.SendBatch(ctx, wb).Close()
}

// writeBatch stores what applyBatch decided: the node's vouches, the
// changed rows and their notices, in one round trip.
func (s *Store) writeBatch(ids []int64, users map[int64]*batchUser, node nodeState, notices []string) *pgx.Batch {
	var connect, hold, release, placeholders []int64
	var ch changedRows
	for _, id := range ids {
		u := users[id]
		switch {
		case u.vouched && u.connect:
			connect = append(connect, id)
			if node == nodeLive {
				hold = append(hold, id)
			}
		case !u.vouched && u.release:
			release = append(release, id)
		}
		if u.changed {
			ch.add(u.row)
		} else if !u.exists {
			placeholders = append(placeholders, id)
		}
	}
	b := &pgx.Batch{}
	if len(connect) > 0 {
		// The node row may have been swept while this node was stalled;
		// the lease renewal reclaims it.
		b.Queue(`INSERT INTO presence_nodes (node_id, lease_until, lease_ttl) VALUES ($1, now() + $2::interval, $2::interval) ON CONFLICT (node_id) DO NOTHING`,
			s.cfg.NodeID, s.cfg.LeaseTTL)
	}
	if len(hold) > 0 {
		b.Queue(`INSERT INTO presence_vouches (user_id, node_id) SELECT u, $2 FROM unnest($1::bigint[]) AS u ON CONFLICT DO NOTHING`, hold, s.cfg.NodeID)
	}
	if len(release) > 0 {
		b.Queue(`DELETE FROM presence_vouches WHERE user_id = ANY($1) AND node_id = $2`, release, s.cfg.NodeID)
	}
	if len(placeholders) > 0 {
		b.Queue(`DELETE FROM presence_status WHERE user_id = ANY($1) AND version = 0`, placeholders)
	}
	if len(ch.id) > 0 {
		b.Queue(`UPDATE presence_status p SET username = c.username, online = c.online, appear_offline = c.appear_offline,
				busy = c.busy, wait_time = c.wait_time, last_seen = c.last_seen, created_at = c.created_at,
				updated_at = c.updated_at, heartbeat_until = c.heartbeat_until, version = c.version,
				device_heartbeats = c.device_heartbeats, busy_since = c.busy_since, hide_last_seen = c.hide_last_seen
			FROM unnest($1::bigint[], $2::text[], $3::bool[], $4::bool[], $5::bool[], $6::int[], $7::timestamptz[],
				$8::timestamptz[], $9::timestamptz[], $10::timestamptz[], $11::bigint[], $12::jsonb[], $13::timestamptz[], $14::bool[])
				AS c(user_id, username, online, appear_offline, busy, wait_time, last_seen, created_at, updated_at, heartbeat_until, version,
					device_heartbeats, busy_since, hide_last_seen)
			WHERE p.user_id = c.user_id`,
			ch.id, ch.username, ch.online, ch.hidden, ch.busy, ch.wait, ch.lastSeen, ch.created, ch.updated, ch.heartbeat, ch.version,
			ch.devices, ch.busySince, ch.hideLastSeen)
	}
	if len(notices) > 0 {
		// unnest yields the payloads in order, so the other nodes hear of
		// a user's changes in the order they were made.
		b.Queue(`SELECT pg_notify($1, p) FROM unnest($2::text[]) AS p`, s.channel, notices)
	}
	return b
}

// changedRows holds the rows a batch changed, a column per slice, for
// one UPDATE … FROM unnest.
type changedRows struct {
	id                         []int64
	username                   []string
	online, hidden, busy       []bool
	hideLastSeen               []bool
	wait                       []*int32
	lastSeen, created, updated []time.Time
	heartbeat, busySince       []*time.Time
	version                    []int64
	devices                    []string
}

func (c *changedRows) add(r hub.Row) {
	var wait *int32
	if r.WaitTime != nil {
		w := int32(*r.WaitTime)
		wait = &w
	}
	c.id = append(c.id, r.UserID)
	c.username = append(c.username, r.Username)
	c.online = append(c.online, r.Online)
	c.hidden = append(c.hidden, r.AppearOffline)
	c.busy = append(c.busy, r.Busy)
	c.wait = append(c.wait, wait)
	c.lastSeen = append(c.lastSeen, r.LastSeen)
	c.created = append(c.created, r.CreatedAt)
	c.updated = append(c.updated, r.UpdatedAt)
	c.heartbeat = append(c.heartbeat, nullTime(r.HeartbeatUntil))
	c.version = append(c.version, r.Version)
	c.devices = append(c.devices, deviceJSON(r.DeviceHeartbeats))
	c.busySince = append(c.busySince, nullTime(r.BusySince))
	c.hideLastSeen = append(c.hideLastSeen, r.HideLastSeen)
}
