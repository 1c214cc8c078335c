package hub_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"go.uber.org/goleak"

	"github.com/presenced/presenced/hub"
	"github.com/presenced/presenced/storage/memory"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// encodeEvent writes an event as "id:online:busy:wait" so tests can read it.
func encodeEvent(p hub.Presence) []byte {
	wait := "-"
	if p.WaitTime != nil {
		wait = fmt.Sprint(*p.WaitTime)
	}
	return fmt.Appendf(nil, "%d:%s:%t:%t:%s", p.UserID, p.Username, p.Online, p.Busy, wait)
}

// countingStore counts the calls a hub makes to its store.
type countingStore struct {
	*memory.Store
	mu             sync.Mutex
	saves          int
	lastSeenCalls  int
	lastSeenWrites int
}

func (s *countingStore) Apply(ctx context.Context, op hub.Op) (hub.Record, error) {
	s.mu.Lock()
	s.saves++
	s.mu.Unlock()
	return s.Store.Apply(ctx, op)
}

func (s *countingStore) SaveLastSeen(ctx context.Context, seen []hub.LastSeen) error {
	s.mu.Lock()
	s.lastSeenCalls++
	s.lastSeenWrites += len(seen)
	s.mu.Unlock()
	return s.Store.SaveLastSeen(ctx, seen)
}

func (s *countingStore) counts() (saves, calls, writes int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.saves, s.lastSeenCalls, s.lastSeenWrites
}

const grace = 5 * time.Second

// fixture runs a hub inside a synctest bubble.
type fixture struct {
	t     *testing.T
	h     *hub.Hub
	store *countingStore
	ctx   context.Context
}

func start(t *testing.T, cfg hub.Config, seed ...hub.Status) *fixture {
	t.Helper()
	store := &countingStore{Store: memory.New()}
	for _, st := range seed {
		store.Put(st)
	}
	if cfg.Grace == 0 {
		cfg.Grace = grace
	}
	cfg.EncodeEvent = encodeEvent
	h := hub.New(store, cfg)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- h.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	return &fixture{t: t, h: h, store: store, ctx: context.Background()}
}

func (f *fixture) connect(id int64, name string) *hub.Session {
	f.t.Helper()
	s, err := f.h.Connect(f.ctx, id, name)
	if err != nil {
		f.t.Fatalf("connect %d: %v", id, err)
	}
	return s
}

func (f *fixture) subscribe(s *hub.Session, ids ...int64) []hub.Presence {
	f.t.Helper()
	var snap []hub.Presence
	err := f.h.Subscribe(f.ctx, s, ids, func(ps []hub.Presence) hub.Message {
		snap = ps
		return hub.Message{Data: []byte("snapshot")}
	})
	if err != nil {
		f.t.Fatalf("subscribe: %v", err)
	}
	if got := drain(s); len(got) != 1 || got[0] != "snapshot" {
		f.t.Fatalf("after subscribe the queue holds %q, want the snapshot alone", got)
	}
	return snap
}

// drain returns what is queued on s once every goroutine has settled.
func drain(s *hub.Session) []string {
	synctest.Wait()
	var out []string
	for _, m := range s.Next(nil) {
		out = append(out, string(m.Data))
	}
	return out
}

func expect(t *testing.T, s *hub.Session, want ...string) {
	t.Helper()
	got := drain(s)
	if strings.Join(got, " | ") != strings.Join(want, " | ") {
		t.Fatalf("events %q, want %q", got, want)
	}
}

func TestConnectAndGraceBeforeOffline(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := start(t, hub.Config{})
		watcher := f.connect(1, "w")
		f.subscribe(watcher, 2)

		alice := f.connect(2, "alice")
		expect(t, watcher, "2:alice:true:false:-")

		f.h.Disconnect(alice)
		synctest.Wait()
		time.Sleep(grace - time.Millisecond)
		expect(t, watcher) // still inside the grace
		time.Sleep(time.Millisecond)
		expect(t, watcher, "2:alice:false:false:-")
	})
}

