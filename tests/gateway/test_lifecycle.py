"""Operations while serving: Redis outage, maintenance mode, SIGTERM drain, circuit breaker, workers."""

from __future__ import annotations

import os
import signal
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.harness.redis_servers import RedisServer, free_port, start_standalone

from .conftest import PASSWORD, http_get, new_client, wait_for

GENEROUS = {"RATE_LIMIT_GLOBAL_MAX": 100000, "RATE_LIMIT_USER_MAX": 100000, "RATE_LIMIT_AUTH_MAX": 100000}


class Hammer:
    """Background requests; records every status and every transport error."""

    def __init__(self, gateway, path, headers=None, threads=4):
        self.gateway, self.path, self.headers = gateway, path, headers or {}
        self.statuses, self.errors = [], []
        self.stop_event = threading.Event()
        self.threads = [threading.Thread(target=self._run, daemon=True) for _attempt in range(threads)]

    def _run(self):
        with self.gateway.client() as client:
            while not self.stop_event.is_set():
                try:
                    self.statuses.append(client.get(self.path, headers=self.headers).status_code)
                except httpx.HTTPError as exc:
                    self.errors.append(repr(exc))

    def __enter__(self):
        for thread in self.threads:
            thread.start()
        return self

    def __exit__(self, *exc):
        self.stop_event.set()
        for thread in self.threads:
            thread.join(10)


def test_redis_outage_and_recovery_without_restart(gateway_factory, client_ip):
    redis = start_standalone()
    try:
        gw = gateway_factory(GENEROUS, redis=redis)
        with gw.client(client_ip) as client, Hammer(gw, "/healthz") as hammer:
            assert client.get("/readyz").status_code == 200
            redis.stop(remove=False)
            ready = wait_for(lambda: (r := client.get("/readyz")).status_code == 503 and r, message="readyz 503")
            assert ready.json()["redis"] == "error" and ready.json()["status"] == "error"
            login = client.post("/auth/login", json={"username": "alice", "password": PASSWORD})
            assert login.status_code == 503 and login.headers["retry-after"]
            assert "Traceback" not in login.text
            assert client.get("/healthz").status_code == 200
            redis.start()
            wait_for(lambda: client.get("/readyz").status_code == 200, message="readyz back to 200")
            assert client.post("/auth/login", json={"username": "alice", "password": PASSWORD}).status_code == 200
        assert gw.proc.poll() is None
        assert hammer.errors == [] and set(hammer.statuses) == {200}
        messages = [r["msg"] for r in gw.log_records()]
        assert "Redis connection error" in messages
        assert messages.count("Redis connected") >= 2
    finally:
        redis.stop()


def test_starts_without_redis_and_connects_when_it_comes(gateway_factory):
    redis = RedisServer()  # a port and a directory, not started yet
    try:
        gw = gateway_factory(GENEROUS, redis=redis)
        assert http_get(gw.url + "/healthz").status_code == 200
        ready = http_get(gw.url + "/readyz")
        assert ready.status_code == 503 and ready.json()["redis"] == "error"
        redis.start()
        wait_for(lambda: http_get(gw.url + "/readyz").status_code == 200, message="readyz 200")
        assert gw.login("alice").status_code == 200
        assert "Redis connected" in [r["msg"] for r in gw.log_records()]
    finally:
        redis.stop()


def test_maintenance_mode_on_and_off(gateway_factory, client_ip):
    gw = gateway_factory(GENEROUS)
    key = "gateway:maintenance"
    with gw.client(client_ip) as client:
        gw.redis.cli("HSET", key, "enabled", "true", "retry_after", "120", "message", "Upgrading Redis")
        response = wait_for(lambda: (r := client.post("/auth/login", json={"username": "bob", "password": PASSWORD}))
                            .status_code == 503 and r, message="maintenance 503")
        assert response.headers["retry-after"] == "120"
        assert response.json()["message"] == "Upgrading Redis" and response.json()["maintenance"] is True
        assert client.get("/reports/1").status_code == 503
        assert client.get("/healthz").status_code == 200
        ready = client.get("/readyz")
        assert ready.status_code == 503 and ready.json()["status"] == "maintenance"
        assert client.get("/metrics").status_code == 200
        gw.redis.cli("HSET", key, "enabled", "false")
        wait_for(lambda: client.post("/auth/login", json={"username": "bob", "password": PASSWORD}).status_code == 200,
                 message="maintenance off")
        assert client.get("/readyz").status_code == 200
        gw.redis.cli("DEL", key)


