#!/usr/bin/env bash
# The container runtimes' test stage: molecule scenarios `compose` and `swarm` on the local Docker engine
# (create -> converge -> idempotence -> verify -> destroy each). Usage: scripts/test-containers.sh [compose] [swarm]
#
# It makes the engine ready first (scripts/install-docker.sh: docker.io, Compose v2, dockerd) and the local base
# images (scripts/container-base.sh, cached by tag). It skips - one line, exit 0 - ONLY when no Docker engine can be
# started here (e.g. inside an unprivileged container); any other failure fails the stage.
set -uo pipefail
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$repo" || exit 1
scenarios=("$@")
[ ${#scenarios[@]} -eq 0 ] && scenarios=(compose swarm)

if ! docker info >/dev/null 2>&1; then
  if [ "$(id -u)" -ne 0 ] || ! scripts/install-docker.sh; then
    echo "test-containers: SKIPPED - no Docker engine answers and none can be started here ($(id -un), see scripts/install-docker.sh)"
    exit 0
  fi
fi
# the engine answers from here on: whatever fails now is a real failure
scripts/install-docker.sh >/dev/null || { echo "test-containers: Compose v2 could not be installed"; exit 1; }
scripts/container-base.sh >/dev/null || { echo "test-containers: the local base images could not be built"; exit 1; }

# a collection tree of its own: other stages rebuild the shared one while molecule runs
# the project's virtualenv (molecule, ansible, the Docker SDK) unless one is active already
command -v molecule >/dev/null || { [ -f .venv/bin/activate ] && source .venv/bin/activate; }
tree=$(APIGW_COLLECTION_ROOT=${APIGW_COLLECTION_ROOT:-${TMPDIR:-/tmp}/apigw-ops-containers} scripts/collection-tree.sh) || exit 1
failed=()
for s in "${scenarios[@]}"; do
  printf '\n======== molecule %s ========\n' "$s"
  started=$SECONDS
  if (cd "$tree" && ANSIBLE_COLLECTIONS_PATH="${tree%/ansible_collections/apigw/ops}" molecule test -s "$s"); then
    printf -- '-------- molecule %s: PASSED (%ss)\n' "$s" $((SECONDS - started))
  else
    printf -- '-------- molecule %s: FAILED (%ss)\n' "$s" $((SECONDS - started))
    failed+=("$s")
  fi
done
[ ${#failed[@]} -eq 0 ] || { echo "test-containers: failed: ${failed[*]}"; exit 1; }
