"""Key set: RFC 7638 kids, JWKS with overlapping keys, SIGHUP reload under load."""

from __future__ import annotations

import json
import os
import signal
import time

import jwt
import pytest
from apigw_gateway import devkeys
from apigw_gateway.keys import InvalidToken, KeySet, KeySetError, public_jwk, thumbprint
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from .test_lifecycle import GENEROUS, Hammer
from .conftest import wait_for


def test_rfc7638_thumbprint_example():
    # RFC 7638 section 3.1
    jwk = {"kty": "RSA", "alg": "RS256", "kid": "2011-04-29", "e": "AQAB",
           "n": "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZC"
                "iFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c"
                "7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44"
                "-csFCur-kEgU8awapJzKnqDKgw"}
    assert thumbprint(jwk) == "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"


def test_devkeys_writes_the_shared_format(tmp_path):
    kid = devkeys.write_keyset(str(tmp_path))
    keyset = json.loads((tmp_path / "keyset.json").read_text())
    jwks = json.loads((tmp_path / "jwks.json").read_text())
    assert keyset["active"] == kid
    entry = keyset["keys"][kid]
    assert entry["alg"] == "RS256" and entry["status"] == "active" and entry["not_after"] is None
    assert (tmp_path / entry["private_key"]).exists() and (tmp_path / entry["public_key"]).exists()
    assert oct((tmp_path / entry["private_key"]).stat().st_mode & 0o777) == "0o600"
    assert [k["kid"] for k in jwks["keys"]] == [kid]
    assert thumbprint(jwks["keys"][0]) == kid and jwks["keys"][0]["use"] == "sig"
    assert b"BEGIN PRIVATE KEY" in (tmp_path / entry["private_key"]).read_bytes()  # PKCS#8


def test_encrypted_private_key_needs_the_passphrase(tmp_path):
    kid = devkeys.write_keyset(str(tmp_path))
    entry = json.loads((tmp_path / "keyset.json").read_text())["keys"][kid]
    path = tmp_path / entry["private_key"]
    key = serialization.load_pem_private_key(path.read_bytes(), None)
    path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                       serialization.BestAvailableEncryption(b"pass-phrase")))
    with pytest.raises(KeySetError, match="passphrase"):
        KeySet.load(str(tmp_path), ("RS256",))
    keyset = KeySet.load(str(tmp_path), ("RS256",), "pass-phrase")
    token, _unused = keyset.issue(token_type="access", subject="u", username="u", ttl=60, issuer="i", audience="a")
    assert keyset.verify(token, token_type="access", issuer="i", audience="a")["sub"] == "u"


def test_es256_only_when_configured(tmp_path):
    key = ec.generate_private_key(ec.SECP256R1())
    jwk = public_jwk(key.public_key(), "ES256")
    (tmp_path / "ec.pem").write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                                        serialization.NoEncryption()))
    (tmp_path / "jwks.json").write_text(json.dumps({"keys": [jwk]}))
    (tmp_path / "keyset.json").write_text(json.dumps({"active": jwk["kid"], "keys": {jwk["kid"]: {
        "alg": "ES256", "status": "active", "not_after": None, "private_key": "ec.pem", "public_key": None}}}))
    with pytest.raises(KeySetError, match="not a usable key"):
        KeySet.load(str(tmp_path), ("RS256",))
    keyset = KeySet.load(str(tmp_path), ("RS256", "ES256"))
    token, _unused = keyset.issue(token_type="access", subject="u", username="u", ttl=60, issuer="i", audience="a")
    assert jwt.get_unverified_header(token)["alg"] == "ES256"
    assert keyset.verify(token, token_type="access", issuer="i", audience="a")["sub"] == "u"
    # an RS256 header on an ES256 key is refused before any signature check
    _header, rest = token.split(".", 1)
    forged = jwt.utils.base64url_encode(json.dumps({"alg": "RS256", "kid": jwk["kid"]}).encode()).decode()
    with pytest.raises(InvalidToken, match="algorithm"):
        keyset.verify(forged + "." + rest, token_type="access", issuer="i", audience="a")


def test_mismatched_private_key_is_refused(tmp_path):
    kid = devkeys.write_keyset(str(tmp_path / "a"))
    devkeys.write_keyset(str(tmp_path / "b"))
    other = json.loads((tmp_path / "b" / "keyset.json").read_text())
    other_entry = next(iter(other["keys"].values()))
    keyset = json.loads((tmp_path / "a" / "keyset.json").read_text())
    os.replace(tmp_path / "b" / other_entry["private_key"], tmp_path / "a" / "wrong.pem")
    keyset["keys"][kid]["private_key"] = "wrong.pem"
    (tmp_path / "a" / "keyset.json").write_text(json.dumps(keyset))
    with pytest.raises(KeySetError, match="does not match"):
        KeySet.load(str(tmp_path / "a"), ("RS256",))


