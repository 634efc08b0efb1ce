"""Contract check: the gateway serves a key set written by the collection's own jwt_keyset module.

The module runs as Ansible runs it on a host (the module file with its JSON arguments, the
collection importable as ansible_collections.apigw.ops); skipped where ansible-core is missing.
"""

from __future__ import annotations

import importlib.util
import json
import os
import signal
import subprocess
import sys

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from .conftest import wait_for
from .test_lifecycle import GENEROUS

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
MODULE = os.path.join(REPO, "plugins", "modules", "jwt_keyset.py")
pytestmark = pytest.mark.skipif(importlib.util.find_spec("ansible") is None or not os.path.exists(MODULE),
                                reason="needs ansible-core and the jwt_keyset module")


@pytest.fixture(scope="module")
def module_runner(tmp_path_factory):
    root = tmp_path_factory.mktemp("collections")
    (root / "ansible_collections" / "apigw").mkdir(parents=True)
    os.symlink(REPO, root / "ansible_collections" / "apigw" / "ops")
    env = dict(os.environ, PYTHONPATH=str(root))

    def run(**params):
        args = root / "args.json"
        args.write_text(json.dumps({"ANSIBLE_MODULE_ARGS": params}))
        proc = subprocess.run([sys.executable, MODULE, str(args)], env=env, capture_output=True, text=True, check=False,
                              timeout=120)
        result = json.loads(proc.stdout)
        assert not result.get("failed"), result
        return result

    return run


def _pem(path):
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                       serialization.NoEncryption()))
    return str(path)


def _reload(gw):
    before = sum(1 for r in gw.log_records() if r["msg"] == "Keys reloaded")
    gw.signal(signal.SIGHUP)
    wait_for(lambda: sum(1 for r in gw.log_records() if r["msg"] == "Keys reloaded") > before)


def test_rotation_with_the_jwt_keyset_module(module_runner, gateway_factory, tmp_path, client_ip):
    keys = tmp_path / "keyset"
    first, second = _pem(tmp_path / "k1.pem"), _pem(tmp_path / "k2.pem")
    module_runner(path=str(keys), key=first, role="active")
    gw = gateway_factory({**GENEROUS, "JWT_KEYS_DIR": str(keys)})
    old = gw.tokens("alice", ip=client_ip)
    old_kid = jwt.get_unverified_header(old["accessToken"])["kid"]
    assert json.loads((keys / "keyset.json").read_text())["active"] == old_kid

    module_runner(path=str(keys), key=second, role="next")  # published before it signs
    _reload(gw)
    with gw.client(client_ip) as client:
        assert len(client.get("/.well-known/jwks.json").json()["keys"]) == 2
        assert jwt.get_unverified_header(gw.tokens("alice", ip=client_ip)["accessToken"])["kid"] == old_kid

        module_runner(path=str(keys), key=second, role="active")
        _reload(gw)
        new = gw.tokens("alice", ip=client_ip)
        new_kid = jwt.get_unverified_header(new["accessToken"])["kid"]
        assert new_kid != old_kid
        for tokens in (old, new):  # the overlap window: both verify
            response = client.get("/reports/r", headers={"Authorization": f"Bearer {tokens['accessToken']}"})
            assert response.status_code == 200

        module_runner(path=str(keys), kid=old_kid, state="absent")  # retire the old key
        _reload(gw)
        assert [k["kid"] for k in client.get("/.well-known/jwks.json").json()["keys"]] == [new_kid]
        assert client.get("/reports/r", headers={"Authorization": f"Bearer {old['accessToken']}"}).status_code == 401
        assert client.get("/reports/r", headers={"Authorization": f"Bearer {new['accessToken']}"}).status_code == 200
