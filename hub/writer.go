package hub

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"
)

// maxBatch bounds the changes one BatchStore call carries, and so the
// time one commit holds its users' rows and the size of one retry.
const maxBatch = 256

// job is one write waiting for the store. The hub creates it and reads
// its result; the writer only runs it.
type job struct {
	// seq numbers the jobs in the order queued, from 1 without a gap:
	// the writer reports by it which jobs it answers.
	seq      uint64
	op       Op         // when lastSeen is nil
	made     time.Time  // when the hub queued op
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

// withAge returns j's op with its Age: how long it has waited, which a
// replay after an outage makes long.
func (j *job) withAge() Op {
	op := j.op
	op.Age = time.Since(j.made)
	return op
}

// writer is the goroutine that talks to the store, so that the hub
// goroutine never waits on I/O. It runs jobs in the order queued, which
// keeps each user's changes in order, and retries what the store cannot
// take now until it can. With a BatchStore it hands over every change
// queued at the head at once (a last_seen flush goes alone, in its turn),
// so that changes that pile up while one commit runs share the next.
type writer struct {
	store   Store
	batch   BatchStore    // store, when it is one; nil otherwise
	timeout time.Duration // bound on one store call
	// report runs on the writer goroutine after each attempt at the jobs
	// at the head of the queue, first being the sequence number of the
	// oldest: with an answer per job, or with the error of an outage
	// (answers nil), after which the jobs stay queued and are tried again.
	// The hub checks first against the head of its own copy of the queue.
	report func(first uint64, answers []Applied, unavailable error)

	mu    sync.Mutex
	queue []*job
	wake  chan struct{} // capacity 1: the queue is not empty
}

func newWriter(store Store, timeout time.Duration) *writer {
	w := &writer{store: store, timeout: timeout, wake: make(chan struct{}, 1)}
	w.batch, _ = store.(BatchStore)
	return w
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

// next returns the jobs to run together: a last_seen flush alone, or the
// changes before the next flush, up to maxBatch (one without a
// BatchStore). The slice is new, so that pop may clear the queue's
// entries.
func (w *writer) next() []*job {
	w.mu.Lock()
	defer w.mu.Unlock()
	var buf []*job
	limit := 1
	if w.batch != nil {
		limit = maxBatch
	}
	for _, j := range w.queue {
		if len(buf) == limit || (j.lastSeen != nil && len(buf) > 0) {
			break
		}
		buf = append(buf, j)
		if j.lastSeen != nil {
			break
		}
	}
	return buf
}

func (w *writer) pop(n int) {
	w.mu.Lock()
	clear(w.queue[:n])
	w.queue = w.queue[n:]
	if len(w.queue) == 0 {
		w.queue = nil // let a long backlog's array go
	}
	w.mu.Unlock()
}

// run writes until ctx is done. A store outage is retried with backoff
// from 100ms up to 5s; the jobs stay at the head so that later ones wait,
// and each retry takes whatever has queued behind them too.
func (w *writer) run(ctx context.Context) {
	backoff := 100 * time.Millisecond
	for {
		select {
		case <-ctx.Done():
			return
		case <-w.wake:
		}
		for jobs := w.next(); len(jobs) > 0; jobs = w.next() {
			if w.attempt(ctx, jobs) {
				w.pop(len(jobs))
				backoff = 100 * time.Millisecond
				continue
			}
			t := time.NewTimer(backoff)
			select {
			case <-ctx.Done():
				t.Stop()
				return
			case <-t.C:
			}
			backoff = min(2*backoff, 5*time.Second)
		}
	}
}

// attempt runs jobs once and reports the outcome; false means the store
// was unavailable (or ctx ended) and the jobs stay queued.
func (w *writer) attempt(ctx context.Context, jobs []*job) bool {
	answers, err := w.call(ctx, jobs)
	if ctx.Err() != nil {
		return false
	}
	if err != nil && unavailable(ctx, err) {
		w.report(jobs[0].seq, nil, err)
		return false
	}
	if err != nil { // final for the whole batch
		answers = make([]Applied, len(jobs))
		for i := range answers {
			answers[i].Err = err
		}
	}
	w.report(jobs[0].seq, answers, nil)
	return true
}

// unavailable reports whether err means the store may take the same
// write later: an outage, or a call that ran out of time while the
// writer still runs.
func unavailable(ctx context.Context, err error) bool {
	return errors.Is(err, ErrUnavailable) || (errors.Is(err, context.DeadlineExceeded) && ctx.Err() == nil)
}

// call makes one store call for jobs. It returns an answer per job, or
// the error of the call as a whole; a single job's final error is its
// answer.
func (w *writer) call(ctx context.Context, jobs []*job) ([]Applied, error) {
	cctx, cancel := context.WithTimeout(ctx, w.timeout)
	defer cancel()
	if len(jobs) > 1 {
		ops := make([]Op, len(jobs))
		for i, j := range jobs {
			ops[i] = j.withAge()
		}
		answers, err := w.batch.ApplyBatch(cctx, ops)
		if err == nil && len(answers) != len(ops) {
			err = fmt.Errorf("store answered %d of %d changes", len(answers), len(ops))
		}
		return answers, err
	}
	var a Applied
	if j := jobs[0]; j.lastSeen != nil {
		a.Err = w.store.SaveLastSeen(cctx, j.lastSeen)
	} else {
		a.Record, a.Err = w.store.Apply(cctx, j.withAge())
	}
	if a.Err != nil && unavailable(ctx, a.Err) {
		return nil, a.Err
	}
	return []Applied{a}, nil
}
