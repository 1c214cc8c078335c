// Package storetest is the behaviour every hub.Store must show. Each
// implementation's tests call Run with a function that gives a fresh,
// empty store; memory and PostgreSQL pass the same suite, so the hub
// cannot tell them apart.
package storetest

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"testing"
	"time"

	"github.com/presenced/presenced/hub"
)

// skew is how far the store's clock may be from the test's: the database
// runs on this machine, so a minute is generous.
const skew = time.Minute

// Run runs the suite; newStore must return an empty store each time.
func Run(t *testing.T, newStore func(t *testing.T) hub.Store) {
	ctx := context.Background()
	t.Run("EmptyLoadsNothing", func(t *testing.T) {
		all, err := newStore(t).LoadAll(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if len(all) != 0 {
			t.Fatalf("fresh store holds %d statuses", len(all))
		}
	})
	t.Run("ConnectCreatesAnOnlineStatus", func(t *testing.T) {
		s := newStore(t)
		before := time.Now()
		rec := apply(t, s, hub.Op{Kind: hub.OpConnect, UserID: 7, Username: "alice"})
		if !rec.Online || rec.Username != "alice" || rec.Busy || rec.WaitTime != nil || rec.AppearOffline {
			t.Fatalf("after connect: %+v", rec.Status)
		}
		if rec.Version != 1 || rec.Vouchers != 1 || rec.HeartbeatLeft != 0 {
			t.Fatalf("version %d, vouchers %d, heartbeat left %v; want 1, 1, 0", rec.Version, rec.Vouchers, rec.HeartbeatLeft)
		}
		for name, at := range map[string]time.Time{"created_at": rec.CreatedAt, "updated_at": rec.UpdatedAt, "last_seen": rec.LastSeen} {
			if at.Before(before.Add(-skew)) || at.After(time.Now().Add(skew)) {
				t.Fatalf("%s = %v, not about now (%v)", name, at, before)
			}
		}
		assertEqual(t, loadOne(t, s, 7), rec)
	})
	t.Run("ReleaseTurnsOfflineAndKeepsTheLastSign", func(t *testing.T) {
		s := newStore(t)
		on := apply(t, s, hub.Op{Kind: hub.OpConnect, UserID: 8, Username: "bob"})
		seen := on.LastSeen.Add(3 * time.Second).Truncate(time.Microsecond)
		off := apply(t, s, hub.Op{Kind: hub.OpRelease, UserID: 8, SeenAt: seen})
		if off.Online || off.Vouchers != 0 || off.Version != on.Version+1 {
			t.Fatalf("after release: online %v, vouchers %d, version %d (was %d)", off.Online, off.Vouchers, off.Version, on.Version)
		}
		if !off.LastSeen.Equal(seen) {
			t.Fatalf("last_seen = %v, want the end of the connection %v", off.LastSeen, seen)
		}
		if off.Username != "bob" || !off.CreatedAt.Equal(on.CreatedAt) {
			t.Fatalf("release changed more than presence: %+v", off.Status)
		}
		assertEqual(t, loadOne(t, s, 8), off)
	})
	t.Run("ReleaseAndRefreshOfAnUnknownUserAreNotFound", func(t *testing.T) {
		s := newStore(t)
		for _, kind := range []hub.OpKind{hub.OpRelease, hub.OpRefresh} {
			if _, err := s.Apply(ctx, hub.Op{Kind: kind, UserID: 9}); !errors.Is(err, hub.ErrNotFound) {
				t.Fatalf("op %d on an unknown user: err = %v, want ErrNotFound", kind, err)
			}
		}
		if all, _ := s.LoadAll(ctx); len(all) != 0 {
			t.Fatalf("a refused op created %d statuses", len(all))
		}
	})
	t.Run("UpdateChangesFieldsAndEachChangeIsANewVersion", func(t *testing.T) {
		s := newStore(t)
		on := apply(t, s, hub.Op{Kind: hub.OpConnect, UserID: 10, Username: "carol"})
		busy := apply(t, s, update(10, hub.StatusUpdate{Busy: ptr(true), WaitTimeSet: true, WaitTime: ptr(15)}))
		if !busy.Busy || busy.WaitTime == nil || *busy.WaitTime != 15 || !busy.Online || busy.Version != on.Version+1 {
			t.Fatalf("after busy: %+v wait %v version %d", busy.Status, busy.WaitTime, busy.Version)
		}
		hidden := apply(t, s, update(10, hub.StatusUpdate{Online: ptr(false)}))
		if hidden.Online || !hidden.AppearOffline || !hidden.Busy || hidden.Vouchers != 1 {
			t.Fatalf("appear offline while connected: %+v", hidden.Status)
		}
		free := apply(t, s, update(10, hub.StatusUpdate{Busy: ptr(false), Online: ptr(true)}))
		if free.Busy || free.WaitTime != nil || !free.Online || free.AppearOffline {
			t.Fatalf("not busy must clear wait_time and is_online=true must show the user: %+v wait %v", free.Status, free.WaitTime)
		}
		if free.Version != hidden.Version+1 || free.UpdatedAt.Before(on.UpdatedAt) {
			t.Fatalf("version %d after %d, updated_at %v after %v", free.Version, hidden.Version, free.UpdatedAt, on.UpdatedAt)
		}
		assertEqual(t, loadOne(t, s, 10), free)
	})
	t.Run("UpdateCreatesAnOfflineStatusUnlessItIsAHeartbeat", func(t *testing.T) {
		s := newStore(t)
		quiet := apply(t, s, update(11, hub.StatusUpdate{Busy: ptr(true)}))
		if quiet.Online || !quiet.Busy || quiet.Version != 1 {
			t.Fatalf("update of a new user without heartbeat: %+v version %d", quiet.Status, quiet.Version)
		}
		op := update(12, hub.StatusUpdate{Busy: ptr(true)})
		op.HeartbeatTTL = time.Minute
		alive := apply(t, s, op)
		if !alive.Online || alive.HeartbeatLeft <= 0 || alive.HeartbeatLeft > time.Minute {
			t.Fatalf("update as heartbeat: online %v, heartbeat left %v", alive.Online, alive.HeartbeatLeft)
		}
	})
	t.Run("HeartbeatKeepsOnlineUntilItsTTL", func(t *testing.T) {
		s := newStore(t)
		long := apply(t, s, hub.Op{Kind: hub.OpHeartbeat, UserID: 13, Username: "dan", HeartbeatTTL: time.Hour})
		if !long.Online || long.Vouchers != 0 || long.HeartbeatLeft < 59*time.Minute {
			t.Fatalf("after heartbeat: online %v, vouchers %d, left %v", long.Online, long.Vouchers, long.HeartbeatLeft)
		}
		if again := apply(t, s, hub.Op{Kind: hub.OpRefresh, UserID: 13}); !again.Online || again.Version != long.Version {
			t.Fatalf("refresh of a fresh heartbeat changed it: online %v, version %d (was %d)", again.Online, again.Version, long.Version)
		}
		short := apply(t, s, hub.Op{Kind: hub.OpHeartbeat, UserID: 14, HeartbeatTTL: 200 * time.Millisecond})
		if !short.Online {
			t.Fatal("a heartbeat did not make the user online")
		}
		// The store's clock decides; ask until it says the heartbeat is over.
		deadline := time.Now().Add(10 * time.Second)
		for {
			rec := apply(t, s, hub.Op{Kind: hub.OpRefresh, UserID: 14})
			if !rec.Online {
				if rec.Version != short.Version+1 || rec.HeartbeatLeft != 0 {
					t.Fatalf("expired heartbeat: version %d (was %d), left %v", rec.Version, short.Version, rec.HeartbeatLeft)
				}
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("user still online 10s after a 200ms heartbeat")
			}
			waitBriefly()
		}
	})
	t.Run("TheSameOpTwiceIsHarmless", func(t *testing.T) {
		s := newStore(t)
		apply(t, s, hub.Op{Kind: hub.OpConnect, UserID: 15, Username: "eve"})
		again := apply(t, s, hub.Op{Kind: hub.OpConnect, UserID: 15})
		if !again.Online || again.Vouchers != 1 || again.Username != "eve" {
			t.Fatalf("connect twice: online %v, vouchers %d, name %q", again.Online, again.Vouchers, again.Username)
		}
		apply(t, s, hub.Op{Kind: hub.OpRelease, UserID: 15})
		twice := apply(t, s, hub.Op{Kind: hub.OpRelease, UserID: 15})
		if twice.Online || twice.Vouchers != 0 {
			t.Fatalf("release twice: online %v, vouchers %d", twice.Online, twice.Vouchers)
		}
		if n := len(loadAll(t, s)); n != 1 {
			t.Fatalf("%d statuses for one user", n)
		}
	})
	t.Run("AnUnchangedRefreshKeepsTheVersion", func(t *testing.T) {
		s := newStore(t)
		on := apply(t, s, hub.Op{Kind: hub.OpConnect, UserID: 16})
		same := apply(t, s, hub.Op{Kind: hub.OpRefresh, UserID: 16})
		if same.Version != on.Version || !same.Online {
			t.Fatalf("refresh with nothing to change: version %d (was %d), online %v", same.Version, on.Version, same.Online)
		}
	})
	t.Run("ReturnedWaitTimeIsNotShared", func(t *testing.T) {
		s := newStore(t)
		rec := apply(t, s, update(17, hub.StatusUpdate{Busy: ptr(true), WaitTimeSet: true, WaitTime: ptr(15)}))
		*rec.WaitTime = 99
		if got := loadOne(t, s, 17); *got.WaitTime != 15 {
			t.Fatalf("stored wait_time changed with the caller's copy: %d", *got.WaitTime)
		}
	})
	t.Run("SaveLastSeenTouchesOnlyKnownUsersAndNeverGoesBack", func(t *testing.T) {
		s := newStore(t)
		a := apply(t, s, hub.Op{Kind: hub.OpConnect, UserID: 1})
		b := apply(t, s, hub.Op{Kind: hub.OpConnect, UserID: 2})
		later := a.LastSeen.Add(42 * time.Second).Truncate(time.Microsecond)
		earlier := b.LastSeen.Add(-time.Hour).Truncate(time.Microsecond)
		err := s.SaveLastSeen(ctx, []hub.LastSeen{{UserID: 1, At: later}, {UserID: 2, At: earlier}, {UserID: 3, At: later}})
		if err != nil {
			t.Fatal(err)
		}
		all := loadAll(t, s)
		if len(all) != 2 {
			t.Fatalf("SaveLastSeen created a status for an unknown user: %d statuses", len(all))
		}
		if !all[0].LastSeen.Equal(later) {
			t.Fatalf("last_seen of user 1 = %v, want %v", all[0].LastSeen, later)
		}
		if !all[1].LastSeen.Equal(b.LastSeen) {
			t.Fatalf("last_seen of user 2 went back to %v from %v", all[1].LastSeen, b.LastSeen)
		}
		if all[0].Version != a.Version {
			t.Fatalf("a last_seen flush is no change of state, yet the version went from %d to %d", a.Version, all[0].Version)
		}
	})
	t.Run("SaveLastSeenExtendsHeartbeats", func(t *testing.T) {
		s := newStore(t)
		hb := apply(t, s, hub.Op{Kind: hub.OpHeartbeat, UserID: 4, HeartbeatTTL: 2 * time.Second})
		if err := s.SaveLastSeen(ctx, []hub.LastSeen{{UserID: 4, At: hb.LastSeen, HeartbeatTTL: time.Hour}}); err != nil {
			t.Fatal(err)
		}
		if rec := apply(t, s, hub.Op{Kind: hub.OpRefresh, UserID: 4}); rec.HeartbeatLeft < 59*time.Minute {
			t.Fatalf("heartbeat left %v after an extension by an hour", rec.HeartbeatLeft)
		}
		// An extension never shortens a heartbeat.
		if err := s.SaveLastSeen(ctx, []hub.LastSeen{{UserID: 4, At: hb.LastSeen, HeartbeatTTL: time.Second}}); err != nil {
			t.Fatal(err)
		}
		if rec := apply(t, s, hub.Op{Kind: hub.OpRefresh, UserID: 4}); rec.HeartbeatLeft < 59*time.Minute {
			t.Fatalf("a shorter extension cut the heartbeat to %v", rec.HeartbeatLeft)
		}
	})
	t.Run("SaveLastSeenEmptyBatch", func(t *testing.T) {
		if err := newStore(t).SaveLastSeen(ctx, nil); err != nil {
			t.Fatal(err)
		}
	})
	runBatch(t, func(t *testing.T) hub.BatchStore {
		s, ok := newStore(t).(hub.BatchStore)
		if !ok {
			t.Skip("the store makes one change at a time: no hub.BatchStore")
		}
		return s
	})
	t.Run("DeviceHeartbeatsAreKeptPerDevice", func(t *testing.T) {
		s := newStore(t)
		rec := apply(t, s, hub.Op{Kind: hub.OpHeartbeat, UserID: 40, Device: "phone", HeartbeatTTL: time.Hour})
		if !rec.Online || rec.HeartbeatLeft != 0 || rec.DeviceHeartbeats["phone"] < 59*time.Minute || len(rec.DeviceHeartbeats) != 1 {
			t.Fatalf("after a device heartbeat: online %v, left %v, devices %v", rec.Online, rec.HeartbeatLeft, rec.DeviceHeartbeats)
		}
		rec = apply(t, s, hub.Op{Kind: hub.OpUpdate, UserID: 40, Device: "tablet", HeartbeatTTL: time.Minute, Update: hub.StatusUpdate{Busy: ptr(true)}})
		if len(rec.DeviceHeartbeats) != 2 || rec.DeviceHeartbeats["tablet"] <= 0 || rec.DeviceHeartbeats["tablet"] > time.Minute {
			t.Fatalf("after an update from a second device: %v", rec.DeviceHeartbeats)
		}
		if got := loadOne(t, s, 40); len(got.DeviceHeartbeats) != 2 || got.DeviceHeartbeats["phone"] < 59*time.Minute {
			t.Fatalf("loaded device heartbeats %v", got.DeviceHeartbeats)
		}
		// A socket of the phone takes its heartbeat over; the tablet's
		// stays.
		rec = apply(t, s, hub.Op{Kind: hub.OpConnect, UserID: 40, Device: "phone"})
		if _, ok := rec.DeviceHeartbeats["phone"]; ok || rec.DeviceHeartbeats["tablet"] <= 0 {
			t.Fatalf("after the phone's socket: %v", rec.DeviceHeartbeats)
		}
		rec = apply(t, s, hub.Op{Kind: hub.OpRelease, UserID: 40})
		if !rec.Online {
			t.Fatal("the tablet's heartbeat no longer keeps the user online")
		}
		rec = apply(t, s, hub.Op{Kind: hub.OpEndHeartbeat, UserID: 40, Device: "tablet"})
		if rec.Online || len(rec.DeviceHeartbeats) != 0 {
			t.Fatalf("with every heartbeat ended: online %v, devices %v", rec.Online, rec.DeviceHeartbeats)
		}
		if _, err := s.Apply(ctx, hub.Op{Kind: hub.OpEndHeartbeat, UserID: 41, Device: "x"}); !errors.Is(err, hub.ErrNotFound) {
			t.Fatalf("ending a heartbeat of an unknown user: %v, want ErrNotFound", err)
		}
	})
	t.Run("ADeviceHeartbeatWithoutSocketExpires", func(t *testing.T) {
		s := newStore(t)
		short := apply(t, s, hub.Op{Kind: hub.OpHeartbeat, UserID: 42, Device: "phone", HeartbeatTTL: 200 * time.Millisecond})
		for deadline := time.Now().Add(10 * time.Second); ; waitBriefly() {
			rec := apply(t, s, hub.Op{Kind: hub.OpRefresh, UserID: 42})
			if !rec.Online {
				if len(rec.DeviceHeartbeats) != 0 || rec.Version != short.Version+1 {
					t.Fatalf("expired device heartbeat: devices %v, version %d (was %d)", rec.DeviceHeartbeats, rec.Version, short.Version)
				}
				break
			}
			if time.Now().After(deadline) {
				t.Fatal("still online 10s after a 200ms device heartbeat")
			}
		}
	})
	t.Run("SaveLastSeenExtendsOnlyStoredDeviceHeartbeats", func(t *testing.T) {
		s := newStore(t)
		hb := apply(t, s, hub.Op{Kind: hub.OpHeartbeat, UserID: 43, Device: "phone", HeartbeatTTL: 2 * time.Second})
		ext := map[string]time.Duration{"phone": time.Hour, "gone": time.Hour}
		if err := s.SaveLastSeen(ctx, []hub.LastSeen{{UserID: 43, At: hb.LastSeen, DeviceHeartbeats: ext}}); err != nil {
			t.Fatal(err)
		}
		rec := apply(t, s, hub.Op{Kind: hub.OpRefresh, UserID: 43})
		if rec.DeviceHeartbeats["phone"] < 59*time.Minute || len(rec.DeviceHeartbeats) != 1 {
			t.Fatalf("after an extension: %v; want the phone's hour and no heartbeat for a device the store did not hold", rec.DeviceHeartbeats)
		}
		if err := s.SaveLastSeen(ctx, []hub.LastSeen{{UserID: 43, At: hb.LastSeen, DeviceHeartbeats: map[string]time.Duration{"phone": time.Second}}}); err != nil {
			t.Fatal(err)
		}
		if rec := apply(t, s, hub.Op{Kind: hub.OpRefresh, UserID: 43}); rec.DeviceHeartbeats["phone"] < 59*time.Minute {
			t.Fatalf("a shorter extension cut the device heartbeat to %v", rec.DeviceHeartbeats["phone"])
		}
	})
	t.Run("ManyDevicesKeepTheNewest", func(t *testing.T) {
		s := newStore(t)
		var rec hub.Record
		for i := range hub.MaxDeviceHeartbeats + 5 {
			rec = apply(t, s, hub.Op{Kind: hub.OpHeartbeat, UserID: 44, Device: fmt.Sprint("d", i), HeartbeatTTL: time.Hour + time.Duration(i)*time.Second})
		}
		if len(rec.DeviceHeartbeats) != hub.MaxDeviceHeartbeats || rec.DeviceHeartbeats["d0"] != 0 || rec.DeviceHeartbeats[fmt.Sprint("d", hub.MaxDeviceHeartbeats+4)] == 0 {
			t.Fatalf("%d device heartbeats kept: %v", len(rec.DeviceHeartbeats), rec.DeviceHeartbeats)
		}
	})
	t.Run("BusySinceIsStored", func(t *testing.T) {
		s := newStore(t)
		before := time.Now()
		rec := apply(t, s, update(45, hub.StatusUpdate{Busy: ptr(true)}))
		if rec.BusySince.Before(before.Add(-skew)) || rec.BusySince.After(time.Now().Add(skew)) {
			t.Fatalf("busy_since %v, not about now", rec.BusySince)
		}
		if got := loadOne(t, s, 45); !got.BusySince.Equal(rec.BusySince) {
			t.Fatalf("loaded busy_since %v, want %v", got.BusySince, rec.BusySince)
		}
		again := apply(t, s, update(45, hub.StatusUpdate{Busy: ptr(true), WaitTimeSet: true, WaitTime: ptr(3)}))
		if !again.BusySince.Equal(rec.BusySince) {
			t.Fatalf("busy_since moved from %v to %v within one call", rec.BusySince, again.BusySince)
		}
		if free := apply(t, s, update(45, hub.StatusUpdate{Busy: ptr(false)})); !free.BusySince.IsZero() {
			t.Fatalf("busy_since %v after the call", free.BusySince)
		}
		if got := loadOne(t, s, 45); !got.BusySince.IsZero() {
			t.Fatalf("loaded busy_since %v after the call", got.BusySince)
		}
	})
	t.Run("LastSeenCanBeHidden", func(t *testing.T) {
		s := newStore(t)
		apply(t, s, hub.Op{Kind: hub.OpConnect, UserID: 47, Username: "eve"})
		rec := apply(t, s, update(47, hub.StatusUpdate{LastSeenVisible: ptr(false)}))
		if !rec.HideLastSeen || rec.LastSeen.IsZero() || !rec.Presence().LastSeen.IsZero() || !rec.Online {
			t.Fatalf("after hiding last_seen: %+v, presence %+v", rec.Status, rec.Presence())
		}
		if got := loadOne(t, s, 47); !got.HideLastSeen {
			t.Fatal("hidden last_seen not stored")
		}
		if rec := apply(t, s, update(47, hub.StatusUpdate{LastSeenVisible: ptr(true)})); rec.HideLastSeen || rec.Presence().LastSeen.IsZero() {
			t.Fatalf("after showing it again: %+v", rec.Status)
		}
	})
	t.Run("WhileInvisibleLastSeenStays", func(t *testing.T) {
		s := newStore(t)
		apply(t, s, hub.Op{Kind: hub.OpConnect, UserID: 46, Username: "ann"})
		hidden := apply(t, s, update(46, hub.StatusUpdate{Online: ptr(false)}))
		if hidden.Online || !hidden.AppearOffline {
			t.Fatalf("after appear offline: %+v", hidden.Status)
		}
		later := hidden.LastSeen.Add(time.Minute)
		if err := s.SaveLastSeen(ctx, []hub.LastSeen{{UserID: 46, At: later, HeartbeatTTL: time.Hour}}); err != nil {
			t.Fatal(err)
		}
		apply(t, s, hub.Op{Kind: hub.OpHeartbeat, UserID: 46, Username: "ann2", HeartbeatTTL: time.Hour})
		apply(t, s, hub.Op{Kind: hub.OpConnect, UserID: 46, Username: "ann3", Device: "tab"})
		rec := apply(t, s, hub.Op{Kind: hub.OpRelease, UserID: 46, SeenAt: later})
		if !rec.LastSeen.Equal(hidden.LastSeen) || rec.Username != "ann" || rec.Online {
			t.Fatalf("while invisible: last_seen %v (want %v), name %q, online %v", rec.LastSeen, hidden.LastSeen, rec.Username, rec.Online)
		}
		if got := loadOne(t, s, 46); !got.LastSeen.Equal(hidden.LastSeen) {
			t.Fatalf("loaded last_seen %v, want %v", got.LastSeen, hidden.LastSeen)
		}
		back := apply(t, s, update(46, hub.StatusUpdate{Online: ptr(true)}))
		if !back.Online {
			t.Fatalf("the heartbeat taken while invisible does not keep the user online: %+v", back.Status)
		}
	})
}

// batchStore is what the batch tests need of a store.
type batchStore interface {
	hub.Store
	hub.BatchStore
}

// runBatch is the behaviour of hub.BatchStore: a batch is the same as its
// changes one after the other, each with its own answer.
func runBatch(t *testing.T, newStore func(t *testing.T) hub.BatchStore) {
	ctx := context.Background()
	store := func(t *testing.T) batchStore { return newStore(t).(batchStore) }
	t.Run("BatchEqualsItsChangesOneByOne", func(t *testing.T) {
		ops := []hub.Op{
			{Kind: hub.OpConnect, UserID: 30, Username: "ann"},
			update(30, hub.StatusUpdate{Busy: ptr(true), WaitTimeSet: true, WaitTime: ptr(5)}),
			{Kind: hub.OpHeartbeat, UserID: 31, Username: "ben", HeartbeatTTL: time.Hour},
			{Kind: hub.OpConnect, UserID: 30},
			update(30, hub.StatusUpdate{Busy: ptr(false)}),
			{Kind: hub.OpRefresh, UserID: 31},
			update(31, hub.StatusUpdate{Online: ptr(false)}),
			{Kind: hub.OpRelease, UserID: 30},
		}
		batched := store(t)
		got := applyBatch(t, batched, ops)
		single := store(t)
		for i, op := range ops {
			want := apply(t, single, op)
			if got[i].Err != nil {
				t.Fatalf("op %d of the batch: %v", i, got[i].Err)
			}
			if !sameState(got[i].Record, want) {
				t.Fatalf("op %d (%+v) in a batch answered %+v version %d vouchers %d, one by one %+v version %d vouchers %d",
					i, op, got[i].Record.Status, got[i].Record.Version, got[i].Record.Vouchers, want.Status, want.Version, want.Vouchers)
			}
		}
		if v := got[len(ops)-1].Record; v.Version != 5 || v.Online || v.Busy || v.Username != "ann" {
			t.Fatalf("user 30 after the batch: %+v version %d, want offline, free, version 5", v.Status, v.Version)
		}
		// What is stored is the last answer of each user.
		all := loadAll(t, batched)
		if len(all) != 2 {
			t.Fatalf("%d statuses stored, want 2", len(all))
		}
		assertEqual(t, all[0], got[7].Record)
		assertEqual(t, all[1], got[6].Record)
	})
	t.Run("BatchNotFoundFailsOnlyItsOwnChange", func(t *testing.T) {
		s := store(t)
		got := applyBatch(t, s, []hub.Op{
			{Kind: hub.OpRelease, UserID: 40},
			{Kind: hub.OpRefresh, UserID: 40},
			{Kind: hub.OpRelease, UserID: 41},
			{Kind: hub.OpConnect, UserID: 41, Username: "cy"},
			{Kind: hub.OpRelease, UserID: 41},
		})
		for i, notFound := range []bool{true, true, true, false, false} {
			if notFound != errors.Is(got[i].Err, hub.ErrNotFound) || (!notFound && got[i].Err != nil) {
				t.Fatalf("op %d: err %v, want not found: %v", i, got[i].Err, notFound)
			}
		}
		if on, off := got[3].Record, got[4].Record; !on.Online || off.Online || off.Version != on.Version+1 || off.Username != "cy" {
			t.Fatalf("connect then release in one batch: %+v then %+v", on.Status, off.Status)
		}
		all := loadAll(t, s)
		if len(all) != 1 || all[0].UserID != 41 {
			t.Fatalf("stored %+v, want user 41 alone: a change that found nothing creates nothing", all)
		}
		assertEqual(t, all[0], got[4].Record)
	})
	t.Run("ChangedSaysWhetherTheOpChangedTheStatus", func(t *testing.T) {
		// A sweep counts by it the users it turned offline itself, not
		// those another node's sweep got to first.
		s := store(t)
		got := applyBatch(t, s, []hub.Op{
			{Kind: hub.OpConnect, UserID: 45, Username: "eve"},
			{Kind: hub.OpRefresh, UserID: 45},
			{Kind: hub.OpRelease, UserID: 45},
			{Kind: hub.OpRefresh, UserID: 45},
			{Kind: hub.OpRefresh, UserID: 46},
		})
		for i, want := range []bool{true, false, true, false, false} {
			if got[i].Changed != want {
				t.Fatalf("op %d: Changed %t, want %t (answer %+v, err %v)", i, got[i].Changed, want, got[i].Record.Status, got[i].Err)
			}
		}
	})
	t.Run("TheSameBatchTwiceIsHarmless", func(t *testing.T) {
		// A batch whose answer was lost in an outage is sent again.
		s := store(t)
		ops := []hub.Op{
			{Kind: hub.OpConnect, UserID: 50, Username: "dee"},
			update(50, hub.StatusUpdate{Busy: ptr(true), WaitTimeSet: true, WaitTime: ptr(7)}),
			{Kind: hub.OpConnect, UserID: 51},
			{Kind: hub.OpRelease, UserID: 51},
		}
		first := applyBatch(t, s, ops)
		again := applyBatch(t, s, ops)
		for i := range ops {
			a, b := first[i].Record, again[i].Record
			// Only presence must repeat: the second connect finds the user
			// busy already.
			if a.Online != b.Online || a.Vouchers != b.Vouchers || a.Username != b.Username {
				t.Fatalf("op %d again: %+v vouchers %d, first %+v vouchers %d", i, b.Status, b.Vouchers, a.Status, a.Vouchers)
			}
		}
		if all := loadAll(t, s); len(all) != 2 || !all[0].Online || *all[0].WaitTime != 7 || all[1].Online {
			t.Fatalf("stored after the batch twice: %+v", all)
		}
	})
	t.Run("EmptyBatch", func(t *testing.T) {
		out, err := newStore(t).ApplyBatch(ctx, nil)
		if err != nil || len(out) != 0 {
			t.Fatalf("empty batch: %d answers, %v", len(out), err)
		}
	})

}

func applyBatch(t *testing.T, s hub.BatchStore, ops []hub.Op) []hub.Applied {
	t.Helper()
	out, err := s.ApplyBatch(context.Background(), ops)
	if err != nil {
		t.Fatalf("batch of %d: %v", len(ops), err)
	}
	if len(out) != len(ops) {
		t.Fatalf("%d answers to %d changes", len(out), len(ops))
	}
	return out
}

// sameState compares what two answers say, apart from the times.
func sameState(a, b hub.Record) bool {
	return a.UserID == b.UserID && a.Username == b.Username && a.Online == b.Online && a.AppearOffline == b.AppearOffline &&
		a.Busy == b.Busy && (a.WaitTime == nil) == (b.WaitTime == nil) && (a.WaitTime == nil || *a.WaitTime == *b.WaitTime) &&
		a.Version == b.Version && a.Vouchers == b.Vouchers && (a.HeartbeatLeft > 0) == (b.HeartbeatLeft > 0)
}

// waitBriefly lets the store's clock move on between two questions about
// an expiry; it is no synchronisation, only pacing of a bounded poll.
func waitBriefly() { <-time.After(20 * time.Millisecond) }

func ptr[T any](v T) *T { return &v }

func update(id int64, up hub.StatusUpdate) hub.Op {
	return hub.Op{Kind: hub.OpUpdate, UserID: id, Update: up}
}

func apply(t *testing.T, s hub.Store, op hub.Op) hub.Record {
	t.Helper()
	rec, err := s.Apply(context.Background(), op)
	if err != nil {
		t.Fatalf("apply %+v: %v", op, err)
	}
	return rec
}

func loadAll(t *testing.T, s hub.Store) []hub.Record {
	t.Helper()
	all, err := s.LoadAll(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	sort.Slice(all, func(i, j int) bool { return all[i].UserID < all[j].UserID })
	return all
}

func loadOne(t *testing.T, s hub.Store, id int64) hub.Record {
	t.Helper()
	for _, r := range loadAll(t, s) {
		if r.UserID == id {
			return r
		}
	}
	t.Fatalf("user %d not loaded", id)
	return hub.Record{}
}

func assertEqual(t *testing.T, got, want hub.Record) {
	t.Helper()
	wt := func(p *int) any {
		if p == nil {
			return nil
		}
		return *p
	}
	if got.UserID != want.UserID || got.Username != want.Username || got.Online != want.Online ||
		got.AppearOffline != want.AppearOffline || got.Busy != want.Busy || wt(got.WaitTime) != wt(want.WaitTime) ||
		!got.LastSeen.Equal(want.LastSeen) || !got.CreatedAt.Equal(want.CreatedAt) || !got.UpdatedAt.Equal(want.UpdatedAt) ||
		got.Version != want.Version || got.Vouchers != want.Vouchers {
		t.Fatalf("loaded %+v (wait %v, version %d, vouchers %d), want %+v (wait %v, version %d, vouchers %d)",
			got.Status, wt(got.WaitTime), got.Version, got.Vouchers, want.Status, wt(want.WaitTime), want.Version, want.Vouchers)
	}
}