@pytest.mark.parametrize("workers", [1, 2])
def test_sigterm_drains_in_flight_requests(gateway_factory, upstream, workers):
    gw = gateway_factory(GENEROUS, workers=workers)
    access = gw.tokens("alice")["accessToken"]
    headers = {"Authorization": f"Bearer {access}"}
    # wait until both workers are up so requests land on each of them
    wait_for(lambda: len({r["pid"] for r in gw.log_records() if r["msg"] == "Gateway worker started"}) == workers)

    # connections are opened (and used once) up front, so the slow requests go out at once
    clients = [new_client(gw.url, timeout=30) for _attempt in range(16)]
    for client in clients:
        assert client.get("/healthz").status_code == 200

    def slow(i):
        return clients[i].get(f"/reports/slow{i}?delay_ms=3000", headers=headers).status_code

    try:
        with ThreadPoolExecutor(16) as pool:
            futures = [pool.submit(slow, i) for i in range(16)]
            wait_for(lambda: http_get(upstream.url + "/stats").json()["inflight"] >= 16, interval=0.01,
                     message="16 requests in flight")
            gw.signal(signal.SIGTERM)
            statuses = [f.result() for f in futures]
    finally:
        for client in clients:
            client.close()
    assert statuses == [200] * 16
    assert gw.proc.wait(30) == 0
    with pytest.raises(httpx.ConnectError):
        http_get(gw.url + "/healthz")


def test_shutdown_delay_reports_draining(gateway_factory):
    gw = gateway_factory({**GENEROUS, "SHUTDOWN_DELAY_MS": 4000})
    gw.signal(signal.SIGTERM)
    ready = wait_for(lambda: (r := http_get(gw.url + "/readyz")).status_code == 503 and r)
    assert ready.json()["status"] == "draining"
    assert http_get(gw.url + "/healthz").status_code == 200
    assert gw.proc.wait(30) == 0


def test_circuit_breaker(gateway_factory, client_ip):
    gw = gateway_factory({**GENEROUS, "CIRCUIT_BREAKER_THRESHOLD": 3, "CIRCUIT_BREAKER_RESET_MS": 1000,
                          "UPSTREAM_TIMEOUT_MS": 500})
    access = gw.tokens("carol", ip=client_ip)["accessToken"]
    with gw.client(client_ip, headers={"Authorization": f"Bearer {access}"}) as client:
        assert client.get("/reports/slow?delay_ms=2000").status_code == 504
        assert client.get("/reports/x?status=500").status_code == 502
        assert client.get("/reports/x?status=503").status_code == 502
        opened = client.get("/reports/ok")
        assert opened.status_code == 503 and int(opened.headers["retry-after"]) >= 1
        assert "circuit" in opened.json()["message"]
        time.sleep(1.1)
        assert client.get("/reports/ok").status_code == 200  # the half-open trial succeeds
        assert client.get("/reports/ok").status_code == 200
    assert "Upstream circuit opened" in [r["msg"] for r in gw.log_records()]


def test_upstream_down_is_502(gateway_factory, client_ip):
    gw = gateway_factory(GENEROUS, upstream_url=f"http://127.0.0.1:{free_port()}")
    access = gw.tokens(ip=client_ip)["accessToken"]
    with gw.client(client_ip, headers={"Authorization": f"Bearer {access}"}) as client:
        response = client.get("/reports/1")
    assert response.status_code == 502 and "Traceback" not in response.text


def test_workers_share_metrics_and_are_restarted(gateway_factory):
    gw = gateway_factory(GENEROUS, workers=2)
    wait_for(lambda: len({r["pid"] for r in gw.log_records() if r["msg"] == "Gateway worker started"}) == 2)
    for _attempt in range(60):
        assert http_get(gw.url + "/healthz").status_code == 200  # a new connection each time
    # access-log lines are written in batches (at most one server tick late): wait for them
    served_by = wait_for(lambda: {r["pid"] for r in gw.log_records() if r["msg"] == "Incoming request"} if sum(
        r["msg"] == "Incoming request" for r in gw.log_records()) >= 60 else None, message="60 access-log lines")
    assert len(served_by) == 2

    def healthz_total():
        text = http_get(gw.url + "/metrics").text
        return sum(s.value for f in text_string_to_metric_families(text) for s in f.samples
                   if s.name == "http_requests_total" and s.labels["route"] == "/healthz")

    assert healthz_total() >= 60
    # a crashed worker is replaced and the service keeps answering
    victim = sorted(served_by)[0]
    os.kill(victim, signal.SIGKILL)
    wait_for(lambda: len({r["pid"] for r in gw.log_records() if r["msg"] == "Gateway worker started"}) == 3,
             timeout=15, message="replacement worker")
    for _attempt in range(20):
        assert http_get(gw.url + "/healthz").status_code == 200
    assert healthz_total() >= 80  # the dead worker's counts are kept
    assert gw.stop() == 0
