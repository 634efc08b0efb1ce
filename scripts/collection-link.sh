#!/usr/bin/env bash
# Make this checkout findable as the collection apigw.ops: build/collections/ansible_collections/apigw/ops
# is a symlink to the repository, and ansible.cfg's collections_path points at build/collections.  So
# `ansible-playbook playbooks/<x>.yml` run from the repository root uses the code as it is in the checkout,
# never a stale copy.  (ansible-test and ansible-galaxy need a real tree: scripts/collection-tree.sh.)
set -euo pipefail
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
link=$repo/build/collections/ansible_collections/apigw/ops
mkdir -p "$(dirname "$link")"
# an older main job left a copied tree here: replace it with the link
[ -L "$link" ] || rm -rf "$link"
ln -sfn ../../../.. "$link"
[ -f "$link/galaxy.yml" ] || { echo "ERROR: $link does not lead to the repository" >&2; exit 1; }
