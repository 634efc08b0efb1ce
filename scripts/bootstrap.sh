#!/usr/bin/env bash
# Set up everything the collection needs on a Debian/Ubuntu machine:
#   system packages (redis-server and tools; installed with apt when run as root),
#   a virtualenv at .venv with the pinned Python packages, and the offline stand-in for
#   ansible-test's pip bootstrap script.  Safe to run again: it only does what is missing.
# Usage: scripts/bootstrap.sh [runtime|dev]     (default: dev)
set -euo pipefail
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
profile=${1:-dev}
venv=${APIGW_VENV:-$repo/.venv}
python=${PYTHON:-python3}

say() { printf '==> %s\n' "$*"; }
die() { printf 'ERROR: %s\n' "$*" >&2; exit 1; }

# --- system packages -------------------------------------------------------------------
apt_packages=(redis-server redis-tools openssl rsync git jq curl ca-certificates)
# openssh-client: ansible-test integration needs ssh-keygen even for local runs
[ "$profile" = dev ] && apt_packages+=(shellcheck prometheus systemd openssh-client)
missing=()
for pkg in "${apt_packages[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
# Node.js (for the jose and autocannon cross-checks) may come from Debian or elsewhere.  Debian 12's is 18:
# the npm packages are pinned to versions that run on it (jose 5, see tests/jose/setup.sh; autocannon 8).
if [ "$profile" = dev ] && ! { command -v node && command -v npm; } >/dev/null; then
  missing+=(nodejs npm)
fi
# the python used for the venv must be able to make one (Debian splits venv out)
"$python" -c 'import venv, ensurepip' 2>/dev/null || missing+=(python3-venv)
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null; then
    say "Installing system packages: ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  else
    die "missing system packages: ${missing[*]}. Run: sudo apt-get install -y ${missing[*]}"
  fi
fi
# apt starts a system redis-server on 6379 on some hosts; it is not ours and is left alone.

# --- virtualenv ------------------------------------------------------------------------
req=$repo/requirements.txt
[ "$profile" = dev ] && req=$repo/requirements-dev.txt
stamp=$venv/.apigw-$(cat "$repo/requirements.txt" "$req" "$repo/constraints.txt" | sha256sum | cut -c1-16)
if [ ! -f "$stamp" ]; then
  if [ ! -x "$venv/bin/python" ]; then
    say "Creating virtualenv $venv"
    "$python" -m venv "$venv"
  fi
  say "Installing Python packages from $(basename "$req")"
  "$venv/bin/python" -m pip install -q --upgrade pip
  "$venv/bin/python" -m pip install -q -r "$req" -c "$repo/constraints.txt"
  rm -f "$venv"/.apigw-*
  touch "$stamp"
fi

# --- ansible-test offline pip bootstrap ------------------------------------------------
# ansible-test --venv downloads get-pip.py; this stand-in uses ensurepip + the index instead.
cache=$HOME/.ansible/test/cache
mkdir -p "$cache"
for version in 24_2 25_0 25_1 25_2 25_3; do
  cat > "$cache/get_pip_$version.py" <<'PY'
"""Offline stand-in for get-pip.py used by ansible-test: ensurepip, then pip from the index."""
import subprocess
import sys

args = [a for a in sys.argv[1:] if not a.startswith("--disable-pip-version-check")]
subprocess.check_call([sys.executable, "-m", "ensurepip", "--upgrade", "--default-pip"])
requirements = [a for a in args if not a.startswith("-")] or ["pip"]
subprocess.check_call([sys.executable, "-m", "pip", "install", "--disable-pip-version-check", "-q"] + requirements)
PY
done
# --- this checkout as the collection apigw.ops (ansible.cfg's collections_path) ----------
"$repo/scripts/collection-link.sh"

version=$("$venv/bin/ansible" --version)
say "Ready: $venv (${version%%$'\n'*})"
