"""gateway_audit on the real reference gateway's audit and request logs, checked against what was sent and
against the runbook's own jq | sort | uniq -c | sort -rn pipelines on the same files.

A gateway (auth limit 8 per IP, lockout after 5 failures) gets failed logins from distinct client IPs
(X-Forwarded-For, TRUST_PROXY_HOPS=1), hostile usernames and a few good logins; the module runs as Ansible
runs it (the module file from a collection tree, arguments in a JSON file).
"""

from __future__ import annotations

import collections
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

import pytest

from tests.gateway.conftest import PASSWORD, wait_for

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
AUTH_MAX = 8
# attempts per client IP: ties (.2/.3, .5/.6) and one IP above the auth limit (its extra tries get 429)
ATTACK = {"198.51.100.1": 12, "198.51.100.2": 6, "198.51.100.3": 6, "198.51.100.4": 4, "198.51.100.5": 2,
          "198.51.100.6": 2, "198.51.100.7": 1}
HOSTILE = ["al*ce", "{{ lookup('pipe', 'id') }}", "Zoë", "a\"b\\c", "x" * 200, "' OR 1=1 --"]
RUNBOOK_TOP_IPS = ("jq -r 'select(.eventType==\"LOGIN_FAILURE\") | .ip' \"$1\" | sort | uniq -c | sort -rn "
                   "| head -10")
RUNBOOK_TAIL = "jq -c 'select(.eventType==\"LOGIN_FAILURE\")' \"$1\" | tail -20"
RUNBOOK_SUCCESS = "jq 'select(.eventType==\"LOGIN_SUCCESS\")' \"$1\" | jq -r '.username' | sort | uniq -c | sort -rn"
RUNBOOK_DDOS = "jq -r 'select(.msg==\"Incoming request\") | .ip' \"$1\" | sort | uniq -c | sort -rn | head -20"

pytestmark = pytest.mark.skipif(shutil.which("jq") is None, reason="jq not installed (scripts/bootstrap.sh)")


@pytest.fixture(scope="module")
def collection(tmp_path_factory):
    root = str(tmp_path_factory.mktemp("collections"))
    subprocess.run([os.path.join(REPO, "scripts", "collection-tree.sh")], check=True, capture_output=True,
                   env=dict(os.environ, APIGW_COLLECTION_ROOT=root))
    return root


def run_module(collection, **args):
    path = os.path.join(collection, "ansible_collections", "apigw", "ops", "plugins", "modules", "gateway_audit.py")
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as handle:
        json.dump({"ANSIBLE_MODULE_ARGS": args}, handle)
    try:
        proc = subprocess.run([sys.executable, path, handle.name], capture_output=True, text=True, check=False,
                              env=dict(os.environ, PYTHONPATH=collection))
    finally:
        os.unlink(handle.name)
    assert proc.stdout, proc.stderr
    return json.loads(proc.stdout)


def runbook(pipeline, path):
    proc = subprocess.run(["bash", "-o", "pipefail", "-c", pipeline, "runbook", path], capture_output=True,
                          text=True, check=True)
    return proc.stdout


def uniq_c(output):
    """`uniq -c` output as [(count, value)] in its order."""
    rows = []
    for line in output.splitlines():
        count, _sep, value = line.strip().partition(" ")
        rows.append((int(count), value))
    return rows


@pytest.fixture(scope="module")
def attacked(gateway_factory):
    """A gateway that went through a small brute-force attack; returns it, what each IP got, and the start time."""
    gateway = gateway_factory({"RATE_LIMIT_AUTH_MAX": AUTH_MAX, "RATE_LIMIT_GLOBAL_MAX": 100000,
                               "LOGIN_MAX_FAILURES": 5})
    started = time.time()
    statuses = collections.defaultdict(collections.Counter)
    for ip, attempts in ATTACK.items():
        with gateway.client(ip) as client:
            for n in range(attempts):   # the 5th failure locks admin out from that IP (423 from then on)
                response = client.post("/auth/login", json={"username": "admin", "password": "wrong-%d" % n})
                statuses[ip][response.status_code] += 1
    with gateway.client("203.0.113.50") as client:
        for name in HOSTILE:
            response = client.post("/auth/login", json={"username": name, "password": "x"})
            statuses["203.0.113.50"][response.status_code] += 1
    for ip, user in (("203.0.113.60", "bob"), ("203.0.113.61", "bob"), ("203.0.113.62", "carol")):
        assert gateway.login(user, PASSWORD, ip=ip).status_code == 200
    # audit lines are written before the answer; wait for the access log lines, written after it
    total = sum(sum(c.values()) for c in statuses.values())
    wait_for(lambda: sum(1 for r in gateway.log_records() if r.get("msg") == "Incoming request") >= total,
             message="access log lines")
    return gateway, statuses, started


def failures_sent(statuses):
    """LOGIN_FAILURE events the gateway must have written: every 400 (bad name), 401 and 423 answer."""
    return dict((ip, c[400] + c[401] + c[423]) for ip, c in statuses.items() if c[400] + c[401] + c[423])


