#!/usr/bin/env bash
# Builds Prometheus's `promtool` from the Go module proxy (no other download) and prints its
# path. The module has replace directives, so `go install MODULE@VERSION` refuses it: the
# module is downloaded, copied out of the read-only module cache and built in place (about
# four minutes on two cores). The binary is cached outside the repository, because CI clones
# afresh for every run: a later clone on this machine finds it again.
# Usage: .ci/promtool.sh            -> prints the binary's path (builds it first if needed)
set -euo pipefail
PROMETHEUS_VERSION=v0.305.0
CACHE_DIR="${XDG_CACHE_HOME:-$HOME/.cache}/adaptive-idp-ci"
BIN="$CACHE_DIR/promtool-$PROMETHEUS_VERSION"
if [ ! -x "$BIN" ] || ! "$BIN" --version >/dev/null 2>&1; then
  mkdir -p "$CACHE_DIR"
  echo "building promtool ($PROMETHEUS_VERSION) from the Go module proxy" >&2
  go mod download "github.com/prometheus/prometheus@$PROMETHEUS_VERSION" >&2
  SRC=$(mktemp -d)
  trap 'rm -rf "$SRC"' EXIT
  cp -r "$(go env GOMODCACHE)/github.com/prometheus/prometheus@$PROMETHEUS_VERSION/." "$SRC"
  chmod -R u+w "$SRC"
  # Built to a temporary name and moved: an interrupted build never leaves a half binary
  # that the check above would take for a good one.
  (cd "$SRC" && go build -o "$BIN.tmp" ./cmd/promtool) >&2
  mv "$BIN.tmp" "$BIN"
fi
echo "$BIN"
