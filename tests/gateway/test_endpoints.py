"""Every endpoint against a real gateway, Redis and upstream."""

from __future__ import annotations

import time

import jwt
from prometheus_client.parser import text_string_to_metric_families

from .conftest import PASSWORD, wait_for


def test_healthz(gateway):
    response = gateway.client().get("/healthz")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ok"
    assert abs(body["timestamp"] - time.time() * 1000) < 60000
    assert response.headers["x-request-id"]


def test_readyz(gateway):
    response = gateway.client().get("/readyz")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ok" and body["redis"] == "ok" and isinstance(body["timestamp"], int)


def test_jwks_lists_the_active_key(gateway):
    response = gateway.client().get("/.well-known/jwks.json")
    assert response.status_code == 200
    keys = response.json()["keys"]
    assert len(keys) == 1
    assert keys[0]["kty"] == "RSA" and keys[0]["alg"] == "RS256" and keys[0]["use"] == "sig"
    assert not {"d", "p", "q", "dp", "dq", "qi"} & set(keys[0])


def test_login_issues_access_and_refresh_tokens(gateway, client_ip):
    body = gateway.tokens("alice", ip=client_ip)
    assert body["tokenType"] == "Bearer" and body["expiresIn"] == 900 and body["refreshExpiresIn"] == 604800
    kid = gateway.client().get("/.well-known/jwks.json").json()["keys"][0]["kid"]
    for token, kind, ttl in ((body["accessToken"], "access", 900), (body["refreshToken"], "refresh", 604800)):
        header = jwt.get_unverified_header(token)
        assert header["alg"] == "RS256" and header["kid"] == kid
        claims = jwt.decode(token, options={"verify_signature": False})
        assert claims["typ"] == kind and claims["sub"] == gateway.user_ids["alice"]
        assert claims["exp"] - claims["iat"] == ttl
        assert claims["iss"] == "apigw" and claims["aud"] == "apigw-api"
    refresh = jwt.decode(body["refreshToken"], options={"verify_signature": False})
    stored = gateway.redis.cli("HGET", f"token:user:{gateway.user_ids['alice']}", refresh["jti"]).strip()
    assert int(stored) == refresh["exp"]
    events = [e for e in gateway.audit_records() if e["eventType"] == "LOGIN_SUCCESS" and e["ip"] == client_ip]
    assert events and events[-1]["username"] == "alice" and events[-1]["requestId"] and events[-1]["timestamp"]


def test_login_with_a_wrong_password_is_401_and_counted(gateway, client_ip):
    with gateway.client(client_ip) as client:
        response = client.post("/auth/login", json={"username": "bob", "password": "nope"})
    assert response.status_code == 401
    assert response.json()["statusCode"] == 401
    assert gateway.redis.cli("GET", f"loginfail:bob:{client_ip}").strip() == "1"
    ttl = int(gateway.redis.cli("TTL", f"loginfail:bob:{client_ip}"))
    assert 0 < ttl <= 900
    events = [e for e in gateway.audit_records() if e["eventType"] == "LOGIN_FAILURE" and e["ip"] == client_ip]
    assert events and events[-1]["username"] == "bob"


def test_unknown_user_looks_like_a_wrong_password(gateway, client_ip):
    with gateway.client(client_ip) as client:
        response = client.post("/auth/login", json={"username": "mallory", "password": "x"})
    assert response.status_code == 401
    assert response.json()["message"] == "Invalid username or password"


def test_reports_are_proxied_with_request_id_and_user(gateway, client_ip):
    access = gateway.tokens("carol", ip=client_ip)["accessToken"]
    with gateway.client(client_ip) as client:
        response = client.get("/reports/q3-sales", headers={"Authorization": f"Bearer {access}",
                                                            "X-Request-Id": "trace-abc123"})
    assert response.status_code == 200
    body = response.json()
    assert body["id"] == "q3-sales" and body["userId"] == gateway.user_ids["carol"]
    assert body["requestId"] == "trace-abc123" and response.headers["x-request-id"] == "trace-abc123"


def test_reports_need_a_token(gateway, client_ip):
    with gateway.client(client_ip) as client:
        response = client.get("/reports/1")
    assert response.status_code == 401
    assert response.headers["www-authenticate"].startswith("Bearer")


def test_upstream_404_passes_through(gateway, client_ip):
    access = gateway.tokens(ip=client_ip)["accessToken"]
    with gateway.client(client_ip) as client:
        response = client.get("/reports/missing", headers={"Authorization": f"Bearer {access}"})
    assert response.status_code == 404


