#!/usr/bin/env bash
# The main job: deploy Redis + the reference gateway + the mock upstream on this machine (supervisord, no Docker,
# no systemd, root not needed), check their health, and take a short tour of the runbook's Common Tasks.
# Running it again changes nothing in the deployment (site.yml reports changed=0).
#   scripts/main-job.sh                  deploy + health check + tour
#   APIGW_BASE_DIR=/some/dir scripts/main-job.sh    all state there (default ~/.local/share/apigw)
#   APIGW_GATEWAY_PORT / APIGW_REDIS_PORT / APIGW_UPSTREAM_PORT   other ports (default 8080 / 6380 / 4000)
# Tear down:  scripts/main-job.sh --teardown      (= ansible-playbook playbooks/teardown.yml -e purge=true)
set -euo pipefail
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$repo"
say() { printf '\n\033[1m==> %s\033[0m\n' "$*"; }
# run CMD...: show the command, run it, show its wall time
run() {
  printf '$ %s\n' "$*"
  local t0 t1
  t0=$(date +%s.%N)
  "$@"
  t1=$(date +%s.%N)
  awk -v a="$t0" -v b="$t1" -v what="${2:-$1}" -v load="$(cut -d' ' -f1-3 /proc/loadavg 2>/dev/null)" \
    'BEGIN { printf "(%s: %.1f s wall, load average %s)\n", what, b - a, load }'
}

# 1. the virtualenv with Ansible and the collection's dependencies
if [ ! -x .venv/bin/ansible-playbook ]; then
  say "Setting up .venv (scripts/bootstrap.sh runtime)"
  scripts/bootstrap.sh runtime
fi
export PATH=$repo/.venv/bin:$PATH
# 2. the collection, as Ansible finds it: ansible.cfg's collections_path holds build/collections, where
#    apigw/ops is a link to this checkout (the same setup the printed commands below rely on)
scripts/collection-link.sh
export ANSIBLE_CONFIG=$repo/ansible.cfg ANSIBLE_FORCE_COLOR=${ANSIBLE_FORCE_COLOR:-1}
base=${APIGW_BASE_DIR:-$HOME/.local/share/apigw}
export APIGW_BASE_DIR=$base

if [ "${1:-}" = "--teardown" ]; then
  say "Tearing everything down"
  run ansible-playbook playbooks/teardown.yml -e purge=true
  exit 0
fi

say "Deploying Redis, the gateway and the mock upstream (site.yml)"
run ansible-playbook playbooks/site.yml
say "Health check (healthcheck.yml)"
run ansible-playbook playbooks/healthcheck.yml
say "Tour: login, rate limit hit and cleared, account locked and unlocked, token revoked, audit log read (demo.yml)"
run ansible-playbook playbooks/demo.yml

gw_port=${APIGW_GATEWAY_PORT:-8080}  # inventories/local/group_vars/all.yml
# Every line under "operate" runs verbatim in a new shell from the repository root after the activation
# line (tests/mainjob/test_printed_commands.py runs them): keep them complete and literal.
cat <<INFO

$(printf '\033[1m')apigw is running$(printf '\033[0m') (state in $base)
  gateway    http://127.0.0.1:${gw_port}   (/healthz /readyz /metrics /.well-known/jwks.json /auth/login)
  logs       $base/logs/gateway-${gw_port}.log  upstream.log  redis.log  audit-logs.json
  operate    (from $repo, in a new shell; docs/runbook-map.md lists every playbook)
INFO
sed 's/^/    /' <<COMMANDS
source .venv/bin/activate
curl -s http://127.0.0.1:${gw_port}/readyz
supervisorctl -c $base/supervisor/supervisord.conf status
ansible-playbook playbooks/healthcheck.yml
ansible-playbook playbooks/restart.yml
ansible-playbook playbooks/scale.yml -e workers=2
ansible-playbook playbooks/update_config.yml -e rate_limit_profile=moderate
ansible-playbook playbooks/unlock_account.yml -e unlock_username=demo
COMMANDS
cat <<INFO
  stop       scripts/main-job.sh --teardown   (= ansible-playbook playbooks/teardown.yml -e purge=true)
INFO
