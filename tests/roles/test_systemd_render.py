"""The systemd units the redis and gateway roles render pass `systemd-analyze verify`.

Bad input to the playbooks and roles is tested in tests/roles/test_playbook_inputs.py (one table).

    python -m pytest tests/roles/test_systemd_render.py -q
"""

import os
import shutil
import subprocess

import pytest

from tests.roles.playbook_runner import BIN, ansible_playbook, stack_ports


def run(collection_root, playbook, *extra, base_dir):
    return ansible_playbook(collection_root, playbook, *stack_ports(), *extra, base_dir=base_dir)


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