func TestReconnectWithinGraceDoesNotFlap(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := start(t, hub.Config{})
		watcher := f.connect(1, "w")
		f.subscribe(watcher, 2)
		f.h.Disconnect(f.connect(2, "alice"))
		expect(t, watcher, "2:alice:true:false:-")

		time.Sleep(grace / 2)
		f.connect(2, "alice")
		time.Sleep(2 * grace)
		expect(t, watcher) // no offline, no second online
	})
}

func TestSeveralDevicesOfOneUser(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := start(t, hub.Config{})
		watcher := f.connect(1, "w")
		f.subscribe(watcher, 2)
		phone := f.connect(2, "alice")
		laptop := f.connect(2, "alice")
		expect(t, watcher, "2:alice:true:false:-")

		f.h.Disconnect(phone)
		time.Sleep(2 * grace)
		expect(t, watcher) // the laptop keeps her online

		f.h.Disconnect(laptop)
		time.Sleep(grace)
		expect(t, watcher, "2:alice:false:false:-")
	})
}

func TestHeartbeatKeepsOnlineForTTL(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ttl := 90 * time.Second
		f := start(t, hub.Config{HeartbeatTTL: ttl})
		watcher := f.connect(1, "w")
		f.subscribe(watcher, 2)

		if err := f.h.Heartbeat(f.ctx, 2, "bob"); err != nil {
			t.Fatal(err)
		}
		expect(t, watcher, "2:bob:true:false:-")
		time.Sleep(ttl / 2)
		if err := f.h.Heartbeat(f.ctx, 2, "bob"); err != nil {
			t.Fatal(err)
		}
		time.Sleep(ttl - time.Millisecond)
		expect(t, watcher) // the second heartbeat extended the TTL
		time.Sleep(time.Millisecond)
		expect(t, watcher, "2:bob:false:false:-")
	})
}

func TestAppearOfflineHoldsUntilOnlineAgain(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := start(t, hub.Config{})
		watcher := f.connect(1, "w")
		f.subscribe(watcher, 2)
		f.connect(2, "alice")
		expect(t, watcher, "2:alice:true:false:-")

		off, on := false, true
		st, err := f.h.SetStatus(f.ctx, 2, "alice", hub.StatusUpdate{Online: &off}, false)
		if err != nil || st.Online || !st.AppearOffline {
			t.Fatalf("SetStatus(offline) = %+v, %v", st, err)
		}
		expect(t, watcher, "2:alice:false:false:-")

		// A new device does not bring her back.
		f.connect(2, "alice")
		expect(t, watcher)

		if _, err := f.h.SetStatus(f.ctx, 2, "alice", hub.StatusUpdate{Online: &on}, false); err != nil {
			t.Fatal(err)
		}
		expect(t, watcher, "2:alice:true:false:-")
	})
}

func TestBusyAndWaitTime(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := start(t, hub.Config{})
		watcher := f.connect(1, "w")
		f.subscribe(watcher, 2)
		f.connect(2, "alice")
		expect(t, watcher, "2:alice:true:false:-")

		busy, free, wait := true, false, 15
		st, err := f.h.SetStatus(f.ctx, 2, "", hub.StatusUpdate{Busy: &busy, WaitTimeSet: true, WaitTime: &wait}, false)
		if err != nil || !st.Busy || st.WaitTime == nil || *st.WaitTime != 15 {
			t.Fatalf("SetStatus(busy) = %+v, %v", st, err)
		}
		expect(t, watcher, "2:alice:true:true:15")

		st, err = f.h.SetStatus(f.ctx, 2, "", hub.StatusUpdate{Busy: &free}, false)
		if err != nil || st.Busy || st.WaitTime != nil {
			t.Fatalf("SetStatus(free) = %+v, %v: wait_time must clear", st, err)
		}
		expect(t, watcher, "2:alice:true:false:-")

		// A wait time without a call is not kept.
		st, _ = f.h.SetStatus(f.ctx, 2, "", hub.StatusUpdate{WaitTimeSet: true, WaitTime: &wait}, false)
		if st.WaitTime != nil {
			t.Fatalf("wait_time %d kept while not busy", *st.WaitTime)
		}
	})
}

