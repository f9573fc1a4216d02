#!/usr/bin/env bash
# Build Mailpit (SMTP sink + web UI + HTTP API) from source into bin/mailpit.
#
# Why from source: only the Go module proxy and the npm registry are
# reachable, so the prebuilt release binaries cannot be downloaded. The Go
# module zip ships the Vue UI only as sources (server/ui-src); the bundle
# that server/embed.go embeds (server/ui/dist) must be built with npm first.
#
# Idempotent: does nothing if bin/mailpit was built for MAILPIT_VERSION.
set -euo pipefail

MAILPIT_VERSION=${MAILPIT_VERSION:-v1.33.1}
MODULE=github.com/axllent/mailpit

REPO_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BIN_DIR=$REPO_ROOT/bin
BIN=$BIN_DIR/mailpit
VERSION_FILE=$BIN_DIR/.mailpit-version
BUILD_ROOT=$REPO_ROOT/.run/build
BUILD_DIR=$BUILD_ROOT/mailpit-$MAILPIT_VERSION

log() { echo "build-mailpit: $*"; }
die() { echo "build-mailpit: ERROR: $*" >&2; exit 1; }

up_to_date() {
	[[ -x $BIN && -f $VERSION_FILE && $(<"$VERSION_FILE") == "$MAILPIT_VERSION" ]]
}

if up_to_date; then
	log "bin/mailpit $MAILPIT_VERSION already built"
	exit 0
fi

# The Go toolchain lives here on our machines but may not be on PATH in CI.
[[ :$PATH: == *:/usr/local/go/bin:* ]] || PATH=$PATH:/usr/local/go/bin
command -v go >/dev/null || die "go not found"

mkdir -p "$BIN_DIR" "$BUILD_ROOT"

# Serialise concurrent builds (e.g. parallel make targets), then re-check:
# another process may have finished the build while we waited.
exec 9>"$BUILD_ROOT/mailpit.lock"
flock 9
if up_to_date; then
	log "bin/mailpit $MAILPIT_VERSION already built"
	exit 0
fi

start=$SECONDS

# A finished build is kept in the user's cache too, so a fresh clone on the same machine (CI,
# a second checkout) copies it instead of running npm and the Go build again.
CACHE_DIR=${TRELLIS_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/trellis}
CACHED=$CACHE_DIR/mailpit-$MAILPIT_VERSION
if [[ -x $CACHED ]]; then
	cp "$CACHED" "$BIN.tmp" && mv -f "$BIN.tmp" "$BIN"
	echo "$MAILPIT_VERSION" >"$VERSION_FILE"
	log "bin/mailpit $MAILPIT_VERSION copied from $CACHED"
	exit 0
fi

# GOWORK=off: this must not resolve against the Trellis go.work.
# Run from BUILD_ROOT, which has no go.mod, so we are outside any module.
log "fetching $MODULE@$MAILPIT_VERSION from the Go module proxy"
mod_json=$(cd "$BUILD_ROOT" && GOWORK=off GOFLAGS=-mod=mod go mod download -json "$MODULE@$MAILPIT_VERSION")
mod_dir=$(sed -n 's/^[[:space:]]*"Dir": "\(.*\)",\{0,1\}$/\1/p' <<<"$mod_json")
[[ -n $mod_dir && -d $mod_dir ]] || die "could not locate module dir in: $mod_json"

# The module cache is read-only; build in a writable copy. Start clean so a
# half-finished earlier attempt cannot leak into this build.
rm -rf "$BUILD_DIR"
cp -r "$mod_dir" "$BUILD_DIR"
chmod -R u+w "$BUILD_DIR"
cd "$BUILD_DIR"

# Build the UI bundle: package.json's "package" script runs esbuild with
# MINIFY=true and writes server/ui/dist/{app,docs}.{js,css} + fonts (this is
# also what upstream's Dockerfile does). Playwright is only a dev dependency
# for upstream's e2e tests; never let it try to fetch browsers.
export PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1
npm_flags=(--no-audit --no-fund --loglevel=error)
: >npm.log

# Attempt 1: the exact upstream lockfile.
npm_ci() {
	[[ -f package-lock.json ]] && npm ci "${npm_flags[@]}" >>npm.log 2>&1
}

