// Package storetest is the behaviour every hub.Store must show. Each
// implementation's tests call Run with a function that gives a fresh,
// empty store.
package storetest

import (
	"context"
	"sort"
	"testing"
	"time"

	"github.com/presenced/presenced/hub"
)

// Run runs the suite; newStore must return an empty store each time.
func Run(t *testing.T, newStore func(t *testing.T) hub.Store) {
	t.Run("EmptyLoadsNothing", func(t *testing.T) {
		all, err := newStore(t).LoadAll(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if len(all) != 0 {
			t.Fatalf("fresh store holds %d statuses", len(all))
		}
	})
	t.Run("SaveThenLoadRoundTrips", func(t *testing.T) {
		ctx := context.Background()
		s := newStore(t)
		want := sample(7)
		if err := s.Save(ctx, want); err != nil {
			t.Fatal(err)
		}
		got := loadOne(t, s, 7)
		assertEqual(t, got, want)
	})
	t.Run("SaveReplaces", func(t *testing.T) {
		ctx := context.Background()
		s := newStore(t)
		first := sample(8)
		if err := s.Save(ctx, first); err != nil {
			t.Fatal(err)
		}
		second := first
		second.Busy = false
		second.WaitTime = nil
		second.AppearOffline = true
		second.Online = false
		second.Username = "renamed"
		second.UpdatedAt = first.UpdatedAt.Add(time.Minute)
		if err := s.Save(ctx, second); err != nil {
			t.Fatal(err)
		}
		assertEqual(t, loadOne(t, s, 8), second)
	})
	t.Run("SavedWaitTimeIsNotShared", func(t *testing.T) {
		ctx := context.Background()
		s := newStore(t)
		st := sample(9)
		if err := s.Save(ctx, st); err != nil {
			t.Fatal(err)
		}
		*st.WaitTime = 99
		if got := loadOne(t, s, 9); *got.WaitTime != 15 {
			t.Fatalf("stored wait_time changed with the caller's copy: %d", *got.WaitTime)
		}
	})
	t.Run("SaveLastSeenTouchesOnlyKnownUsers", func(t *testing.T) {
		ctx := context.Background()
		s := newStore(t)
		a, b := sample(1), sample(2)
		for _, st := range []hub.Status{a, b} {
			if err := s.Save(ctx, st); err != nil {
				t.Fatal(err)
			}
		}
		later := a.LastSeen.Add(42 * time.Second)
		err := s.SaveLastSeen(ctx, []hub.LastSeen{{UserID: 1, At: later}, {UserID: 3, At: later}})
		if err != nil {
			t.Fatal(err)
		}
		all, err := s.LoadAll(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if len(all) != 2 {
			t.Fatalf("SaveLastSeen created a status for an unknown user: %d statuses", len(all))
		}
		sort.Slice(all, func(i, j int) bool { return all[i].UserID < all[j].UserID })
		if !all[0].LastSeen.Equal(later) {
			t.Fatalf("last_seen of user 1 = %v, want %v", all[0].LastSeen, later)
		}
		if !all[1].LastSeen.Equal(b.LastSeen) {
			t.Fatalf("last_seen of user 2 changed to %v", all[1].LastSeen)
		}
	})
	t.Run("SaveLastSeenEmptyBatch", func(t *testing.T) {
		if err := newStore(t).SaveLastSeen(context.Background(), nil); err != nil {
			t.Fatal(err)
		}
	})
}

func sample(id int64) hub.Status {
	w := 15
	at := time.Date(2024, 1, 15, 10, 30, 0, 0, time.UTC)
	return hub.Status{
		UserID: id, Username: "user", Online: true, Busy: true, WaitTime: &w,
		LastSeen: at.Add(time.Second), CreatedAt: at, UpdatedAt: at.Add(2 * time.Second),
	}
}

func loadOne(t *testing.T, s hub.Store, id int64) hub.Status {
	t.Helper()
	all, err := s.LoadAll(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for _, st := range all {
		if st.UserID == id {
			return st
		}
	}
	t.Fatalf("user %d not loaded (got %d statuses)", id, len(all))
	return hub.Status{}
}

func assertEqual(t *testing.T, got, want hub.Status) {
	t.Helper()
	wt := func(p *int) any {
		if p == nil {
			return nil
		}
		return *p
	}
	if got.UserID != want.UserID || got.Username != want.Username || got.Online != want.Online ||
		got.AppearOffline != want.AppearOffline || got.Busy != want.Busy || wt(got.WaitTime) != wt(want.WaitTime) ||
		!got.LastSeen.Equal(want.LastSeen) || !got.CreatedAt.Equal(want.CreatedAt) || !got.UpdatedAt.Equal(want.UpdatedAt) {
		t.Fatalf("loaded %+v (wait %v), want %+v (wait %v)", got, wt(got.WaitTime), want, wt(want.WaitTime))
	}
}
