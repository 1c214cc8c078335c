#!/usr/bin/env bash
# Makes sure a PostgreSQL server answers on 127.0.0.1:5432 with trust
# authentication for local TCP and a database "test", as on the project's
# machines. On a bare Debian machine it installs Debian's postgresql
# package and starts its cluster. Runs as root.
set -euo pipefail

ready() { pg_isready -h 127.0.0.1 -p 5432 -q 2>/dev/null; }

if ! command -v pg_ctlcluster >/dev/null || ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then
	apt-get update -q
	DEBIAN_FRONTEND=noninteractive apt-get install -y -q postgresql postgresql-client
fi

version=$(ls /usr/lib/postgresql | sort -V | tail -1)
if ! ready; then
	if [ ! -d "/etc/postgresql/$version/main" ]; then
		pg_createcluster "$version" main
	fi
	pg_ctlcluster --skip-systemctl-redirect "$version" main start || true
	for _ in $(seq 1 60); do ready && break; sleep 0.5; done
	ready || { echo "PostgreSQL did not start"; exit 1; }
fi

# Trust on loopback TCP, the way the tests connect (the server may belong
# to the machine; only add what is missing).
hba=$(runuser -u postgres -- psql -qtAc 'SHOW hba_file')
if ! grep -Eq '^host[[:space:]]+all[[:space:]]+all[[:space:]]+127\.0\.0\.1/32[[:space:]]+trust' "$hba"; then
	sed -i '1i host all all 127.0.0.1/32 trust\nhost all all ::1/128 trust' "$hba"
	runuser -u postgres -- psql -qtAc 'SELECT pg_reload_conf()' >/dev/null
fi
if ! runuser -u postgres -- psql -qtAc "SELECT 1 FROM pg_database WHERE datname = 'test'" | grep -q 1; then
	runuser -u postgres -- createdb test
fi
echo "PostgreSQL $version ready on 127.0.0.1:5432"
