"""Contract check: the reference gateway honours what the collection's gateway_maintenance module writes.

The module runs as Ansible runs it on a host (the module file with its JSON arguments, the collection
importable as ansible_collections.apigw.ops) against the Redis the running gateway uses; the test then
asks the gateway, over HTTP, what its clients see. Skipped where ansible-core is missing.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys

import pytest

from .conftest import PASSWORD, http_get, wait_for
from .test_lifecycle import GENEROUS

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
MODULE = os.path.join(REPO, "plugins", "modules", "gateway_maintenance.py")
KEY = "gateway:maintenance"
pytestmark = pytest.mark.skipif(importlib.util.find_spec("ansible") is None or not os.path.exists(MODULE),
                                reason="needs ansible-core and the gateway_maintenance module")


@pytest.fixture(scope="module")
def maintenance_module(tmp_path_factory, redis_server):
    """Run gateway_maintenance with these options against the gateway's Redis; returns the module's result."""
    root = tmp_path_factory.mktemp("collections")
    (root / "ansible_collections" / "apigw").mkdir(parents=True)
    os.symlink(REPO, root / "ansible_collections" / "apigw" / "ops")
    env = dict(os.environ, PYTHONPATH=str(root))

    def run(**params):
        args = root / "args.json"
        args.write_text(json.dumps({"ANSIBLE_MODULE_ARGS": dict(redis_server.connection(), **params)}))
        proc = subprocess.run([sys.executable, MODULE, str(args)], env=env, capture_output=True, text=True,
                              check=False)
        result = json.loads(proc.stdout)
        assert not result.get("failed"), result
        return result

    return run


def login(gw, ip):
    with gw.client(ip) as client:
        return client.post("/auth/login", json={"username": "bob", "password": PASSWORD})


@pytest.mark.parametrize("workers", [1, 2])
def test_module_turns_maintenance_on_and_off(gateway_factory, maintenance_module, client_ip, workers):
    gw = gateway_factory(GENEROUS, workers=workers)
    assert login(gw, client_ip).status_code == 200

    on = maintenance_module(retry_after=90, maintenance_message="Planned maintenance: Redis upgrade",
                            reason="CHG-42", operator="pytest", ttl=600)
    assert on["changed"] and on["verified"] and on["maintenance"]["enabled"]

    response = wait_for(lambda: (r := login(gw, client_ip)).status_code == 503 and r, message="maintenance 503")
    assert response.headers["retry-after"] == "90"
    assert response.json()["message"] == "Planned maintenance: Redis upgrade" and response.json()["maintenance"]
    # every API route, on every worker (a new connection each time), answers 503 with the module's Retry-After;
    # liveness and metrics keep answering, readiness reports maintenance
    for _attempt in range(6 * workers):
        api = http_get(gw.url + "/reports/1", headers={"X-Forwarded-For": client_ip})
        assert api.status_code == 503 and api.headers["retry-after"] == "90"
        assert http_get(gw.url + "/healthz").status_code == 200
    ready = http_get(gw.url + "/readyz")
    assert ready.status_code == 503 and ready.json()["status"] == "maintenance"
    assert ready.headers["retry-after"] == "90"
    assert http_get(gw.url + "/metrics").status_code == 200

    assert not maintenance_module(retry_after=90, maintenance_message="Planned maintenance: Redis upgrade",
                                  ttl=600)["changed"]

    off = maintenance_module(state="absent")
    assert off["changed"] and off["verified"] and not off["maintenance"]["enabled"]
    wait_for(lambda: login(gw, client_ip).status_code == 200, message="maintenance off")
    for _attempt in range(6 * workers):
        assert http_get(gw.url + "/readyz").status_code == 200
    assert not maintenance_module(state="absent")["changed"]


def test_forgotten_window_ends_by_itself(gateway_factory, maintenance_module, redis_server, client_ip):
    gw = gateway_factory(GENEROUS)
    on = maintenance_module(retry_after=5, ttl=5)
    assert on["maintenance"]["ttl"] == 5 and on["maintenance"]["expires_at"]
    response = wait_for(lambda: (r := login(gw, client_ip)).status_code == 503 and r, message="maintenance 503")
    assert response.headers["retry-after"] == "5"
    # nobody turns it off: Redis deletes the hash at expires_at and the gateway serves again at its next poll
    wait_for(lambda: login(gw, client_ip).status_code == 200, message="the window to end by itself")
    assert redis_server.cli("EXISTS", KEY).strip() == "0"
    assert http_get(gw.url + "/readyz").status_code == 200


# -- the playbook: runbook "Planned Maintenance Procedure" against the running gateway -----------------------

UPDATE_TASKS = """
- name: The update sees the gateway refusing API traffic with the window's Retry-After
  ansible.builtin.uri:
    url: "{{ maintenance_urls[0] }}/auth/login"
    status_code: 503
  register: during_update
- name: The update sees the window recorded in Redis (check mode reads, never writes)
  apigw.ops.gateway_maintenance:
    state: absent
  check_mode: true
  register: during_state
- name: Record what the update saw
  ansible.builtin.copy:
    dest: "%(marker)s"
    content: "{{ {'retry_after': during_update.retry_after, 'previous': during_state.previous} | to_json }}"
    mode: "0600"
"""

FAILING_TASKS = """
- name: An update that fails
  ansible.builtin.fail:
    msg: the new release did not start
