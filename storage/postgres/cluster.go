package postgres

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/presenced/presenced/hub"
)

// Run listens for the changes of every node on its own connection and
// delivers them until ctx is done. NOTIFY is lost while nobody listens,
// so after every (re)connection Run listens first and then delivers a
// snapshot of all statuses: a change made while the connection was down
// arrives with it. A connection that stays silent for ListenerPing is
// pinged, so that one that died without a word is found. Reconnections
// back off from 500ms to 5s.
func (s *Store) Run(ctx context.Context, deliver func(hub.Change)) {
	backoff := 500 * time.Millisecond
	for {
		listened, err := s.listen(ctx, deliver)
		s.listening.Store(false)
		if ctx.Err() != nil {
			return
		}
		if listened {
			backoff = 500 * time.Millisecond
		}
		s.log.Warn("listener down; reconnecting", "in", backoff, "err", err)
		t := time.NewTimer(backoff)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
		backoff = min(2*backoff, 5*time.Second)
	}
}

// listen runs one listening connection until it fails; listened says
// whether it got as far as listening.
func (s *Store) listen(ctx context.Context, deliver func(hub.Change)) (listened bool, err error) {
	conn, err := pgx.ConnectConfig(ctx, s.listenCfg)
	if err != nil {
		return false, fmt.Errorf("connect: %w", err)
	}
	defer func() {
		cctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		_ = conn.Close(cctx)
	}()
	if _, err := conn.Exec(ctx, "LISTEN "+pgx.Identifier{s.channel}.Sanitize()); err != nil {
		return false, fmt.Errorf("listen: %w", err)
	}
	// The pool's connections may be as dead as the last listening one
	// was; a resync must not wait on them forever.
	lctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	all, err := s.load(lctx, nil)
	cancel()
	if err != nil {
		return false, fmt.Errorf("resync: %w", err)
	}
	deliver(hub.Change{Records: all, Snapshot: true})
	s.listening.Store(true)
	s.log.Info("listening for the changes of other nodes", "channel", s.channel, "statuses", len(all))
	for {
		wctx, cancel := context.WithTimeout(ctx, s.cfg.ListenerPing)
		n, err := conn.WaitForNotification(wctx)
		cancel()
		if ctx.Err() != nil {
			return true, nil
		}
		if err != nil {
			if !pgconn.Timeout(err) && !errors.Is(err, context.DeadlineExceeded) {
				return true, err
			}
			// Silence: make sure the connection is still there.
			pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
			err = conn.Ping(pctx)
			cancel()
			if err != nil {
				return true, fmt.Errorf("listening connection does not answer: %w", err)
			}
			continue
		}
		c, err := s.change(ctx, n.Payload)
		if err != nil {
			return true, err
		}
		deliver(c)
	}
}

// change turns a payload into a Change, reading rows too large to carry.
func (s *Store) change(ctx context.Context, payload string) (hub.Change, error) {
	msg, err := decode(payload)
	if err != nil {
		s.log.Error("unreadable notification", "err", err)
		return hub.Change{}, nil
	}
	if msg.Record == nil {
		return hub.Change{LastSeen: msg.lastSeen()}, nil
	}
	if !msg.Record.Fetch {
		return hub.Change{Records: []hub.Record{msg.Record.record()}}, nil
	}
	recs, err := s.load(ctx, []int64{msg.Record.UserID})
	if err != nil {
		return hub.Change{}, fmt.Errorf("read changed status: %w", err)
	}
	return hub.Change{Records: recs}, nil
}

// maintain renews this node's lease and sweeps up after dead nodes and
// expired heartbeats until ctx is done.
func (s *Store) maintain(ctx context.Context) {
	defer close(s.stopped)
	renew := time.NewTicker(s.cfg.LeaseTTL / 3)
	defer renew.Stop()
	sweep := time.NewTicker(s.cfg.SweepInterval)
	defer sweep.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-renew.C:
			if err := s.renew(ctx); err != nil && ctx.Err() == nil {
				s.log.Warn("renew lease", "err", err)
			}
		case <-sweep.C:
			if err := s.sweep(ctx); err != nil && ctx.Err() == nil {
				s.log.Warn("sweep", "err", err)
			}
		}
	}
}

// renew extends the lease. A lease that ran out (the node stalled longer
// than LeaseTTL, and another node may have cleared its users) is taken
// again, and this node's users are vouched for and decided anew.
func (s *Store) renew(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, s.cfg.LeaseTTL/3)
	defer cancel()
	tag, err := s.pool.Exec(ctx, `UPDATE presence_nodes SET lease_until = now() + $2::interval
		WHERE node_id = $1 AND presence_lease_end(lease_until, lease_ttl) > now()`, s.cfg.NodeID, s.cfg.LeaseTTL)
	if err != nil || tag.RowsAffected() == 1 {
		return err
	}
	s.log.Warn("lease had run out; taking it again", "node_id", s.cfg.NodeID)
	s.mu.Lock()
	vouched := make([]int64, 0, len(s.vouched))
	for id := range s.vouched {
		vouched = append(vouched, id)
	}
	s.mu.Unlock()
	err = pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `INSERT INTO presence_nodes (node_id, lease_until, lease_ttl) VALUES ($1, now() + $2::interval, $2::interval)
			ON CONFLICT (node_id) DO UPDATE SET lease_until = EXCLUDED.lease_until, lease_ttl = EXCLUDED.lease_ttl, stopped = false`, s.cfg.NodeID, s.cfg.LeaseTTL); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, `INSERT INTO presence_vouches (user_id, node_id) SELECT u, $2 FROM unnest($1::bigint[]) AS u
			ON CONFLICT DO NOTHING`, vouched, s.cfg.NodeID)
		return err
	})
	if err != nil {
		return err
	}
	_, err = s.refresh(ctx, vouched)
	return err
}

