package transport

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/presenced/presenced/hub"
)

// watchState is what the watch policy granted one socket, so that a
// permission withdrawn later ends the subscription it allowed. Under
// OpenPolicy nothing is tracked. Under ClaimPolicy a refresh holds the
// subscriptions to the new token's claim at once. Under a policy whose
// answers expire (CallbackPolicy), a goroutine of the socket, the
// checker, asks again about each subscription when its answer expires,
// and drops those now refused, or all whose answers expired if the
// policy cannot answer: a socket never keeps a permission for longer
// than the policy's answer holds.
//
// The reader subscribes, unsubscribes and refreshes; the checker drops.
// mu orders them: each holds it across its own hub call, but neither
// holds it while the policy is asked, which may take the backend's time.
type watchState struct {
	mu  sync.Mutex
	who Identity // the token in force; a refresh replaces it
	// subs are the granted subscriptions of other users, each with the
	// grant's sequence number (so that the checker does not drop a
	// subscription granted again while it asked) and its expiry.
	subs map[int64]grant
	seq  uint64
	// wake tells the checker that an earlier expiry may be due. Capacity
	// 1; a send never blocks.
	wake    chan struct{}
	checker chan struct{} // closed when the checker ends; nil while none was started
}

type grant struct {
	seq   uint64
	until time.Time // zero: as long as the token
}

// subscribe asks the policy about ids and subscribes the socket to those
// it allows; the others are left out as unknown ids are, and the
// snapshot holds only known, allowed users. false ends the connection.
func (c *conn) subscribe(ids []int64, id json.RawMessage) bool {
	w := &c.watch
	w.mu.Lock()
	who := w.who
	w.mu.Unlock()
	allowed, until, err := c.s.readable(c.ctx, who, ids)
	if err != nil {
		// Not the client's fault: answered, but not counted as a bad
		// message.
		return c.send(encode(simpleReply{Type: "error", ID: id, Detail: err.Error() + "; nothing was subscribed, try again later"}))
	}
	reply := func(ps []hub.Presence) hub.Message {
		return hub.Message{Data: encodeSubscribed(id, ps)}
	}
	if c.s.openWatch {
		return c.hubSubscribed(c.s.hub.Subscribe(c.ctx, c.sess, allowed, reply), id)
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if err := c.s.hub.Subscribe(c.ctx, c.sess, allowed, reply); err != nil {
		return c.hubSubscribed(err, id)
	}
	if w.subs == nil {
		w.subs = make(map[int64]grant, len(allowed))
	}
	for _, u := range allowed {
		if u != who.UserID {
			w.seq++
			w.subs[u] = grant{seq: w.seq, until: until}
		}
	}
	if !until.IsZero() {
		if w.checker == nil {
			w.checker, w.wake = make(chan struct{}), make(chan struct{}, 1)
			done := w.checker
			c.s.conns.Go(func() { defer close(done); c.checkWatches() })
		}
		select {
		case w.wake <- struct{}{}:
		default:
		}
	}
	return true
}

// hubSubscribed answers the hub's refusal of a subscribe, if any.
func (c *conn) hubSubscribed(err error, id json.RawMessage) bool {
	switch {
	case errors.Is(err, hub.ErrLimit):
		return c.replyError(id, err)
	case err != nil:
		return false
	}
	return true
}

// unsubscribe ends the socket's subscriptions to ids.
func (c *conn) unsubscribe(ids []int64) error {
	if c.s.openWatch {
		return c.s.hub.Unsubscribe(c.ctx, c.sess, ids)
	}
	w := &c.watch
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, u := range ids {
		delete(w.subs, u)
	}
	return c.s.hub.Unsubscribe(c.ctx, c.sess, ids)
}

// refreshed puts a refreshed token in force. Under ClaimPolicy the
// subscriptions its watch claim no longer lists end at once; the client
// is told with an unsubscribed message.
func (c *conn) refreshed(who Identity) {
	w := &c.watch
	w.mu.Lock()
	w.who = who
	if !c.s.claimWatch || len(w.subs) == 0 {
		w.mu.Unlock()
		return
	}
	ids := make([]int64, 0, len(w.subs))
	for u := range w.subs {
		ids = append(ids, u)
	}
	allowed, _, _ := c.s.readable(c.ctx, who, ids) // ClaimPolicy answers from the token alone
	dropped := w.dropExcept(ids, allowed, nil)
	c.dropWatches(dropped)
	w.mu.Unlock()
	c.tellDropped(dropped, nil)
}

// dropExcept removes from subs the ids that allowed does not hold, unless
// seqs (when given) shows a subscription granted again since; it returns
// the removed ones. Called with mu held.
func (w *watchState) dropExcept(ids, allowed []int64, seqs []uint64) []int64 {
	ok := make(map[int64]struct{}, len(allowed))
	for _, u := range allowed {
		ok[u] = struct{}{}
	}
	var dropped []int64
	for i, u := range ids {
		g, still := w.subs[u]
		if !still || (seqs != nil && g.seq != seqs[i]) {
			continue
		}
		if _, yes := ok[u]; !yes {
			delete(w.subs, u)
			dropped = append(dropped, u)
		}
	}
	return dropped
}

// dropWatches ends the hub's subscriptions to ids. Called with mu held,
// so that a subscribe cannot come between the decision and the drop.
func (c *conn) dropWatches(ids []int64) {
	if len(ids) > 0 {
		// An error means the hub has stopped, and the socket is closing.
		_ = c.s.hub.Unsubscribe(context.Background(), c.sess, ids)
	}
}

// tellDropped tells the client which subscriptions ended, and why when
// the policy could not answer (cause).
func (c *conn) tellDropped(ids []int64, cause error) {
	if len(ids) == 0 {
		return
	}
	// A full queue means a slow reader, whom the hub's next broadcast
	// closes; the notice is lost with the socket.
	if cause != nil {
		c.sess.Send(hub.Message{Data: encode(simpleReply{Type: "error", Detail: fmt.Sprintf(
			"%v; the subscriptions to %d users could not be checked again and ended: subscribe to them again later", cause, len(ids))})})
	}
	c.sess.Send(hub.Message{Data: encode(unsubscribedReply{Type: "unsubscribed", UserIDs: ids})})
}

// checkWatches is the checker: it sleeps until the earliest answer
// expires, asks the policy again about every subscription whose answer
// has, and drops those it refuses. It ends with the socket.
func (c *conn) checkWatches() {
	w := &c.watch
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		w.mu.Lock()
		var next time.Time
		for _, g := range w.subs {
			if !g.until.IsZero() {
				next = earliest(next, g.until)
			}
		}
		w.mu.Unlock()
		// Since Go 1.23 a Reset or Stop timer delivers no stale tick.
		var due <-chan time.Time
		if next.IsZero() {
			timer.Stop()
		} else {
			timer.Reset(time.Until(next))
			due = timer.C
		}
		select {
		case <-c.ctx.Done():
			return
		case <-w.wake:
		case <-due:
			c.checkDue()
		}
	}
}

