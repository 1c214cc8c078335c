// Package testkit holds the small helpers every test package needs: a
// wait for a condition that cannot be awaited, and a buffer that a
// server writes its log into while the test reads it.
package testkit

import (
	"bytes"
	"sync"
	"testing"
	"time"
)

// PollInterval is how often Eventually asks again: short, so that a wait
// ends soon after its condition holds, long enough not to busy the
// machine.
const PollInterval = 10 * time.Millisecond

// Eventually asks cond until it returns nil, every PollInterval, and
// fails the test with cond's last error if within passes first. cond
// says what it still waits for in its error; it runs on the test's
// goroutine, so it may itself fail the test at once. Use it only for a
// condition that nothing announces (another process's state, a
// database's rows); an event that a channel or a log line announces is
// awaited instead.
func Eventually(t testing.TB, within time.Duration, cond func() error) {
	t.Helper()
	deadline := time.Now().Add(within)
	tick := time.NewTicker(PollInterval)
	defer tick.Stop()
	for {
		err := cond()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("not within %v: %v", within, err)
		}
		<-tick.C
	}
}

// Buffer is a bytes.Buffer safe for a writer and readers at once: a
// server writes its log into it while the test reads. It tells waiters
// of each write, so that a test awaits a log line instead of polling for
// it. The zero value is ready to use.
type Buffer struct {
	mu      sync.Mutex
	buf     bytes.Buffer
	written chan struct{} // closed by the next write; nil while nobody waits
}

// Write appends p and wakes whoever waits for a write.
func (b *Buffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.written != nil {
		close(b.written)
		b.written = nil
	}
	return b.buf.Write(p)
}

// String returns everything written so far.
func (b *Buffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// Written returns a channel that the next write closes. Take it before
// reading, so that no write falls between the read and the wait.
func (b *Buffer) Written() <-chan struct{} {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.written == nil {
		b.written = make(chan struct{})
	}
	return b.written
}

// Await waits until ok holds for what has been written, looking again
// after each write, and returns it. It fails the test, naming what and
// showing the buffer, if within passes first.
func (b *Buffer) Await(t testing.TB, within time.Duration, what string, ok func(string) bool) string {
	t.Helper()
	deadline := time.NewTimer(within)
	defer deadline.Stop()
	for {
		written := b.Written()
		if s := b.String(); ok(s) {
			return s
		}
		select {
		case <-written:
		case <-deadline.C:
			t.Fatalf("no %s within %v; written:\n%s", what, within, b.String())
		}
	}
}
