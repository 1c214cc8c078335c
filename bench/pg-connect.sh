#!/usr/bin/env bash
# A reconnect storm against one node on PostgreSQL: N sockets of N users
# connect at once (presence-bench's idle scenario), and the figure is how
# long until every one of them is stored online in the database. A socket's
# handshake completes before its change is stored, so the tool's own
# connect rate does not show what the database takes; this does. Usage:
#
#   bench/pg-connect.sh [REV ...]     default: the working tree
#
# Each REV (a git revision, or . for the working tree) is built and run in
# turn, RUNS times for each CONCURRENCY (sockets dialled at once), so that
# revisions share the machine's moments alike. One JSON line per run goes
# to stdout:
#
#   stored_per_s         N / seconds from the first dial until all N are online in the table
#   transactions         distinct created_at among the N rows: the commits that created them
#   handshakes_per_s     the tool's connect rate (TCP, upgrade, token check)
#
# DATABASE_URL (default: PRESENCE_TEST_DATABASE_URL, else the local test
# database) must allow CREATE SCHEMA; each run uses a schema of its own
# and drops it. Needs psql and curl.
set -euo pipefail
cd "$(dirname "$0")/.."

N=${N:-5000}
RUNS=${RUNS:-3}
CONCURRENCY=${CONCURRENCY:-64 256}
PORT=${PORT:-18090}
DB=${DATABASE_URL:-${PRESENCE_TEST_DATABASE_URL:-postgres://postgres@127.0.0.1:5432/test?sslmode=disable}}
SECRET=bench-secret-$$-0123456789abcdef0123
export PGOPTIONS="-c client_min_messages=warning"
[ $# -gt 0 ] || set -- .

WORK=$(mktemp -d)
SERVER=""
cleanup() {
	if [ -n "$SERVER" ]; then kill "$SERVER" 2>/dev/null || true; wait "$SERVER" 2>/dev/null || true; fi
	rm -rf "$WORK"
}
trap cleanup EXIT

# build REV: builds presenced at REV into $WORK/REV/.
for rev in "$@"; do
	mkdir -p "$WORK/$rev"
	if [ "$rev" = . ]; then
		go build -o "$WORK/$rev/presenced" ./cmd/presenced
	else
		git archive "$rev" | tar -x -C "$WORK/$rev"
		(cd "$WORK/$rev" && go build -o presenced ./cmd/presenced)
	fi
done
go build -o "$WORK/presence-bench" ./cmd/presence-bench

# run REV CONCURRENCY: one storm against a fresh node and schema.
run() {
	local rev=$1 conc=$2 schema sep start stored count spread txs took
	schema=bench_connect_$$_$RANDOM
	psql "$DB" -qc "CREATE SCHEMA $schema"
	sep='?'; [[ $DB == *\?* ]] && sep='&'
	PRESENCE_JWT_SECRET=$SECRET "$WORK/$rev/presenced" -addr "127.0.0.1:$PORT" -log-level warn \
		-database-url "$DB${sep}search_path=$schema" \
		-max-sockets-per-second 0 -max-sockets-per-second-per-ip 0 2>>"$WORK/server.log" &
	SERVER=$!
	for _ in $(seq 100); do curl -fs "http://127.0.0.1:$PORT/readyz" >/dev/null && break; sleep 0.1; done
	start=$(date +%s.%N)
	# The sockets stay open 15s after the last one, longer than the
	# slowest revision takes to store them all.
	"$WORK/presence-bench" -scenario idle -addr "127.0.0.1:$PORT" -jwt-secret "$SECRET" -n "$N" \
		-concurrency "$conc" -settle 1s -hold 15s -quiet >"$WORK/bench.json" &
	local tool=$!
	stored=""
	for _ in $(seq 1200); do # 60s at most
		count=$(psql "$DB" -Atc "SELECT count(*) FROM $schema.presence_status WHERE online")
		if [ "$count" = "$N" ]; then stored=$(date +%s.%N); break; fi
		sleep 0.05
	done
	spread=$(psql "$DB" -Atc "SELECT round(extract(epoch FROM max(created_at) - min(created_at))::numeric, 3) FROM $schema.presence_status")
	txs=$(psql "$DB" -Atc "SELECT count(DISTINCT created_at) FROM $schema.presence_status")
	wait "$tool"
	kill "$SERVER"; wait "$SERVER" || true; SERVER=""
	psql "$DB" -qc "DROP SCHEMA $schema CASCADE"
	took=$(awk -v a="$start" -v b="${stored:-0}" 'BEGIN { if (b == 0) print "null"; else printf "%.2f", b - a }')
	awk -v rev="$rev" -v n="$N" -v conc="$conc" -v took="$took" -v spread="$spread" -v txs="$txs" \
		-v load1="$(cut -d' ' -f1 /proc/loadavg)" -v hs="$(grep -o '"connects_per_s":[0-9.]*' "$WORK/bench.json" | cut -d: -f2)" \
		'BEGIN { printf "{\"rev\":\"%s\",\"sockets\":%d,\"concurrency\":%d,\"load1\":%s,\"handshakes_per_s\":%s,\"all_stored_online_s\":%s,\"stored_per_s\":%s,\"commit_spread_s\":%s,\"transactions\":%d}\n",
			rev, n, conc, load1, hs, took, (took == "null" ? "null" : int(n / took)), spread, txs }'
}

for _ in $(seq "$RUNS"); do
	for conc in $CONCURRENCY; do
		for rev in "$@"; do run "$rev" "$conc"; done
	done
done
