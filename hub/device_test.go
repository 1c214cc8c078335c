package hub_test

import (
	"fmt"
	"math/rand/v2"
	"testing"
	"testing/synctest"
	"time"

	"github.com/presenced/presenced/hub"
)

const ttl = 90 * time.Second

func (f *fixture) connectDevice(id int64, name, device string) *hub.Session {
	f.t.Helper()
	s, err := f.h.Connect(f.ctx, hub.Client{UserID: id, Username: name, Device: device})
	if err != nil {
		f.t.Fatalf("connect %d from %q: %v", id, device, err)
	}
	return s
}

// restUpdate is a REST status update: a heartbeat too.
func (f *fixture) restUpdate(id int64, device string, up hub.StatusUpdate) hub.Status {
	f.t.Helper()
	st, err := f.h.SetStatus(f.ctx, hub.StatusRequest{Client: hub.Client{UserID: id, Device: device}, Update: up, Heartbeat: true})
	if err != nil {
		f.t.Fatalf("REST update of %d from %q: %v", id, device, err)
	}
	return st
}

func (f *fixture) heartbeat(id int64, device string) {
	f.t.Helper()
	if err := f.h.Heartbeat(f.ctx, hub.Client{UserID: id, Device: device}); err != nil {
		f.t.Fatalf("heartbeat of %d from %q: %v", id, device, err)
	}
}

func (f *fixture) status(id int64) hub.Status {
	f.t.Helper()
	st, err := f.h.Status(f.ctx, id)
	if err != nil {
		f.t.Fatalf("status of %d: %v", id, err)
	}
	return st
}

func ptr[T any](v T) *T { return &v }

// offlineAfter checks that the watched user goes offline exactly after
// d, not before; the watcher's queue must be empty to begin with.
func offlineAfter(t *testing.T, watcher *hub.Session, d time.Duration, event string) {
	t.Helper()
	synctest.Wait()
	time.Sleep(d - time.Millisecond)
	expect(t, watcher)
	time.Sleep(time.Millisecond)
	expect(t, watcher, event)
}

func TestDeviceRESTLivenessEndsWithItsSocket(t *testing.T) {
	for _, tc := range []struct {
		name string
		run  func(f *fixture) *hub.Session // returns the device's socket
	}{
		{"update before the socket", func(f *fixture) *hub.Session {
			f.restUpdate(2, "phone", hub.StatusUpdate{Busy: ptr(true)})
			return f.connectDevice(2, "alice", "phone")
		}},
		{"update while the socket is open", func(f *fixture) *hub.Session {
			s := f.connectDevice(2, "alice", "phone")
			f.restUpdate(2, "phone", hub.StatusUpdate{Busy: ptr(true)})
			return s
		}},
		{"heartbeat while the socket is open", func(f *fixture) *hub.Session {
			s := f.connectDevice(2, "alice", "phone")
			f.heartbeat(2, "phone")
			return s
		}},
		{"heartbeat before the socket", func(f *fixture) *hub.Session {
			f.heartbeat(2, "phone")
			return f.connectDevice(2, "alice", "phone")
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				f := start(t, hub.Config{HeartbeatTTL: ttl})
				watcher := f.connect(1, "w")
				f.subscribe(watcher, 2)
				phone := tc.run(f)
				drain(watcher)
				f.h.Disconnect(phone)
				// The grace, not the heartbeat TTL.
				offlineAfter(t, watcher, grace, "2:alice:false:"+fmt.Sprint(f.status(2).Busy)+":-")
			})
		})
	}
}

