"""Bad input fails at the start with one clear message, and nothing is deployed.

Runs ansible-playbook against the collection (APIGW_COLLECTION_ROOT copy made by scripts/collection-tree.sh)
with a throw-away base directory and free ports; each case asserts the message and that the base directory
was not created (no virtualenv, no config, no process).

    python -m pytest tests/roles -q
"""

import os
import shutil
import socket
import subprocess

import pytest

from tests.roles.playbook_runner import BIN, ansible_playbook, assert_refused, free_port, stack_ports


def run(collection_root, playbook, *extra, base_dir):
    return ansible_playbook(collection_root, playbook, *stack_ports(), *extra, base_dir=base_dir)


def test_unknown_runtime(collection_root, base_dir):
    result = run(collection_root, "playbooks/site.yml", "-e", "redis_runtime=kubernetes", base_dir=base_dir)
    assert_refused(result, "value of redis_runtime must be one of: supervisor, systemd, got: kubernetes", base_dir)


def test_unknown_gateway_runtime(collection_root, base_dir):
    result = run(collection_root, "tests/roles/playbooks/gateway_only.yml", "-e", "gateway_runtime=swarm",
                 base_dir=base_dir)
    assert_refused(result, "value of gateway_runtime must be one of: supervisor, systemd, got: swarm", base_dir)


def test_invalid_rate_limit_profile(collection_root, base_dir):
    result = run(collection_root, "tests/roles/playbooks/gateway_only.yml",
                 "-e", "gateway_rate_limit_profile=aggressive", base_dir=base_dir)
    assert_refused(result, "value of gateway_rate_limit_profile must be one of: strict, moderate, permissive, "
                           "got: aggressive", base_dir)


def test_port_in_use(collection_root, base_dir):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen(1)
        port = busy.getsockname()[1]
        result = run(collection_root, "playbooks/site.yml", "-e", f"redis_port={port}", base_dir=base_dir)
    assert_refused(result, f"Port {port} on 127.0.0.1 is already in use by another process", base_dir)


def test_gateway_port_in_use(collection_root, base_dir):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen(1)
        port = busy.getsockname()[1]
        result = run(collection_root, "tests/roles/playbooks/gateway_only.yml", "-e", f"gateway_port={port}",
                     base_dir=base_dir)
    assert_refused(result, f"Port {port} on 127.0.0.1 is already in use by another process", base_dir)


def test_missing_key_file(collection_root, base_dir):
    result = run(collection_root, "tests/roles/playbooks/gateway_only.yml",
                 "-e", "gateway_jwt_private_key=/nonexistent/jwt.pem", base_dir=base_dir)
    assert_refused(result, "JWT private key /nonexistent/jwt.pem (gateway_jwt_private_key) does not exist", base_dir)


def test_missing_key_set_without_generation(collection_root, base_dir):
    result = run(collection_root, "tests/roles/playbooks/gateway_only.yml",
                 "-e", "gateway_jwt_key_generate=false", base_dir=base_dir)
    assert_refused(result, "keyset.json missing) and gateway_jwt_key_generate is false", base_dir)


def test_redis_unreachable(collection_root, base_dir):
    port = free_port()
    result = run(collection_root, "tests/roles/playbooks/gateway_only.yml", "-e", f"gateway_redis_port={port}",
                 base_dir=base_dir)
    assert_refused(result, f"Cannot reach Redis at 127.0.0.1:{port} (nothing listens there)", base_dir)


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze not installed")
def test_systemd_units_render_and_verify(collection_root, tmp_path):
    _root, path = collection_root
    venv = os.path.dirname(BIN)
    result = run(collection_root, "tests/roles/playbooks/render_systemd.yml",
                 "-e", f"render_dir={tmp_path}", "-e", f"roles_dir={path}/roles",
                 "-e", f"gateway_venv_dir={venv}", "-e", "redis_systemd_user=root", "-e", "gateway_systemd_user=root",
                 base_dir=str(tmp_path / "base"))
    assert result.returncode == 0, result.stdout + result.stderr
    units = [str(tmp_path / "apigw-redis.service"), str(tmp_path / "apigw-gateway-upstream.service")]
    instance = tmp_path / "apigw-gateway@3000.service"
    instance.symlink_to(tmp_path / "apigw-gateway@.service")
    check = subprocess.run(["systemd-analyze", "verify", *units, str(instance)], capture_output=True, text=True,
                           check=False)
    problems = [line for line in (check.stdout + check.stderr).splitlines()
                if "apigw" in line and "not found" not in line.lower()]
    assert check.returncode == 0 or not problems, check.stdout + check.stderr
    assert "ExecStart=/usr/bin/redis-server" in (tmp_path / "apigw-redis.service").read_text()
    assert "RATE_LIMIT_GLOBAL_MAX=100" in (tmp_path / "production.env").read_text()
