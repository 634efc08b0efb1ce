"""Fixtures: real redis-server, real mock upstream and real gateway processes on free loopback ports."""

from __future__ import annotations

import json
import os
import signal
import ssl
import subprocess
import sys
import tempfile
import time

import httpx
import pytest
from apigw_gateway import devkeys, users

from tests.gateway import GATEWAY_SRC
from tests.harness.redis_servers import free_port, start_standalone

PASSWORD = "correct horse battery staple"
# httpx builds a TLS context per client (~0.1 s); one shared context keeps the many short clients cheap
SSL_CONTEXT = ssl.create_default_context()
# cheap argon2id cost so the suite stays fast; the KDF itself is what is under test, not its cost
TEST_COST = {"time_cost": 1, "memory_cost": 1024, "parallelism": 1}


def child_env(extra=None):
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (GATEWAY_SRC, env.get("PYTHONPATH")) if p)
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    env.update({k: str(v) for k, v in (extra or {}).items()})
    return env


def http_get(url, **kwargs):
    """One request on a new connection."""
    return httpx.get(url, verify=SSL_CONTEXT, timeout=kwargs.pop("timeout", 5.0), **kwargs)


def new_client(base_url, **kwargs):
    return httpx.Client(base_url=base_url, verify=SSL_CONTEXT, timeout=kwargs.pop("timeout", 10.0), **kwargs)


def wait_http(url, timeout=60.0, proc=None, log=None):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"process exited with {proc.returncode}: {_tail(log)}")
        try:
            response = http_get(url, timeout=1.0)
            if response.status_code == 200:
                return
            last = response.status_code
        except httpx.HTTPError as exc:
            last = exc
        time.sleep(0.05)
    raise RuntimeError(f"{url} not ready: {last} {_tail(log)}")


def _tail(path, lines=20):
    if not path or not os.path.exists(path):
        return ""
    with open(path, errors="replace") as handle:
        return "".join(handle.readlines()[-lines:])


def wait_for(predicate, timeout=30.0, interval=0.05, message="condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out waiting for {message}")


class Upstream:
    def __init__(self, workdir):
        self.port = free_port()
        self.log = os.path.join(workdir, f"upstream-{self.port}.log")
        self.proc = None

    @property
    def url(self):
        return f"http://127.0.0.1:{self.port}"

    def start(self):
        with open(self.log, "ab") as out:
            self.proc = subprocess.Popen([sys.executable, "-m", "apigw_gateway.upstream", "--port", str(self.port)],
                                         stdout=out, stderr=subprocess.STDOUT, env=child_env(), cwd=GATEWAY_SRC)
        wait_http(self.url + "/healthz", proc=self.proc, log=self.log)
        return self

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)


class Gateway:
    """One gateway process (single worker or a supervisor with N workers) in its own directory."""

    def __init__(self, workdir, redis, upstream_url, env=None, workers=1):
        self.dir = tempfile.mkdtemp(prefix="gw-", dir=workdir)
        self.keys_dir = os.path.join(self.dir, "keys")
        self.users_file = os.path.join(self.dir, "users.json")
        self.audit_file = os.path.join(self.dir, "logs", "audit-logs.json")
        self.stdout = os.path.join(self.dir, "stdout.log")
        self.port = free_port()
        self.redis = redis
        self.env = {
            "HOST": "127.0.0.1", "PORT": self.port, "WORKERS": workers, "REDIS_URL": redis.url(),
            "UPSTREAM_URL": upstream_url, "JWT_KEYS_DIR": self.keys_dir, "USERS_FILE": self.users_file,
            "AUDIT_LOG_FILE": self.audit_file, "MAINTENANCE_POLL_MS": 100, "REDIS_TIMEOUT_MS": 500,
            "TRUST_PROXY_HOPS": 1, "SHUTDOWN_TIMEOUT_MS": 15000,
        }
        self.env.update(env or {})
        self.proc = None
        devkeys.write_keyset(self.keys_dir)
        self.user_ids = {}
        for name in ("alice", "bob", "carol"):
            self.user_ids[name] = users.add_user(self.users_file, name, PASSWORD, **TEST_COST)

    @property
    def url(self):
        return f"http://127.0.0.1:{self.port}"

    def start(self):
        with open(self.stdout, "ab") as out:
            self.proc = subprocess.Popen([sys.executable, "-m", "apigw_gateway"], stdout=out,
                                         stderr=subprocess.STDOUT, env=child_env(self.env), cwd=self.dir)
        wait_http(self.url + "/healthz", proc=self.proc, log=self.stdout)
        return self

    def client(self, ip=None, **kwargs):
        headers = {"X-Forwarded-For": ip} if ip else {}
        headers.update(kwargs.pop("headers", {}))
        return new_client(self.url, headers=headers, **kwargs)

    def login(self, username="alice", password=PASSWORD, ip=None):
        with self.client(ip) as client:
            return client.post("/auth/login", json={"username": username, "password": password})

    def tokens(self, username="alice", ip=None):
        response = self.login(username, ip=ip)
        assert response.status_code == 200, response.text
        return response.json()

    def log_records(self):
        with open(self.stdout, errors="replace") as handle:
            return [json.loads(line) for line in handle if line.startswith("{")]

    def audit_records(self):
        if not os.path.exists(self.audit_file):
            return []
        with open(self.audit_file) as handle:
            return [json.loads(line) for line in handle if line.strip()]

    def signal(self, sig):
        self.proc.send_signal(sig)

    def stop(self, timeout=30):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                return self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        return self.proc.returncode if self.proc else None


@pytest.fixture(scope="module")
def workdir():
    path = tempfile.mkdtemp(prefix="apigw-gw-tests-")
    yield path


@pytest.fixture(scope="module")
def redis_server():
    server = start_standalone()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def upstream(workdir):
    service = Upstream(workdir).start()
    yield service
    service.stop()


@pytest.fixture(scope="module")
def gateway_factory(workdir, redis_server, upstream):
    started = []

    def make(env=None, workers=1, redis=None, upstream_url=None, start=True):
        gateway = Gateway(workdir, redis or redis_server, upstream_url or upstream.url, env, workers)
        started.append(gateway)
        return gateway.start() if start else gateway

    yield make
    for gateway in started:
        gateway.stop()


@pytest.fixture(scope="module")
def gateway(gateway_factory):
    """A gateway with generous limits, for tests that are not about limits."""
    return gateway_factory({"RATE_LIMIT_GLOBAL_MAX": 100000, "RATE_LIMIT_USER_MAX": 100000,
                            "RATE_LIMIT_AUTH_MAX": 100000})


_ip_counter = [0]


@pytest.fixture
def client_ip():
    """A client IP of its own (sent as X-Forwarded-For), so counters never leak between tests."""
    _ip_counter[0] += 1
    return f"10.{os.getpid() % 250}.{_ip_counter[0] // 250}.{_ip_counter[0] % 250 + 1}"
