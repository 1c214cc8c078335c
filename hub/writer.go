package hub

import (
	"context"
	"errors"
	"sync"
	"time"
)

// job is one write waiting for the store. The hub creates it and reads
// its result; the writer only runs it.
type job struct {
	seq      uint64
	op       Op         // when lastSeen is nil
	lastSeen []LastSeen // a flush of coalesced last_seen times
	// vouched is whether this node vouched for the user once op is
	// applied, for a decision made without the store.
	vouched bool
	// done runs on the hub goroutine with the answer, once: with the
	// store's answer, or earlier with a provisional one while the store
	// is down. Nil for writes nobody waits for.
	done        func(Record, error)
	provisional bool // answered without the store; replayed since
}

// writer is the goroutine that talks to the store, so that the hub
// goroutine never waits on I/O. It runs jobs one at a time in the order
// queued, which keeps each user's changes in order, and retries a job the
// store cannot take now until it can.
type writer struct {
	store   Store
	timeout time.Duration // bound on one store call
	// report runs on the writer goroutine after each attempt: the job, its
	// answer, and whether the store was unavailable (the job stays queued).
	report func(j *job, rec Record, err error, unavailable bool)

	mu    sync.Mutex
	queue []*job
	wake  chan struct{} // capacity 1: the queue is not empty
}

func newWriter(store Store, timeout time.Duration) *writer {
	return &writer{store: store, timeout: timeout, wake: make(chan struct{}, 1)}
}

func (w *writer) push(j *job) {
	w.mu.Lock()
	w.queue = append(w.queue, j)
	w.mu.Unlock()
	select {
	case w.wake <- struct{}{}:
	default:
	}
}

func (w *writer) head() *job {
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.queue) == 0 {
		return nil
	}
	return w.queue[0]
}

func (w *writer) pop() {
	w.mu.Lock()
	w.queue[0] = nil
	w.queue = w.queue[1:]
	if len(w.queue) == 0 {
		w.queue = nil // let a long backlog's array go
	}
	w.mu.Unlock()
}

// run writes until ctx is done. A store outage is retried with backoff
// from 100ms up to 5s; the job stays at the head so that later ones wait.
func (w *writer) run(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-w.wake:
		}
		for j := w.head(); j != nil; j = w.head() {
			if !w.do(ctx, j) {
				return
			}
			w.pop()
		}
	}
}

// do runs j until the store answers; false means ctx ended first.
func (w *writer) do(ctx context.Context, j *job) bool {
	backoff := 100 * time.Millisecond
	for {
		rec, err := w.call(ctx, j)
		unavailable := errors.Is(err, ErrUnavailable) || (err != nil && errors.Is(err, context.DeadlineExceeded) && ctx.Err() == nil)
		if ctx.Err() != nil {
			return false
		}
		w.report(j, rec, err, unavailable)
		if !unavailable {
			return true
		}
		t := time.NewTimer(backoff)
		select {
		case <-ctx.Done():
			t.Stop()
			return false
		case <-t.C:
		}
		backoff = min(2*backoff, 5*time.Second)
	}
}

func (w *writer) call(ctx context.Context, j *job) (Record, error) {
	ctx, cancel := context.WithTimeout(ctx, w.timeout)
	defer cancel()
	if j.lastSeen != nil {
		return Record{}, w.store.SaveLastSeen(ctx, j.lastSeen)
	}
	return w.store.Apply(ctx, j.op)
}
