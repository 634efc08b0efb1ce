#!/bin/sh
# Install npm `jose` 6.x and the verifier script into a gitignored directory (default tests/output/node).
# Usage: tests/jose/setup.sh [DIR]   -> prints DIR
set -eu
here=$(cd "$(dirname "$0")" && pwd)
dir=${1:-${APIGW_JOSE_DIR:-$here/../output/node}}
mkdir -p "$dir"
if [ ! -f "$dir/node_modules/jose/package.json" ]; then
    (cd "$dir" && npm install --silent --no-audit --no-fund --no-save jose@6 >/dev/null)
fi
cp "$here/verify_jwks.mjs" "$dir/verify_jwks.mjs"
echo "$dir"
