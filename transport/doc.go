// Package transport serves the hub over HTTP: the REST API of the seed
// (both path families), the WebSocket endpoint /ws, the static demo, and
// the operator's endpoints: /healthz, /readyz and an access log line per
// request with its X-Request-ID.
//
// # Concurrency
//
// Each WebSocket connection runs two goroutines: the reader (the HTTP
// handler's own goroutine, which handles client messages) and the writer
// (the only one that writes data frames, packing queued events into one
// frame). Both are tracked by the Server; [Server.Wait] returns when all
// have ended. The writer closes the socket; the reader closes readerDone.
package transport