// checkDue asks the policy again about the subscriptions whose answers
// have expired.
func (c *conn) checkDue() {
	w := &c.watch
	now := time.Now()
	w.mu.Lock()
	who := w.who
	var ids []int64
	var seqs []uint64
	for u, g := range w.subs {
		if !g.until.IsZero() && !now.Before(g.until) {
			ids, seqs = append(ids, u), append(seqs, g.seq)
		}
	}
	w.mu.Unlock()
	if len(ids) == 0 {
		return
	}
	allowed, until, err := c.s.readable(c.ctx, who, ids)
	if c.ctx.Err() != nil {
		return // the socket ended while the policy was asked
	}
	w.mu.Lock()
	dropped := w.dropExcept(ids, allowed, seqs) // on error allowed is empty: all are dropped
	if err == nil {
		for i, u := range ids {
			if g, ok := w.subs[u]; ok && g.seq == seqs[i] {
				w.subs[u] = grant{seq: g.seq, until: until}
			}
		}
	}
	c.dropWatches(dropped)
	w.mu.Unlock()
	c.tellDropped(dropped, err)
}

// stopWatches ends the checker, if one runs, and waits for it. The
// reader calls it as the socket ends.
func (c *conn) stopWatches() {
	c.cancel()
	w := &c.watch
	w.mu.Lock()
	done := w.checker
	w.mu.Unlock()
	if done != nil {
		<-done
	}
}
