#!/usr/bin/env bash
# Installs axe-core (npm package, pinned by e2e/browser/axe/package-lock.json), the accessibility
# engine the browser tests inject into every page (e2e/browser: browser.Axe), into the git-ignored
# e2e/browser/axe/node_modules. Installs Debian's nodejs and npm when missing. Idempotent: does
# nothing when node_modules matches the lock file. Prints the path of axe.min.js on stdout.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../e2e/browser/axe"

log() { echo "ensure-axe: $*" >&2; }
as_root() { if [[ $(id -u) -eq 0 ]]; then "$@"; else sudo "$@"; fi; }

if [[ ! -f node_modules/.package-lock.json || package-lock.json -nt node_modules/.package-lock.json || ! -f node_modules/axe-core/axe.min.js ]]; then
	if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
		log "installing Debian packages nodejs npm"
		as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq
		as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nodejs npm >/dev/null
	fi
	npm ci --no-audit --no-fund --loglevel=error >&2
	log "axe-core $(node -p 'require("axe-core/package.json").version') installed in $(pwd)/node_modules"
fi
echo "$(pwd)/node_modules/axe-core/axe.min.js"