func TestDeviceWithoutSocketStaysAliveByHeartbeats(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := start(t, hub.Config{HeartbeatTTL: ttl})
		watcher := f.connect(1, "w")
		f.subscribe(watcher, 2)
		phone := f.connectDevice(2, "alice", "phone")
		drain(watcher)
		// The phone goes to the background in a call: its socket closes,
		// then it keeps its device alive over REST.
		f.restUpdate(2, "phone", hub.StatusUpdate{Busy: ptr(true)})
		expect(t, watcher, "2:alice:true:true:-")
		f.h.Disconnect(phone)
		f.heartbeat(2, "phone")
		time.Sleep(ttl / 2)
		f.heartbeat(2, "phone") // before the first runs out
		// A tablet's socket that comes and goes changes nothing.
		f.h.Disconnect(f.connectDevice(2, "alice", "tablet"))
		time.Sleep(ttl - time.Millisecond)
		expect(t, watcher)
		time.Sleep(time.Millisecond)
		expect(t, watcher, "2:alice:false:true:-")
	})
}

func TestRequestsWithoutDeviceKeepTheSeedBehaviour(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := start(t, hub.Config{HeartbeatTTL: ttl})
		watcher := f.connect(1, "w")
		f.subscribe(watcher, 2)
		s := f.connect(2, "alice")
		drain(watcher)
		f.restUpdate(2, "", hub.StatusUpdate{Busy: ptr(false)})
		f.h.Disconnect(s)
		// A REST update without a device id is a heartbeat for the TTL.
		offlineAfter(t, watcher, ttl, "2:alice:false:false:-")
	})
}

func TestAppearOfflineMovesNothingOthersSee(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := start(t, hub.Config{HeartbeatTTL: ttl, FlushInterval: time.Second})
		watcher := f.connect(1, "w")
		f.subscribe(watcher, 2)
		phone := f.connectDevice(2, "alice", "phone")
		f.restUpdate(2, "phone", hub.StatusUpdate{Busy: ptr(true), WaitTimeSet: true, WaitTime: ptr(10)})
		drain(watcher)

		hidden, err := f.h.SetStatus(f.ctx, hub.StatusRequest{Client: hub.Client{UserID: 2}, Update: hub.StatusUpdate{Online: ptr(false)}})
		if err != nil {
			t.Fatal(err)
		}
		// Others see her offline and not busy, as of now.
		expect(t, watcher, "2:alice:false:false:-")
		at := hidden.LastSeen
		look := func(step string) {
			t.Helper()
			ps, err := f.h.Presences(f.ctx, []int64{2})
			if err != nil {
				t.Fatal(err)
			}
			p := ps[0]
			if p.Online || p.Busy || p.WaitTime != nil || !p.BusySince.IsZero() || !p.LastSeen.Equal(at) {
				t.Fatalf("%s: others see %+v, want offline, not busy, last seen %v", step, p, at)
			}
			expect(t, watcher)
		}
		look("just hidden")
		// Pongs, heartbeats, new sockets, busy changes, a new name: nothing
		// moves, across several flushes.
		for i := range 3 {
			time.Sleep(time.Second)
			f.h.Touch(phone)
			f.heartbeat(2, "")
			f.heartbeat(2, "laptop")
			f.connectDevice(2, "alice2", "tablet")
			f.restUpdate(2, "phone", hub.StatusUpdate{Busy: ptr(i%2 == 0)})
			time.Sleep(2 * time.Second)
			look(fmt.Sprintf("round %d", i))
		}
		if own := f.status(2); own.Online || !own.AppearOffline {
			t.Fatalf("own status while hidden: %+v", own)
		}
		// Coming back is one event, with her real state.
		f.restUpdate(2, "phone", hub.StatusUpdate{Online: ptr(true)})
		busy := f.status(2).Busy
		expect(t, watcher, fmt.Sprintf("2:alice:true:%t:-", busy))
	})
}