"""


@pytest.fixture(scope="module")
def playbook(tmp_path_factory, redis_server):
    root = tmp_path_factory.mktemp("playbook-collections")
    (root / "ansible_collections" / "apigw").mkdir(parents=True)
    os.symlink(REPO, root / "ansible_collections" / "apigw" / "ops")
    env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=str(root), ANSIBLE_CONFIG=os.path.join(REPO, "ansible.cfg"),
               ANSIBLE_NOCOLOR="1", ANSIBLE_FORCE_COLOR="0", ANSIBLE_LOCALHOST_WARNING="0")
    env.pop("PYTHONPATH", None)
    ansible_playbook = os.path.join(os.path.dirname(sys.executable), "ansible-playbook")

    def run(gw, backup_dir, *extra):
        args = [ansible_playbook, os.path.join(REPO, "playbooks", "maintenance.yml"),
                "-e", json.dumps({"apigw_redis_port": redis_server.port, "maintenance_gateway_urls": [gw.url],
                                  "maintenance_backup_dir": str(backup_dir), "maintenance_drain_seconds": 1}),
                *extra]
        proc = subprocess.run(args, env=env, cwd=REPO, capture_output=True, text=True, check=False)
        return proc.returncode, proc.stdout + proc.stderr

    return run


def test_playbook_runs_the_procedure(gateway_factory, playbook, redis_server, tmp_path, client_ip):
    gw = gateway_factory(GENEROUS)
    marker = tmp_path / "seen.json"
    tasks = tmp_path / "update.yml"
    tasks.write_text(UPDATE_TASKS % {"marker": marker})
    rc, out = playbook(gw, tmp_path / "backup", "-e", "maintenance_reason='CHG-7 release 2.1'",
                       "-e", "maintenance_retry_after=45", "-e", f"maintenance_update_tasks={tasks}",
                       "-e", "maintenance_operator=pytest")
    assert rc == 0, out
    seen = json.loads(marker.read_text())
    assert seen["retry_after"] == "45"
    assert seen["previous"]["enabled"] and seen["previous"]["reason"] == "CHG-7 release 2.1"
    assert seen["previous"]["operator"] == "pytest" and 0 < seen["previous"]["ttl"] <= 7200
    backups = sorted(p.name for p in (tmp_path / "backup").iterdir())
    assert len(backups) == 2 and backups[0].startswith("pre-maintenance-") and backups[1].endswith(".rdb")
    # afterwards: maintenance off, the hash gone, the gateway serving
    assert redis_server.cli("EXISTS", KEY).strip() == "0"
    assert login(gw, client_ip).status_code == 200


def test_playbook_failed_update_keeps_maintenance_on(gateway_factory, playbook, maintenance_module, redis_server,
                                                     tmp_path, client_ip):
    gw = gateway_factory(GENEROUS)
    tasks = tmp_path / "update.yml"
    tasks.write_text(FAILING_TASKS)
    rc, out = playbook(gw, tmp_path / "backup", "-e", "maintenance_reason=CHG-8", "-e",
                       f"maintenance_update_tasks={tasks}", "-e", "maintenance_backup=false")
    assert rc != 0 and "Maintenance mode is still ON" in out and "the new release did not start" in out, out
    assert redis_server.cli("HGET", KEY, "reason").strip() == "CHG-8"
    assert login(gw, client_ip).status_code == 503
    assert not (tmp_path / "backup").exists()
    maintenance_module(state="absent")

    rc, out = playbook(gw, tmp_path / "backup", "-e", "maintenance_reason=CHG-8", "-e",
                       f"maintenance_update_tasks={tasks}", "-e", "maintenance_backup=false",
                       "-e", "maintenance_on_failure=disable")
    assert rc != 0 and "Maintenance mode was turned off again" in out, out
    assert redis_server.cli("EXISTS", KEY).strip() == "0"
    wait_for(lambda: login(gw, client_ip).status_code == 200, message="serving again")


@pytest.mark.parametrize("extra, message", [
    ([], "missing required arguments: maintenance_reason"),
    (["-e", "maintenance_reason=' '"], "maintenance_reason is empty"),
    (["-e", "maintenance_reason=x", "-e", "maintenance_retry_after=0"], "maintenance_retry_after must be 1-86400"),
    (["-e", "maintenance_reason=x", "-e", "maintenance_on_failure=ignore"], "maintenance_on_failure"),
])
def test_playbook_bad_input_changes_nothing(gateway, playbook, redis_server, tmp_path, extra, message):
    rc, out = playbook(gateway, tmp_path / "backup", *extra)
    assert rc != 0 and message in out, out
    assert redis_server.cli("EXISTS", KEY).strip() == "0" and not (tmp_path / "backup").exists()


@pytest.mark.parametrize("backup_dir_exists", [True, False])
def test_playbook_check_mode_changes_nothing(gateway, playbook, redis_server, tmp_path, backup_dir_exists):
    if backup_dir_exists:
        (tmp_path / "backup").mkdir()
    rc, out = playbook(gateway, tmp_path / "backup", "-e", "maintenance_reason=CHG-9", "--check")
    assert rc == 0 and "Would run the maintenance window" in out, out
    assert redis_server.cli("EXISTS", KEY).strip() == "0"
    assert not (tmp_path / "backup").exists() or not list((tmp_path / "backup").iterdir())
