#!/usr/bin/env bash
# Measures presenced at two revisions through cases of `bench/run.sh
# versus`, the revisions alternating (A B, B A, A B, ...: RUNS rounds), a
# fresh server for every run, and prints the two side by side with
# bench/compare. Usage:
#
#   bench/ab.sh REV_A REV_B CASE...    CASE: idle19k fanout1k-100 fanout10k-5 fanout10k-20 fanout10k-20x20 mesh5k
#
# A REV is a git revision, or . for the working tree; A is "before" and B
# "after". The lines go to $OUT.before.jsonl and $OUT.after.jsonl (OUT
# defaults to bench/results/DATE-ab), so that the figures of a change can
# be read again.
set -euo pipefail
cd "$(dirname "$0")/.."
[ $# -ge 3 ] || { sed -n 2,13p "$0" >&2; exit 2; }
rev_a=$1 rev_b=$2; shift 2
RUNS=${RUNS:-3}
OUT=${OUT:-bench/results/$(date -u +%Y-%m-%d)-ab}
SECRET=ab-secret-$(date +%s)-0123456789abcdef
PORT=${PORT:-18600}
WORK=$(mktemp -d)
PID=
cleanup() {
	[ -z "$PID" ] || { kill "$PID" 2>/dev/null || true; wait "$PID" 2>/dev/null || true; }
	rm -rf "$WORK"
}
trap cleanup EXIT

# build REV DIR: builds presenced at REV into DIR.
build() {
	mkdir -p "$2"
	if [ "$1" = . ]; then
		go build -o "$2/presenced" ./cmd/presenced
	else
		git archive "$1" | tar -x -C "$2"
		(cd "$2" && go build -o presenced ./cmd/presenced)
	fi
}
build "$rev_a" "$WORK/before"
build "$rev_b" "$WORK/after"
go build -o "$WORK/presence-bench" ./cmd/presence-bench
mkdir -p "$(dirname "$OUT")"
echo "before: $rev_a, after: $rev_b (. is the working tree); lines to $OUT.before.jsonl and $OUT.after.jsonl" >&2

# one WHICH CASE BASE: one run of CASE against a fresh server of WHICH.
one() {
	local which=$1 case=$2 base=$3 args
	case $case in
	idle19k) args=(-scenario idle -n 19000 -steps 1000,5000,10000 -settle 3s) ;;
	fanout1k-100) args=(-scenario fanout -n 1000 -rate 100 -changes 1000) ;;
	fanout10k-5) args=(-scenario fanout -n 10000 -rate 5 -changes 50) ;;
	fanout10k-20) args=(-scenario fanout -n 10000 -rate 20 -changes 200) ;;
	fanout10k-20x20) args=(-scenario fanout -n 10000 -rate 20 -publishers 20 -changes 200) ;;
	mesh5k) args=(-scenario mesh -n 5000 -watch 20 -period 5s -changes "${MESH_CHANGES:-6}") ;;
	*) echo "unknown case $case" >&2; exit 2 ;;
	esac
	PORT=$((PORT + 1))
	PRESENCE_JWT_SECRET=$SECRET "$WORK/$which/presenced" -addr "127.0.0.1:$PORT" -log-level warn \
		-max-sockets-per-second-per-ip 0 -max-sockets-per-second 0 -max-messages-per-second 0 -max-requests-per-second 0 2>>"$WORK/server.log" &
	PID=$!
	for _ in $(seq 100); do curl -fs "http://127.0.0.1:$PORT/healthz" >/dev/null 2>&1 && break; sleep 0.1; done
	echo "== $which $case (load: $(cut -d' ' -f1-3 /proc/loadavg))" >&2
	"$WORK/presence-bench" -addr "127.0.0.1:$PORT" -jwt-secret "$SECRET" -pid "$PID" -label "$case" -user-base "$base" -quiet "${args[@]}" \
		>>"$OUT.$which.jsonl" || echo "run failed; its line says how far it got" >&2
	kill "$PID"; wait "$PID" 2>/dev/null || true; PID=
}

base=1000000 order=(before after)
for _ in $(seq "$RUNS"); do
	for case in "$@"; do
		for which in "${order[@]}"; do
			base=$((base + 1000000))
			one "$which" "$case" "$base"
		done
	done
	order=("${order[1]}" "${order[0]}")
done
go run ./bench/compare -before "$OUT.before.jsonl" -after "$OUT.after.jsonl"
