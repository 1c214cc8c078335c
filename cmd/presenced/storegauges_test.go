package main

import (
	"net/http"
	"strconv"
	"testing"
	"time"

	"github.com/presenced/presenced/internal/pgtest"
	"github.com/presenced/presenced/metrics/metricstest"
)

// storeGauges scrapes n's store queue gauges: the writes waiting for the
// store, and 1 while the store is down.
func storeGauges(t *testing.T, n *node) (pending, down float64) {
	t.Helper()
	f := metricstest.Scrape(t, "http://"+n.addr+"/metrics")
	return f.Value(t, "presenced_store_pending_writes"), f.Value(t, "presenced_store_down")
}

// TestStoreGaugesShowAnOutage cuts a node off its database and reads
// presenced_store_down and presenced_store_pending_writes: they show the
// outage while the node answers from memory, and go back to 0 once the
// queue has reached the database.
func TestStoreGaugesShowAnOutage(t *testing.T) {
	direct, proxy, n := proxiedNode(t, "gauges")
	dial(t, n, 2, "bob")
	if pending, down := storeGauges(t, n); down != 0 {
		t.Fatalf("before the partition: presenced_store_down %v (pending %v), want 0", down, pending)
	}

	proxy.Blackhole()
	for wait := 1; wait <= 3; wait++ {
		body := `{"is_busy":true,"wait_time":` + strconv.Itoa(wait) + `}`
		if code, answer := rest(t, n, http.MethodPut, "/users/me/status", 2, "bob", body); code != http.StatusOK {
			t.Fatalf("PUT %d during the partition: %d %s", wait, code, answer)
		}
	}
	// The PUTs were answered from memory, so the hub holds the store down
	// and the three changes wait in its queue: the metrics say so at once.
	if pending, down := storeGauges(t, n); pending < 3 || down != 1 {
		t.Fatalf("during the partition: presenced_store_pending_writes %v, presenced_store_down %v; want at least 3 and 1", pending, down)
	}

	proxy.Restore()
	pgtest.WaitUntil(t, direct, `SELECT coalesce(bool_and(wait_time = 3), false) FROM presence_status WHERE user_id = 2`)
	deadline := time.Now().Add(60 * time.Second)
	for {
		// A last_seen flush may be on its way at any time; the changes of
		// the outage are not.
		pending, down := storeGauges(t, n)
		if down == 0 && pending <= 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("60s after the partition: presenced_store_pending_writes %v, presenced_store_down %v; want the queue empty and 0", pending, down)
		}
		<-time.After(100 * time.Millisecond)
	}
}
