package hub_test

import (
	"context"
	"fmt"
	"strconv"
	"testing"

	"github.com/presenced/presenced/hub"
	"github.com/presenced/presenced/storage/memory"
)

// benchEvent stands in for the transport's encoder: the same size of
// output, one allocation.
func benchEvent(p hub.Presence) []byte {
	b := make([]byte, 0, 160)
	b = append(b, `{"type":"presence","user_id":`...)
	b = strconv.AppendInt(b, p.UserID, 10)
	b = append(b, `,"username":"u","is_online":true,"is_busy":true,"wait_time":`...)
	if p.WaitTime != nil {
		b = strconv.AppendInt(b, int64(*p.WaitTime), 10)
	}
	return append(b, `,"last_seen":"2024-01-15T10:30:00Z"}`...)
}

// runBenchHub starts a hub for a benchmark and stops it when it ends.
func runBenchHub(b *testing.B, cfg hub.Config) *hub.Hub {
	b.Helper()
	cfg.EncodeEvent = benchEvent
	h := hub.New(memory.New(), cfg)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- h.Run(ctx) }()
	b.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			b.Error(err)
		}
	})
	return h
}

func benchConnect(b *testing.B, h *hub.Hub, id int64) *hub.Session {
	s, err := h.Connect(context.Background(), hub.Client{UserID: id, Username: "u"})
	if err != nil {
		b.Fatal(err)
	}
	return s
}

func benchReply([]hub.Presence) hub.Message {
	return hub.Message{Data: []byte(`{"type":"subscribed"}`)}
}

// BenchmarkBroadcast is one status change reaching every watcher of a
// user: the hub's request round trip, the store, one encoding and one
// queued message per watcher, then each watcher's queue taken as its
// writer would. ns/delivery is the cost per watcher.
func BenchmarkBroadcast(b *testing.B) {
	for _, n := range []int{1, 100, 1000, 10000} {
		b.Run(fmt.Sprintf("watchers=%d", n), func(b *testing.B) {
			h := runBenchHub(b, hub.Config{})
			ctx := context.Background()
			benchConnect(b, h, 1)
			watchers := make([]*hub.Session, n)
			for i := range watchers {
				watchers[i] = benchConnect(b, h, int64(i+2))
				if err := h.Subscribe(ctx, watchers[i], []int64{1}, benchReply); err != nil {
					b.Fatal(err)
				}
				watchers[i].Next(nil)
			}
			busy := true
			var batch []hub.Message
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; b.Loop(); i++ {
				wait := i % 10000
				if _, err := h.SetStatus(ctx, hub.StatusRequest{Client: hub.Client{UserID: 1, Username: "u"}, Update: hub.StatusUpdate{Busy: &busy, WaitTimeSet: true, WaitTime: &wait}}); err != nil {
					b.Fatal(err)
				}
				for _, s := range watchers {
					batch = s.Next(batch[:0])
					if len(batch) != 1 {
						b.Fatalf("a watcher holds %d messages after one change", len(batch))
					}
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/delivery")
		})
	}
}

// BenchmarkSubscribeChurn is a socket that subscribes to 100 users and
// unsubscribes again, while others watch the same users.
func BenchmarkSubscribeChurn(b *testing.B) {
	for _, others := range []int{0, 1000} {
		b.Run(fmt.Sprintf("other_watchers=%d", others), func(b *testing.B) {
			h := runBenchHub(b, hub.Config{})
			ctx := context.Background()
			ids := make([]int64, 100)
			for i := range ids {
				ids[i] = int64(10_000 + i)
			}
			for i := range others {
				s := benchConnect(b, h, int64(100_000+i))
				if err := h.Subscribe(ctx, s, ids, benchReply); err != nil {
					b.Fatal(err)
				}
				s.Next(nil)
			}
			s := benchConnect(b, h, 1)
			var batch []hub.Message
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				if err := h.Subscribe(ctx, s, ids, benchReply); err != nil {
					b.Fatal(err)
				}
				if err := h.Unsubscribe(ctx, s, ids); err != nil {
					b.Fatal(err)
				}
				batch = s.Next(batch[:0])
			}
		})
	}
}

// BenchmarkConnectDisconnect is a socket's life in the hub without its
// grace period: the session, the user's online change, and its end.
func BenchmarkConnectDisconnect(b *testing.B) {
	h := runBenchHub(b, hub.Config{})
	ctx := context.Background()
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		s := benchConnect(b, h, int64(1+i%1000))
		h.Disconnect(s)
		<-s.Done()
		if _, err := h.Stats(ctx); err != nil { // the disconnect has been handled
			b.Fatal(err)
		}
	}
}
