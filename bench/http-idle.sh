#!/usr/bin/env bash
# A flood of idle HTTP connections against one presenced with its default
# limits: CONNS connections from loopback, split over PROCS load-tool
# processes (each process may hold under 20,000 files here), each makes one
# request and then waits, kept alive, without a token. Meanwhile every
# tool probes /healthz and GET /users/me/status on fresh connections once
# a second. Usage:
#
#   bench/http-idle.sh            CONNS=20000 PROCS=2 HOLD=150s by default
#
# One JSON line per tool process goes to stdout (presence-bench's
# http-idle scenario: opened, closed_by_server, closed_after, still_open,
# probes, probe_failures, probe_latency, server RSS), then one line of the
# server's file count and RSS at the peak. Extra flags for the server go
# in SERVER_FLAGS (e.g. "-idle-timeout 30s").
set -euo pipefail
cd "$(dirname "$0")/.."

CONNS=${CONNS:-20000}
PROCS=${PROCS:-2}
HOLD=${HOLD:-150s}
PORT=${PORT:-18091}
SECRET=bench-secret-$$-0123456789abcdef0123

WORK=$(mktemp -d)
SERVER=""
cleanup() {
	if [ -n "$SERVER" ]; then kill "$SERVER" 2>/dev/null || true; wait "$SERVER" 2>/dev/null || true; fi
	rm -rf "$WORK"
}
trap cleanup EXIT

go build -o "$WORK/presenced" ./cmd/presenced
go build -o "$WORK/presence-bench" ./cmd/presence-bench
# shellcheck disable=SC2086
PRESENCE_JWT_SECRET=$SECRET "$WORK/presenced" -addr "127.0.0.1:$PORT" -log-level warn ${SERVER_FLAGS:-} 2>"$WORK/server.log" &
SERVER=$!
for _ in $(seq 100); do curl -sf "http://127.0.0.1:$PORT/healthz" >/dev/null && break; sleep 0.1; done

per=$((CONNS / PROCS))
pids=()
for p in $(seq 0 $((PROCS - 1))); do
	# Each process dials from its own eight source addresses.
	"$WORK/presence-bench" -scenario http-idle -addr "127.0.0.1:$PORT" -jwt-secret "$SECRET" -pid "$SERVER" \
		-n "$per" -hold "$HOLD" -sources 8 -user-base $((1000000 + p)) -quiet -label "process $p of $PROCS" >"$WORK/out.$p" &
	pids+=($!)
done
peak_fds=0 peak_rss=0
while kill -0 "${pids[0]}" 2>/dev/null; do
	fds=$(ls /proc/$SERVER/fd 2>/dev/null | wc -l)
	rss=$(awk '/VmRSS/ {print $2 * 1024}' /proc/$SERVER/status)
	[ "$fds" -gt "$peak_fds" ] && peak_fds=$fds
	[ "$rss" -gt "$peak_rss" ] && peak_rss=$rss
	sleep 1
done
for pid in "${pids[@]}"; do wait "$pid"; done
cat "$WORK"/out.*
echo "{\"server_peak_open_files\":$peak_fds,\"server_peak_rss_bytes\":$peak_rss,\"server_log_lines\":$(wc -l <"$WORK/server.log")}"
grep -c "closed the longest-waiting idle connections" "$WORK/server.log" | sed 's/^/eviction log lines: /' >&2 || true
