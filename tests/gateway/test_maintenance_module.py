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
