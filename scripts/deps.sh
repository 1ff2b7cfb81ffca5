#!/usr/bin/env bash
# Installs what the tests and the demo need, once; later runs find it cached.
#   - the pinned MinIO server (go install, into ~/.cache/ssec-proxy/bin)
#   - the pinned toxiproxy server (go install, same place as toxiproxy-server): the
#     benchmark's network phase (make bench, make bench-short)
#   - with --clients: Debian's awscli, s3cmd, rclone, python3-boto3, nginx-light, prometheus (promtool),
#     podman and runc (apt-get, as root)
set -euo pipefail

MINIO_VERSION=v0.0.0-20260212201848-7aac2a2c5b7c # keep in step with internal/miniotest.Version
cache="${XDG_CACHE_HOME:-$HOME/.cache}/ssec-proxy"
bin="$cache/bin"
mkdir -p "$bin"

stamp="$bin/minio.version"
if [ -x "$bin/minio" ] && [ "$(cat "$stamp" 2>/dev/null)" = "$MINIO_VERSION" ]; then
  echo "deps: minio $MINIO_VERSION already in $bin"
else
  echo "deps: building minio $MINIO_VERSION with go install (takes a few minutes the first time)..."
  GOBIN="$bin" GOFLAGS=-buildvcs=false go install "github.com/minio/minio@$MINIO_VERSION"
  echo "$MINIO_VERSION" > "$stamp"
fi

TOXIPROXY_VERSION=v2.5.0 # keep in step with bench/network.go toxiproxyVersion
stamp="$bin/toxiproxy-server.version"
if [ -x "$bin/toxiproxy-server" ] && [ "$(cat "$stamp" 2>/dev/null)" = "$TOXIPROXY_VERSION" ]; then
  echo "deps: toxiproxy $TOXIPROXY_VERSION already in $bin"
else
  echo "deps: building toxiproxy $TOXIPROXY_VERSION with go install..."
  tmp="$(mktemp -d)"
  GOBIN="$tmp" GOFLAGS=-buildvcs=false go install "github.com/Shopify/toxiproxy/v2/cmd/server@$TOXIPROXY_VERSION"
  mv "$tmp/server" "$bin/toxiproxy-server"
  rmdir "$tmp"
  echo "$TOXIPROXY_VERSION" > "$stamp"
fi

if [ "${1:-}" = "--clients" ]; then
  need=()
  [ -x /usr/bin/aws ] || need+=(awscli)
  command -v s3cmd >/dev/null || need+=(s3cmd)
  command -v rclone >/dev/null || need+=(rclone)
  /usr/bin/python3 -c 'import boto3' 2>/dev/null || need+=(python3-boto3)
  command -v nginx >/dev/null || need+=(nginx-light) # the benchmark's CPU floor (make bench)
  command -v promtool >/dev/null || need+=(prometheus) # promtool: checks deploy/prometheus/alerts.yaml (metrics tests)
  command -v podman >/dev/null || need+=(podman) # builds and runs the image (cmd/ssec-proxy TestImage)
  command -v runc >/dev/null || need+=(runc)
  if [ ${#need[@]} -gt 0 ]; then
    echo "deps: apt-get install ${need[*]}"
    sudo=""; [ "$(id -u)" = 0 ] || sudo="sudo"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${need[@]}" >/dev/null
  else
    echo "deps: the clients, nginx, promtool, podman and runc already installed"
  fi
fi
