package main

import (
	"bytes"
	"strings"
	"testing"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// A dump in the shape `go tool trace -d=parsed` prints: the hub (G7)
// blocks, is woken by another goroutine, runs 2 µs later, is preempted and
// runs again 40 ms later; a socket writer (G9) waits 5 µs once.
const dump = `M=1 P=0 G=7 StateTransition Time=1000 GoID=7 Running->Waiting Reason="select"
TransitionStack=
	runtime.selectgo @ 0x1
		/usr/local/go/src/runtime/select.go:351
	github.com/presenced/presenced/hub.(*Hub).Run @ 0x2
		/work/hub/hub.go:1
M=1 P=0 G=9 StateTransition Time=1500 GoID=9 Running->Waiting Reason="chan receive"
TransitionStack=
	github.com/presenced/presenced/transport.(*conn).writeLoop @ 0x3
		/work/transport/ws.go:1
M=1 P=0 G=5 StateTransition Time=2000 GoID=7 Waiting->Runnable Reason=""
Stack=
	github.com/presenced/presenced/transport.(*conn).writeLoop @ 0x3
M=1 P=0 G=-1 StateTransition Time=4000 GoID=7 Runnable->Running Reason=""
M=1 P=0 G=7 StateTransition Time=10000 GoID=7 Running->Runnable Reason="preempted"
M=1 P=0 G=-1 StateTransition Time=40010000 GoID=7 Runnable->Running Reason=""
M=1 P=0 G=7 StateTransition Time=40020000 GoID=9 Waiting->Runnable Reason=""
M=1 P=1 G=-1 StateTransition Time=40025000 GoID=9 Runnable->Running Reason=""
`

func TestWaitsByRole(t *testing.T) {
	var out bytes.Buffer
	if err := run(strings.NewReader(dump), &out); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		// The waker's stack (a socket writer's) does not name the hub.
		"| hub | 2 | 2 µs | 40.0 ms | 40.0 ms | 40.0 ms | 1 |",
		"| socket writer | 1 | 5 µs | 5 µs | 5 µs | 5 µs | 0 |",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, out.String())
		}
	}
	if strings.Contains(out.String(), "store writer") {
		t.Errorf("a role without goroutines has a row:\n%s", out.String())
	}
}
