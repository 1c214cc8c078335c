package hub_test

import (
	"testing"
	"testing/synctest"
	"time"

	"github.com/presenced/presenced/hub"
)

// checkCounts asserts that the running counters agree with a full count
// by the hub goroutine, and with want.
func (f *fixture) checkCounts(step string, want hub.Stats) {
	f.t.Helper()
	full, err := f.h.Stats(f.ctx) // queued after every earlier request
	if err != nil {
		f.t.Fatal(err)
	}
	if got := f.h.Counts(); got != full || got != want {
		f.t.Fatalf("%s: Counts %+v, Stats %+v, want %+v", step, got, full, want)
	}
}

func TestCountsFollowEveryChange(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := start(t, hub.Config{}, hub.Status{UserID: 9, Online: true})
		f.checkCounts("a user online in storage at start", hub.Stats{OnlineUsers: 1})

		a := f.connect(1, "ann")
		b := f.connect(1, "ann")
		c := f.connect(2, "bob")
		f.checkCounts("three sockets of two users", hub.Stats{Sessions: 3, OnlineUsers: 3})

		f.subscribe(a, 2, 3, 4)
		f.subscribe(c, 1, 2)
		f.subscribe(a, 2, 5) // 2 is watched already
		f.checkCounts("subscribed", hub.Stats{Sessions: 3, OnlineUsers: 3, Subscriptions: 6})
		if err := f.h.Unsubscribe(f.ctx, a, []int64{3, 99}); err != nil {
			t.Fatal(err)
		}
		f.checkCounts("unsubscribed one watched and one unknown", hub.Stats{Sessions: 3, OnlineUsers: 3, Subscriptions: 5})

		on, off := true, false
		if _, err := f.h.SetStatus(f.ctx, hub.StatusRequest{Client: hub.Client{UserID: 3, Username: "cy"}, Update: hub.StatusUpdate{Online: &on}, Heartbeat: true}); err != nil {
			t.Fatal(err)
		}
		f.checkCounts("a REST client came", hub.Stats{Sessions: 3, OnlineUsers: 4, Subscriptions: 5})
		if _, err := f.h.SetStatus(f.ctx, hub.StatusRequest{Client: hub.Client{UserID: 3, Username: "cy"}, Update: hub.StatusUpdate{Online: &off}, Heartbeat: true}); err != nil {
			t.Fatal(err)
		}
		f.checkCounts("it appears offline", hub.Stats{Sessions: 3, OnlineUsers: 3, Subscriptions: 5})

		f.h.Disconnect(a)
		f.h.Disconnect(a) // twice is harmless
		f.checkCounts("one of two devices left", hub.Stats{Sessions: 2, OnlineUsers: 3, Subscriptions: 2})
		f.h.Disconnect(b)
		f.checkCounts("both left, within the grace", hub.Stats{Sessions: 1, OnlineUsers: 3, Subscriptions: 2})
		time.Sleep(grace + time.Second)
		synctest.Wait()
		f.checkCounts("after the grace", hub.Stats{Sessions: 1, OnlineUsers: 1, Subscriptions: 2})
	})
}
