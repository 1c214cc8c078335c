package postgres

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/presenced/presenced/hub"
	"github.com/presenced/presenced/internal/pgtest"
)

func TestBatchChangeTheDatabaseRefusesFailsAlone(t *testing.T) {
	url := pgtest.Schema(t)
	t.Parallel()
	s := open(t, url, Config{})
	ctx := context.Background()
	// The table's CHECK refuses a negative wait time (the API never sends
	// one): the batch's transaction fails, and only that change may.
	bad := hub.Op{Kind: hub.OpUpdate, UserID: 2, Update: hub.StatusUpdate{Busy: ptr(true), WaitTimeSet: true, WaitTime: ptr(-1)}}
	out, err := s.ApplyBatch(ctx, []hub.Op{{Kind: hub.OpConnect, UserID: 1}, bad, {Kind: hub.OpConnect, UserID: 3}})
	if err != nil {
		t.Fatalf("the batch failed as a whole: %v", err)
	}
	if out[1].Err == nil || errors.Is(out[1].Err, hub.ErrUnavailable) {
		t.Fatalf("refused change: err %v, want a final error", out[1].Err)
	}
	for _, i := range []int{0, 2} {
		if out[i].Err != nil || !out[i].Record.Online {
			t.Fatalf("change %d beside the refused one: %+v, %v", i, out[i].Record.Status, out[i].Err)
		}
	}
	all, err := s.LoadAll(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(all) != 2 {
		t.Fatalf("stored %d statuses, want users 1 and 3 alone", len(all))
	}
	for _, r := range all {
		if r.UserID == 2 || !r.Online {
			t.Fatalf("stored %+v", r.Status)
		}
	}
}

func TestBatchNotifiesEachChangeInOrder(t *testing.T) {
	t.Parallel()
	a, _, f := twoNodes(t)
	ctx := context.Background()
	var ops []hub.Op
	for w := 1; w <= 5; w++ {
		ops = append(ops, hub.Op{Kind: hub.OpUpdate, UserID: 5, Update: hub.StatusUpdate{Busy: ptr(true), WaitTimeSet: true, WaitTime: ptr(w)}})
		ops = append(ops, hub.Op{Kind: hub.OpConnect, UserID: int64(10 + w)})
	}
	out, err := a.ApplyBatch(ctx, ops)
	if err != nil {
		t.Fatal(err)
	}
	last := out[len(ops)-2].Record.Version
	f.waitFor(t, "the last change of user 5", hasRecord(5, func(r hub.Record) bool { return r.Version == last }))
	// Node b heard every change of user 5, in order, each with its state.
	f.mu.Lock()
	defer f.mu.Unlock()
	var heard []string
	for _, c := range f.changes {
		if c.Snapshot {
			continue
		}
		for _, r := range c.Records {
			if r.UserID == 5 {
				heard = append(heard, fmt.Sprintf("v%d:wait%d", r.Version, *r.WaitTime))
			}
		}
	}
	if fmt.Sprint(heard) != "[v1:wait1 v2:wait2 v3:wait3 v4:wait4 v5:wait5]" {
		t.Fatalf("node b heard %v, want each of the five changes in order", heard)
	}
}

// TestOverlappingBatchesOfTwoNodes runs two nodes' batches over the same
// users at once, each in another order, with last_seen flushes between:
// the row locks serialise them without a deadlock reaching the caller,
// no change is lost, and each node's changes to a user keep their order.
func TestOverlappingBatchesOfTwoNodes(t *testing.T) {
	url := pgtest.Schema(t)
	t.Parallel()
	const users, rounds, perBatch = 20, 30, 40
	nodes := []*Store{open(t, url, Config{NodeID: "a"}), open(t, url, Config{NodeID: "b"})}
	ctx := context.Background()
	for id := int64(1); id <= users; id++ {
		if _, err := nodes[0].Apply(ctx, hub.Op{Kind: hub.OpConnect, UserID: id}); err != nil {
			t.Fatal(err)
		}
	}
	type answer struct {
		node, seq int // seq: the change's place in its node's queue
		rec       hub.Record
	}
	var (
		mu      sync.Mutex
		answers []answer
		wg      sync.WaitGroup
	)
	errs := make(chan error, len(nodes)+1)
	for n, s := range nodes {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(n), 1))
			seq := 0
			for range rounds {
				ops := make([]hub.Op, perBatch)
				for i := range ops {
					seq++
					// The wait time names the node and the change.
					ops[i] = hub.Op{Kind: hub.OpUpdate, UserID: rng.Int64N(users) + 1,
						Update: hub.StatusUpdate{Busy: ptr(true), WaitTimeSet: true, WaitTime: ptr(n*100_000 + seq)}}
				}
				out, err := s.ApplyBatch(ctx, ops)
				if err != nil {
					errs <- fmt.Errorf("node %s: %w", s.NodeID(), err)
					return
				}
				mu.Lock()
				for i, a := range out {
					if a.Err != nil {
						mu.Unlock()
						errs <- fmt.Errorf("node %s, change %+v: %w", s.NodeID(), ops[i], a.Err)
						return
					}
					answers = append(answers, answer{node: n, seq: *ops[i].Update.WaitTime, rec: a.Record})
				}
				mu.Unlock()
			}
		})
	}
	wg.Go(func() {
		// Flushes lock many rows too, in user id order.
		seen := make([]hub.LastSeen, users)
		for range rounds {
			for i := range seen {
				seen[i] = hub.LastSeen{UserID: int64(users - i), At: time.Now()}
			}
			if err := nodes[1].SaveLastSeen(ctx, seen); err != nil {
				errs <- fmt.Errorf("last_seen: %w", err)
				return
			}
		}
	})
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}

	// Per user: every version from 2 on was answered exactly once (no
	// change lost or applied on a stale row), and each node's changes got
	// growing versions in its queue order.
	byVersion := map[int64]map[int64]answer{}
	for _, a := range answers {
		m := byVersion[a.rec.UserID]
		if m == nil {
			m = map[int64]answer{}
			byVersion[a.rec.UserID] = m
		}
		if prev, dup := m[a.rec.Version]; dup {
			t.Fatalf("user %d: version %d answered twice (%+v and %+v)", a.rec.UserID, a.rec.Version, prev, a)
		}
		if *a.rec.WaitTime != a.seq {
			t.Fatalf("user %d: the change with wait %d answered wait %d", a.rec.UserID, a.seq, *a.rec.WaitTime)
		}
		m[a.rec.Version] = a
	}
	all, err := nodes[0].LoadAll(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range all {
		m := byVersion[r.UserID]
		if r.Version != int64(len(m))+1 {
			t.Fatalf("user %d stored at version %d after %d changes on version 1", r.UserID, r.Version, len(m))
		}
		if *r.WaitTime != m[r.Version].seq {
			t.Fatalf("user %d stored wait %d, the last change answered %d", r.UserID, *r.WaitTime, m[r.Version].seq)
		}
		last := map[int]int{}
		for v := int64(2); v <= r.Version; v++ {
			a, ok := m[v]
			if !ok {
				t.Fatalf("user %d: no change answered version %d", r.UserID, v)
			}
			if a.seq <= last[a.node] {
				t.Fatalf("user %d: node %d's change %d got version %d after its change %d", r.UserID, a.node, a.seq, v, last[a.node])
			}
			last[a.node] = a.seq
		}
	}
	if len(answers) != len(nodes)*rounds*perBatch {
		t.Fatalf("%d answers, want %d", len(answers), len(nodes)*rounds*perBatch)
	}
}
