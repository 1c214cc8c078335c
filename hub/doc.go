// Package hub owns presence: who is online, who is busy, which sessions
// watch whom, and the rule that turns connections and heartbeats into an
// online or offline status.
//
// # Concurrency
//
// All state lives in one goroutine started by [Hub.Run]. Every exported
// method of [Hub] sends a request to that goroutine and waits for its
// answer, so callers never touch the maps and need no locks; the
// exceptions are [Hub.Touch], which does not wait, and [Hub.Counts],
// which reads counters the hub goroutine keeps. The hub never
// blocks on a client: events go into each [Session]'s bounded queue, and a
// session whose queue is full is closed with [CloseSlowConsumer] instead of
// being waited for.
//
// Nor does it block on its store. [Hub.Run] owns two more goroutines and
// stops them before it returns: the writer, which takes changes from its
// queue in order, calls the [Store] and posts the answers back to the hub
// goroutine, numbered by the jobs they answer, which only then broadcasts
// (so a change is stored before watchers hear of it); and, in a cluster,
// the [Feed], whose changes (other nodes', the store's own sweeps, and the
// echo of this node's, skipped by version) reach the hub goroutine on a
// channel of their own. With a [BatchStore] the writer hands over every
// change queued at the time (up to 256) in one call, so that changes that
// pile up during one commit share the next. While the store is down the
// hub decides from memory by the same rule, [Decide], and the writer
// replays the queue when it returns; queue.go explains that state machine
// and feed.go the echo.
//
// The hub knows nothing of HTTP, WebSocket framing or SQL. Transports
// drive it through [Hub.Connect], [Session] and the request methods;
// storage implements [Store].
package hub
