"""Per-worker key-set reporting: every worker of a replica says which key set it serves (JWKS headers), a failed
reload is reported and keeps the keys, and the rotation role's confirmation waits for every worker."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys

import jwt
from apigw_gateway import devkeys

from tests.harness.redis_servers import free_port

from .conftest import http_get, wait_for
from .test_keys import _sighup_and_wait
from .test_lifecycle import GENEROUS

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CONFIRM = os.path.join(REPO, "roles", "jwt_rotation", "files", "confirm_workers.py")
HEADERS = ("x-worker-pid", "x-workers", "x-keyset-active", "x-keyset-generation", "x-keyset-reload")


def _report(gw):
    """What the worker that accepts a new connection serves."""
    response = http_get(gw.url + "/.well-known/jwks.json")
    assert response.status_code == 200
    report = {name: response.headers[name] for name in HEADERS}
    report["kids"] = [key["kid"] for key in response.json()["keys"]]
    return report


def _per_worker(gw, want=lambda report: True, workers=2):
    """{pid: report} once `workers` distinct workers answered with a report that passes `want` (fresh connections)."""
    seen = {}

    def enough():
        report = _report(gw)
        seen[report["x-worker-pid"]] = report
        good = {pid: r for pid, r in seen.items() if want(r)}
        return good if len(good) >= workers else None

    return wait_for(enough, timeout=60, message=f"{workers} workers reporting the wanted key set")


def _worker_pids(gw):
    def started():
        pids = sorted({r["pid"] for r in gw.log_records() if r["msg"] == "Gateway worker started"})
        return pids if len(pids) == 2 else None

    return wait_for(started, message="two workers started")


def _confirm(gw, kids, active, timeout):
    result = subprocess.run([sys.executable, CONFIRM, "--url", gw.url, "--kids", ",".join(kids), "--active", active,
                             "--timeout", str(timeout)], capture_output=True, text=True, timeout=timeout + 60,
                            check=False)
    return result.returncode, json.loads(result.stdout)


def test_every_worker_reports_the_key_set_it_serves(gateway_factory):
    gw = gateway_factory(GENEROUS, workers=2)
    pids = [str(pid) for pid in _worker_pids(gw)]
    before = _per_worker(gw)
    assert sorted(before) == pids
    reports = list(before.values())
    assert {r["x-workers"] for r in reports} == {"2"} and {r["x-keyset-reload"] for r in reports} == {"ok"}
    assert len({r["x-keyset-generation"] for r in reports}) == 1  # the same key set -> the same generation
    assert all(r["x-keyset-active"] == r["kids"][0] for r in reports)
    generation = reports[0]["x-keyset-generation"]

    new_kid = devkeys.write_keyset(gw.keys_dir, add=True)
    _sighup_and_wait(gw, workers=2)
    after = _per_worker(gw, lambda r: r["x-keyset-active"] == new_kid)
    assert sorted(after) == pids
    assert len({r["x-keyset-generation"] for r in after.values()}) == 1
    assert next(iter(after.values()))["x-keyset-generation"] != generation
    assert all(new_kid in r["kids"] for r in after.values())


def test_a_failed_reload_keeps_the_keys_and_is_reported(gateway_factory, client_ip):
    gw = gateway_factory(GENEROUS, workers=2)
    _worker_pids(gw)
    good = _per_worker(gw)
    generation = next(iter(good.values()))["x-keyset-generation"]
    keyset_path = os.path.join(gw.keys_dir, "keyset.json")
    with open(keyset_path) as handle:
        content = handle.read()
    with open(keyset_path, "w") as handle:
        handle.write("{not json")
    _sighup_and_wait(gw, workers=2)
    failed = _per_worker(gw, lambda r: r["x-keyset-reload"] == "failed")
    assert {r["x-keyset-generation"] for r in failed.values()} == {generation}  # still the previous keys
    login = gw.login("alice", ip=client_ip)
    assert login.status_code == 200
    assert jwt.get_unverified_header(login.json()["accessToken"])["kid"] == next(iter(good.values()))["kids"][0]
    failed_log = [r for r in gw.log_records() if r["msg"].startswith("Reload failed")]
    assert len(failed_log) >= 2 and all(r["generation"] == generation for r in failed_log)

    with open(keyset_path, "w") as handle:
        handle.write(content)
    _sighup_and_wait(gw, workers=2)
    recovered = _per_worker(gw, lambda r: r["x-keyset-reload"] == "ok")
    assert {r["x-keyset-generation"] for r in recovered.values()} == {generation}


def test_confirmation_waits_for_every_worker(gateway_factory):
    """A stopped worker cannot take the new key set: the confirmation names only the running worker and fails;
    once it runs again (and handles the SIGHUP it was sent) every worker is confirmed."""
    gw = gateway_factory(GENEROUS, workers=2)
    running, stopped = _worker_pids(gw)
    old = _per_worker(gw)
    old_kids = next(iter(old.values()))["kids"]
    code, result = _confirm(gw, old_kids, old_kids[0], timeout=30)
    assert code == 0 and result["confirmed"]
    assert sorted(result["replicas"][0]["confirmed"]) == sorted([str(running), str(stopped)])

    os.kill(stopped, signal.SIGSTOP)
    try:
        new_kid = devkeys.write_keyset(gw.keys_dir, add=True)
        gw.signal(signal.SIGHUP)
        # the running worker serves the new key set; the stopped one cannot answer, so it is never confirmed
        _per_worker(gw, lambda r: r["x-keyset-active"] == new_kid, workers=1)
        code, result = _confirm(gw, [*old_kids, new_kid], new_kid, timeout=3)
        assert code == 3 and not result["confirmed"]
        replica = result["replicas"][0]
        assert replica["workers"] == 2 and replica["confirmed"] == [str(running)]
    finally:
        os.kill(stopped, signal.SIGCONT)
    code, result = _confirm(gw, [*old_kids, new_kid], new_kid, timeout=60)
    assert code == 0 and result["confirmed"], result
    assert sorted(result["replicas"][0]["confirmed"]) == sorted([str(running), str(stopped)])
    assert result["replicas"][0]["generation"]


def test_confirmation_reports_stale_workers_and_bad_input(gateway_factory):
    gw = gateway_factory(GENEROUS, workers=2)
    _worker_pids(gw)
    kids = next(iter(_per_worker(gw).values()))["kids"]
    code, result = _confirm(gw, [*kids, "no-such-kid"], kids[0], timeout=1)
    assert code == 3 and result["replicas"][0]["confirmed"] == []
    assert all(state["kids"] == kids for state in result["replicas"][0]["stale"].values())
    assert result["replicas"][0]["stale"]
    code, result = _confirm(gw, kids, "not-published", timeout=1)
    assert code == 2 and not result["confirmed"]
    # a replica nobody answers for is not confirmed, and the result says why
    closed = f"http://127.0.0.1:{free_port()}"
    result = subprocess.run([sys.executable, CONFIRM, "--url", closed, "--kids", kids[0], "--active", kids[0],
                             "--timeout", "1"], capture_output=True, text=True, timeout=60, check=False)
    replica = json.loads(result.stdout)["replicas"][0]
    assert result.returncode == 3 and replica["workers"] is None and "Connection" in replica["error"]