def _reloads(gw):
    messages = ("Keys reloaded", "Reload failed, keeping the current keys and users")
    return sum(1 for r in gw.log_records() if r["msg"] in messages)


def _sighup_and_wait(gw, workers=1):
    before = _reloads(gw)
    gw.signal(signal.SIGHUP)
    wait_for(lambda: _reloads(gw) >= before + workers, message="reload logged by every worker")


def test_two_keys_in_jwks_both_verify(gateway_factory, client_ip):
    gw = gateway_factory(GENEROUS)
    old = gw.tokens("alice", ip=client_ip)
    old_kid = jwt.get_unverified_header(old["accessToken"])["kid"]
    new_kid = devkeys.write_keyset(gw.keys_dir, add=True)
    _sighup_and_wait(gw)
    with gw.client(client_ip) as client:
        kids = [k["kid"] for k in client.get("/.well-known/jwks.json").json()["keys"]]
        assert kids == [old_kid, new_kid]
        new = gw.tokens("alice", ip=client_ip)
        assert jwt.get_unverified_header(new["accessToken"])["kid"] == new_kid
        for tokens in (old, new):
            response = client.get("/reports/k", headers={"Authorization": f"Bearer {tokens['accessToken']}"})
            assert response.status_code == 200
        # a refresh token signed by the old key still refreshes, and comes back signed by the new key
        refreshed = client.post("/auth/refresh", json={"refreshToken": old["refreshToken"]})
        assert refreshed.status_code == 200
        assert jwt.get_unverified_header(refreshed.json()["refreshToken"])["kid"] == new_kid
        # retiring the old key (removing it from jwks.json) ends its tokens
        jwks_path = os.path.join(gw.keys_dir, "jwks.json")
        with open(jwks_path) as handle:
            jwks = json.load(handle)
        jwks["keys"] = [k for k in jwks["keys"] if k["kid"] != old_kid]
        with open(jwks_path, "w") as handle:
            json.dump(jwks, handle)
        _sighup_and_wait(gw)
        response = client.get("/reports/k", headers={"Authorization": f"Bearer {old['accessToken']}"})
        assert response.status_code == 401


def test_broken_key_set_on_reload_keeps_the_current_keys(gateway_factory, client_ip):
    gw = gateway_factory(GENEROUS)
    tokens = gw.tokens("bob", ip=client_ip)
    keyset_path = os.path.join(gw.keys_dir, "keyset.json")
    with open(keyset_path) as handle:
        good = handle.read()
    with open(keyset_path, "w") as handle:
        handle.write("{not json")
    _sighup_and_wait(gw)
    assert any(r["msg"].startswith("Reload failed") for r in gw.log_records())
    with gw.client(client_ip) as client:
        assert client.get("/reports/1", headers={"Authorization": f"Bearer {tokens['accessToken']}"}).status_code == 200
        assert gw.login("bob", ip=client_ip).status_code == 200
    with open(keyset_path, "w") as handle:
        handle.write(good)
    assert gw.proc.poll() is None


def test_sighup_reload_under_load_drops_nothing(gateway_factory):
    gw = gateway_factory(GENEROUS, workers=2)
    wait_for(lambda: len({r["pid"] for r in gw.log_records() if r["msg"] == "Gateway worker started"}) == 2)
    access = gw.tokens("carol")["accessToken"]
    kids = [jwt.get_unverified_header(access)["kid"]]
    with Hammer(gw, "/reports/load", {"Authorization": f"Bearer {access}"}, threads=3) as reports, \
            Hammer(gw, "/.well-known/jwks.json", threads=1) as jwks:
        for _attempt in range(2):
            time.sleep(0.3)
            kids.append(devkeys.write_keyset(gw.keys_dir, add=True))
            _sighup_and_wait(gw, workers=2)
            login = gw.login("carol")
            assert login.status_code == 200
            assert jwt.get_unverified_header(login.json()["accessToken"])["kid"] == kids[-1]
        time.sleep(0.3)
    assert reports.errors == [] and jwks.errors == []
    assert len(reports.statuses) > 50 and set(reports.statuses) == {200}
    assert set(jwks.statuses) == {200}
    published = [k["kid"] for k in gw.client().get("/.well-known/jwks.json").json()["keys"]]
    assert published == kids
