#!/usr/bin/env bash
# The container engine the docker/compose/swarm runtimes and their tests need, on Debian 12:
#   - docker.io (Debian 12's engine and CLI) when no docker CLI is installed;
#   - the Compose v2 CLI plugin: Debian 12 ships only the Python docker-compose 1.x, so the
#     `docker-compose` package (2.x, one static binary into /usr/libexec/docker/cli-plugins/) comes
#     from Debian 13 (trixie), with an apt preference that pins every other package to Debian 12;
#   - dockerd started in the background when none answers, with the flags this kind of machine
#     allows: no iptables, no bridge (containers use the host network), vfs storage.
# Idempotent; needs root for the parts that install or start something. Prints one line per action.
# Exit status: 0 = an engine answers and `docker compose version` is v2; 1 = it could not be made so.
set -euo pipefail
log() { printf 'install-docker: %s\n' "$*"; }
as_root() { [ "$(id -u)" -eq 0 ] || { log "needs root to $1; run it as root (or sudo)"; exit 1; }; }

if ! command -v docker >/dev/null 2>&1; then
  as_root "install docker.io"
  log "installing docker.io"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq docker.io >/dev/null
fi

if ! docker compose version 2>/dev/null | grep -q 'v2\.'; then
  as_root "install the Compose v2 plugin"
  mirror=$(awk '/^URIs:/{print $2; exit}' /etc/apt/sources.list.d/debian.sources 2>/dev/null || true)
  mirror=${mirror:-http://deb.debian.org/debian}
  cat > /etc/apt/sources.list.d/apigw-trixie.sources <<SRC
Types: deb
URIs: $mirror
Suites: trixie
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SRC
  # everything from Debian 12, except the one package taken from Debian 13
  cat > /etc/apt/preferences.d/apigw-trixie <<'PREF'
Package: *
Pin: release n=trixie
Pin-Priority: 100

Package: docker-compose
Pin: release n=trixie
Pin-Priority: 990
PREF
  log "installing docker-compose (Compose v2) from Debian 13"
  apt-get update -qq -o Dir::Etc::sourcelist=/etc/apt/sources.list.d/apigw-trixie.sources \
    -o Dir::Etc::sourceparts=- -o APT::Get::List-Cleanup=0 >/dev/null
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq -t trixie --no-install-recommends docker-compose >/dev/null
fi

if ! docker info >/dev/null 2>&1; then
  as_root "start dockerd"
  log "starting dockerd (host network only, vfs storage; log: /var/log/dockerd.log)"
  nohup dockerd --iptables=false --ip6tables=false --bridge=none --storage-driver=vfs \
    >/var/log/dockerd.log 2>&1 &
  for _ in $(seq 1 30); do docker info >/dev/null 2>&1 && break; sleep 1; done
fi

docker info >/dev/null 2>&1 || { log "the Docker engine does not answer (see /var/log/dockerd.log)"; exit 1; }
log "engine $(docker version --format '{{.Server.Version}}'), $(docker compose version --short 2>/dev/null | sed 's/^/compose /')"