// sweepBatch bounds the users one sweep decides anew.
const sweepBatch = 1000

// sweep decides anew the users whose evidence is gone: those held by
// nodes whose lease ran out, and those stored online with neither a live
// node nor a fresh heartbeat. Every node sweeps; the row lock makes a
// second sweep of the same user a no-op. Dead nodes that vouch for nobody are
// then removed.
func (s *Store) sweep(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, s.cfg.SweepInterval)
	defer cancel()
	rows, err := s.pool.Query(ctx, `
		SELECT DISTINCT s.user_id FROM presence_vouches s JOIN presence_nodes n USING (node_id)
		WHERE presence_lease_end(n.lease_until, n.lease_ttl) <= now()
		UNION
		SELECT p.user_id FROM presence_status p
		WHERE p.online AND (p.heartbeat_until IS NULL OR p.heartbeat_until <= now())
		AND NOT EXISTS (SELECT 1 FROM jsonb_each_text(p.device_heartbeats) d
			WHERE d.value::bigint > (extract(epoch FROM now()) * 1000000)::bigint)
		AND NOT EXISTS (SELECT 1 FROM presence_vouches s JOIN presence_nodes n USING (node_id)
			WHERE s.user_id = p.user_id AND presence_lease_end(n.lease_until, n.lease_ttl) > now())
		LIMIT $1`, sweepBatch)
	if err != nil {
		return err
	}
	ids, err := pgx.CollectRows(rows, pgx.RowTo[int64])
	if err != nil {
		return err
	}
	offline, err := s.sweepUsers(ctx, ids)
	if err != nil {
		return err
	}
	rows, err = s.pool.Query(ctx, `DELETE FROM presence_nodes n WHERE presence_lease_end(lease_until, lease_ttl) <= now()
		AND NOT EXISTS (SELECT 1 FROM presence_vouches s WHERE s.node_id = n.node_id) RETURNING node_id, stopped`)
	if err != nil {
		return err
	}
	var gone string
	var stopped bool
	// Only the node whose sweep removes a node says so, so that a death is
	// one line in the whole cluster's logs.
	_, err = pgx.ForEachRow(rows, []any{&gone, &stopped}, func() error {
		if stopped {
			s.log.Info("node left: it stopped and its grace ended", "node_id", gone)
		} else {
			s.log.Warn("node died: its lease ran out", "node_id", gone)
		}
		return nil
	})
	if err != nil {
		return err
	}
	if len(ids) > 0 {
		s.log.Info("swept users of dead nodes and expired heartbeats", "users", len(ids), "turned_offline", offline)
	}
	return s.observeNodes(ctx)
}

// sweepUsers decides ids anew and counts those it turned offline itself.
// Every node sweeps, and two may pick the same users; the row lock lets
// one of them change each user, and only that one counts the user, so
// that a user turned offline is counted once in the cluster. An OpRefresh
// changes nothing but the online flag, so a change it made to an offline
// record turned the user offline.
func (s *Store) sweepUsers(ctx context.Context, ids []int64) (int, error) {
	if len(ids) == 0 {
		return 0, nil
	}
	applied, err := s.refresh(ctx, ids)
	if err != nil {
		return 0, err
	}
	offline := 0
	for _, a := range applied {
		if a.Err == nil && a.Changed && !a.Record.Online {
			offline++
		}
	}
	return offline, nil
}

// observeNodes tells the observer how many nodes hold a live lease.
func (s *Store) observeNodes(ctx context.Context) error {
	if s.cfg.Observer == nil {
		return nil
	}
	var live int
	if err := s.pool.QueryRow(ctx, `SELECT count(*) FROM presence_nodes WHERE presence_lease_end(lease_until, lease_ttl) > now()`).Scan(&live); err != nil {
		return err
	}
	s.cfg.Observer.ClusterNodes(live)
	return nil
}

// refreshBatch bounds the users one transaction of a refresh decides.
const refreshBatch = 256

// refresh applies OpRefresh to each user, many to a transaction; the
// changes reach every node through NOTIFY.
func (s *Store) refresh(ctx context.Context, ids []int64) ([]hub.Applied, error) {
	var out []hub.Applied
	for chunk := range slices.Chunk(ids, refreshBatch) {
		ops := make([]hub.Op, len(chunk))
		for i, id := range chunk {
			ops[i] = hub.Op{Kind: hub.OpRefresh, UserID: id}
		}
		applied, err := s.ApplyBatch(ctx, ops)
		if err != nil {
			return out, err
		}
		out = append(out, applied...)
	}
	return out, nil
}
