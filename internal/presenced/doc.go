// Package presenced builds one presenced node from Options and runs it:
// the store (memory, or PostgreSQL), the hub, the token verifier, the
// REST and WebSocket transport, the metrics, the webhook sender and the
// listeners. cmd/presenced turns its flags into Options and calls it, and
// so does every test that needs a server, so that the tests run the
// wiring the binary runs.
//
// # Concurrency
//
// Open builds the parts and listens; of them only the PostgreSQL store
// runs a goroutine of its own (its lease), which its Close stops. Run
// starts every other long-lived goroutine (the hub, the webhook sender,
// one per listener), is their one owner, and returns only once each has
// ended and the store is closed. StopHub may be called from any goroutine
// while Run runs; Close, after Run has returned or instead of it.
package presenced
