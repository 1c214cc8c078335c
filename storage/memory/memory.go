// Package memory is an in-memory hub.Store. It forgets everything when the
// process ends; it is the default so that a development server needs
// nothing else. It is safe for concurrent use.
package memory

import (
	"context"
	"sync"

	"github.com/presenced/presenced/hub"
)

var _ hub.Store = (*Store)(nil)

// Store keeps statuses in a map.
type Store struct {
	mu       sync.Mutex
	statuses map[int64]hub.Status
}

// New returns an empty store.
func New() *Store {
	return &Store{statuses: make(map[int64]hub.Status)}
}

// LoadAll returns every stored status.
func (s *Store) LoadAll(context.Context) ([]hub.Status, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]hub.Status, 0, len(s.statuses))
	for _, st := range s.statuses {
		out = append(out, clone(st))
	}
	return out, nil
}

// Save stores st, replacing an earlier status of the same user.
func (s *Store) Save(_ context.Context, st hub.Status) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.statuses[st.UserID] = clone(st)
	return nil
}

// SaveLastSeen updates last_seen of users that have a status.
func (s *Store) SaveLastSeen(_ context.Context, seen []hub.LastSeen) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, ls := range seen {
		if st, ok := s.statuses[ls.UserID]; ok {
			st.LastSeen = ls.At
			s.statuses[ls.UserID] = st
		}
	}
	return nil
}

// clone copies the wait time so that callers never share it.
func clone(st hub.Status) hub.Status {
	if st.WaitTime != nil {
		w := *st.WaitTime
		st.WaitTime = &w
	}
	return st
}
