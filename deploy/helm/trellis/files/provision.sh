#!/bin/sh
# One-shot provisioning of the Trellis database, run before any migration by compose's
# `provision` service (on every `docker compose up`) and by the Helm chart's provision hook Job
# (a copy in deploy/helm/trellis/files/provision.sh, kept identical by deploy/validate). It is
# idempotent and does what pkg/pg.Provision does for the dev stack: each service gets a login
# role of its own name that owns a schema of its own name; PUBLIC has no rights on it, so no
# service can read another's tables. Passwords come from <SERVICE>_DB_PASSWORD (e.g.
# INTAKE_DB_PASSWORD); changing one and running the provisioning again rotates it.
#
# Connection: the standard libpq variables (PGHOST, PGUSER, PGPASSWORD, PGDATABASE).
set -eu

# Wait for the server (a Kubernetes install starts this Job next to a new database cluster).
waited=0
until pg_isready -q; do
	if [ "$waited" -ge "${PROVISION_WAIT_SECONDS:-300}" ]; then
		echo "provision: Postgres at ${PGHOST:-localhost} not ready after ${waited}s" >&2
		exit 1
	fi
	sleep 2
	waited=$((waited + 2))
done

for svc in intake scheduling billing notification dashboard; do
	var="$(echo "$svc" | tr '[:lower:]' '[:upper:]')_DB_PASSWORD"
	eval "pw=\${$var:-}"
	if [ -z "$pw" ]; then
		echo "provision: $var is not set (each service needs its database password)" >&2
		exit 2
	fi
	psql -X -q -v ON_ERROR_STOP=1 -v role="$svc" -v pw="$pw" <<'SQL'
SELECT format('CREATE ROLE %I LOGIN', :'role')
 WHERE NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = :'role') \gexec
ALTER ROLE :"role" LOGIN PASSWORD :'pw';
CREATE SCHEMA IF NOT EXISTS :"role" AUTHORIZATION :"role";
ALTER SCHEMA :"role" OWNER TO :"role";
REVOKE ALL ON SCHEMA :"role" FROM PUBLIC;
SELECT format('GRANT CONNECT ON DATABASE %I TO %I', current_database(), :'role') \gexec
-- The outbox relays publish only below the server-wide oldest running transaction, so a
-- session left idle in a transaction would stall every relay: end such sessions after a minute.
ALTER ROLE :"role" SET idle_in_transaction_session_timeout = '60s';
SQL
	echo "provision: role and schema $svc ready"
done
# Nobody but the owners may create objects in public; PUBLIC may not connect to this database.
psql -X -q -v ON_ERROR_STOP=1 <<'SQL'
REVOKE CREATE ON SCHEMA public FROM PUBLIC;
SELECT format('REVOKE CONNECT ON DATABASE %I FROM PUBLIC', current_database()) \gexec
SQL
echo "provision: done"
