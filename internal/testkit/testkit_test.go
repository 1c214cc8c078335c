package testkit

import (
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// recorder is a testing.TB that records a failure instead of ending the
// test, so that the failing paths can be tested.
type recorder struct {
	testing.TB
	failed string
}

func (r *recorder) Helper() {}
func (r *recorder) Fatalf(format string, args ...any) {
	r.failed = fmt.Sprintf(format, args...)
	panic(r)
}

// fails runs f against a recorder and says whether it failed.
func fails(t *testing.T, f func(testing.TB)) (failed bool) {
	r := &recorder{TB: t}
	defer func() {
		if p := recover(); p != nil && p != any(r) {
			panic(p)
		}
		failed = r.failed != ""
	}()
	f(r)
	return false
}

func TestEventuallyWaitsForItsCondition(t *testing.T) {
	n := 0
	Eventually(t, 10*time.Second, func() error {
		if n++; n < 3 {
			return errors.New("not yet")
		}
		return nil
	})
	if n != 3 {
		t.Fatalf("cond asked %d times, want 3", n)
	}
	if !fails(t, func(tb testing.TB) { Eventually(tb, 0, func() error { return errors.New("never") }) }) {
		t.Fatal("a condition that never holds did not fail the test")
	}
}

func TestBufferAwaitsAWrite(t *testing.T) {
	var b Buffer
	var wg sync.WaitGroup
	written := b.Written()
	wg.Go(func() {
		<-written // the test waits before the line is written
		_, _ = b.Write([]byte("ready\n"))
	})
	_, _ = b.Write([]byte("starting\n"))
	got := b.Await(t, 10*time.Second, "ready line", func(s string) bool { return strings.Contains(s, "ready") })
	wg.Wait()
	if got != "starting\nready\n" {
		t.Fatalf("Await returned %q", got)
	}
	if !fails(t, func(tb testing.TB) { b.Await(tb, 0, "a line never written", func(string) bool { return false }) }) {
		t.Fatal("a line never written did not fail the test")
	}
}
