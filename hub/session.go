package hub

import (
	"sync"
	"sync/atomic"
	"time"
)

// Message is one encoded message waiting to be written to a client.
type Message struct {
	// Data is a complete JSON object. It may be shared with other
	// sessions and must not be modified.
	Data []byte
	// Event marks a presence event, which a writer may pack with other
	// events into one JSON array.
	Event bool
	// At is when the hub decided the change an event tells of, so that
	// the writer can measure how long it took to reach the client. Zero
	// for other messages.
	At time.Time
}

// Session is one live client connection of a user. The hub creates it in
// [Hub.Connect]; the transport drains its queue with [Session.Next] and
// reports its end with [Hub.Disconnect].
type Session struct {
	// ID is unique within the hub's lifetime.
	ID uint64
	// UserID is the user the session belongs to.
	UserID int64
	// Username is the name from the session's credentials.
	Username string
	// Device is the client's device id; empty when it sent none.
	Device string

	maxQueueBytes int

	mu          sync.Mutex
	queue       []Message
	queuedBytes int
	closed      bool
	reason      CloseReason

	ready  chan struct{} // capacity 1: a message is waiting, the session closed, or Wake was called
	onWake atomic.Pointer[func()]
	done   chan struct{} // closed once by close()

	// Owned by the hub goroutine.
	subs map[int64]struct{}
}

func newSession(id uint64, c Client, maxQueueBytes int) *Session {
	return &Session{
		ID:            id,
		UserID:        c.UserID,
		Username:      c.Username,
		Device:        c.Device,
		maxQueueBytes: maxQueueBytes,
		ready:         make(chan struct{}, 1),
		done:          make(chan struct{}),
	}
}

// Ready is signalled when messages are waiting in the queue, when the
// session is closed, and when [Session.Wake] is called. A transport's
// writer can wait on it alone: it wakes once per delivery, and a select
// over a channel for each of its other reasons costs far more than one
// channel does.
func (s *Session) Ready() <-chan struct{} { return s.ready }

// Wake signals Ready without queueing anything, for the transport's own
// reasons to run its writer: a ping that is due, the reader's end. It then
// runs the function given to [Session.OnWake], if any.
func (s *Session) Wake() {
	select {
	case s.ready <- struct{}{}:
	default:
	}
	if fn := s.onWake.Load(); fn != nil {
		(*fn)()
	}
}

// OnWake makes fn run after every signal of Ready (a message queued, the
// session closed, a Wake), on the goroutine that signalled: the hub's for
// its messages and its close. A transport that runs its writer only while
// there is something to write starts it there; fn must not block.
func (s *Session) OnWake(fn func()) { s.onWake.Store(&fn) }

// Done is closed when the hub ends the session; [Session.Reason] says why.
func (s *Session) Done() <-chan struct{} { return s.done }

// Reason says why the hub closed the session.
func (s *Session) Reason() CloseReason {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.reason
}

// Next moves every queued message into buf and returns it. The writer
// calls it after [Session.Ready] fires.
func (s *Session) Next(buf []Message) []Message {
	s.mu.Lock()
	buf = append(buf, s.queue...)
	clear(s.queue)
	s.queue = s.queue[:0]
	s.queuedBytes = 0
	// An idle session should not keep a large backing array alive.
	if cap(s.queue) > 64 {
		s.queue = nil
	}
	s.mu.Unlock()
	return buf
}

// Send queues m for the client. It reports false when the session is
// closed or its queue is full; the caller then ends the session.
func (s *Session) Send(m Message) bool {
	s.mu.Lock()
	if s.closed || s.queuedBytes+len(m.Data) > s.maxQueueBytes {
		s.mu.Unlock()
		return false
	}
	s.queue = append(s.queue, m)
	s.queuedBytes += len(m.Data)
	s.mu.Unlock()
	s.Wake()
	return true
}

// close ends the session once; later calls do nothing.
func (s *Session) close(r CloseReason) {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return
	}
	s.closed = true
	s.reason = r
	s.queue = nil
	s.mu.Unlock()
	close(s.done)
	s.Wake()
}