def test_refresh_rotates_the_refresh_token(gateway, client_ip):
    first = gateway.tokens("alice", ip=client_ip)
    user_key = f"token:user:{gateway.user_ids['alice']}"
    old = jwt.decode(first["refreshToken"], options={"verify_signature": False})
    with gateway.client(client_ip) as client:
        response = client.post("/auth/refresh", json={"refreshToken": first["refreshToken"]})
        assert response.status_code == 200, response.text
        second = response.json()
        new = jwt.decode(second["refreshToken"], options={"verify_signature": False})
        assert new["jti"] != old["jti"]
        assert gateway.redis.cli("HEXISTS", user_key, old["jti"]).strip() == "0"
        assert int(gateway.redis.cli("HGET", user_key, new["jti"])) == new["exp"]
        assert gateway.redis.cli("GET", f"token:blacklist:{old['jti']}").strip() == "1"
        # the old refresh token is single-use
        again = client.post("/auth/refresh", json={"refreshToken": first["refreshToken"]})
        assert again.status_code == 401
        # the new access token works
        report = client.get("/reports/7", headers={"Authorization": f"Bearer {second['accessToken']}"})
        assert report.status_code == 200
    events = [e for e in gateway.audit_records() if e["eventType"] == "TOKEN_REFRESH" and e["ip"] == client_ip]
    assert [e["outcome"] for e in events] == ["success", "rejected"]


def test_logout_revokes_the_refresh_token(gateway, client_ip):
    tokens = gateway.tokens("bob", ip=client_ip)
    claims = jwt.decode(tokens["refreshToken"], options={"verify_signature": False})
    with gateway.client(client_ip) as client:
        response = client.post("/auth/logout", json={"refreshToken": tokens["refreshToken"]})
        assert response.status_code == 200
        assert response.json()["revoked"] == claims["jti"]
        key = f"token:blacklist:{claims['jti']}"
        assert gateway.redis.cli("GET", key).strip() == "1"
        ttl = int(gateway.redis.cli("TTL", key))
        assert 604800 - 60 < ttl <= 604800
        assert gateway.redis.cli("HEXISTS", f"token:user:{gateway.user_ids['bob']}", claims["jti"]).strip() == "0"
        refused = client.post("/auth/refresh", json={"refreshToken": tokens["refreshToken"]})
        assert refused.status_code == 401 and "revoked" in refused.json()["message"]
    kinds = [e["eventType"] for e in gateway.audit_records() if e["ip"] == client_ip]
    assert "TOKEN_REVOKED" in kinds and "LOGOUT" in kinds


def test_revocation_by_the_runbook_blacklist_key(gateway, client_ip):
    """The runbook's `redis-cli setex token:blacklist:<jti> 604800 1` revokes a refresh token."""
    tokens = gateway.tokens("carol", ip=client_ip)
    jti = jwt.decode(tokens["refreshToken"], options={"verify_signature": False})["jti"]
    gateway.redis.cli("SETEX", f"token:blacklist:{jti}", "604800", "1")
    with gateway.client(client_ip) as client:
        response = client.post("/auth/refresh", json={"refreshToken": tokens["refreshToken"]})
    assert response.status_code == 401
    # and deleting the key un-revokes it
    gateway.redis.cli("DEL", f"token:blacklist:{jti}")
    with gateway.client(client_ip) as client:
        response = client.post("/auth/refresh", json={"refreshToken": tokens["refreshToken"]})
    assert response.status_code == 200


def test_unknown_path_is_json_404(gateway):
    response = gateway.client().get("/nope")
    assert response.status_code == 404
    assert response.json()["statusCode"] == 404


def test_wrong_method_is_405(gateway):
    response = gateway.client().get("/auth/login")
    assert response.status_code == 405


def test_access_log_lines(gateway, client_ip):
    gateway.client(client_ip).get("/healthz", headers={"X-Request-Id": "log-check-1"})

    def found():
        return [r for r in gateway.log_records() if r.get("requestId") == "log-check-1"]

    record = wait_for(found, message="access log line")[0]
    assert record["msg"] == "Incoming request" and record["ip"] == client_ip and record["status"] == 200
    assert isinstance(record["duration"], float | int)
    assert any(r["msg"] == "Redis connected" for r in gateway.log_records())


def test_metrics_serve_the_runbook_series(gateway, client_ip):
    with gateway.client(client_ip) as client:
        client.post("/auth/login", json={"username": "alice", "password": "wrong"})
        client.post("/auth/login", json={"username": "alice", "password": PASSWORD})
        text = client.get("/metrics").text
    families = {f.name: f for f in text_string_to_metric_families(text)}
    # names as the runbook's PromQL uses them (the parser drops the _total suffix of counters)
    assert families["http_requests"].type == "counter"
    statuses = {s.labels["status"] for s in families["http_requests"].samples}
    assert {"200", "401"} <= statuses
    assert families["http_request_duration_seconds"].type == "histogram"
    assert any(s.name == "http_request_duration_seconds_bucket" and "le" in s.labels
               for s in families["http_request_duration_seconds"].samples)
    assert "rate_limit_exceeded" in families
    failures = sum(s.value for s in families["login_failures"].samples if s.name == "login_failures_total")
    assert failures >= 1
