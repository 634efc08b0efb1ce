"""Hostile input: forged tokens, oversized and malformed bodies, injection attempts."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import pathlib
import time

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from .conftest import PASSWORD


def _b64(data):
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


def _claims(gateway, **overrides):
    now = int(time.time())
    claims = {"iss": "apigw", "aud": "apigw-api", "sub": gateway.user_ids["alice"], "username": "alice",
              "typ": "access", "iat": now, "nbf": now, "exp": now + 600, "jti": "forged-1"}
    claims.update(overrides)
    return {k: v for k, v in claims.items() if v is not None}


def _signing_key(gateway):
    from apigw_gateway.keys import KeySet

    return KeySet.load(gateway.keys_dir, ("RS256",))


def _assert_clean(response, status):
    assert response.status_code == status, response.text
    body = response.text
    assert "Traceback" not in body and "File \"" not in body and "Error(" not in body
    if body:
        assert response.json()["statusCode"] == status


def _get_report(gateway, token, ip):
    with gateway.client(ip) as client:
        return client.get("/reports/1", headers={"Authorization": f"Bearer {token}"})


def test_a_properly_signed_token_is_accepted(gateway, client_ip):
    keyset = _signing_key(gateway)
    assert _get_report(gateway, keyset.sign(_claims(gateway)), client_ip).status_code == 200


def test_alg_none_is_rejected(gateway, client_ip):
    kid = _signing_key(gateway).active_kid
    token = _b64({"alg": "none", "typ": "JWT", "kid": kid}) + "." + _b64(_claims(gateway)) + "."
    _assert_clean(_get_report(gateway, token, client_ip), 401)


def test_hs256_signed_with_the_public_key_is_rejected(gateway, client_ip):
    keyset = _signing_key(gateway)
    keys_dir = pathlib.Path(gateway.keys_dir)
    entry = json.loads((keys_dir / "keyset.json").read_text())["keys"][keyset.active_kid]
    public_pem = (keys_dir / entry["public_key"]).read_bytes()

    header = _b64({"alg": "HS256", "typ": "JWT", "kid": keyset.active_kid})
    payload = _b64(_claims(gateway))
    signature = hmac.new(public_pem, f"{header}.{payload}".encode(), hashlib.sha256).digest()
    token = f"{header}.{payload}." + base64.urlsafe_b64encode(signature).rstrip(b"=").decode()
    _assert_clean(_get_report(gateway, token, client_ip), 401)


def test_unknown_kid_is_rejected(gateway, client_ip):
    stranger = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    token = jwt.encode(_claims(gateway), stranger, algorithm="RS256", headers={"kid": "not-a-known-kid"})
    _assert_clean(_get_report(gateway, token, client_ip), 401)


def test_known_kid_with_a_foreign_signature_is_rejected(gateway, client_ip):
    stranger = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    kid = _signing_key(gateway).active_kid
    token = jwt.encode(_claims(gateway), stranger, algorithm="RS256", headers={"kid": kid})
    _assert_clean(_get_report(gateway, token, client_ip), 401)


@pytest.mark.parametrize("overrides, message", [
    ({"exp": int(time.time()) - 10, "iat": int(time.time()) - 1000, "nbf": int(time.time()) - 1000}, "expired"),
    ({"aud": "someone-else"}, "audience"),
    ({"iss": "evil"}, "issuer"),
    ({"nbf": int(time.time()) + 3600}, "not yet valid"),
    ({"typ": "refresh"}, "type"),
    ({"exp": None}, "invalid"),
])
def test_bad_claims_are_rejected(gateway, client_ip, overrides, message):
    token = _signing_key(gateway).sign(_claims(gateway, **overrides))
    response = _get_report(gateway, token, client_ip)
    _assert_clean(response, 401)
    assert message in response.json()["message"]


def test_tampered_payload_is_rejected(gateway, client_ip):
    token = _signing_key(gateway).sign(_claims(gateway))
    header, _payload, signature = token.split(".")
    forged = f"{header}.{_b64(_claims(gateway, sub='user-admin'))}.{signature}"
    _assert_clean(_get_report(gateway, forged, client_ip), 401)


@pytest.mark.parametrize("token", ["garbage", "a.b.c", "....", "eyJhbGciOiJSUzI1NiJ9." * 3])
def test_garbage_tokens(gateway, client_ip, token):
    _assert_clean(_get_report(gateway, token, client_ip), 401)


def test_access_token_cannot_refresh(gateway, client_ip):
    tokens = gateway.tokens(ip=client_ip)
    with gateway.client(client_ip) as client:
        response = client.post("/auth/refresh", json={"refreshToken": tokens["accessToken"]})
    _assert_clean(response, 401)


def test_oversized_body_is_413(gateway, client_ip):
    body = json.dumps({"username": "alice", "password": "x" * 20000})
    with gateway.client(client_ip) as client:
        response = client.post("/auth/login", content=body, headers={"Content-Type": "application/json"})
    _assert_clean(response, 413)


def test_oversized_chunked_body_is_413(gateway, client_ip):
    def chunks():
        yield b'{"username":"alice","password":"'
        for _attempt in range(40):
            yield b"x" * 1024
        yield b'"}'

    with gateway.client(client_ip) as client:
        response = client.post("/auth/login", content=chunks(), headers={"Content-Type": "application/json"})
    _assert_clean(response, 413)


@pytest.mark.parametrize("body", [b"{", b'{"username": "alice", "password": }', b"\xff\xfe", b"[1,2]", b"null",
                                  b"[" * 5000 + b"]" * 5000])
def test_malformed_json_is_400(gateway, client_ip, body):
    with gateway.client(client_ip) as client:
        response = client.post("/auth/login", content=body, headers={"Content-Type": "application/json"})
    _assert_clean(response, 400)


def test_wrong_content_type_is_415(gateway, client_ip):
    with gateway.client(client_ip) as client:
        response = client.post("/auth/login", data={"username": "alice", "password": PASSWORD})
    _assert_clean(response, 415)


@pytest.mark.parametrize("field", [{"username": 42}, {"password": ["x"]}, {"username": ""}])
def test_wrong_field_types_are_400(gateway, client_ip, field):
    with gateway.client(client_ip) as client:
        response = client.post("/auth/login", json={"username": "alice", "password": PASSWORD, **field})
    _assert_clean(response, 400)


@pytest.mark.parametrize("username", ["alice\r\nX-Injected: 1", "alice\nSet-Cookie: a=b", "al*ce", "alice:10.0.0.1",
                                      "a" * 65, "alice\x00", "ålice"])
def test_header_and_key_injection_in_usernames(gateway, client_ip, username):
    with gateway.client(client_ip) as client:
        response = client.post("/auth/login", json={"username": username, "password": PASSWORD})
    _assert_clean(response, 400)
    assert "x-injected" not in response.headers and "set-cookie" not in response.headers
    # nothing was written under a key built from the hostile name
    assert gateway.redis.cli("KEYS", "loginfail:*" + client_ip).strip() == ""
    # the attempt is audited on one JSON line, the name escaped, never interpreted
    with open(gateway.audit_file) as handle:
        lines = [line for line in handle if f'"ip":"{client_ip}"' in line]
    assert len(lines) == 1
    event = json.loads(lines[0])
    assert event["eventType"] == "LOGIN_FAILURE" and event["reason"] == "invalid_username"
    assert event["username"] == username


def test_request_id_injection_is_replaced(gateway):
    response = gateway.client().get("/healthz", headers={"X-Request-Id": "abc def<script>"})
    assert response.headers["x-request-id"] != "abc def<script>"
    assert len(response.headers["x-request-id"]) == 32


def test_path_traversal_report_id(gateway, client_ip):
    access = gateway.tokens(ip=client_ip)["accessToken"]
    with gateway.client(client_ip) as client:
        response = client.get("/reports/..%2F..%2Fadmin", headers={"Authorization": f"Bearer {access}"})
    assert response.status_code in (400, 404)
    assert "Traceback" not in response.text


def test_spoofed_forwarded_for_only_uses_the_trusted_hop(gateway):
    """With TRUST_PROXY_HOPS=1 the client IP is the last X-Forwarded-For entry, not the first."""
    with gateway.client() as client:
        client.get("/healthz", headers={"X-Forwarded-For": "6.6.6.6, 10.99.0.1", "X-Request-Id": "xff-check"})
    from .conftest import wait_for

    record = wait_for(lambda: [r for r in gateway.log_records() if r.get("requestId") == "xff-check"])[0]
    assert record["ip"] == "10.99.0.1"
