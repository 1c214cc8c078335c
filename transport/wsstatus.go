package transport

import (
	"context"
	"encoding/json"
	"errors"
	"sync"
	"time"

	"github.com/presenced/presenced/hub"
)

// statusQueue carries one socket's set_status messages to the hub. A
// status is state, not a stream of commands: while one change is on its
// way to the store, the ones that arrive meanwhile are merged into one
// (the latest wins), and each of them is answered with the status that
// results once it is applied. So a client that sends a burst of updates
// costs one or two writes, and the last one always wins.
//
// The reader queues; an applier goroutine, started when something is
// queued and ended when nothing is, applies. The reader, ending, stops
// the queue: what was not yet handed to the hub is dropped unanswered
// (the client was never told it was applied, and resends it on its next
// connection), and the stop waits for what was handed, so that a change
// the client makes next over another connection comes after it.
type statusQueue struct {
	mu      sync.Mutex
	pending []pendingStatus // in order; consecutive ones merged where that is exact
	// slow says that a message in pending came over the message rate: the
	// applier then waits one message interval (at most a second) before
	// it applies them, so that a flood costs the store no more writes
	// than the rate.
	slow    bool
	running chan struct{} // closed when the applier ends; nil while none runs
	quit    chan struct{} // closed by stopStatuses: the applier's wait ends
	stopped bool
}

// pendingStatus is one update and the messages it answers.
type pendingStatus struct {
	update hub.StatusUpdate
	ids    []json.RawMessage // nil entries: messages without an id
}

// queueStatus queues an update; over says it came over the message rate.
func (c *conn) queueStatus(up hub.StatusUpdate, id json.RawMessage, over bool) {
	q := &c.status
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.stopped {
		return
	}
	if n := len(q.pending); n > 0 {
		if merged, ok := q.pending[n-1].update.Then(up); ok {
			q.pending[n-1].update = merged
			q.pending[n-1].ids = appendID(q.pending[n-1].ids, id)
		} else {
			q.pending = append(q.pending, pendingStatus{update: up, ids: appendID(nil, id)})
		}
	} else {
		q.pending = append(q.pending, pendingStatus{update: up, ids: appendID(nil, id)})
	}
	q.slow = q.slow || over
	if q.running == nil {
		q.running = make(chan struct{})
		if q.quit == nil {
			q.quit = make(chan struct{})
		}
		done, quit := q.running, q.quit
		c.s.conns.Go(func() { c.applyStatuses(done, quit) })
	}
}

// appendID adds id to the messages to answer; messages without an id get
// one answer between them.
func appendID(ids []json.RawMessage, id json.RawMessage) []json.RawMessage {
	if id == nil {
		for _, have := range ids {
			if have == nil {
				return ids
			}
		}
	}
	return append(ids, id)
}

// applyStatuses is the applier: it hands the queued updates to the hub,
// in order, until none is left or the queue is stopped.
func (c *conn) applyStatuses(done, quit chan struct{}) {
	q := &c.status
	defer close(done)
	for {
		q.mu.Lock()
		if q.stopped || len(q.pending) == 0 {
			q.running = nil
			q.mu.Unlock()
			return
		}
		next, slow := q.pending[0], q.slow
		q.pending = q.pending[1:]
		if len(q.pending) == 0 {
			q.pending, q.slow = nil, false
		}
		q.mu.Unlock()
		if slow && !c.pause(quit) {
			continue // stopped meanwhile: the loop ends it
		}
		st, err := c.s.hub.SetStatus(context.Background(), hub.StatusRequest{
			Client: hub.Client{UserID: c.id.UserID, Username: c.id.Username, Device: c.sess.Device},
			Update: next.update,
		})
		for _, id := range next.ids {
			var reply []byte
			switch {
			case err == nil:
				reply = encode(statusReply{Type: "status", ID: id, Status: toStatusJSON(st)})
			case errors.Is(err, hub.ErrUnavailable):
				reply = encode(simpleReply{Type: "error", ID: id, Detail: "storage is unavailable; the change was not made, try again later"})
			default:
				return // the hub has stopped; the socket is closing
			}
			// A full queue means a slow reader, whom the hub's next
			// broadcast closes; the answer is lost with the socket.
			c.sess.Send(hub.Message{Data: reply})
		}
	}
}

// pause waits one message interval (at most a second: a status must not
// wait long whatever the rate), or less if the queue is stopped; false
// means it was.
func (c *conn) pause(quit chan struct{}) bool {
	t := time.NewTimer(min(time.Second, time.Duration(float64(time.Second)/c.s.cfg.MessagesPerSecond)))
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-quit:
		return false
	}
}

// stopStatuses drops what waits and returns once the applier has handed
// its change to the hub. The reader calls it as the socket ends.
func (c *conn) stopStatuses() {
	q := &c.status
	q.mu.Lock()
	if q.stopped {
		q.mu.Unlock()
		return
	}
	q.stopped, q.pending = true, nil
	running := q.running
	if q.quit != nil {
		close(q.quit)
	}
	q.mu.Unlock()
	if running != nil {
		<-running
	}
}
