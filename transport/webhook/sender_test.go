package webhook_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"

	"github.com/presenced/presenced/hub"
	"github.com/presenced/presenced/internal/testkit"
	"github.com/presenced/presenced/storage/memory"
	"github.com/presenced/presenced/transport"
	"github.com/presenced/presenced/transport/webhook"
)

// event is one event as a receiver reads it.
type event struct {
	ID        string         `json:"id"`
	Type      string         `json:"type"`
	Timestamp string         `json:"timestamp"`
	Data      map[string]any `json:"data"`
}

// receiver is a real HTTP server that checks every request's signature
// with the Standard Webhooks library and keeps the events it took. Its
// answer can be set: the status, or a delay past the client's timeout.
type receiver struct {
	t      *testing.T
	srv    *httptest.Server
	mu     sync.Mutex
	events []event
	reqs   int
	status int           // the answer; 0 means 200
	delay  time.Duration // before answering
	got    chan struct{}
}

func newReceiver(t *testing.T, secret string) *receiver {
	wh, err := standardwebhooks.NewWebhook(secret)
	if err != nil {
		t.Fatal(err)
	}
	r := &receiver{t: t, got: make(chan struct{}, 1)}
	r.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		body, _ := io.ReadAll(req.Body)
		r.mu.Lock()
		r.reqs++
		status, delay := r.status, r.delay
		r.mu.Unlock()
		if delay > 0 {
			select {
			case <-time.After(delay):
			case <-req.Context().Done():
				return
			}
		}
		if err := wh.Verify(body, req.Header); err != nil {
			t.Errorf("a request does not verify: %v", err)
			http.Error(w, err.Error(), http.StatusUnauthorized)
			return
		}
		if req.Header.Get("Content-Type") != "application/json" {
			t.Errorf("Content-Type %q", req.Header.Get("Content-Type"))
		}
		if status != 0 && status != http.StatusOK {
			if status == http.StatusTooManyRequests {
				w.Header().Set("Retry-After", "0")
			}
			w.WriteHeader(status)
			return
		}
		var batch []event
		if err := json.Unmarshal(body, &batch); err != nil {
			t.Errorf("body %s: %v", body, err)
		}
		r.mu.Lock()
		r.events = append(r.events, batch...)
		r.mu.Unlock()
		select {
		case r.got <- struct{}{}:
		default:
		}
	}))
	t.Cleanup(r.srv.Close)
	return r
}

func (r *receiver) answer(status int, delay time.Duration) {
	r.mu.Lock()
	r.status, r.delay = status, delay
	r.mu.Unlock()
}

func (r *receiver) taken() []event {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]event(nil), r.events...)
}

// await waits until the receiver holds n events.
func (r *receiver) await(n int) []event {
	r.t.Helper()
	deadline := time.After(20 * time.Second)
	for {
		if ev := r.taken(); len(ev) >= n {
			return ev
		}
		select {
		case <-r.got:
		case <-deadline:
			r.t.Fatalf("the receiver holds %d events after 20s, want %d", len(r.taken()), n)
		}
	}
}

// counts records what the sender reports, and tells a waiting test of
// each report.
type counts struct {
	sent, retried, failed, dropped atomic.Int64
	reported                       testkit.Buffer // one line per report, to await
}

func (c *counts) WebhookSent(_ string, n int)    { c.sent.Add(int64(n)); c.report() }
func (c *counts) WebhookRetried(string)          { c.retried.Add(1); c.report() }
func (c *counts) WebhookFailed(_ string, n int)  { c.failed.Add(int64(n)); c.report() }
func (c *counts) WebhookDropped(_ string, n int) { c.dropped.Add(int64(n)); c.report() }

func (c *counts) report() { _, _ = c.reported.Write([]byte("report\n")) }

// await waits until ok holds, looking again after each report.
func (c *counts) await(t *testing.T, what string, ok func() bool) {
	t.Helper()
	c.reported.Await(t, 20*time.Second, what, func(string) bool { return ok() })
}

