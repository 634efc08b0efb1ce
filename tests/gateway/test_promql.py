"""The runbook's PromQL, as written, evaluated by a real Prometheus scraping a real gateway.

Needs the `prometheus` binary (Debian package `prometheus`); skipped without it.
"""

from __future__ import annotations

import math
import os
import shutil
import subprocess
import tempfile
import time

import pytest

from tests.harness.redis_servers import free_port

from .conftest import PASSWORD, http_get, wait_for, wait_http

PROMETHEUS = shutil.which("prometheus")
RUNBOOK_QUERIES = {
    "error rate": 'rate(http_requests_total{status=~"5.."}[5m]) / rate(http_requests_total[5m])',
    "p95": "histogram_quantile(0.95, rate(http_request_duration_seconds_bucket[5m]))",
    "rate limit hits": "rate(rate_limit_exceeded_total[5m])",
    "failed logins": "increase(login_failures_total[15m])",
}
pytestmark = pytest.mark.skipif(PROMETHEUS is None, reason="prometheus binary not installed")


@pytest.fixture(scope="module")
def limited(gateway_factory):
    return gateway_factory({"RATE_LIMIT_AUTH_MAX": 3, "CIRCUIT_BREAKER_THRESHOLD": 1000}, workers=2)


@pytest.fixture(scope="module")
def prometheus(limited):
    work = tempfile.mkdtemp(prefix="apigw-prom-")
    port = free_port()
    config = os.path.join(work, "prometheus.yml")
    with open(config, "w") as handle:
        handle.write("global: {scrape_interval: 1s, evaluation_interval: 1s}\n"
                     "scrape_configs:\n  - job_name: gateway\n"
                     f"    static_configs: [{{targets: ['127.0.0.1:{limited.port}']}}]\n")
    log = os.path.join(work, "prometheus.log")
    with open(log, "wb") as out:
        proc = subprocess.Popen([PROMETHEUS, f"--config.file={config}", f"--storage.tsdb.path={work}/data",
                                 f"--web.listen-address=127.0.0.1:{port}"], stdout=out, stderr=subprocess.STDOUT)
    try:
        wait_http(f"http://127.0.0.1:{port}/-/ready", timeout=60, proc=proc, log=log)
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.terminate()
        proc.wait(20)
        shutil.rmtree(work, ignore_errors=True)


def _traffic(gw, ip):
    access = gw.tokens("alice", ip=ip + "9")["accessToken"]
    with gw.client(ip) as client:
        for _attempt in range(5):
            client.get("/healthz")
            client.post("/auth/login", json={"username": "bob", "password": "wrong"})  # 401, then 429
        client.post("/auth/login", json={"username": "carol", "password": PASSWORD})
    with gw.client(ip + "8", headers={"Authorization": f"Bearer {access}"}) as client:
        client.get("/reports/ok")
        client.get("/reports/bad?status=500")  # 502


def _query(base, expr):
    response = http_get(f"{base}/api/v1/query", params={"query": expr})
    body = response.json()
    assert body["status"] == "success", body
    return [float(item["value"][1]) for item in body["data"]["result"]]


def _scrapes(base):
    values = _query(base, 'count_over_time(up{job="gateway"}[5m])')
    return int(values[0]) if values else 0


def test_runbook_queries_work_as_written(limited, prometheus, client_ip):
    wait_for(lambda: _scrapes(prometheus) >= 1, timeout=30, message="first scrape")
    _traffic(limited, client_ip)
    first = _scrapes(prometheus)
    wait_for(lambda: _scrapes(prometheus) >= first + 2, timeout=30, message="scrapes")
    _traffic(limited, client_ip.rsplit(".", 1)[0] + ".200")
    second = _scrapes(prometheus)
    wait_for(lambda: _scrapes(prometheus) >= second + 2, timeout=30, message="scrapes")
    time.sleep(0.2)

    results = {name: _query(prometheus, expr) for name, expr in RUNBOOK_QUERIES.items()}
    for name, values in results.items():
        assert values, f"{name}: no result"
        assert all(not math.isinf(v) for v in values), f"{name}: {values}"
    assert any(v > 0 for v in results["rate limit hits"])
    assert any(v > 0 for v in results["failed logins"])
    assert any(0 < v < 10 for v in results["p95"] if not math.isnan(v))
    # the whole-service forms (one ratio, one quantile) work too
    overall = _query(prometheus, 'sum(rate(http_requests_total{status=~"5.."}[5m]))'
                                 " / sum(rate(http_requests_total[5m]))")
    assert len(overall) == 1 and 0 < overall[0] < 1
    p95 = _query(prometheus, "histogram_quantile(0.95, sum by (le) (rate(http_request_duration_seconds_bucket[5m])))")
    assert len(p95) == 1 and 0 < p95[0] < 10