def test_failures_and_top_ips_match_what_was_sent_and_the_runbook(collection, attacked):
    gateway, statuses, _started = attacked
    sent = failures_sent(statuses)
    assert statuses["198.51.100.1"][429] == ATTACK["198.51.100.1"] - AUTH_MAX     # the limit really cut in
    assert sent["198.51.100.1"] == AUTH_MAX
    res = run_module(collection, path=gateway.audit_file, event_type=["LOGIN_FAILURE"], top=10, limit=20)
    assert not res.get("failed") and not res["changed"], res
    assert res["matched"] == sum(sent.values()) and res["counts"] == {"LOGIN_FAILURE": sum(sent.values())}
    assert res["malformed"] == 0
    # what was sent: every IP with its exact count, ties in IP order
    expected = sorted(sent.items(), key=lambda item: (-item[1], item[0]))
    assert [(t["value"], t["count"]) for t in res["top"]["ip"]] == expected[:10]
    assert res["distinct"]["ip"] == len(sent)
    # the runbook: jq -r 'select(.eventType=="LOGIN_FAILURE") | .ip' | sort | uniq -c | sort -rn | head -10
    jq_rows = uniq_c(runbook(RUNBOOK_TOP_IPS, gateway.audit_file))
    assert dict((ip, count) for count, ip in jq_rows) == dict(expected[:10])
    assert [count for count, _ip in jq_rows] == [t["count"] for t in res["top"]["ip"]]
    # jq 'select(.eventType=="LOGIN_FAILURE")' | tail -20: the same 20 events, in the same order
    jq_tail = [json.loads(line) for line in runbook(RUNBOOK_TAIL, gateway.audit_file).splitlines()]
    assert res["events"] == jq_tail


def test_hostile_usernames_come_back_literally(collection, attacked):
    gateway, _statuses, _started = attacked
    res = run_module(collection, path=gateway.audit_file, ip=["203.0.113.50"], top=20, top_by=["username"])
    logged = [r["username"] for r in gateway.audit_records() if r["ip"] == "203.0.113.50"]
    assert sorted(t["value"] for t in res["top"]["username"]) == sorted(set(logged))
    assert "al*ce" in logged and "{{ lookup('pipe', 'id') }}" in logged and "Zoë" in logged
    literal = run_module(collection, path=gateway.audit_file, username=["al*ce"])
    assert literal["matched"] == 1 and literal["events"][0]["username"] == "al*ce"
    assert run_module(collection, path=gateway.audit_file, username=["alice"], ip=["203.0.113.50"])["matched"] == 0


def test_successful_logins_per_user_match_the_runbook(collection, attacked):
    gateway, _statuses, _started = attacked
    res = run_module(collection, path=gateway.audit_file, event_type=["LOGIN_SUCCESS"], top=100,
                     top_by=["username"], limit=0)
    assert res["top"]["username"] == [{"value": "bob", "count": 2}, {"value": "carol", "count": 1}]
    jq_rows = uniq_c(runbook(RUNBOOK_SUCCESS, gateway.audit_file))
    assert jq_rows == [(2, "bob"), (1, "carol")]


def test_event_types_window_and_lockouts(collection, attacked):
    gateway, statuses, started = attacked
    records = gateway.audit_records()
    res = run_module(collection, path=gateway.audit_file, limit=0, top=0)
    assert res["counts"] == dict(sorted(collections.Counter(r["eventType"] for r in records).items()))
    assert res["counts"]["ACCOUNT_LOCKED"] >= 1
    assert res["counts"]["RATE_LIMIT_EXCEEDED"] == 1                    # audited once per key and window
    assert statuses["198.51.100.1"][423] >= 1                           # locked out before the limit cut in
    window = run_module(collection, path=gateway.audit_file, since="10m", limit=0, top=0)
    assert window["matched"] == len(records)
    after = run_module(collection, path=gateway.audit_file, since=time.strftime(
        "%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + 60)), limit=0, top=0)
    assert after["matched"] == 0 and started < time.time()


def test_request_log_top_ips_match_the_runbook_ddos_pipeline(collection, attacked):
    gateway, statuses, _started = attacked
    res = run_module(collection, audit=False, request_log=[gateway.stdout], event_type=["REQUEST"], top=20,
                     top_by=["ip"], limit=5)
    requests = [r for r in gateway.log_records() if r.get("msg") == "Incoming request"]
    assert res["matched"] == len(requests)
    for ip, counter in statuses.items():
        assert {"value": ip, "count": sum(counter.values())} in res["top"]["ip"]
    jq_rows = uniq_c(runbook(RUNBOOK_DDOS, gateway.stdout))
    assert dict((ip, count) for count, ip in jq_rows) == dict((t["value"], t["count"]) for t in res["top"]["ip"])
    limited = run_module(collection, audit=False, request_log=[gateway.stdout], event_type=["REQUEST"],
                         status=["429"], top_by=["ip"])
    assert limited["top"]["ip"] == [{"value": "198.51.100.1", "count": ATTACK["198.51.100.1"] - AUTH_MAX}]
    # one request, followed through both logs by its requestId (the runbook's grep "requestId.*abc123")
    request_id = next(r["requestId"] for r in gateway.audit_records() if r["eventType"] == "RATE_LIMIT_EXCEEDED")
    both = run_module(collection, path=gateway.audit_file, request_log=[gateway.stdout], request_id=[request_id])
    assert sorted(e["eventType"] for e in both["events"]) == ["RATE_LIMIT_EXCEEDED", "REQUEST"]
