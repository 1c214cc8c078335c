#!/usr/bin/env bash
# Runs the benchmarks of BENCHMARKS.md on this machine and appends one JSON
# line per run to $OUT. Usage:
#
#   bench/run.sh [suite ...]     suites: versus idle gogc latency fanout mesh rest cluster
#
# versus measures presenced and Centrifugo v6.9.1 (bench/centrifugo.sh
# builds it outside the repository once) through the same scenarios, the
# servers alternating, and `go run ./bench/compare $OUT` prints the two
# side by side. With no suite it runs all but versus and cluster. RUNS (default 3) repeats each
# figure; BENCHMARKS.md reports the median. The server runs with the
# limits that would measure the limiter rather than the server raised (see
# SERVER_FLAGS); everything else keeps its default.
set -euo pipefail
cd "$(dirname "$0")/.."

RUNS=${RUNS:-3}
OUT=${OUT:-bench/results/$(date -u +%Y-%m-%d).jsonl}
SECRET=${SECRET:-bench-secret-$(date +%s)-0123456789abcdef}
PORT=${PORT:-18080}
# Connection storms from eight source addresses, a publisher sending 100+
# changes a second on one socket, and REST traffic of 1,000 users at more
# than ten requests each per second: the default limits would refuse
# these by design, so the benchmarks lift them.
SERVER_FLAGS=(-log-level warn
	-max-sockets-per-second-per-ip 0 -max-sockets-per-second 0
	-max-messages-per-second 0 -max-requests-per-second 0)

BIN=$(mktemp -d)
SERVERS=()
cleanup() {
	for pid in "${SERVERS[@]}"; do kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; done
	rm -rf "$BIN"
}
trap cleanup EXIT
go build -o "$BIN/presenced" ./cmd/presenced
go build -o "$BIN/presence-bench" ./cmd/presence-bench
mkdir -p "$(dirname "$OUT")"
echo "results go to $OUT" >&2

# start_server PORT [flags...]: starts a node and sets PID.
start_server() {
	local port=$1; shift
	env ${SERVER_ENV:-} PRESENCE_JWT_SECRET=$SECRET "$BIN/presenced" -addr "127.0.0.1:$port" "${SERVER_FLAGS[@]}" "$@" 2>>"$BIN/server.log" &
	PID=$!
	SERVERS+=("$PID")
	await_health "http://127.0.0.1:$port/healthz" "$BIN/server.log"
}

# await_health URL LOG: waits up to 10 s for URL to answer, or shows LOG and
# stops the run.
await_health() {
	for _ in $(seq 100); do
		curl -fs "$1" >/dev/null 2>&1 && return 0
		sleep 0.1
	done
	echo "no answer from $1" >&2; cat "$2" >&2; exit 1
}

stop_server() {
	kill "$1"; wait "$1" 2>/dev/null || true
}

# start_centrifugo PORT: starts Centrifugo, configured by the tool for its
# secret (loadgen.CentrifugoConfig), and sets PID.
start_centrifugo() {
	local port=$1
	[ -n "${CENTRIFUGO:-}" ] || CENTRIFUGO=$(bench/centrifugo.sh)
	"$BIN/presence-bench" -centrifugo-config "$BIN/centrifugo-$port.json" -addr "127.0.0.1:$port" -jwt-secret "$SECRET"
	"$CENTRIFUGO" -c "$BIN/centrifugo-$port.json" 2>>"$BIN/centrifugo.log" >&2 &
	PID=$!
	SERVERS+=("$PID")
	await_health "http://127.0.0.1:$port/health" "$BIN/centrifugo.log"
}
start_presenced() { start_server "$@"; }

# bench LABEL ARGS...: one run of the tool against the single node.
bench() {
	local label=$1; shift
	"$BIN/presence-bench" -addr "127.0.0.1:$PORT" -jwt-secret "$SECRET" -label "$label" -pid "$PID" "$@" | tee -a "$OUT" ||
		echo "run failed; its line says how far it got" >&2
}

base=1000000
next_base() { base=$((base + 1000000)); }

# versus_one SERVER: one run of every compared scenario against SERVER
# (presenced or centrifugo), each labelled with its case for bench/compare.
versus_one() {
	local server=$1
	echo "== versus $server (load: $(cut -d' ' -f1-3 /proc/loadavg))" >&2
	# Memory is the figure: a fresh server on a fresh port.
	PORT=$((PORT + 1))
	"start_$server" "$PORT"
	bench idle19k -protocol "$server" -scenario idle -n 19000 -steps 1000,5000,10000 -settle 3s
	stop_server "$PID"
	PORT=$((PORT + 1))
	"start_$server" "$PORT"
	# Between cases, the sockets of the last one have closed, and presenced
	# releases their users together after its 5 s grace: a burst of
	# writes to the store that would land in the next case. Both servers
	# get the same pause.
	local pause=${CASE_PAUSE:-6}
	next_base; bench fanout1k-100 -protocol "$server" -scenario fanout -n 1000 -rate 100 -changes 1000 -user-base "$base"
	sleep "$pause"
	next_base; bench fanout10k-5 -protocol "$server" -scenario fanout -n 10000 -rate 5 -changes 50 -user-base "$base"
	sleep "$pause"
	next_base; bench fanout10k-20 -protocol "$server" -scenario fanout -n 10000 -rate 20 -changes 200 -user-base "$base"
	sleep "$pause"
	# The same rate from 20 users taking turns: presenced merges the
	# changes that queue on one socket, so one user's 20 a second measure
	# fewer deliveries than it could make.
	next_base; bench fanout10k-20x20 -protocol "$server" -scenario fanout -n 10000 -rate 20 -publishers 20 -changes 200 -user-base "$base"
	sleep "$pause"
	next_base; bench mesh5k -protocol "$server" -scenario mesh -n 5000 -watch 20 -period 5s -changes "${MESH_CHANGES:-12}" -user-base "$base"
	if [ "$server" = presenced ]; then
		next_base; bench rest -scenario rest -ids 100 -users 1000 -concurrency 32 -duration 3s -rounds 3 -user-base "$base"
	fi
	stop_server "$PID"
}

