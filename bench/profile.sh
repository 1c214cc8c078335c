#!/usr/bin/env bash
# Profiles presenced during one fan-out case of `bench/run.sh versus`: a
# fresh server with -admin-addr, the case run against it, and while the
# changes flow a CPU profile and then a scheduler trace from /debug/pprof
# on the admin listener. Usage:
#
#   bench/profile.sh CASE [DIR]     CASE: fanout1k-100 fanout10k-5 fanout10k-20 fanout10k-20x20 mesh5k
#
# DIR (default /tmp/presenced-profile-CASE) receives cpu.pprof, trace.out,
# bench.json (the tool's line), metrics.before and metrics.after (the
# admin listener's /metrics), and summary.txt: per delivery the bytes
# allocated, the collections and the server's CPU, how long the goroutines
# on a change's way waited to run (bench/tracewait), and the top of the
# profile.
# Read the trace with `go tool trace DIR/trace.out`. SERVER_ENV (e.g.
# GOGC=200) is passed to the server.
set -euo pipefail
cd "$(dirname "$0")/.."
case=${1:?usage: bench/profile.sh CASE [DIR]}
dir=${2:-/tmp/presenced-profile-$case}
PROFILE_SECONDS=${PROFILE_SECONDS:-4}
TRACE_SECONDS=${TRACE_SECONDS:-2}
case $case in
fanout1k-100) args=(-scenario fanout -n 1000 -rate 100 -changes 1000) ;;
fanout10k-5) args=(-scenario fanout -n 10000 -rate 5 -changes 50) ;;
fanout10k-20) args=(-scenario fanout -n 10000 -rate 20 -changes 200) ;;
	fanout10k-20x20) args=(-scenario fanout -n 10000 -rate 20 -publishers 20 -changes 200) ;;
mesh5k) args=(-scenario mesh -n 5000 -watch 20 -period 5s -changes 3) ;;
*) echo "unknown case $case" >&2; exit 2 ;;
esac
mkdir -p "$dir"
SECRET=profile-secret-$(date +%s)-0123456789abcdef
PORT=${PORT:-18380}
ADMIN=127.0.0.1:$((PORT + 1))
BIN=$(mktemp -d)
SERVER=
cleanup() {
	[ -z "$SERVER" ] || { kill "$SERVER" 2>/dev/null || true; wait "$SERVER" 2>/dev/null || true; }
	rm -rf "$BIN"
}
trap cleanup EXIT
go build -o "$BIN/presenced" ./cmd/presenced
go build -o "$BIN/presence-bench" ./cmd/presence-bench
env ${SERVER_ENV:-} PRESENCE_JWT_SECRET=$SECRET "$BIN/presenced" -addr "127.0.0.1:$PORT" -admin-addr "$ADMIN" -log-level warn \
	-max-sockets-per-second-per-ip 0 -max-sockets-per-second 0 -max-messages-per-second 0 -max-requests-per-second 0 2>"$dir/server.log" &
SERVER=$!
for _ in $(seq 100); do curl -fs "http://$ADMIN/healthz" >/dev/null 2>&1 && break; sleep 0.1; done
curl -fs "http://$ADMIN/metrics" >"$dir/metrics.before"
"$BIN/presence-bench" -addr "127.0.0.1:$PORT" -jwt-secret "$SECRET" -pid "$SERVER" -label "$case" "${args[@]}" \
	>"$dir/bench.json" 2>"$dir/bench.err" &
tool=$!
# The profiles start once the changes do: the tool says when.
for _ in $(seq 600); do grep -q "changes start" "$dir/bench.err" && break; sleep 0.1; done
sleep 1
curl -fs "http://$ADMIN/debug/pprof/profile?seconds=$PROFILE_SECONDS" >"$dir/cpu.pprof"
curl -fs "http://$ADMIN/debug/pprof/trace?seconds=$TRACE_SECONDS" >"$dir/trace.out"
wait "$tool" || echo "the tool failed; its line says how far it got" >&2
curl -fs "http://$ADMIN/metrics" >"$dir/metrics.after"
metric() { awk -v m="$1" '$1 == m { print $2 }' "$2"; }
delivered=$(grep -o '"delivered":[0-9]*' "$dir/bench.json" | cut -d: -f2)
{
	echo "case $case, load $(cut -d' ' -f1-3 /proc/loadavg), SERVER_ENV=${SERVER_ENV:-}"
	grep -o '"sent":[0-9]*,"expected":[0-9]*,"delivered":[0-9]*,"lost":[0-9]*' "$dir/bench.json" || true
	grep -o '"latency":{[^}]*}' "$dir/bench.json" | head -1 || true
	grep -o '"cpu":{[^}]*}' "$dir/bench.json" || true
	awk -v a="$(metric go_memstats_alloc_bytes_total "$dir/metrics.before")" -v b="$(metric go_memstats_alloc_bytes_total "$dir/metrics.after")" \
		-v g0="$(metric go_gc_duration_seconds_count "$dir/metrics.before")" -v g1="$(metric go_gc_duration_seconds_count "$dir/metrics.after")" \
		-v d="$delivered" 'BEGIN { printf "allocated %.0f B per delivery, %d collections over %d deliveries (whole run, connecting included)\n", (b - a) / d, g1 - g0, d }'
	echo "scheduler waits during the trace (bench/tracewait):"
	go tool trace -d=parsed "$dir/trace.out" 2>/dev/null | go run ./bench/tracewait
	go tool pprof -top -nodecount 40 "$BIN/presenced" "$dir/cpu.pprof" 2>/dev/null
} >"$dir/summary.txt"
cp "$BIN/presenced" "$dir/presenced"
echo "$dir/summary.txt" >&2
