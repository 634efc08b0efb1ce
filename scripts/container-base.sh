#!/usr/bin/env bash
# Local images for the container runtimes' tests (no image registry is reachable here):
#   apigw/debian-base:12   Debian 12 minbase + python3, venv, ca-certificates, redis-server
#                          (debootstrap + docker import), the gateway image's BASE_IMAGE in tests;
#                          users build on an official python slim image instead.
#   apigw/redis:7-debian   that base running Debian's redis-server as user redis: the tests'
#                          stand-in for the official redis image (redis_image).
# Built once and cached by tag: a second run does nothing. Prints the two image names.
# Needs a running Docker engine (scripts/install-docker.sh) and root for debootstrap.
set -euo pipefail
BASE=${APIGW_BASE_IMAGE:-apigw/debian-base:12}
REDIS=${APIGW_REDIS_IMAGE:-apigw/redis:7-debian}
log() { printf 'container-base: %s\n' "$*" >&2; }

if ! docker image inspect "$BASE" >/dev/null 2>&1; then
  command -v debootstrap >/dev/null || DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap >/dev/null
  root=$(mktemp -d /tmp/apigw-base-XXXX)
  trap 'rm -rf "$root"' EXIT
  mirror=$(awk '/^URIs:/{print $2; exit}' /etc/apt/sources.list.d/debian.sources 2>/dev/null || true)
  log "debootstrap bookworm into $root (a few minutes)"
  debootstrap --variant=minbase --include=python3,python3-venv,ca-certificates,redis-server \
    bookworm "$root" "${mirror:-http://deb.debian.org/debian}" >/dev/null
  # this machine's CA bundle and pip settings, so that `pip install` in an image build reaches the
  # package index the way the host does
  cp /etc/ssl/certs/ca-certificates.crt "$root/etc/ssl/certs/ca-certificates.crt"
  [ -f /etc/pip.conf ] && cp /etc/pip.conf "$root/etc/pip.conf"
  # vfs copies every layer in full: keep the one layer small
  rm -rf "$root"/usr/share/doc/* "$root"/usr/share/man/* "$root"/usr/share/locale/* \
    "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/*
  tar -C "$root" -c . | docker import --change 'CMD ["/bin/bash"]' - "$BASE" >/dev/null
  log "built $BASE"
fi

if ! docker image inspect "$REDIS" >/dev/null 2>&1; then
  # metadata only: no layer is copied
  printf 'FROM %s\nUSER redis\nWORKDIR /data\nCMD ["redis-server", "--protected-mode", "no"]\n' "$BASE" |
    docker build -q -t "$REDIS" - >/dev/null 2>&1
  log "built $REDIS"
fi
echo "$BASE"
echo "$REDIS"
