#!/usr/bin/env bash
# Runs staticcheck over the module, installing the pinned version once with
# go install into ~/.cache/ssec-proxy/bin (later runs find it cached).
set -euo pipefail

STATICCHECK_VERSION=v0.8.2 # staticcheck 2026.2.2, built for Go 1.26
cache="${XDG_CACHE_HOME:-$HOME/.cache}/ssec-proxy"
bin="$cache/bin"
mkdir -p "$bin"

stamp="$bin/staticcheck.version"
if [ ! -x "$bin/staticcheck" ] || [ "$(cat "$stamp" 2>/dev/null)" != "$STATICCHECK_VERSION" ]; then
  echo "staticcheck: installing $STATICCHECK_VERSION with go install..."
  GOBIN="$bin" GOFLAGS=-buildvcs=false go install "honnef.co/go/tools/cmd/staticcheck@$STATICCHECK_VERSION"
  echo "$STATICCHECK_VERSION" > "$stamp"
fi
exec "$bin/staticcheck" "$@" ./...