# Attempt 2: the npm registry we can reach does not carry every version
# (e.g. v1.33.1's lockfile pins sass-embedded 1.108.1 and rapidoc 12.1.0,
# which it lacks), so resolve from package.json's ranges instead. If a range
# has no match at all, pin that package to the newest version the registry
# has and retry; each such substitution is printed as a warning.
npm_install_relaxed() {
	local pkg latest where
	[[ -f package-lock.json ]] && mv package-lock.json package-lock.json.upstream
	for _ in 1 2 3 4 5; do
		if npm install "${npm_flags[@]}" >npm-install.log 2>&1; then
			cat npm-install.log >>npm.log
			return 0
		fi
		cat npm-install.log >>npm.log
		pkg=$(sed -n 's/.*No matching version found for \(@\{0,1\}[^@]*\)@.*/\1/p' npm-install.log | head -n1)
		[[ -n $pkg ]] || return 1
		latest=$(npm view "$pkg" version 2>>npm.log) || return 1
		# Edit package.json with node: names like "ical.js" break `npm pkg set`.
		where=$(node -e '
			const fs = require("fs");
			const [pkg, ver] = process.argv.slice(1);
			const p = JSON.parse(fs.readFileSync("package.json", "utf8"));
			let where = ["dependencies", "devDependencies"].find((k) => p[k] && p[k][pkg]);
			if (where) p[where][pkg] = "^" + ver;
			else { where = "overrides"; p.overrides = p.overrides || {}; p.overrides[pkg] = ver; }
			fs.writeFileSync("package.json", JSON.stringify(p, null, 2) + "\n");
			console.log(where);
		' "$pkg" "$latest")
		echo "build-mailpit: WARNING: npm registry has no version of $pkg matching upstream's range; using $pkg@$latest ($where)" >&2
	done
	return 1
}

ui_bundle_ok() {
	[[ -s server/ui/dist/app.js && -s server/ui/dist/app.css ]]
}

ui=full
log "building web UI (npm ci && npm run package)"
# Without Node/npm we can still ship SMTP + API (placeholder UI below).
have_npm=false
command -v npm >/dev/null && have_npm=true || echo "npm not found on PATH" >>npm.log
if $have_npm && npm_ci && npm run package >>npm.log 2>&1 && ui_bundle_ok; then
	:
elif $have_npm && log "npm ci failed or no lockfile (see npm.log); retrying with npm install from package.json ranges" &&
	npm_install_relaxed && npm run package >>npm.log 2>&1 && ui_bundle_ok; then
	ui=full-relaxed
else
	# Last resort: SMTP and the HTTP API (/api/v1/...) do not need the
	# bundle, and the embed only needs server/ui to exist (it always does).
	# Write stub assets so the UI page explains itself instead of 404ing.
	tail -n 30 npm.log >&2 || true
	echo "build-mailpit: WARNING: web UI build failed; building with a placeholder UI (SMTP + API still work). Full log: $BUILD_DIR/npm.log" >&2
	ui=placeholder
	mkdir -p server/ui/dist
	echo 'document.body.textContent = "Mailpit web UI was not built (npm failed); the SMTP server and /api/v1 work.";' >server/ui/dist/app.js
	: >server/ui/dist/app.css
fi

log "compiling Go binary"
# Build to a temp name then rename, so bin/mailpit is never half-written.
CGO_ENABLED=0 GOWORK=off go build -trimpath \
	-ldflags "-s -w -X $MODULE/config.Version=$MAILPIT_VERSION" \
	-o "$BIN.tmp" .
mv -f "$BIN.tmp" "$BIN"

# A placeholder build gets a different stamp so the next run retries the UI.
if [[ $ui != placeholder ]]; then
	echo "$MAILPIT_VERSION" >"$VERSION_FILE"
	# Best effort: a read-only cache only costs the next clone a rebuild.
	{ mkdir -p "$CACHE_DIR" && cp "$BIN" "$CACHED.tmp" && mv -f "$CACHED.tmp" "$CACHED"; } || log "could not cache the build in $CACHE_DIR"
else
	echo "$MAILPIT_VERSION+placeholder-ui" >"$VERSION_FILE"
fi

# node_modules (~350 MB) is never reused: a rebuild starts from a clean copy.
rm -rf "$BUILD_DIR/node_modules"

log "built bin/mailpit $MAILPIT_VERSION (UI: $ui) in $((SECONDS - start))s"
