package postgres

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/presenced/presenced/hub"
)

var _ hub.Outbox = (*Store)(nil)

// outboxPresence is a presence as the outbox keeps it: times in Unix
// microseconds, zero for none.
type outboxPresence struct {
	UserID    int64  `json:"u"`
	Username  string `json:"n"`
	Online    bool   `json:"o"`
	Busy      bool   `json:"b"`
	WaitTime  *int   `json:"w"`
	BusySince int64  `json:"bs"`
	LastSeen  int64  `json:"s"`
}

func micros(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixMicro()
}

func fromMicros(us int64) time.Time {
	if us == 0 {
		return time.Time{}
	}
	return time.UnixMicro(us)
}

// queueEvents adds the rows of events, one per webhook URL, to the
// batch of the transaction that makes their change.
func (s *Store) queueEvents(b *pgx.Batch, events []hub.Event) {
	if len(events) == 0 {
		return
	}
	var targets, ids, types, data []string
	var ats []time.Time
	for _, e := range events {
		p := e.Presence
		enc, _ := json.Marshal(outboxPresence{UserID: p.UserID, Username: p.Username, Online: p.Online, Busy: p.Busy, WaitTime: p.WaitTime,
			BusySince: micros(p.BusySince), LastSeen: micros(p.LastSeen)}) // plain types only
		for _, t := range s.cfg.WebhookURLs {
			targets, ids, types, ats, data = append(targets, t), append(ids, e.ID), append(types, string(e.Type)), append(ats, e.At), append(data, string(enc))
		}
	}
	// unnest keeps the order, so seq follows the order of the changes.
	b.Queue(`INSERT INTO presence_webhook_outbox (target, event_id, type, at, presence)
		SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::timestamptz[], $5::jsonb[])`, targets, ids, types, ats, data)
}

// eventsAdded tells this node's claims that a commit may have added
// events; other nodes' commits are found by polling.
func (s *Store) eventsAdded() {
	s.claimsMu.Lock()
	defer s.claimsMu.Unlock()
	for c := range s.claims {
		select {
		case c.added <- struct{}{}:
		default:
		}
	}
}

// Claim takes target's delivery for this node: a session-level advisory
// lock, held on a connection of the claim's own, so that one node of the
// cluster delivers each receiver's events, in order. A node that dies
// loses the lock with its connection, and another takes over.
func (s *Store) Claim(ctx context.Context, target string) (hub.OutboxClaim, error) {
	cfg := s.listenCfg.Copy()
	cfg.RuntimeParams["application_name"] = "presenced webhooks " + s.cfg.NodeID
	for {
		conn, err := pgx.ConnectConfig(ctx, cfg)
		if err != nil {
			return nil, fmt.Errorf("webhook outbox: %w", err)
		}
		var got bool
		err = conn.QueryRow(ctx, `SELECT pg_try_advisory_lock(hashtextextended('presenced webhook ' || current_schema() || ' ' || $1, 0))`, target).Scan(&got)
		if err == nil && got {
			c := &pgClaim{s: s, conn: conn, target: target, added: make(chan struct{}, 1)}
			s.claimsMu.Lock()
			s.claims[c] = struct{}{}
			s.claimsMu.Unlock()
			return c, nil
		}
		closeConn(conn)
		if err != nil {
			return nil, fmt.Errorf("webhook outbox: %w", err)
		}
		// Another node delivers; look again in a while.
		t := time.NewTimer(time.Second)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, ctx.Err()
		case <-t.C:
		}
	}
}

func closeConn(conn *pgx.Conn) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	_ = conn.Close(ctx)
}

type pgClaim struct {
	s       *Store
	conn    *pgx.Conn // holds the lock; one goroutine uses it
	target  string
	added   chan struct{}
	release sync.Once
}

func (c *pgClaim) Pending(ctx context.Context, n int) ([]hub.Event, error) {
	rows, err := c.conn.Query(ctx, `SELECT event_id, type, at, presence FROM presence_webhook_outbox
		WHERE target = $1 ORDER BY seq LIMIT $2`, c.target, n)
	if err != nil {
		return nil, fmt.Errorf("webhook outbox: %w", err)
	}
	defer rows.Close()
	var out []hub.Event
	for rows.Next() {
		var e hub.Event
		var typ string
		var p outboxPresence
		if err := rows.Scan(&e.ID, &typ, &e.At, &p); err != nil {
			return nil, fmt.Errorf("webhook outbox: %w", err)
		}
		e.Type = hub.EventType(typ)
		e.Presence = hub.Presence{UserID: p.UserID, Username: p.Username, Online: p.Online, Busy: p.Busy, WaitTime: p.WaitTime,
			BusySince: fromMicros(p.BusySince), LastSeen: fromMicros(p.LastSeen)}
		out = append(out, e)
	}
	return out, rows.Err()
}

func (c *pgClaim) Delivered(ctx context.Context, events []hub.Event) error {
	ids := make([]string, len(events))
	for i, e := range events {
		ids[i] = e.ID
	}
	if _, err := c.conn.Exec(ctx, `DELETE FROM presence_webhook_outbox WHERE target = $1 AND event_id = ANY($2)`, c.target, ids); err != nil {
		return fmt.Errorf("webhook outbox: %w", err)
	}
	return nil
}

func (c *pgClaim) Trim(ctx context.Context, n int) (int, error) {
	tag, err := c.conn.Exec(ctx, `DELETE FROM presence_webhook_outbox WHERE target = $1 AND seq <= (
		SELECT seq FROM presence_webhook_outbox WHERE target = $1 ORDER BY seq DESC OFFSET $2 LIMIT 1)`, c.target, n)
	if err != nil {
		return 0, fmt.Errorf("webhook outbox: %w", err)
	}
	return int(tag.RowsAffected()), nil
}

func (c *pgClaim) Added() <-chan struct{} { return c.added }

// Release closes the claim's connection, and with it the lock.
func (c *pgClaim) Release() {
	c.release.Do(func() {
		c.s.claimsMu.Lock()
		delete(c.s.claims, c)
		c.s.claimsMu.Unlock()
		closeConn(c.conn)
	})
}
