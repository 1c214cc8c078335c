package metrics_test

import (
	"errors"
	"net/http/httptest"
	"runtime"
	"strconv"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/presenced/presenced/hub"
	"github.com/presenced/presenced/internal/version"
	"github.com/presenced/presenced/metrics"
	"github.com/presenced/presenced/metrics/metricstest"
	"github.com/presenced/presenced/transport"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// serve exposes m on a loopback port for the test's life.
func serve(t *testing.T, m *metrics.Metrics) string {
	t.Helper()
	ts := httptest.NewServer(m.Handler())
	t.Cleanup(ts.Close)
	return ts.URL
}

func TestEverySeriesExistsAtZero(t *testing.T) {
	url := serve(t, metrics.New(func() hub.Stats { return hub.Stats{} }))
	f := metricstest.Scrape(t, url)
	for _, s := range [][]string{
		{"presenced_connections"}, {"presenced_online_users"}, {"presenced_subscriptions"},
		{"presenced_events_sent_total"}, {"presenced_slow_consumers_total"}, {"presenced_cluster_nodes"},
		{"presenced_store_pending_writes"}, {"presenced_store_down"},
		{"presenced_messages_received_total", "type", "subscribe"},
		{"presenced_messages_received_total", "type", "invalid"},
		{"presenced_sockets_closed_total", "code", "4000"},
		{"presenced_tokens_rejected_total", "via", "rest"},
		{"presenced_tokens_rejected_total", "via", "ws"},
		{"presenced_store_write_errors_total", "op", "save"},
		{"presenced_store_write_errors_total", "op", "last_seen"},
	} {
		if v := f.Value(t, s[0], s[1:]...); v != 0 {
			t.Errorf("%v = %v at start", s, v)
		}
	}
	for _, s := range [][]string{{"presenced_event_delivery_seconds"}, {"presenced_store_write_seconds", "op", "save"}} {
		if n := f.Count(t, s[0], s[1:]...); n != 0 {
			t.Errorf("%v counts %d at start", s, n)
		}
	}
	// The runtime's own metrics come along, for memory and goroutines.
	if f.Value(t, "go_goroutines") == 0 || f.Value(t, "process_open_fds") == 0 {
		t.Error("Go and process metrics are missing")
	}
}

func TestBuildInfoNamesTheRunningBuild(t *testing.T) {
	f := metricstest.Scrape(t, serve(t, metrics.New(func() hub.Stats { return hub.Stats{} })))
	b := version.Get()
	if b.GoVersion != runtime.Version() {
		t.Fatalf("go version %q, want %q", b.GoVersion, runtime.Version())
	}
	if v := f.Value(t, "presenced_build_info", "goversion", b.GoVersion, "revision", b.Revision, "version", b.Version); v != 1 {
		t.Fatalf("presenced_build_info = %v, want 1", v)
	}
}

func TestGaugesReadTheHubAtEachScrape(t *testing.T) {
	st := hub.Stats{Sessions: 3, OnlineUsers: 2, Subscriptions: 7, PendingWrites: 12, StoreDown: true}
	url := serve(t, metrics.New(func() hub.Stats { return st }))
	f := metricstest.Scrape(t, url)
	if f.Value(t, "presenced_connections") != 3 || f.Value(t, "presenced_online_users") != 2 || f.Value(t, "presenced_subscriptions") != 7 ||
		f.Value(t, "presenced_store_pending_writes") != 12 || f.Value(t, "presenced_store_down") != 1 {
		t.Fatalf("gauges do not show %+v", st)
	}
	st.Sessions, st.PendingWrites, st.StoreDown = 0, 0, false
	f = metricstest.Scrape(t, url)
	if f.Value(t, "presenced_connections") != 0 || f.Value(t, "presenced_store_pending_writes") != 0 || f.Value(t, "presenced_store_down") != 0 {
		t.Fatalf("gauges do not follow %+v", st)
	}
}

func TestStoreAndClusterReports(t *testing.T) {
	m := metrics.New(func() hub.Stats { return hub.Stats{} })
	url := serve(t, m)
	var obs hub.StoreObserver = m
	obs.StoreWrite("save", 3*time.Millisecond, nil)
	obs.StoreWrite("save", 2*time.Millisecond, errors.New("connection refused"))
	obs.StoreWrite("last_seen", 40*time.Millisecond, nil)
	obs.StoreWrite("session", time.Millisecond, nil) // an op nobody declared
	obs.ClusterNodes(3)

	f := metricstest.Scrape(t, url)
	if n := f.Count(t, "presenced_store_write_seconds", "op", "save"); n != 2 {
		t.Errorf("save writes = %d, want 2", n)
	}
	if s := f.Sum(t, "presenced_store_write_seconds", "op", "last_seen"); s < 0.039 || s > 0.041 {
		t.Errorf("last_seen write time = %vs, want 0.04", s)
	}
	if n := f.Count(t, "presenced_store_write_seconds", "op", "session"); n != 1 {
		t.Errorf("session writes = %d, want 1", n)
	}
	if v := f.Value(t, "presenced_store_write_errors_total", "op", "save"); v != 1 {
		t.Errorf("save errors = %v, want 1", v)
	}
	if v := f.Value(t, "presenced_store_write_errors_total", "op", "last_seen"); v != 0 {
		t.Errorf("last_seen errors = %v, want 0", v)
	}
	if v := f.Value(t, "presenced_cluster_nodes"); v != 3 {
		t.Errorf("cluster nodes = %v, want 3", v)
	}
}

func TestClientsCannotGrowTheLabelSet(t *testing.T) {
	m := metrics.New(func() hub.Stats { return hub.Stats{} })
	url := serve(t, m)
	for i := range 50 {
		m.MessageReceived("made-up-" + string(rune('a'+i%26)))
	}
	m.MessageReceived("")
	m.MessageReceived("subscribe")
	m.SocketClosed(4999)
	m.SocketClosed(4000)
	m.TokenRejected("ws")

	f := metricstest.Scrape(t, url)
	if n, known := len(f["presenced_messages_received_total"].Metric), len(transport.MessageTypes()); n != known+2 {
		t.Errorf("%d message series, want the %d known types, unknown and invalid", n, known)
	}
	for kind, want := range map[string]float64{"unknown": 50, "invalid": 1, "subscribe": 1, "ping": 0} {
		if v := f.Value(t, "presenced_messages_received_total", "type", kind); v != want {
			t.Errorf("messages of type %s = %v, want %v", kind, v, want)
		}
	}
	if f.Value(t, "presenced_sockets_closed_total", "code", "other") != 1 ||
		f.Value(t, "presenced_sockets_closed_total", "code", "4000") != 1 ||
		f.Value(t, "presenced_slow_consumers_total") != 1 {
		t.Error("closes by code and slow consumers are miscounted")
	}
	if f.Value(t, "presenced_tokens_rejected_total", "via", "ws") != 1 {
		t.Error("the rejected token is not counted")
	}
}

// The event path runs once per watcher: it must not allocate.
func TestEventPathDoesNotAllocate(t *testing.T) {
	m := metrics.New(func() hub.Stats { return hub.Stats{} })
	if n := testing.AllocsPerRun(1000, func() {
		m.EventSent(3 * time.Millisecond)
		m.MessageReceived("subscribe")
		m.MessageReceived("nonsense")
		m.SocketClosed(4001)
	}); n != 0 {
		t.Fatalf("%v allocations per event", n)
	}
}

func BenchmarkEventSent(b *testing.B) {
	m := metrics.New(func() hub.Stats { return hub.Stats{} })
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			m.EventSent(time.Millisecond)
		}
	})
}

// TestEveryCloseCodeAndMessageHasItsSeries: the series come from
// transport's own lists, which a transport test holds to its source, so
// that a code or message added there cannot hide under "other" or
// "unknown".
func TestEveryCloseCodeAndMessageHasItsSeries(t *testing.T) {
	f := metricstest.Scrape(t, serve(t, metrics.New(func() hub.Stats { return hub.Stats{} })))
	for _, c := range transport.CloseCodes() {
		f.Value(t, "presenced_sockets_closed_total", "code", strconv.Itoa(c)) // fails the test when missing
	}
	for _, k := range transport.MessageTypes() {
		f.Value(t, "presenced_messages_received_total", "type", k)
	}
}
