#!/usr/bin/env bash
# Restart the local PostgreSQL cluster on port 5432 (the one scripts/ensure-postgres.sh set up),
# fast mode: every connection is cut and the server comes back. The fault suite
# (`make test-faults`) uses it as a fault; it exits 3 when there is no local Debian cluster to
# restart (another machine's Postgres, or no pg_ctlcluster), so the suite can say it skipped it.
set -euo pipefail
as_root() { if [[ $(id -u) -eq 0 ]]; then "$@"; else sudo -n "$@"; fi; }
command -v pg_lsclusters >/dev/null 2>&1 || { echo "restart-postgres: no pg_lsclusters here" >&2; exit 3; }
if [[ $(id -u) -ne 0 ]] && ! sudo -n true 2>/dev/null; then echo "restart-postgres: not root and no sudo" >&2; exit 3; fi
cluster=$(pg_lsclusters --no-header 2>/dev/null | awk '$3 == 5432 { print $1, $2; exit }')
[[ -n $cluster ]] || { echo "restart-postgres: no local cluster on port 5432" >&2; exit 3; }
read -r ver name <<<"$cluster"
as_root pg_ctlcluster --skip-systemctl-redirect "$ver" "$name" restart -m fast
