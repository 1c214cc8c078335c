package main

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"

	"github.com/presenced/presenced/internal/pgtest"
)

var hookSecret = "whsec_" + base64.StdEncoding.EncodeToString([]byte("presenced-webhook-test-secret-32"))

// hookEvent is one event as the receiver reads it.
type hookEvent struct {
	ID   string `json:"id"`
	Type string `json:"type"`
	Data struct {
		UserID   int64 `json:"user_id"`
		IsOnline bool  `json:"is_online"`
		IsBusy   bool  `json:"is_busy"`
		WaitTime *int  `json:"wait_time"`
	} `json:"data"`
}

func (e hookEvent) String() string {
	w := "-"
	if e.Data.WaitTime != nil {
		w = fmt.Sprint(*e.Data.WaitTime)
	}
	return fmt.Sprintf("%d:%s:%s", e.Data.UserID, strings.TrimPrefix(e.Type, "user."), w)
}

// hookReceiver is the app's backend: a real HTTP server that verifies
// every request with the Standard Webhooks library and can be down.
type hookReceiver struct {
	t      *testing.T
	url    string
	mu     sync.Mutex
	down   bool
	events []hookEvent
	ids    map[string]int
	more   chan struct{}
}

func newHookReceiver(t *testing.T) *hookReceiver {
	wh, err := standardwebhooks.NewWebhook(hookSecret)
	if err != nil {
		t.Fatal(err)
	}
	r := &hookReceiver{t: t, ids: map[string]int{}, more: make(chan struct{}, 1)}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		body, _ := io.ReadAll(req.Body)
		if err := wh.Verify(body, req.Header); err != nil {
			t.Errorf("a webhook does not verify: %v", err)
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		r.mu.Lock()
		defer r.mu.Unlock()
		if r.down {
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		var batch []hookEvent
		if err := json.Unmarshal(body, &batch); err != nil {
			t.Errorf("webhook body %s: %v", body, err)
		}
		for _, e := range batch {
			r.ids[e.ID]++
			if r.ids[e.ID] == 1 { // at least once: a receiver keeps the first
				r.events = append(r.events, e)
			}
		}
		select {
		case r.more <- struct{}{}:
		default:
		}
	}))
	t.Cleanup(srv.Close)
	r.url = srv.URL + "/presence-events"
	return r
}

func (r *hookReceiver) setDown(down bool) {
	r.mu.Lock()
	r.down = down
	r.mu.Unlock()
}

// of returns the events about user, in the order received.
func (r *hookReceiver) of(user int64) []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []string
	for _, e := range r.events {
		if e.Data.UserID == user {
			out = append(out, e.String())
		}
	}
	return out
}

// await waits until the events about user are want.
func (r *hookReceiver) await(user int64, within time.Duration, want ...string) {
	r.t.Helper()
	deadline := time.After(within)
	for {
		if got := r.of(user); strings.Join(got, " ") == strings.Join(want, " ") {
			return
		} else if len(got) > len(want) {
			r.t.Fatalf("user %d: events %v, want %v", user, got, want)
		}
		select {
		case <-r.more:
		case <-deadline:
			r.t.Fatalf("user %d: events %v after %v, want %v", user, r.of(user), within, want)
		}
	}
}

func hookFlags(r *hookReceiver) []string {
	return []string{"-webhook-url", r.url, "-webhook-secret", hookSecret, "-webhook-max-backoff", "2s"}
}

func TestWebhooksSurviveAReceiverDownForAMinute(t *testing.T) {
	t.Parallel()
	r := newHookReceiver(t)
	n := startNode(t, pgtest.Schema(t), "hooks", hookFlags(r)...)
	app := dial(t, n, 5, "eve")
	r.await(5, 20*time.Second, "5:online:-")
	r.setDown(true)
	// A minute of changes while the receiver is down.
	want := []string{"5:online:-"}
	down := time.Now()
	for i := 1; time.Since(down) < time.Minute; i++ {
		app.request(fmt.Sprintf(`{"type":"set_status","is_busy":true,"wait_time":%d}`, i), "status")
		want = append(want, fmt.Sprintf("5:status:%d", i))
		<-time.After(2 * time.Second) // pacing a minute of changes
	}
	r.setDown(false)
	// Back: everything arrives, in order, within the longest backoff.
	r.await(5, 20*time.Second, want...)
	t.Logf("%d events made during a minute's outage all arrived, in order", len(want)-1)
}

func TestWebhooksOfAKilledNodeAreSentByAnother(t *testing.T) {
	t.Parallel()
	r := newHookReceiver(t)
	db := pgtest.Schema(t)
	a := startNode(t, db, "a", hookFlags(r)...) // first, so it sends
	b := startNode(t, db, "b", hookFlags(r)...)
	dial(t, a, 6, "six")
	r.await(6, 20*time.Second, "6:online:-")
	// Delivery is at least once: an event the receiver has taken but
	// whose row the sender had not yet deleted when it died is sent
	// again by the next sender, which receivers drop by its webhook-id.
	// So the kill comes once a has deleted what it delivered, and what
	// the other node sends is only what a never delivered.
	pgtest.WaitUntil(t, db, `SELECT count(*) = 0 FROM presence_webhook_outbox`)
	r.setDown(true)
	if code, body := rest(t, a, http.MethodPut, "/users/me/status", 6, "six", `{"is_busy":true,"wait_time":3}`); code != 200 {
		t.Fatalf("PUT: %d %s", code, body)
	}
	a.kill() // its outbox holds the busy event, and its user's offline is to come
	r.setDown(false)
	r.await(6, deadBound+20*time.Second, "6:online:-", "6:status:3", "6:offline:3")
	// Once each, although two nodes could send.
	dial(t, b, 7, "seven")
	r.await(7, 20*time.Second, "7:online:-")
	r.mu.Lock()
	defer r.mu.Unlock()
	for id, n := range r.ids {
		if n > 1 {
			t.Errorf("event %s received %d times", id, n)
		}
	}
}

func TestAReconnectWithinTheGraceSendsNoWebhook(t *testing.T) {
	t.Parallel()
	r := newHookReceiver(t)
	n := startNode(t, "", "hooks-grace", append(hookFlags(r), "-grace", "2s")...)
	first := dial(t, n, 8, "eight")
	r.await(8, 20*time.Second, "8:online:-")
	_ = first.ws.Close()
	second := dial(t, n, 8, "eight") // back within the grace
	second.request(`{"type":"ping"}`, "pong")
	// A change made after the grace had run out shows that the sender
	// would have sent an offline by then.
	<-time.After(3 * time.Second) // past the grace: nothing to await
	second.request(`{"type":"set_status","is_busy":true}`, "status")
	r.await(8, 20*time.Second, "8:online:-", "8:status:-")
}
