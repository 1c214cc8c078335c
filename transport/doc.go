// Package transport serves the hub over HTTP: the seed API (both path
// families), the WebSocket endpoint /ws, the static demo, and the
// operator's endpoints: /healthz, /readyz and an access log line per
// request with its X-Request-ID. Service tokens (see [Identity]) act for
// users at /users/{user_id}/status.
//
// # The seed API
//
// The seed API is the REST API of presence and status that apps in the
// field already call, as the service presenced took over defined it:
// GET, PUT and PATCH /users/me/status (and /both/status/me), POST
// /users/me/heartbeat (and /both/status/heartbeat), GET
// /users/{user_id}/presence and GET /users/presence?user_ids=. Its paths,
// JSON fields, time format and error bodies ({"detail": "..."}, texts
// and all: see seedError) are kept to the letter, so that those apps
// work unchanged; what presenced adds (busy_since, last_seen_visible,
// device ids, /ws) comes beside them. Comments here that say "as the
// seed API" mean that a behaviour is kept for those apps.
//
// # Concurrency
//
// Each WebSocket connection runs two goroutines, both started by the
// upgrade handler, which then returns: the reader, which handles client
// messages, and the writer, the only one that writes data frames
// (packing queued events into one frame) and the one that closes the
// socket; the writer runs only while the socket has something to write. While set_status updates wait, a third, the applier, hands
// them to the hub one merged update at a time; the reader stops it, and
// waits for it, before it ends. Under a [WatchPolicy] whose answers expire
// ([CallbackPolicy]), a fourth, the checker, started by the first
// subscribe that needs it, asks the policy again when a subscription's
// answer expires and drops what it now refuses; the socket's context ends
// it, and the reader waits for it too. All are tracked by the Server;
// [Server.Wait] returns when all have ended.
//
// Only the reader reads from the socket, the client's answer to a close
// frame included, and, once both run, only the writer closes it. The
// reader ends by setting the close code it chose and the replies still
// queued, then closing readerDone and waking the writer with
// [hub.Session.Wake] (the writer waits on the session's Ready channel
// alone, and runs only while there is something to write: each Wake starts
// it when none runs, [hub.Session.OnWake]); the writer waits for readerDone
// before it sends them and closes, and, after a close frame of its own, to
// let the reader take the client's answer.
//
// Who may read whom is decided here, not in the hub: the [WatchPolicy]
// filters the ids of every presence request and subscribe, and the hub
// only ever sees the allowed ones. A [CallbackPolicy] is safe for
// concurrent use; its requests run on the goroutine that asks (a REST
// handler, a socket's reader or checker), bounded by its timeout.
package transport
