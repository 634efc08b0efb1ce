#!/usr/bin/env bash
# Lay the repository out as .../ansible_collections/apigw/ops (a fresh copy of the tracked and
# new, non-ignored files), which ansible-test and ansible-galaxy need.  Prints the path.
# APIGW_COLLECTION_ROOT chooses where.  The default is outside the repository on purpose:
# inside it, ansible-test would list files with git and find the (ignored) copy empty.
set -euo pipefail
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
root=${APIGW_COLLECTION_ROOT:-${TMPDIR:-/tmp}/apigw-ops-$(printf '%s' "$repo" | sha1sum | cut -c1-10)}
dest=$root/ansible_collections/apigw/ops
rm -rf "$dest"
mkdir -p "$dest"
cd "$repo"
git ls-files -co --exclude-standard -z | rsync -a --from0 --files-from=- . "$dest/"
# ansible-test lists files with git when it finds a repository; a plain tree is walked instead.
echo "$dest"
