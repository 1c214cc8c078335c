// Package loadgen drives a presenced server over real loopback sockets and
// measures it: how fast sockets connect and what each idle one costs the
// server, how fast and how promptly one change reaches many watchers, how
// a mesh of users watching each other behaves, and how the REST API
// compares with a bare net/http handler. cmd/presence-bench is its command
// line; BENCHMARKS.md shows how the figures were taken.
//
// # Concurrency
//
// Each scenario function owns everything it starts: one reader goroutine
// per socket, a bounded pool of connecting workers and the senders. All of
// them end, and every socket is closed, before the function returns,
// whether it succeeds, fails or its context ends. Counters shared between
// readers are atomic; a [Histogram] may be written from many goroutines.
//
// Every loop is bounded in count (sockets, changes, requests) and in time
// (the context, plus a deadline on each wait), and only loopback addresses
// are dialled.
package loadgen
