#!/bin/sh
# Install npm `jose` (pinned) and the verifier script into a gitignored directory (default tests/output/node).
# Usage: tests/jose/setup.sh [DIR]   -> prints DIR
# jose 5.x is pinned on purpose: Debian 12's Node.js is 18, which has no global WebCrypto (`crypto`);
# jose 6 needs it, jose 5 has a Node build on node:crypto and runs on Node 18, 20 and 22.
set -eu
JOSE_VERSION=5.10.0
here=$(cd "$(dirname "$0")" && pwd)
dir=${1:-${APIGW_JOSE_DIR:-$here/../output/node}}
mkdir -p "$dir"
installed=$(sed -n 's/^ *"version": *"\([^"]*\)".*/\1/p' "$dir/node_modules/jose/package.json" 2>/dev/null | head -n 1)
if [ "$installed" != "$JOSE_VERSION" ]; then
    (cd "$dir" && npm install --silent --no-audit --no-fund --no-save "jose@$JOSE_VERSION" >/dev/null)
fi
cp "$here/verify_jwks.mjs" "$dir/verify_jwks.mjs"
echo "$dir"
