// Package memory is an in-memory hub.Store for one node. It forgets
// everything when the process ends; it is the default so that a
// development server needs nothing else. It is safe for concurrent use.
package memory

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/presenced/presenced/hub"
)

var (
	_ hub.Store      = (*Store)(nil)
	_ hub.BatchStore = (*Store)(nil)
	_ hub.Outbox     = (*Store)(nil)
)

// Store keeps statuses in a map.
type Store struct {
	mu      sync.Mutex
	rows    map[int64]hub.Row
	vouched map[int64]struct{} // users this node holds a connection of
	outbox  map[string]*queue  // the events waiting for each webhook URL
}

// queue is one webhook URL's events, oldest first.
type queue struct {
	events []hub.Event
	added  chan struct{} // capacity 1: events were added
}

// New returns an empty store. The events of its changes are kept for
// each of webhookURLs until they are delivered; they are lost with the
// process, as the statuses are.
func New(webhookURLs ...string) *Store {
	s := &Store{rows: make(map[int64]hub.Row), vouched: make(map[int64]struct{}), outbox: make(map[string]*queue)}
	for _, u := range webhookURLs {
		s.outbox[u] = &queue{added: make(chan struct{}, 1)}
	}
	return s
}

// LoadAll returns every stored status.
func (s *Store) LoadAll(context.Context) ([]hub.Record, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := time.Now()
	out := make([]hub.Record, 0, len(s.rows))
	for id, row := range s.rows {
		out = append(out, s.record(id, row, now))
	}
	return out, nil
}

// Put stores st as it is, replacing any status of the user, as a status
// left by an earlier run would be: for seeding a store in tests and
// tools. Nobody vouches for the user.
func (s *Store) Put(st hub.Status) {
	s.mu.Lock()
	defer s.mu.Unlock()
	row := s.rows[st.UserID]
	row.Status = st.Clone()
	row.Version++
	s.rows[st.UserID] = row
}

// Apply makes one change by hub.Decide.
func (s *Store) Apply(_ context.Context, op hub.Op) (hub.Record, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	a := s.apply(op, time.Now())
	return a.Record, a.Err
}

// ApplyBatch makes the changes in order under one lock, so that no other
// caller's change falls between them, as in one database transaction.
func (s *Store) ApplyBatch(_ context.Context, ops []hub.Op) ([]hub.Applied, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := time.Now()
	out := make([]hub.Applied, len(ops))
	for i, op := range ops {
		out[i] = s.apply(op, now)
	}
	return out, nil
}

// apply makes one change. The vouches change before Decide rules, for an
// op it refuses too; only OpRelease can be refused, and the vouched set
// holds only users with a status, so that changes nothing.
func (s *Store) apply(op hub.Op, now time.Time) hub.Applied {
	row, exists := s.rows[op.UserID]
	switch op.Kind {
	case hub.OpConnect:
		s.vouched[op.UserID] = struct{}{}
	case hub.OpRelease:
		delete(s.vouched, op.UserID)
	}
	before := row.Presence()
	row, changed, err := hub.Decide(row, exists, op, s.vouchers(op.UserID), now)
	if err != nil {
		return hub.Applied{Err: err}
	}
	if changed {
		row.Status = row.Status.Clone()
		s.rows[op.UserID] = row
		if events := hub.NewEvents(before, exists, row.Presence(), now); len(events) > 0 {
			for _, q := range s.outbox {
				q.events = append(q.events, events...)
				select {
				case q.added <- struct{}{}:
				default:
				}
			}
		}
	}
	return hub.Applied{Record: s.record(op.UserID, row, now), Changed: changed}
}

// SaveLastSeen updates last_seen of users that have a status (not while
// they appear offline), and extends their heartbeats.
func (s *Store) SaveLastSeen(_ context.Context, seen []hub.LastSeen) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := time.Now()
	for _, ls := range seen {
		row, ok := s.rows[ls.UserID]
		if !ok {
			continue
		}
		if !row.AppearOffline && ls.At.After(row.LastSeen) {
			row.LastSeen = ls.At
		}
		if until := now.Add(ls.HeartbeatTTL); ls.HeartbeatTTL > 0 && until.After(row.HeartbeatUntil) {
			row.HeartbeatUntil = until
		}
		row.DeviceHeartbeats = hub.ExtendHeartbeats(row.DeviceHeartbeats, ls.DeviceHeartbeats, now)
		s.rows[ls.UserID] = row
	}
	return nil
}

func (s *Store) vouchers(id int64) int {
	if _, ok := s.vouched[id]; ok {
		return 1
	}
	return 0
}

func (s *Store) record(id int64, row hub.Row, now time.Time) hub.Record {
	r := row.Record(now, s.vouchers(id))
	r.Status = r.Status.Clone()
	return r
}

// Claim gives the right to send target's events; one node holds a
// memory store, so it is always granted.
func (s *Store) Claim(_ context.Context, target string) (hub.OutboxClaim, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	q := s.outbox[target]
	if q == nil {
		return nil, fmt.Errorf("memory store: no outbox for %s", target)
	}
	return &claim{s: s, q: q}, nil
}

type claim struct {
	s *Store
	q *queue
}

func (c *claim) Pending(_ context.Context, n int) ([]hub.Event, error) {
	c.s.mu.Lock()
	defer c.s.mu.Unlock()
	return slices.Clone(c.q.events[:min(n, len(c.q.events))]), nil
}

func (c *claim) Delivered(_ context.Context, events []hub.Event) error {
	c.s.mu.Lock()
	defer c.s.mu.Unlock()
	done := make(map[string]bool, len(events))
	for _, e := range events {
		done[e.ID] = true
	}
	c.q.events = slices.DeleteFunc(c.q.events, func(e hub.Event) bool { return done[e.ID] })
	return nil
}

func (c *claim) Trim(_ context.Context, n int) (int, error) {
	c.s.mu.Lock()
	defer c.s.mu.Unlock()
	over := len(c.q.events) - n
	if over <= 0 {
		return 0, nil
	}
	c.q.events = slices.Delete(c.q.events, 0, over)
	return over, nil
}

func (c *claim) Added() <-chan struct{} { return c.q.added }

func (c *claim) Release() {}
