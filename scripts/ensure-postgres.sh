#!/usr/bin/env bash
# Make sure a local PostgreSQL is installed, running and has the Trellis dev
# role/database, so tests and the devstack can use
#   postgres://trellis:trellis@127.0.0.1:5432/trellis?sslmode=disable
#
# Idempotent: safe to run on every `make`/CI invocation. If DATABASE_URL is
# set, the database is someone else's responsibility and we only check it.
set -euo pipefail

PGHOST_ADDR=127.0.0.1
PGPORT_NUM=5432
ROLE=trellis
DB=trellis
# Dev-only default credentials; these are the only "secret" we ever print.
ADMIN_URL="postgres://${ROLE}:${ROLE}@${PGHOST_ADDR}:${PGPORT_NUM}/${DB}?sslmode=disable"

log() { echo "ensure-postgres: $*"; }
die() { echo "ensure-postgres: ERROR: $*" >&2; exit 1; }

# Run a command as root (we are root in CI; developers may not be).
as_root() {
	if [[ $(id -u) -eq 0 ]]; then
		"$@"
	else
		sudo "$@"
	fi
}

# Run a command as the postgres OS user, which can always connect over the
# local socket (peer auth), regardless of how TCP auth is configured.
# cd / first so postgres does not complain about an unreadable cwd.
as_postgres() {
	if [[ $(id -u) -eq 0 ]]; then
		if command -v runuser >/dev/null 2>&1; then
			(cd / && runuser -u postgres -- "$@")
		else
			# su takes a single command string; quote each argument.
			(cd / && su postgres -s /bin/bash -c "$(printf '%q ' "$@")")
		fi
	else
		(cd / && sudo -u postgres -- "$@")
	fi
}

apt_install() {
	log "installing Debian package(s): $*"
	as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq
	as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}

# --- External database: only verify it, never touch it. ---------------------
if [[ -n ${DATABASE_URL:-} ]]; then
	command -v psql >/dev/null 2>&1 || apt_install postgresql-client
	if psql "$DATABASE_URL" -qAt -c 'select 1' >/dev/null; then
		log "DATABASE_URL is set and reachable; leaving it alone"
		exit 0
	fi
	die "DATABASE_URL is set but 'select 1' failed"
fi

actions=()

# --- 1. Install ---------------------------------------------------------------
# pg_lsclusters comes from postgresql-common, psql from postgresql-client;
# the `postgresql` metapackage brings both plus the server.
if ! command -v pg_lsclusters >/dev/null 2>&1 || ! command -v psql >/dev/null 2>&1; then
	apt_install postgresql
	actions+=("installed postgresql")
fi

# --- 2. Find (or create) the cluster listening on 5432 ------------------------
# pg_lsclusters --no-header columns: Ver Cluster Port Status Owner Datadir Log
find_cluster() {
	pg_lsclusters --no-header 2>/dev/null | awk -v port="$PGPORT_NUM" '$3 == port { print $1, $2, $4; exit }'
}

cluster=$(find_cluster)
if [[ -z $cluster ]]; then
	if [[ -n $(pg_lsclusters --no-header 2>/dev/null) ]]; then
		pg_lsclusters >&2
		die "PostgreSQL clusters exist, but none on port $PGPORT_NUM"
	fi
	# Server installed with create_main_cluster=false (or cluster dropped):
	# create one for the newest installed server version.
	ver=$(find /usr/lib/postgresql -mindepth 1 -maxdepth 1 -printf '%f\n' 2>/dev/null | sort -V | tail -n1)
	[[ -n $ver ]] || die "no PostgreSQL server binaries under /usr/lib/postgresql"
	as_root pg_createcluster --port "$PGPORT_NUM" "$ver" main >/dev/null
	actions+=("created cluster $ver/main")
	cluster=$(find_cluster)
fi
read -r pg_ver pg_name pg_status <<<"$cluster"

# --- 3. Start it --------------------------------------------------------------
# Containers/CI have no systemd, so bypass the systemctl redirect.
# Status may be "online", "online,recovery", "down", ...
if [[ $pg_status != online* ]]; then
	as_root pg_ctlcluster --skip-systemctl-redirect "$pg_ver" "$pg_name" start
	actions+=("started cluster $pg_ver/$pg_name")
fi

# --- 4. Wait until it accepts TCP connections (bounded) -----------------------
ready=false
for _ in $(seq 1 60); do
	if pg_isready -q -h "$PGHOST_ADDR" -p "$PGPORT_NUM"; then
		ready=true
		break
	fi
	sleep 0.5
done
$ready || die "PostgreSQL not ready on $PGHOST_ADDR:$PGPORT_NUM after 30s (see /var/log/postgresql/)"

# --- 5. Role and database -----------------------------------------------------
# Always (re)assert the password and attributes: on a fresh Debian install TCP
# auth on 127.0.0.1 is scram-sha-256, so a role without a password (or with a
# stale one) would be unusable. The SQL goes via stdin so the password never
# shows up in `ps`.
role_exists=$(as_postgres psql -p "$PGPORT_NUM" -qAt -d postgres -c "select 1 from pg_roles where rolname = '${ROLE}'")
as_postgres psql -p "$PGPORT_NUM" -q -v ON_ERROR_STOP=1 -d postgres >/dev/null <<SQL
DO \$\$
BEGIN
	IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '${ROLE}') THEN
		CREATE ROLE ${ROLE} LOGIN;
	END IF;
END
\$\$;
ALTER ROLE ${ROLE} WITH LOGIN CREATEDB CREATEROLE PASSWORD '${ROLE}';
SQL
[[ $role_exists == 1 ]] || actions+=("created role ${ROLE}")

# CREATE DATABASE cannot run inside a DO block, so check first.
db_exists=$(as_postgres psql -p "$PGPORT_NUM" -qAt -d postgres -c "select 1 from pg_database where datname = '${DB}'")
if [[ $db_exists != 1 ]]; then
	as_postgres psql -p "$PGPORT_NUM" -q -v ON_ERROR_STOP=1 -d postgres -c "CREATE DATABASE ${DB} OWNER ${ROLE}" >/dev/null
	actions+=("created database ${DB}")
fi

if ((${#actions[@]} == 0)); then
	log "PostgreSQL $pg_ver already set up: $ADMIN_URL"
else
	summary=$(printf '%s, ' "${actions[@]}")
	log "${summary%, }: $ADMIN_URL"
fi