func TestSetStatusCreatesAndREST(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := start(t, hub.Config{HeartbeatTTL: time.Minute})
		if _, err := f.h.Status(f.ctx, 3); !errors.Is(err, hub.ErrNotFound) {
			t.Fatalf("Status of a stranger: %v, want ErrNotFound", err)
		}
		busy := true
		st, err := f.h.SetStatus(f.ctx, 3, "carol", hub.StatusUpdate{Busy: &busy}, true)
		if err != nil {
			t.Fatal(err)
		}
		if !st.Online || !st.Busy || st.CreatedAt.IsZero() || st.LastSeen.IsZero() {
			t.Fatalf("REST SetStatus on a new user = %+v, want created, online and busy", st)
		}
		time.Sleep(time.Minute)
		synctest.Wait()
		got, err := f.h.Status(f.ctx, 3)
		if err != nil || got.Online {
			t.Fatalf("after the heartbeat TTL: %+v, %v; want offline", got, err)
		}
	})
}

func TestSubscribeSnapshotAndOrder(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := start(t, hub.Config{})
		f.connect(5, "e")
		f.connect(3, "c")
		watcher := f.connect(1, "w")
		snap := f.subscribe(watcher, 3, 4, 5)
		var ids []int64
		for _, p := range snap {
			ids = append(ids, p.UserID)
			if !p.Online {
				t.Errorf("snapshot shows %d offline", p.UserID)
			}
		}
		if fmt.Sprint(ids) != "[3 5]" {
			t.Fatalf("snapshot ids %v, want the known ones in the order asked: [3 5]", ids)
		}
		// User 4 was unknown; watching it still yields its first event.
		f.connect(4, "d")
		expect(t, watcher, "4:d:true:false:-")

		if err := f.h.Unsubscribe(f.ctx, watcher, []int64{4}); err != nil {
			t.Fatal(err)
		}
		busy := true
		if _, err := f.h.SetStatus(f.ctx, 4, "", hub.StatusUpdate{Busy: &busy}, false); err != nil {
			t.Fatal(err)
		}
		expect(t, watcher)
	})
}

func TestPresencesInOrderOfKnownIDs(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := start(t, hub.Config{})
		f.connect(7, "g")
		f.connect(2, "b")
		ps, err := f.h.Presences(f.ctx, []int64{2, 9, 7})
		if err != nil {
			t.Fatal(err)
		}
		if len(ps) != 2 || ps[0].UserID != 2 || ps[1].UserID != 7 || ps[0].Username != "b" {
			t.Fatalf("Presences = %+v, want users 2 then 7", ps)
		}
	})
}

func TestSlowConsumerIsDroppedOthersKeepReceiving(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		// Each event is about 20 bytes; room for a few only.
		f := start(t, hub.Config{MaxQueueBytes: 100})
		slow := f.connect(1, "slow")
		fast := f.connect(3, "fast")
		f.subscribe(slow, 2)
		f.subscribe(fast, 2)
		f.connect(2, "alice")

		busy, free := true, false
		for i := 0; i < 10; i++ {
			flag := &busy
			if i%2 == 1 {
				flag = &free
			}
			if _, err := f.h.SetStatus(f.ctx, 2, "", hub.StatusUpdate{Busy: flag}, false); err != nil {
				t.Fatal(err)
			}
			if got := drain(fast); len(got) == 0 {
				t.Fatalf("change %d: the fast watcher received nothing", i)
			}
		}
		select {
		case <-slow.Done():
		default:
			t.Fatal("the session that never read is still open")
		}
		if slow.Reason() != hub.CloseSlowConsumer {
			t.Fatalf("reason %v, want CloseSlowConsumer", slow.Reason())
		}
		stats, err := f.h.Stats(f.ctx)
		if err != nil {
			t.Fatal(err)
		}
		if stats.Sessions != 2 {
			t.Fatalf("%d sessions after the drop, want 2", stats.Sessions)
		}
	})
}

