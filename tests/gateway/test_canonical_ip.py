"""One canonical client IP in keys, on both sides of the contract: the reference gateway writes the counters
and lockouts of an IPv6 client (written any way in X-Forwarded-For) and of an IPv4-mapped IPv6 client in the
form of docs/gateway-contract.md, and the collection's modules, given the address in another notation, find
and clear exactly those keys."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys

import pytest

from .conftest import PASSWORD

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
MODULES = os.path.join(REPO, "plugins", "modules")
pytestmark = pytest.mark.skipif(importlib.util.find_spec("ansible") is None, reason="needs ansible-core")


@pytest.fixture(scope="module")
def run_module(tmp_path_factory, redis_server):
    """Run a module of the collection against the gateway's Redis; returns its result."""
    root = tmp_path_factory.mktemp("collections")
    (root / "ansible_collections" / "apigw").mkdir(parents=True)
    os.symlink(REPO, root / "ansible_collections" / "apigw" / "ops")
    env = dict(os.environ, PYTHONPATH=str(root))

    def run(module, **params):
        args = root / "args.json"
        args.write_text(json.dumps({"ANSIBLE_MODULE_ARGS": dict(redis_server.connection(), **params)}))
        proc = subprocess.run([sys.executable, os.path.join(MODULES, module + ".py"), str(args)], env=env,
                              capture_output=True, text=True, check=False)
        result = json.loads(proc.stdout)
        assert not result.get("failed"), result
        return result

    return run


@pytest.fixture(scope="module")
def gw(gateway_factory):
    return gateway_factory({"RATE_LIMIT_GLOBAL_MAX": 100000, "RATE_LIMIT_USER_MAX": 100000,
                            "RATE_LIMIT_AUTH_MAX": 100000, "LOGIN_MAX_FAILURES": 2})


def _fail_login(gw, ip):
    with gw.client(ip) as client:
        return client.post("/auth/login", json={"username": "alice", "password": PASSWORD + "-wrong"})


def test_ipv6_client_keys_are_canonical_and_the_modules_find_them(gw, run_module):
    group = "%x" % (os.getpid() % 0xffff)
    canonical = "2001:db8:%s::1a" % group
    written = "2001:DB8:%s:0:0:0:0:001A" % group.upper()  # how a proxy might write it
    assert _fail_login(gw, written).status_code == 401
    redis = gw.redis
    for key in ("ratelimit:global:", "ratelimit:auth:", "loginfail:alice:"):
        assert redis.cli("EXISTS", key + canonical).strip() == "1", key
    assert _fail_login(gw, written).status_code in (401, 423)
    assert redis.cli("EXISTS", "lockout:alice:" + canonical).strip() == "1"

    other_notation = "2001:DB8:%s:0::1a" % group
    cleared = run_module("gateway_ratelimit", scope="all", subject=[other_notation])
    assert cleared["changed"] and cleared["deleted"] == 2, cleared
    unlocked = run_module("gateway_lockout", username="alice", ip=other_notation)
    assert unlocked["changed"] and unlocked["verified"] and unlocked["lockouts"] == ["lockout:alice:" + canonical]
    for key in ("ratelimit:global:", "ratelimit:auth:", "lockout:alice:"):
        assert redis.cli("EXISTS", key + canonical).strip() == "0", key


def test_ipv4_mapped_client_is_its_ipv4_address(gw, run_module, client_ip):
    assert _fail_login(gw, "::ffff:" + client_ip).status_code == 401
    redis = gw.redis
    assert redis.cli("GET", "loginfail:alice:" + client_ip).strip() == "1"
    assert redis.cli("EXISTS", "ratelimit:global:" + client_ip).strip() == "1"
    assert redis.cli("--scan", "--pattern", "*ffff*").split() == []
    cleared = run_module("gateway_ratelimit", scope="global", subject=["::FFFF:" + client_ip])
    assert cleared["deleted"] == 1 and redis.cli("EXISTS", "ratelimit:global:" + client_ip).strip() == "0"