func TestBusySinceFollowsIsBusy(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := start(t, hub.Config{})
		f.connect(2, "alice")
		if st := f.status(2); !st.BusySince.IsZero() {
			t.Fatalf("busy_since %v before any call", st.BusySince)
		}
		start := time.Now()
		st := f.restUpdate(2, "", hub.StatusUpdate{Busy: ptr(true), WaitTimeSet: true, WaitTime: ptr(15)})
		if !st.BusySince.Equal(start) {
			t.Fatalf("busy_since %v, want the moment busy turned true, %v", st.BusySince, start)
		}
		time.Sleep(time.Minute)
		// Still in the same call: a new wait time, busy again.
		st = f.restUpdate(2, "", hub.StatusUpdate{Busy: ptr(true), WaitTimeSet: true, WaitTime: ptr(5)})
		if !st.BusySince.Equal(start) {
			t.Fatalf("busy_since moved to %v within one call", st.BusySince)
		}
		if p, _ := f.h.Presences(f.ctx, []int64{2}); !p[0].BusySince.Equal(start) {
			t.Fatalf("presence busy_since %v, want %v", p[0].BusySince, start)
		}
		st = f.restUpdate(2, "", hub.StatusUpdate{Busy: ptr(false)})
		if !st.BusySince.IsZero() {
			t.Fatalf("busy_since %v after the call", st.BusySince)
		}
	})
}

// TestThenEqualsOneAfterTheOther checks, from many statuses, that a merged
// update has the effect of the two it merges, by the rule stores follow.
func TestThenEqualsOneAfterTheOther(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	randBool := func() *bool {
		switch rng.IntN(3) {
		case 0:
			return ptr(true)
		case 1:
			return ptr(false)
		}
		return nil
	}
	randUpdate := func() hub.StatusUpdate {
		up := hub.StatusUpdate{Online: randBool(), Busy: randBool()}
		if rng.IntN(2) == 0 {
			up.WaitTimeSet = true
			if rng.IntN(3) > 0 {
				up.WaitTime = ptr(rng.IntN(3))
			}
		}
		return up
	}
	t0 := time.Unix(1_700_000_000, 0)
	merged := 0
	for i := range 20000 {
		first, second := randUpdate(), randUpdate()
		var row hub.Row
		exists := rng.IntN(4) > 0
		if exists {
			row, _, _ = hub.Decide(hub.Row{}, false, hub.Op{Kind: hub.OpUpdate, UserID: 1, Update: randUpdate()}, 1, t0)
		}
		m, ok := first.Then(second)
		if !ok {
			continue
		}
		merged++
		op := func(up hub.StatusUpdate) hub.Op { return hub.Op{Kind: hub.OpUpdate, UserID: 1, Update: up} }
		a, _, _ := hub.Decide(row, exists, op(first), 1, t0.Add(time.Second))
		a, _, _ = hub.Decide(a, true, op(second), 1, t0.Add(2*time.Second))
		b, _, _ := hub.Decide(row, exists, op(m), 1, t0.Add(2*time.Second))
		pa, pb := a.Presence(), b.Presence()
		sameWait := (pa.WaitTime == nil) == (pb.WaitTime == nil) && (pa.WaitTime == nil || *pa.WaitTime == *pb.WaitTime)
		// A call under way before keeps its start; a call that began
		// within the pair begins within it when merged too, unless the
		// pair ended the call under way and began another, which merged
		// is one call.
		keptCall := !a.BusySince.IsZero() && !a.BusySince.After(t0)
		restarted := row.Busy && exists && first.Busy != nil && !*first.Busy && second.Busy != nil && *second.Busy
		badSince := a.BusySince.IsZero() != b.BusySince.IsZero() || (keptCall && !b.BusySince.Equal(a.BusySince)) ||
			(!keptCall && !restarted && !b.BusySince.IsZero() && !b.BusySince.After(t0)) ||
			(restarted && !b.BusySince.Equal(row.BusySince))
		if a.AppearOffline != b.AppearOffline || a.Busy != b.Busy || !sameWait || badSince {
			t.Fatalf("case %d: %+v then %+v from %+v:\none after the other %+v\nmerged (%+v)   %+v", i, first, second, row.Status, a.Status, m, b.Status)
		}
	}
	if merged < 10000 {
		t.Fatalf("only %d of 20000 pairs merged", merged)
	}
}
