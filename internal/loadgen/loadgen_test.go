package loadgen_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/presenced/presenced/internal/loadgen"
	"github.com/presenced/presenced/internal/needs"
	"github.com/presenced/presenced/internal/testserver"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(needs.Main(m)) }

const secret = "load-test-secret-0123456789abcdef"

// startServer runs a real server and returns a Config that points at it.
func startServer(t *testing.T) loadgen.Config {
	return loadgen.Config{
		Addrs:       []string{testserver.Start(t, secret)},
		Secret:      []byte(secret),
		Sources:     3,
		Concurrency: 8,
		WaitTimeout: 20 * time.Second,
	}
}

func testContext(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func TestIdleHoldsSocketsAndSamplesMemory(t *testing.T) {
	cfg := startServer(t)
	cfg.ServerPID = os.Getpid()
	res, err := loadgen.Idle(testContext(t), cfg, loadgen.IdleParams{Sockets: 30, Steps: []int{10, 20}, Settle: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if res.Connected != 30 || res.Alive != 30 || len(res.Errors) != 0 {
		t.Fatalf("connected %d, alive %d, errors %v; want 30, 30, none", res.Connected, res.Alive, res.Errors)
	}
	if len(res.Points) != 3 || res.Points[2].Sockets != 30 || res.Points[2].RSS <= 0 || res.BaseRSS <= 0 {
		t.Fatalf("memory points %+v, base %d: want three, the last at 30 sockets", res.Points, res.BaseRSS)
	}
	if res.ConnectsPerSec <= 0 || res.ConnectLatency.Count != 30 {
		t.Fatalf("connect rate %v, latency count %d", res.ConnectsPerSec, res.ConnectLatency.Count)
	}
}

func TestConnectRatePacesDials(t *testing.T) {
	cfg := startServer(t)
	cfg.ConnectRate = 50
	res, err := loadgen.Idle(testContext(t), cfg, loadgen.IdleParams{Sockets: 11, Settle: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	// Eleven dials at 50 a second: the last may not start before 200 ms.
	if res.Connected != 11 || res.ConnectSeconds < 0.2 {
		t.Fatalf("connected %d in %v s; want 11 in at least 0.2 s", res.Connected, res.ConnectSeconds)
	}
}

func TestIdleCountsRefusedTokens(t *testing.T) {
	cfg := startServer(t)
	cfg.Secret = []byte("not the server's secret")
	res, err := loadgen.Idle(testContext(t), cfg, loadgen.IdleParams{Sockets: 5, Settle: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if res.Alive != 0 || res.Errors["close_4401"] != 5 {
		t.Fatalf("alive %d, errors %v; want 0 alive and five closes with 4401", res.Alive, res.Errors)
	}
}

func TestFanoutDeliversEveryChangeOnce(t *testing.T) {
	cfg := startServer(t)
	res, err := loadgen.Fanout(testContext(t), cfg, loadgen.FanoutParams{Watchers: 25, Rate: 200, Changes: 8})
	if err != nil {
		t.Fatal(err)
	}
	if res.Sent != 8 || res.Expected != 200 || res.Delivered+res.Superseded != 200 || res.Lost != 0 || res.Duplicates != 0 {
		t.Fatalf("sent %d expected %d delivered %d superseded %d lost %d duplicates %d; want 8, 200, 200 in all, 0, 0", res.Sent, res.Expected, res.Delivered, res.Superseded, res.Lost, res.Duplicates)
	}
	if res.Latency.Count != uint64(res.Delivered) || res.Latency.MaxMS < res.Latency.P50MS || res.Frames == 0 {
		t.Fatalf("latency %+v, frames %d", res.Latency, res.Frames)
	}
}

// Several publishers take turns; every watcher watches them all.
func TestFanoutOfSeveralPublishers(t *testing.T) {
	cfg := startServer(t)
	res, err := loadgen.Fanout(testContext(t), cfg, loadgen.FanoutParams{Watchers: 10, Rate: 60, Changes: 9, Publishers: 3})
	if err != nil {
		t.Fatal(err)
	}
	if res.Sent != 9 || res.Expected != 90 || res.Delivered+res.Superseded != 90 || res.Lost != 0 || res.Duplicates != 0 || res.Watch != 3 {
		t.Fatalf("sent %d expected %d delivered %d superseded %d lost %d duplicates %d watch %d; want 9, 90, 90 in all, 0, 0, 3",
			res.Sent, res.Expected, res.Delivered, res.Superseded, res.Lost, res.Duplicates, res.Watch)
	}
	if _, err := loadgen.Fanout(testContext(t), cfg, loadgen.FanoutParams{Watchers: 1, Rate: 1, Changes: 10, Publishers: 3}); err == nil {
		t.Fatal("no error for 10 changes over 3 publishers")
	}
}

func TestMeshDeliversEveryChange(t *testing.T) {
	cfg := startServer(t)
	res, err := loadgen.Mesh(testContext(t), cfg, loadgen.MeshParams{Users: 30, Watch: 4, Period: 100 * time.Millisecond, Changes: 3})
	if err != nil {
		t.Fatal(err)
	}
	if res.Sent != 90 || res.Expected != 360 || res.Delivered+res.Superseded != 360 || res.Lost != 0 || res.Duplicates != 0 {
		t.Fatalf("sent %d expected %d delivered %d superseded %d lost %d duplicates %d; want 90, 360, 360 in all, 0, 0", res.Sent, res.Expected, res.Delivered, res.Superseded, res.Lost, res.Duplicates)
	}
}

// Two slices of one mesh, as two processes would run them, each count what
// the other's users send.
func TestMeshSlicesShareOneSchedule(t *testing.T) {
	cfg := startServer(t)
	ctx := testContext(t)
	ready := make(chan struct{}, 2)
	start := make(chan time.Time, 2)
	readyFn := func() (time.Time, error) {
		ready <- struct{}{}
		return <-start, nil
	}
	type outcome struct {
		res loadgen.DeliveryResult
		err error
	}
	out := make(chan outcome, 2)
	for _, first := range []int{0, 10} {
		go func() {
			res, err := loadgen.Mesh(ctx, cfg, loadgen.MeshParams{Users: 20, First: first, Count: 10, Watch: 10, Period: 100 * time.Millisecond, Changes: 2, Ready: readyFn})
			out <- outcome{res, err}
		}()
	}
	for range 2 {
		select {
		case <-ready:
		case <-ctx.Done():
			t.Fatal("slices never became ready")
		}
	}
	at := time.Now().Add(50 * time.Millisecond)
	start <- at
	start <- at
	var delivered int64
	for range 2 {
		o := <-out
		if o.err != nil {
			t.Fatal(o.err)
		}
		if o.res.Sent != 20 || o.res.Expected != 200 || o.res.Lost != 0 {
			t.Fatalf("slice: sent %d expected %d lost %d; want 20, 200, 0", o.res.Sent, o.res.Expected, o.res.Lost)
		}
		delivered += o.res.Delivered + o.res.Superseded
	}
	if delivered != 400 {
		t.Fatalf("delivered or superseded %d in all; want 400", delivered)
	}
}

func TestRESTComparesWithBareHandler(t *testing.T) {
	cfg := startServer(t)
	var bodySeen []byte
	res, err := loadgen.REST(testContext(t), cfg, loadgen.RESTParams{
		IDs: 10, Users: 20, Concurrency: 4, Duration: 200 * time.Millisecond,
		Baseline: func(body []byte) (string, func(), error) {
			bodySeen = body
			ts := httptest.NewServer(loadgen.BareHandler(body))
			return strings.TrimPrefix(ts.URL, "http://"), ts.Close, nil
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	if res.Heartbeat.Requests == 0 || res.Presence.Requests == 0 || res.Bare == nil || res.Bare.Requests == 0 || len(res.Errors) != 0 {
		t.Fatalf("heartbeats %d, reads %d, bare %+v, errors %v", res.Heartbeat.Requests, res.Presence.Requests, res.Bare, res.Errors)
	}
	if n := strings.Count(string(bodySeen), `"user_id"`); n != 10 || res.BodyBytes != len(bodySeen) {
		t.Fatalf("the batch answer names %d users in %d bytes; want 10", n, res.BodyBytes)
	}
	if res.PresenceVsBare <= 0 || res.Seconds <= 0 {
		t.Fatalf("presence_vs_bare %v, seconds %v", res.PresenceVsBare, res.Seconds)
	}
}

func TestRefusesAddressesOffLoopback(t *testing.T) {
	for _, addr := range []string{"10.0.0.1:80", "example.com:80", "nohost"} {
		_, err := loadgen.Idle(context.Background(), loadgen.Config{Addrs: []string{addr}, Secret: []byte("s")}, loadgen.IdleParams{Sockets: 1})
		if err == nil {
			t.Errorf("%s: no error", addr)
		}
	}
}

func TestRSSAndCPUTimeOfThisProcess(t *testing.T) {
	rss, err := loadgen.RSS(os.Getpid())
	if err != nil {
		needs.Missing(t, "no /proc here: "+err.Error(), "run the tests on Linux")
	}
	if rss < 1<<20 {
		t.Fatalf("RSS of a Go test binary is %d bytes; want over 1 MiB", rss)
	}
	before, err := loadgen.CPUTime(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	// Burn CPU until the kernel's 10 ms tick has counted some of it.
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if now, err := loadgen.CPUTime(os.Getpid()); err == nil && now > before {
			return
		}
	}
	t.Fatal("CPU time did not grow while this test spun for 10 s")
}

// TestHTTPIdleCountsWhatTheServerCloses holds idle connections against an
// HTTP server with a short idle timeout: each is answered once and then
// closed by the server, and the probes are answered all the while.
func TestHTTPIdleCountsWhatTheServerCloses(t *testing.T) {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("ok\n")) })
	mux.HandleFunc("GET /users/me/status", func(w http.ResponseWriter, _ *http.Request) { http.Error(w, "{}", http.StatusNotFound) })
	ts := httptest.NewUnstartedServer(mux)
	ts.Config.IdleTimeout = 300 * time.Millisecond
	ts.Start()
	t.Cleanup(ts.Close)
	cfg := loadgen.Config{Addrs: []string{strings.TrimPrefix(ts.URL, "http://")}, Secret: []byte(secret), Sources: 3, Concurrency: 8, WaitTimeout: 20 * time.Second, ServerPID: os.Getpid()}
	res, err := loadgen.HTTPIdle(testContext(t), cfg, loadgen.HTTPIdleParams{Conns: 40, Wait: 20 * time.Second, ProbeEvery: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if res.Opened != 40 || res.ClosedByServer != 40 || res.StillOpen != 0 || len(res.Errors) != 0 {
		t.Fatalf("opened %d, closed by the server %d, still open %d, errors %v; want 40, 40, 0, none", res.Opened, res.ClosedByServer, res.StillOpen, res.Errors)
	}
	if res.ClosedAfter.Count != 40 || res.ClosedAfter.P50MS < 250 {
		t.Fatalf("closed after %+v: want 40 closes, none before the 300 ms idle timeout", res.ClosedAfter)
	}
	if res.Probes < 2 || res.ProbeFailures != 0 || res.PeakRSS <= 0 {
		t.Fatalf("probes %d, failures %d, peak RSS %d", res.Probes, res.ProbeFailures, res.PeakRSS)
	}
}
