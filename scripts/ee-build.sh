#!/usr/bin/env bash
# Build the apigw.ops execution environment (execution-environment.yml) on the local Docker engine and print the
# image, its size and the build time. Not part of scripts/test.sh (minutes of build, gigabytes on vfs storage).
#
#   scripts/ee-build.sh                         tag apigw/ee:latest on the local base apigw/debian-base:12
#   scripts/ee-build.sh --run                   then run clear_ratelimits, unlock_account, backup, healthcheck in it
#                                               with ansible-runner --process-isolation (tests/awx/ee_contract.py)
#   EE_TAG=apigw/ee:1 EE_BASE_IMAGE=registry.example.com/ee-minimal:latest scripts/ee-build.sh
#
# Needs the venv (ansible-builder, ansible-galaxy), a running Docker engine, and the base image: the default one
# is made by scripts/container-base.sh when missing. Builds use the host network (PyPI reached as the host does).
set -euo pipefail
cd "$(dirname "$0")/.."
TAG=${EE_TAG:-apigw/ee:latest}
BASE=${EE_BASE_IMAGE:-apigw/debian-base:12}
log() { printf 'ee-build: %s\n' "$*" >&2; }

[ -n "${VIRTUAL_ENV:-}" ] || source .venv/bin/activate
docker info >/dev/null 2>&1 || { log "no Docker engine answers (scripts/install-docker.sh starts one)"; exit 1; }
if [ "$BASE" = apigw/debian-base:12 ]; then
  scripts/container-base.sh >/dev/null
fi
docker image inspect "$BASE" >/dev/null 2>&1 || { log "base image $BASE is not on this engine (docker pull it first)"; exit 1; }

# the collection as Galaxy would serve it: a tarball of this checkout, at the path execution-environment.yml names
rm -rf build/ee && mkdir -p build/ee/dist
ansible-galaxy collection build --force --output-path build/ee/dist . >/dev/null
mv build/ee/dist/apigw-ops-*.tar.gz build/ee/apigw-ops.tar.gz

start=$(date +%s)
ansible-builder build --file execution-environment.yml --context build/ee/context --tag "$TAG" \
  --container-runtime docker --build-arg EE_BASE_IMAGE="$BASE" \
  --extra-build-cli-args '--network host' --verbosity 1 >build/ee/build.log 2>&1 ||
  { log "ansible-builder build failed; last lines of build/ee/build.log:"; tail -20 build/ee/build.log >&2; exit 1; }
seconds=$(( $(date +%s) - start ))

size=$(docker image inspect --format '{{.Size}}' "$TAG")
log "built $TAG on $BASE in ${seconds} s, $(( size / 1000000 )) MB"
# a smoke check: the collection and its dependencies load inside the image
docker run --rm "$TAG" ansible-doc -t module apigw.ops.gateway_ratelimit >/dev/null
docker run --rm "$TAG" ansible-galaxy collection list apigw.ops community.general 2>/dev/null | grep -E '^(apigw|community)\.' >&2
echo "$TAG"
if [ "${1:-}" = --run ]; then
  APIGW_EE_IMAGE="$TAG" python -m pytest -q -p no:cacheprovider tests/awx/ee_contract.py
  log "the jobs' stats: build/ee/contract.json"
fi
