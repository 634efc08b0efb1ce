"""Lockout and rate limiting with the contract's Redis keys."""

from __future__ import annotations

import pytest

from .conftest import PASSWORD


@pytest.fixture(scope="module")
def strict(gateway_factory):
    return gateway_factory({
        "LOGIN_MAX_FAILURES": 3, "LOCKOUT_DURATION": 600000, "LOGIN_FAILURE_WINDOW": 300000,
        "RATE_LIMIT_GLOBAL_MAX": 8, "RATE_LIMIT_GLOBAL_WINDOW": 60000,
        "RATE_LIMIT_AUTH_MAX": 6, "RATE_LIMIT_AUTH_WINDOW": 60000,
        "RATE_LIMIT_USER_MAX": 3, "RATE_LIMIT_USER_WINDOW": 60000,
    })


def _login(gw, ip, password, username="alice"):
    with gw.client(ip) as client:
        return client.post("/auth/login", json={"username": username, "password": password})


def test_lockout_after_n_failures_and_unlock_by_deleting_the_key(strict, client_ip):
    redis = strict.redis
    assert _login(strict, client_ip, "bad1").status_code == 401
    assert _login(strict, client_ip, "bad2").status_code == 401
    assert redis.cli("GET", f"loginfail:alice:{client_ip}").strip() == "2"
    locked = _login(strict, client_ip, "bad3")
    assert locked.status_code == 423
    assert 0 < int(locked.headers["retry-after"]) <= 600
    # the lockout starts and the failure counter is cleared
    assert redis.cli("EXISTS", f"lockout:alice:{client_ip}").strip() == "1"
    assert 590 < int(redis.cli("TTL", f"lockout:alice:{client_ip}")) <= 600
    assert redis.cli("EXISTS", f"loginfail:alice:{client_ip}").strip() == "0"
    # even the right password is refused while locked
    assert _login(strict, client_ip, PASSWORD).status_code == 423
    # the lockout is per username and IP
    assert _login(strict, client_ip, PASSWORD, username="bob").status_code == 200
    # runbook "Unlock Account": redis-cli del lockout:username:ip
    redis.cli("DEL", f"lockout:alice:{client_ip}")
    assert redis.cli("EXISTS", f"lockout:alice:{client_ip}").strip() == "0"
    assert _login(strict, client_ip, PASSWORD).status_code == 200
    events = [e["eventType"] for e in strict.audit_records() if e["ip"] == client_ip]
    assert events.count("ACCOUNT_LOCKED") == 1
    assert events.count("LOGIN_FAILURE") == 4  # three wrong passwords and one attempt while locked
    assert events.count("LOGIN_SUCCESS") == 2


def test_success_resets_the_failure_counter(strict, client_ip):
    assert _login(strict, client_ip, "bad").status_code == 401
    assert _login(strict, client_ip, PASSWORD).status_code == 200
    assert strict.redis.cli("EXISTS", f"loginfail:alice:{client_ip}").strip() == "0"


def test_auth_rate_limit_per_ip(strict, client_ip):
    statuses = [_login(strict, client_ip, PASSWORD, username="carol").status_code for _attempt in range(7)]
    assert statuses == [200] * 6 + [429]
    response = _login(strict, client_ip, PASSWORD, username="carol")
    assert response.status_code == 429
    assert 0 < int(response.headers["retry-after"]) <= 60
    assert strict.redis.cli("GET", f"ratelimit:auth:{client_ip}").strip() == "8"
    assert 0 < int(strict.redis.cli("PTTL", f"ratelimit:auth:{client_ip}")) <= 60000
    # clearing the counter (runbook "Clear Rate Limits") lets the client in again
    strict.redis.cli("DEL", f"ratelimit:auth:{client_ip}", f"ratelimit:global:{client_ip}")
    assert _login(strict, client_ip, PASSWORD, username="carol").status_code == 200
    audit = [e for e in strict.audit_records() if e["ip"] == client_ip and e["eventType"] == "RATE_LIMIT_EXCEEDED"]
    assert len(audit) == 1 and audit[0]["scope"] == "auth"  # audited once per window, not per refusal


def test_global_and_user_rate_limits(strict, client_ip):
    access = strict.tokens("bob", ip=client_ip)["accessToken"]
    headers = {"Authorization": f"Bearer {access}"}
    strict.redis.cli("DEL", f"ratelimit:user:{strict.user_ids['bob']}")
    with strict.client(client_ip) as client:
        statuses = [client.get("/reports/r", headers=headers).status_code for _attempt in range(4)]
    assert statuses == [200, 200, 200, 429]
    # another IP, same user: still limited by the per-user counter
    with strict.client(client_ip + "0") as other:
        response = other.get("/reports/r", headers=headers)
        assert response.status_code == 429 and "user" in response.json()["message"]
    assert int(strict.redis.cli("GET", f"ratelimit:user:{strict.user_ids['bob']}")) >= 5
    # the global limit (8 per window) counts every API request of the IP
    strict.redis.cli("DEL", f"ratelimit:user:{strict.user_ids['bob']}")
    with strict.client(client_ip) as client:
        for _attempt in range(4):
            client.get("/reports/r", headers=headers)
        response = client.get("/reports/r", headers=headers)
    assert response.status_code == 429 and "global" in response.json()["message"]
    ttl = int(strict.redis.cli("PTTL", f"ratelimit:global:{client_ip}"))
    assert 0 < ttl <= 60000


def test_rate_limit_metric(strict, client_ip):
    """Refusals are counted per scope. The test makes its own (an auth and a user refusal): with pytest-xdist the
    tests above may have run in another worker, against another gateway."""
    assert [_login(strict, client_ip, PASSWORD, username="carol").status_code for _attempt in range(7)][-1] == 429
    first, second, third, fourth = client_ip.split(".")
    other_ips = [f"{first}.{second}.{int(third) + 100 + n}.{fourth}" for n in (1, 2)]  # outside the fixture's range
    access = strict.tokens("bob", ip=other_ips[0])["accessToken"]
    strict.redis.cli("DEL", f"ratelimit:user:{strict.user_ids['bob']}")
    with strict.client(other_ips[1]) as client:
        statuses = [client.get("/reports/r", headers={"Authorization": f"Bearer {access}"}).status_code
                    for _attempt in range(4)]
    assert statuses[-1] == 429
    text = strict.client().get("/metrics").text
    values = [line for line in text.splitlines() if line.startswith("rate_limit_exceeded_total{")]
    assert any('scope="auth"' in line for line in values)
    assert any('scope="user"' in line for line in values)


def test_a_counter_without_ttl_gets_one(strict, client_ip):
    """A counter set by hand (incident response) without a TTL still expires after one window."""
    strict.redis.cli("SET", f"ratelimit:global:{client_ip}", "1")
    strict.client(client_ip).get("/reports/x")
    assert 0 < int(strict.redis.cli("PTTL", f"ratelimit:global:{client_ip}")) <= 60000


def test_health_endpoints_are_not_rate_limited(strict, client_ip):
    with strict.client(client_ip) as client:
        assert all(client.get("/healthz").status_code == 200 for _attempt in range(12))