suite_versus() {
	# The servers alternate, and which goes first alternates too, so that
	# a change in the machine's other load weighs on both alike.
	local order=(presenced centrifugo)
	for _ in $(seq "$RUNS"); do
		for server in "${order[@]}"; do versus_one "$server"; done
		order=("${order[1]}" "${order[0]}")
	done
	echo "side by side: go run ./bench/compare $OUT" >&2
}

suite_idle() {
	# A fresh server on a fresh port for every run: memory is the figure,
	# and a port whose connections of the last run still sit in TIME_WAIT
	# makes some new ones wait a second for a SYN to be sent again.
	for _ in $(seq "$RUNS"); do
		PORT=$((PORT + 1))
		start_server "$PORT"
		bench idle -scenario idle -n 19000 -steps 1000,2000,5000,10000,15000 -settle 3s
		stop_server "$PID"
	done
}

suite_gogc() {
	# The same with the collector running twice as often: less garbage
	# between collections, more CPU spent collecting.
	for _ in $(seq "$RUNS"); do
		PORT=$((PORT + 1))
		SERVER_ENV=GOGC=50 start_server "$PORT"
		bench GOGC=50 -scenario idle -n 19000 -steps 1000,2000,5000,10000,15000 -settle 3s
		stop_server "$PID"
	done
}

suite_latency() {
	# Delivery latency as the watchers of one user grow, at 10 changes/s,
	# and the target point: 1,000 watchers at 100 changes/s.
	start_server "$PORT"
	for _ in $(seq "$RUNS"); do
		for n in 100 300 1000 3000 10000; do
			next_base; bench latency -scenario fanout -n "$n" -rate 10 -changes 100 -user-base "$base"
		done
		next_base; bench latency -scenario fanout -n 1000 -rate 100 -changes 1000 -user-base "$base"
	done
	stop_server "$PID"
}

suite_fanout() {
	# One user's changes to 10,000 watchers at rising rates: where
	# deliveries stop keeping up is the saturation point.
	start_server "$PORT"
	for _ in $(seq "$RUNS"); do
		for rate in 10 20 40 60 80 100; do
			next_base; bench fanout -scenario fanout -n 10000 -rate "$rate" -changes $((rate * 10)) -user-base "$base"
		done
	done
	stop_server "$PID"
}

suite_mesh() {
	start_server "$PORT"
	for _ in $(seq "$RUNS"); do
		next_base; bench mesh -scenario mesh -n 5000 -watch 20 -period 5s -changes 12 -user-base "$base"
	done
	stop_server "$PID"
}

suite_rest() {
	start_server "$PORT"
	for _ in $(seq "$RUNS"); do
		next_base; bench rest -scenario rest -ids 100 -users 1000 -concurrency 32 -duration 3s -rounds 3 -user-base "$base"
	done
	stop_server "$PID"
}

suite_cluster() {
	# 50,000 clients: one process may hold under 20,000 sockets here, so
	# three nodes on one PostgreSQL database and three tool processes.
	# Every change of state is written to the database and applied by every
	# node; a change per user every 60 s (833/s) overloaded the three
	# nodes, the database and the three tool processes on two cores
	# (BENCHMARKS.md), so each user changes once, spread over 240 s.
	local db=${DATABASE_URL:-postgres://postgres@127.0.0.1:5432/presence_bench?sslmode=disable}
	psql "${db%/*}/postgres?sslmode=disable" -qc "DROP DATABASE IF EXISTS presence_bench" -c "CREATE DATABASE presence_bench" >&2
	local addrs=() pids=()
	for i in 1 2 3; do
		start_server $((PORT + i)) -database-url "$db" -node-id "bench$i"
		pids+=("$PID"); addrs+=("127.0.0.1:$((PORT + i))")
	done
	local list
	list=$(IFS=,; echo "${addrs[*]}")
	# Each connection is a committed transaction too: the tool paces them
	# at 360 a second in all, which the three writers absorb.
	for run in $(seq "$RUNS"); do
		next_base
		"$BIN/presence-bench" -addr "$list" -jwt-secret "$SECRET" -label cluster -pid "${pids[0]}" -wait 120s \
			-connect-rate 360 -scenario mesh -n 50000 -watch 20 -period 240s -changes 1 -procs 3 -user-base "$base" | tee -a "$OUT" ||
			echo "run failed; its line says how far it got" >&2
		# The last run's 50,000 disconnects are writes too: let them drain.
		[ "$run" = "$RUNS" ] || sleep 90
	done
	for pid in "${pids[@]}"; do stop_server "$pid"; done
}

suites=("$@")
[ ${#suites[@]} -gt 0 ] || suites=(idle gogc latency fanout mesh rest)
for s in "${suites[@]}"; do
	echo "== $s (load: $(cut -d' ' -f1-3 /proc/loadavg))" >&2
	"suite_$s"
done