// start runs a sender over store's outbox to urls until the test ends.
func start(t *testing.T, store *memory.Store, cfg webhook.Config) *counts {
	t.Helper()
	c := &counts{}
	cfg.Outbox, cfg.EncodePresence, cfg.Observer = store, transport.EncodePresence, c
	if cfg.MinBackoff == 0 {
		cfg.MinBackoff, cfg.MaxBackoff = 10*time.Millisecond, 50*time.Millisecond
	}
	s, err := webhook.NewSender(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { s.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	return c
}

func apply(t *testing.T, s *memory.Store, op hub.Op) {
	t.Helper()
	if _, err := s.Apply(context.Background(), op); err != nil {
		t.Fatal(err)
	}
}

func busy(id int64, wait int) hub.Op {
	b := true
	return hub.Op{Kind: hub.OpUpdate, UserID: id, Update: hub.StatusUpdate{Busy: &b, WaitTimeSet: true, WaitTime: &wait}}
}

func TestEventsReachEachURLSignedBatchedAndInOrder(t *testing.T) {
	sec := secret('s')
	signer, _ := webhook.NewSigner(sec)
	one, two := newReceiver(t, sec), newReceiver(t, sec)
	store := memory.New(one.srv.URL, two.srv.URL+"/hook?token=x")
	// Changes made before the sender starts wait for it, and go together.
	apply(t, store, hub.Op{Kind: hub.OpConnect, UserID: 1, Username: "ann"})
	for i := range 5 {
		apply(t, store, busy(1, i+1))
	}
	apply(t, store, hub.Op{Kind: hub.OpRelease, UserID: 1})
	c := start(t, store, webhook.Config{URLs: []string{one.srv.URL, two.srv.URL + "/hook?token=x"}, Signer: signer})
	for _, r := range []*receiver{one, two} {
		got := r.await(7)
		if got[0].Type != "user.online" || got[6].Type != "user.offline" || got[0].Data["username"] != "ann" {
			t.Fatalf("events %+v", got)
		}
		for i := 1; i <= 5; i++ {
			if got[i].Type != "user.status" || got[i].Data["wait_time"] != float64(i) || got[i].Data["busy_since"] == nil {
				t.Fatalf("event %d: %+v, want the wait times in order", i, got[i])
			}
		}
		ids := map[string]bool{}
		for _, e := range got {
			if ids[e.ID] {
				t.Fatalf("id %s twice", e.ID)
			}
			ids[e.ID] = true
			if _, err := time.Parse(time.RFC3339Nano, e.Timestamp); err != nil {
				t.Fatalf("timestamp %q: %v", e.Timestamp, err)
			}
		}
		r.mu.Lock()
		reqs := r.reqs
		r.mu.Unlock()
		if reqs != 1 {
			t.Fatalf("%d requests for 7 events that waited together, want one", reqs)
		}
	}
	c.await(t, "report of 14 events sent", func() bool { return c.sent.Load() == 14 })
}

func TestRetriesOn5xx429AndTimeoutsLoseNothing(t *testing.T) {
	sec := secret('s')
	signer, _ := webhook.NewSigner(sec)
	r := newReceiver(t, sec)
	store := memory.New(r.srv.URL)
	c := start(t, store, webhook.Config{URLs: []string{r.srv.URL}, Signer: signer, Client: &http.Client{Timeout: 200 * time.Millisecond}})
	n := 0
	for _, fault := range []struct {
		status int
		delay  time.Duration
	}{{http.StatusServiceUnavailable, 0}, {http.StatusTooManyRequests, 0}, {0, time.Second}, {http.StatusInternalServerError, 0}} {
		r.answer(fault.status, fault.delay)
		before := c.retried.Load()
		for range 3 {
			n++
			apply(t, store, busy(2, n))
		}
		// The sender keeps trying while the receiver fails.
		c.await(t, fmt.Sprintf("retries on %d/%v", fault.status, fault.delay), func() bool { return c.retried.Load() >= before+2 })
		r.answer(0, 0)
		got := r.await(n)
		for i, e := range got {
			if e.Data["wait_time"] != float64(i+1) {
				t.Fatalf("after %d/%v: event %d has wait %v: lost or out of order: %+v", fault.status, fault.delay, i, e.Data["wait_time"], got)
			}
		}
	}
	if c.failed.Load() != 0 || c.dropped.Load() != 0 {
		t.Fatalf("failed %d, dropped %d", c.failed.Load(), c.dropped.Load())
	}
}

func TestARefusalIsGivenUpAndTheNextEventsFlow(t *testing.T) {
	sec := secret('s')
	signer, _ := webhook.NewSigner(sec)
	r := newReceiver(t, sec)
	store := memory.New(r.srv.URL)
	r.answer(http.StatusBadRequest, 0)
	c := start(t, store, webhook.Config{URLs: []string{r.srv.URL}, Signer: signer})
	apply(t, store, busy(3, 1))
	c.await(t, "report of the 400 given up", func() bool { return c.failed.Load() != 0 })
	r.answer(0, 0)
	apply(t, store, busy(3, 2))
	if got := r.await(1); len(got) != 1 || got[0].Data["wait_time"] != float64(2) {
		t.Fatalf("after the refusal: %+v", got)
	}
	if c.failed.Load() != 1 || c.retried.Load() != 0 { // the first change's one event
		t.Fatalf("failed %d, retried %d", c.failed.Load(), c.retried.Load())
	}
}

func TestTooManyWaitingDropsTheOldest(t *testing.T) {
	sec := secret('s')
	signer, _ := webhook.NewSigner(sec)
	r := newReceiver(t, sec)
	store := memory.New(r.srv.URL)
	r.answer(http.StatusServiceUnavailable, 0)
	for i := range 30 {
		apply(t, store, busy(4, i+1))
	}
	c := start(t, store, webhook.Config{URLs: []string{r.srv.URL}, Signer: signer, MaxQueue: 10})
	c.await(t, "report of a drop", func() bool { return c.dropped.Load() != 0 })
	r.answer(0, 0)
	got := r.await(10)
	if c.dropped.Load() != 20 || len(got) != 10 || got[0].Data["wait_time"] != float64(21) || got[9].Data["wait_time"] != float64(30) {
		t.Fatalf("dropped %d; received %d events from wait %v to %v; want the newest ten", c.dropped.Load(), len(got), got[0].Data["wait_time"], got[len(got)-1].Data["wait_time"])
	}
}

func TestSenderRefusesBadConfig(t *testing.T) {
	signer, _ := webhook.NewSigner(secret('s'))
	store := memory.New()
	for _, u := range []string{"ftp://x", "not a url", "http://"} {
		if _, err := webhook.NewSender(webhook.Config{URLs: []string{u}, Signer: signer, Outbox: store, EncodePresence: transport.EncodePresence}); err == nil {
			t.Errorf("URL %q accepted", u)
		}
	}
	if _, err := webhook.NewSender(webhook.Config{URLs: []string{"http://x"}, Outbox: store, EncodePresence: transport.EncodePresence}); err == nil {
		t.Error("no signer accepted")
	}
	if n := webhook.Name("https://u:p@api.example.com/hook?token=secret"); n != "https://api.example.com/hook" {
		t.Errorf("Name keeps %q", n)
	}
}