func TestLimits(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := start(t, hub.Config{MaxSubscriptions: 3, MaxSessionsPerUser: 2})
		f.connect(1, "a")
		s := f.connect(1, "a")
		if _, err := f.h.Connect(f.ctx, 1, "a"); !errors.Is(err, hub.ErrLimit) {
			t.Fatalf("third connection: %v, want ErrLimit", err)
		}
		f.subscribe(s, 10, 11)
		err := f.h.Subscribe(f.ctx, s, []int64{11, 12, 13}, func([]hub.Presence) hub.Message { return hub.Message{} })
		if !errors.Is(err, hub.ErrLimit) {
			t.Fatalf("fourth subscription: %v, want ErrLimit", err)
		}
		// Re-subscribing to what it has already is fine, and the failed
		// call added nothing.
		f.subscribe(s, 10, 11, 12)
	})
}

func TestLastSeenIsFlushedInBatches(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		flush := 5 * time.Second
		f := start(t, hub.Config{FlushInterval: flush})
		var sessions []*hub.Session
		for id := int64(1); id <= 50; id++ {
			sessions = append(sessions, f.connect(id, ""))
		}
		synctest.Wait()
		saves0, _, _ := f.store.counts()
		for round := 0; round < 3; round++ {
			for _, s := range sessions {
				f.h.Touch(s)
				f.h.Touch(s)
			}
			time.Sleep(flush)
			synctest.Wait()
		}
		saves, calls, writes := f.store.counts()
		if saves != saves0 {
			t.Fatalf("pongs caused %d status writes; they must only touch last_seen", saves-saves0)
		}
		if calls > 4 || writes > 4*50 {
			t.Fatalf("%d last_seen calls writing %d rows for 3 flush intervals of 50 users: want at most one write per user per interval", calls, writes)
		}
		if writes < 3*50 {
			t.Fatalf("only %d last_seen rows written, want every touched user each interval", writes)
		}
	})
}

func TestShutdownClosesSessions(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		store := memory.New()
		h := hub.New(store, hub.Config{EncodeEvent: encodeEvent})
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- h.Run(ctx) }()
		s, err := h.Connect(context.Background(), 1, "a")
		if err != nil {
			t.Fatal(err)
		}
		h.Touch(s)
		cancel()
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		<-s.Done()
		if s.Reason() != hub.CloseShutdown {
			t.Fatalf("reason %v, want CloseShutdown", s.Reason())
		}
		if _, err := h.Connect(context.Background(), 2, "b"); !errors.Is(err, hub.ErrClosed) {
			t.Fatalf("Connect after shutdown: %v, want ErrClosed", err)
		}
		all, _ := store.LoadAll(context.Background())
		if len(all) != 1 || all[0].LastSeen.IsZero() {
			t.Fatalf("stored after shutdown: %+v", all)
		}
	})
}

func TestLoadedOnlineUsersGetGraceThenOffline(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		now := time.Now()
		f := start(t, hub.Config{}, hub.Status{UserID: 2, Username: "alice", Online: true, CreatedAt: now, UpdatedAt: now, LastSeen: now},
			hub.Status{UserID: 3, Username: "bob", Online: true, CreatedAt: now, UpdatedAt: now, LastSeen: now})
		watcher := f.connect(1, "w")
		snap := f.subscribe(watcher, 2, 3)
		if len(snap) != 2 || !snap[0].Online {
			t.Fatalf("snapshot after load = %+v", snap)
		}
		f.connect(3, "bob") // bob reconnects within the grace
		time.Sleep(grace)
		expect(t, watcher, "2:alice:false:false:-")
	})
}
