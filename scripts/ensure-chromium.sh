#!/usr/bin/env bash
# Make sure a headless-capable Chromium is installed for the browser tests (e2e/browser) and
# print its path on stdout. Uses $CHROMIUM when set, else `chromium` or `chromium-browser` on
# PATH; installs Debian's `chromium` package (and a font for the screenshots) when none is
# found (apt-get as root, or via sudo, non-interactive). Idempotent: does nothing but print
# the path when Chromium is there. Takes about 20 s on a fresh Debian machine.
set -euo pipefail

log() { echo "ensure-chromium: $*" >&2; }
die() { echo "ensure-chromium: ERROR: $*" >&2; exit 1; }
as_root() { if [[ $(id -u) -eq 0 ]]; then "$@"; else sudo "$@"; fi; }

find_chromium() {
	if [[ -n ${CHROMIUM:-} ]]; then
		command -v "$CHROMIUM" 2>/dev/null || die "CHROMIUM=$CHROMIUM is not an executable"
		return
	fi
	command -v chromium 2>/dev/null || command -v chromium-browser 2>/dev/null || true
}

bin=$(find_chromium)
if [[ -z $bin ]]; then
	command -v apt-get >/dev/null 2>&1 || die "no chromium on PATH and no apt-get to install it: install Chromium and set CHROMIUM"
	log "installing Debian package chromium"
	start=$SECONDS
	as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq
	as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium fonts-dejavu-core >/dev/null
	bin=$(find_chromium)
	[[ -n $bin ]] || die "installed the chromium package but found no chromium binary on PATH"
	log "installed $("$bin" --version 2>/dev/null || echo chromium) in $((SECONDS - start))s"
fi
echo "$bin"
