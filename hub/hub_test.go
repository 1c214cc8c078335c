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
	"github.com/presenced/presenced/internal/needs"
	"github.com/presenced/presenced/storage/memory"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(needs.Main(m)) }

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

func (s *countingStore) ApplyBatch(ctx context.Context, ops []hub.Op) ([]hub.Applied, error) {
	s.mu.Lock()
	s.saves += len(ops)
	s.mu.Unlock()
	return s.Store.ApplyBatch(ctx, ops)
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
	f := startWith(t, store, cfg)
	f.store = store
	return f
}

// startWith runs a hub on store.
func startWith(t *testing.T, store hub.Store, cfg hub.Config) *fixture {
	t.Helper()
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
	return &fixture{t: t, h: h, ctx: context.Background()}
}

func (f *fixture) connect(id int64, name string) *hub.Session {
	f.t.Helper()
	s, err := f.h.Connect(f.ctx, hub.Client{UserID: id, Username: name})
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

// watchOnline connects a watcher (user 1) to user id, then brings id
// online and takes that event, so the test starts from a watched online
// user with an empty queue.
func (f *fixture) watchOnline(id int64, name string) *hub.Session {
	f.t.Helper()
	watcher := f.connect(1, "w")
	f.subscribe(watcher, id)
	f.connect(id, name)
	expect(f.t, watcher, fmt.Sprintf("%d:%s:true:false:-", id, name))
	return watcher
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

		if err := f.h.Heartbeat(f.ctx, hub.Client{UserID: 2, Username: "bob"}); err != nil {
			t.Fatal(err)
		}
		expect(t, watcher, "2:bob:true:false:-")
		time.Sleep(ttl / 2)
		if err := f.h.Heartbeat(f.ctx, hub.Client{UserID: 2, Username: "bob"}); err != nil {
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
		watcher := f.watchOnline(2, "alice")

		off, on := false, true
		st, err := f.h.SetStatus(f.ctx, hub.StatusRequest{Client: hub.Client{UserID: 2, Username: "alice"}, Update: hub.StatusUpdate{Online: &off}})
		if err != nil || st.Online || !st.AppearOffline {
			t.Fatalf("SetStatus(offline) = %+v, %v", st, err)
		}
		expect(t, watcher, "2:alice:false:false:-")

		// A new device does not bring her back.
		f.connect(2, "alice")
		expect(t, watcher)

		if _, err := f.h.SetStatus(f.ctx, hub.StatusRequest{Client: hub.Client{UserID: 2, Username: "alice"}, Update: hub.StatusUpdate{Online: &on}}); err != nil {
			t.Fatal(err)
		}
		expect(t, watcher, "2:alice:true:false:-")
	})
}

