// Command tracewait reads a Go execution trace as `go tool trace
// -d=parsed` prints it and says, for the goroutines on a change's way
// through presenced, how long each waited between being made runnable and
// running: the scheduler's share of a delivery's latency.
//
//	go tool trace -d=parsed trace.out | go run ./bench/tracewait
//
// bench/profile.sh takes such a trace during a fan-out case. A goroutine's
// role is read from the stack of its own first blocking event: the socket
// reader, the set_status applier, the hub, the store writer and the socket
// writer. It also counts the hub's preemptions, after which it waits
// behind every goroutine its broadcast made runnable.
package main

import (
	"bufio"
	"fmt"
	"io"
	"math"
	"os"
	"regexp"
	"slices"
	"strings"
)

func main() {
	if err := run(os.Stdin, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "tracewait:", err)
		os.Exit(1)
	}
}

// roles are matched, in order, against the frames of the stack of a
// goroutine's own event; the first match names it. The store writer runs
// in a closure of Hub.Run, so it is looked for first.
var roles = []struct{ name, frame string }{
	{"store writer", "hub.(*writer).run @"},
	{"hub", "hub.(*Hub).Run @"},
	{"status applier", "transport.(*conn).applyStatuses @"},
	{"socket writer", "transport.(*conn).writeLoop @"},
	{"socket reader", "transport.(*conn).readLoop @"},
}

var transition = regexp.MustCompile(`G=(-?\d+) StateTransition Time=(\d+) GoID=(\d+) (\w+)->(\w+) Reason="([^"]*)"`)

func run(in io.Reader, out io.Writer) error {
	role := map[string]string{}    // goroutine → role
	runnable := map[string]int64{} // goroutine → when it became runnable
	waits := map[string][]int64{}  // goroutine → its waits, ns
	preempted := map[string]int{}  // goroutine → preemptions
	var pending string             // the goroutine whose own event's stack follows
	var stack strings.Builder
	flush := func() {
		if pending != "" && role[pending] == "" {
			for _, r := range roles {
				if strings.Contains(stack.String(), r.frame) {
					role[pending] = r.name
					break
				}
			}
		}
		pending = ""
		stack.Reset()
	}
	sc := bufio.NewScanner(in)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "\t") || strings.HasSuffix(line, "Stack=") {
			if pending != "" {
				stack.WriteString(line)
			}
			continue
		}
		flush()
		m := transition.FindStringSubmatch(line)
		if m == nil {
			continue
		}
		cur, g, from, to, reason := m[1], m[3], m[4], m[5], m[6]
		var t int64
		fmt.Sscan(m[2], &t)
		switch {
		case to == "Runnable":
			runnable[g] = t
			if reason == "preempted" {
				preempted[g]++
			}
		case from == "Runnable" && to == "Running":
			if at, ok := runnable[g]; ok {
				waits[g] = append(waits[g], t-at)
				delete(runnable, g)
			}
		}
		if cur == g {
			pending = g // the stack that follows is this goroutine's own
		}
	}
	flush()
	if err := sc.Err(); err != nil {
		return err
	}
	byRole := map[string][]int64{}
	pre := map[string]int{}
	for g, r := range role {
		byRole[r] = append(byRole[r], waits[g]...)
		pre[r] += preempted[g]
	}
	fmt.Fprintln(out, "| goroutine | made runnable | wait p50 | p90 | p99 | max | preempted |")
	fmt.Fprintln(out, "|---|---|---|---|---|---|---|")
	for _, r := range roles {
		w := byRole[r.name]
		if len(w) == 0 {
			continue
		}
		slices.Sort(w)
		// The nearest rank: the smallest wait at or above a share q of them.
		at := func(q float64) string { return us(w[max(0, int(math.Ceil(q*float64(len(w))))-1)]) }
		fmt.Fprintf(out, "| %s | %d | %s | %s | %s | %s | %d |\n", r.name, len(w), at(0.5), at(0.9), at(0.99), us(w[len(w)-1]), pre[r.name])
	}
	return nil
}

// us prints nanoseconds as µs or ms.
func us(ns int64) string {
	if ns >= 1e6 {
		return fmt.Sprintf("%.1f ms", float64(ns)/1e6)
	}
	return fmt.Sprintf("%d µs", ns/1e3)
}
