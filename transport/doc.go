// Package transport serves the hub over HTTP: the REST API of the seed
// (both path families), the WebSocket endpoint /ws, the static demo, and
// the operator's endpoints: /healthz, /readyz and an access log line per
// request with its X-Request-ID.
//
// # Concurrency
//
// Each WebSocket connection runs two goroutines, both started by the
// upgrade handler, which then returns: the reader, which handles client
// messages, and the writer, the only one that writes data frames
// (packing queued events into one frame) and the one that closes the
// socket. While set_status updates wait, a third, the applier, hands
// them to the hub one merged update at a time; the reader stops it, and
// waits for it, before it ends. All are tracked by the Server;
// [Server.Wait] returns when all have ended. The reader closes
// readerDone.
package transport