func TestBusyAndWaitTime(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := start(t, hub.Config{})
		watcher := f.watchOnline(2, "alice")

		busy, free, wait := true, false, 15
		st, err := f.h.SetStatus(f.ctx, hub.StatusRequest{Client: hub.Client{UserID: 2, Username: ""}, Update: hub.StatusUpdate{Busy: &busy, WaitTimeSet: true, WaitTime: &wait}})
		if err != nil || !st.Busy || st.WaitTime == nil || *st.WaitTime != 15 {
			t.Fatalf("SetStatus(busy) = %+v, %v", st, err)
		}
		expect(t, watcher, "2:alice:true:true:15")

		st, err = f.h.SetStatus(f.ctx, hub.StatusRequest{Client: hub.Client{UserID: 2, Username: ""}, Update: hub.StatusUpdate{Busy: &free}})
		if err != nil || st.Busy || st.WaitTime != nil {
			t.Fatalf("SetStatus(free) = %+v, %v: wait_time must clear", st, err)
		}
		expect(t, watcher, "2:alice:true:false:-")

		// A wait time without a call is not kept.
		st, _ = f.h.SetStatus(f.ctx, hub.StatusRequest{Client: hub.Client{UserID: 2, Username: ""}, Update: hub.StatusUpdate{WaitTimeSet: true, WaitTime: &wait}})
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
		st, err := f.h.SetStatus(f.ctx, hub.StatusRequest{Client: hub.Client{UserID: 3, Username: "carol"}, Update: hub.StatusUpdate{Busy: &busy}, Heartbeat: true})
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
		if _, err := f.h.SetStatus(f.ctx, hub.StatusRequest{Client: hub.Client{UserID: 4, Username: ""}, Update: hub.StatusUpdate{Busy: &busy}}); err != nil {
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
			if _, err := f.h.SetStatus(f.ctx, hub.StatusRequest{Client: hub.Client{UserID: 2, Username: ""}, Update: hub.StatusUpdate{Busy: flag}}); err != nil {
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
		if _, err := f.h.Connect(f.ctx, hub.Client{UserID: 1, Username: "a"}); !errors.Is(err, hub.ErrLimit) {
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
		s, err := h.Connect(context.Background(), hub.Client{UserID: 1, Username: "a"})
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
		if _, err := h.Connect(context.Background(), hub.Client{UserID: 2, Username: "b"}); !errors.Is(err, hub.ErrClosed) {
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

// recordingStore is a memory store that logs the calls the writer makes,
// and can hold them back (as a slow commit would) or refuse them (as a
// database outage would, which a memory store cannot have).
type recordingStore struct {
	*memory.Store
	mu     sync.Mutex
	calls  []string      // "apply", "batch N" or "last_seen", for each call taken
	failed int           // calls refused as an outage
	gate   chan struct{} // when not nil, each call waits until it is closed
	down   bool          // refuse calls with ErrUnavailable
	fail   error         // when set, ApplyBatch fails as a whole with it
}

func (s *recordingStore) enter(call string) error {
	s.mu.Lock()
	gate := s.gate
	s.mu.Unlock()
	if gate != nil {
		<-gate
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.down {
		s.failed++
		return fmt.Errorf("%w: the database is down", hub.ErrUnavailable)
	}
	s.calls = append(s.calls, call)
	return nil
}

func (s *recordingStore) Apply(ctx context.Context, op hub.Op) (hub.Record, error) {
	if err := s.enter("apply"); err != nil {
		return hub.Record{}, err
	}
	return s.Store.Apply(ctx, op)
}

func (s *recordingStore) ApplyBatch(ctx context.Context, ops []hub.Op) ([]hub.Applied, error) {
	if err := s.enter(fmt.Sprintf("batch %d", len(ops))); err != nil {
		return nil, err
	}
	s.mu.Lock()
	fail := s.fail
	s.mu.Unlock()
	if fail != nil {
		return nil, fail
	}
	return s.Store.ApplyBatch(ctx, ops)
}

func (s *recordingStore) SaveLastSeen(ctx context.Context, seen []hub.LastSeen) error {
	if err := s.enter("last_seen"); err != nil {
		return err
	}
	return s.Store.SaveLastSeen(ctx, seen)
}

// hold makes every call wait until release; it returns how many calls
// were taken so far.
func (s *recordingStore) hold() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.gate = make(chan struct{})
	return len(s.calls)
}

func (s *recordingStore) release() {
	s.mu.Lock()
	defer s.mu.Unlock()
	close(s.gate)
	s.gate = nil
}

func (s *recordingStore) set(fn func()) {
	s.mu.Lock()
	defer s.mu.Unlock()
	fn()
}

// callsSince returns the calls taken after the first n.
func (s *recordingStore) callsSince(n int) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return strings.Join(s.calls[n:], ", ")
}

// setWait queues a change of user's wait time from another goroutine,
// and waits until the hub has queued it, so that changes queue in the
// order they are made.
func setWait(f *fixture, wg *sync.WaitGroup, user int64, wait int, out *hub.Status, errp *error) {
	wg.Go(func() {
		busy := true
		*out, *errp = f.h.SetStatus(f.ctx, hub.StatusRequest{Client: hub.Client{UserID: user, Username: ""}, Update: hub.StatusUpdate{Busy: &busy, WaitTimeSet: true, WaitTime: &wait}})
	})
	synctest.Wait()
}

// watchAlice starts a hub on a recording store, with user 1 watching
// alice (user 2), who is online.
func watchAlice(t *testing.T) (*recordingStore, *fixture, *hub.Session) {
	store := &recordingStore{Store: memory.New()}
	f := startWith(t, store, hub.Config{})
	watcher := f.watchOnline(2, "alice")
	return store, f, watcher
}

func TestQueuedChangesShareABatchAndKeepTheirOrder(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		store, f, watcher := watchAlice(t)

		// A slow commit: the first change waits in the store while 299
		// more queue behind it.
		taken := store.hold()
		const n = 300
		got := make([]hub.Status, n)
		errs := make([]error, n)
		var wg sync.WaitGroup
		var want []string
		for i := range n {
			user := int64(2)
			if i%2 == 1 {
				user = int64(100 + i)
			} else {
				want = append(want, fmt.Sprintf("2:alice:true:true:%d", i+1))
			}
			setWait(f, &wg, user, i+1, &got[i], &errs[i])
		}
		store.release()
		wg.Wait()

		if calls := store.callsSince(taken); calls != "apply, batch 256, batch 43" {
			t.Fatalf("store calls %q, want the first change alone, then the rest in batches of at most 256", calls)
		}
		for i := range n {
			if errs[i] != nil || got[i].WaitTime == nil || *got[i].WaitTime != i+1 {
				t.Fatalf("change %d answered %+v, %v; want its own wait time %d", i, got[i], errs[i], i+1)
			}
		}
		// Each change of the watched user reached the watcher, in order.
		expect(t, watcher, want...)
	})
}

func TestOutageKeepsTheBatchQueuedAndReplaysItInOrder(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		store, f, watcher := watchAlice(t)

		store.set(func() { store.down = true })
		taken := store.hold()
		store.release()
		var want []string
		for wait := 1; wait <= 10; wait++ {
			busy := true
			st, err := f.h.SetStatus(f.ctx, hub.StatusRequest{Client: hub.Client{UserID: 2, Username: ""}, Update: hub.StatusUpdate{Busy: &busy, WaitTimeSet: true, WaitTime: &wait}})
			if err != nil || *st.WaitTime != wait {
				t.Fatalf("change %d while the store is down: %+v, %v; want an answer from memory", wait, st, err)
			}
			want = append(want, fmt.Sprintf("2:alice:true:true:%d", wait))
		}
		expect(t, watcher, want...)
		time.Sleep(10 * time.Second) // the writer keeps trying
		stats, err := f.h.Stats(f.ctx)
		if err != nil || !stats.StoreDown || stats.PendingWrites != 10 {
			t.Fatalf("stats while down: %+v, %v; want the store down and 10 writes waiting", stats, err)
		}
		if c := f.h.Counts(); c != stats {
			t.Fatalf("Counts while down %+v, Stats %+v", c, stats)
		}
		store.set(func() { store.down = false })
		time.Sleep(10 * time.Second) // past the longest backoff
		synctest.Wait()

		if calls := store.callsSince(taken); calls != "batch 10" {
			t.Fatalf("store calls after the outage %q, want the ten changes in one batch", calls)
		}
		if stats, _ := f.h.Stats(f.ctx); stats.StoreDown || stats.PendingWrites != 0 || f.h.Counts() != stats {
			t.Fatalf("stats after the outage: %+v, Counts %+v", stats, f.h.Counts())
		}
		all, _ := store.LoadAll(f.ctx)
		for _, r := range all {
			if r.UserID == 2 && (r.Version != 11 || *r.WaitTime != 10) {
				t.Fatalf("stored %+v version %d, want the last change, version 11", r.Status, r.Version)
			}
		}
		expect(t, watcher) // the replay shows nothing new
	})
}

