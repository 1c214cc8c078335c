package transport

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/presenced/presenced/hub"
)

// BenchmarkEncodeEvent is the one encoding each change costs, whatever
// the number of watchers.
func BenchmarkEncodeEvent(b *testing.B) {
	wait := 15
	p := hub.Presence{UserID: 123456, Username: "alice", Online: true, Busy: true, WaitTime: &wait, LastSeen: time.Now()}
	b.ReportAllocs()
	for b.Loop() {
		if len(EncodeEvent(p)) == 0 {
			b.Fatal("empty event")
		}
	}
}

// benchWriter returns a conn whose socket runs over loopback to a client
// that reads and discards everything, as a fast watcher would.
func benchWriter(b *testing.B) *conn {
	b.Helper()
	got := make(chan *websocket.Conn, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ws, err := (&websocket.Upgrader{}).Upgrade(w, r, nil)
		if err != nil {
			b.Error(err)
			return
		}
		got <- ws
	}))
	client, _, err := websocket.DefaultDialer.DialContext(context.Background(), "ws"+strings.TrimPrefix(srv.URL, "http"), nil)
	if err != nil {
		b.Fatal(err)
	}
	ws := <-got
	drained := make(chan struct{})
	go func() {
		defer close(drained)
		for {
			_, r, err := client.NextReader()
			if err != nil {
				return
			}
			if _, err := io.Copy(io.Discard, r); err != nil {
				return
			}
		}
	}()
	b.Cleanup(func() {
		_ = ws.Close()
		_ = client.Close()
		<-drained
		srv.Close()
	})
	// New gives the server every default the writer relies on.
	return &conn{s: New(nil, nil, Config{}), ws: ws}
}

// BenchmarkWriteBatch is a writer sending what it found queued: with
// more than one event, they leave as one JSON array frame in one write.
// ns/event falls as the batch grows, which is why the writer packs.
func BenchmarkWriteBatch(b *testing.B) {
	wait := 15
	ev := hub.Message{Data: EncodeEvent(hub.Presence{UserID: 123456, Username: "alice", Online: true, WaitTime: &wait, LastSeen: time.Now()}), Event: true}
	for _, n := range []int{1, 4, 16, 64} {
		b.Run(fmt.Sprintf("events=%d", n), func(b *testing.B) {
			c := benchWriter(b)
			batch := make([]hub.Message, n)
			for i := range batch {
				batch[i] = ev
			}
			b.ReportAllocs()
			b.SetBytes(int64(n * len(ev.Data)))
			for b.Loop() {
				if err := c.write(batch); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/event")
		})
	}
}

// BenchmarkEncodeSubscribed is the answer to a subscribe of 100 users,
// which the hub goroutine encodes while every other request waits.
func BenchmarkEncodeSubscribed(b *testing.B) {
	wait := 15
	ps := make([]hub.Presence, 100)
	for i := range ps {
		ps[i] = hub.Presence{UserID: int64(1000 + i), Username: fmt.Sprintf("user%d", i), Online: i%2 == 0, Busy: i%3 == 0, LastSeen: time.Now()}
		if ps[i].Busy {
			ps[i].WaitTime, ps[i].BusySince = &wait, time.Now()
		}
	}
	id := json.RawMessage(`"sub-1"`)
	b.ReportAllocs()
	for b.Loop() {
		if len(encodeSubscribed(id, ps)) == 0 {
			b.Fatal("empty answer")
		}
	}
}

// BenchmarkParseUserIDList parses the id list of a batch presence read
// of 100 ids, the REST scenario's, with one duplicate.
func BenchmarkParseUserIDList(b *testing.B) {
	var list strings.Builder
	for i := range 100 {
		if i > 0 {
			list.WriteByte(',')
		}
		list.WriteString(strconv.Itoa(1_000_000 + i%99))
	}
	s := list.String()
	b.ReportAllocs()
	for b.Loop() {
		if ids, err := ParseUserIDList(s, 100); err != nil || len(ids) != 99 {
			b.Fatal(len(ids), err)
		}
	}
}
