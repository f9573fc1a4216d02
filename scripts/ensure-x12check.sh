#!/usr/bin/env bash
# Installs the independent X12 parser (npm package node-x12, pinned by package-lock.json) that
# billing's tests check their own 837 files against. Installs Debian's nodejs and npm when
# missing. Idempotent: does nothing when node_modules matches the lock file.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../services/billing/testdata/x12check"

log() { echo "ensure-x12check: $*" >&2; }
as_root() { if [[ $(id -u) -eq 0 ]]; then "$@"; else sudo "$@"; fi; }

if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
	log "installing Debian packages nodejs npm"
	as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq
	as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nodejs npm >/dev/null
fi
# npm writes the lock it installed from into node_modules/.package-lock.json.
if [[ -f node_modules/.package-lock.json && node_modules/.package-lock.json -nt package-lock.json ]]; then
	exit 0
fi
npm ci --no-audit --no-fund --loglevel=error >&2
log "node-x12 installed in $(pwd)/node_modules"