func TestLastSeenFlushGoesAloneInItsTurn(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		store := &recordingStore{Store: memory.New()}
		flush := 5 * time.Second
		f := startWith(t, store, hub.Config{FlushInterval: flush})
		s := f.connect(1, "w")
		synctest.Wait()
		taken := store.hold()
		var wg sync.WaitGroup
		got := make([]hub.Status, 5)
		errs := make([]error, 5)
		for i := range 3 {
			setWait(f, &wg, int64(2+i), 1, &got[i], &errs[i])
		}
		f.h.Touch(s)
		time.Sleep(flush) // the flush queues behind the changes
		synctest.Wait()
		for i := 3; i < 5; i++ {
			setWait(f, &wg, int64(2+i), 1, &got[i], &errs[i])
		}
		store.release()
		wg.Wait()
		if calls := store.callsSince(taken); calls != "apply, batch 2, last_seen, batch 2" {
			t.Fatalf("store calls %q: a batch must stop at a last_seen flush, which goes in its turn", calls)
		}
		for i, err := range errs {
			if err != nil {
				t.Fatalf("change %d: %v", i, err)
			}
		}
	})
}

func TestBatchFailedAsAWholeFailsEachOfItsChanges(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		store := &recordingStore{Store: memory.New()}
		f := startWith(t, store, hub.Config{})
		store.set(func() { store.fail = errors.New("disk full") })
		store.hold()
		var wg sync.WaitGroup
		got := make([]hub.Status, 3)
		errs := make([]error, 3)
		for i := range 3 {
			setWait(f, &wg, int64(2+i), 1, &got[i], &errs[i])
		}
		store.release()
		wg.Wait()
		if errs[0] != nil {
			t.Fatalf("the change made alone: %v", errs[0])
		}
		for _, err := range errs[1:] {
			if err == nil || !strings.Contains(err.Error(), "disk full") || errors.Is(err, hub.ErrUnavailable) {
				t.Fatalf("a change of the failed batch: %v, want the store's final error", err)
			}
		}
		stats, err := f.h.Stats(f.ctx)
		if err != nil || stats.StoreDown || stats.PendingWrites != 0 {
			t.Fatalf("stats after a final error: %+v, %v; nothing waits and the store is not down", stats, err)
		}
		// The hub goes on.
		store.set(func() { store.fail = nil })
		if _, err := f.h.SetStatus(f.ctx, hub.StatusRequest{Client: hub.Client{UserID: 3, Username: ""}, Update: hub.StatusUpdate{WaitTimeSet: true}}); err != nil {
			t.Fatal(err)
		}
	})
}
