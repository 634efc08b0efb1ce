"""playbooks/loadtest.yml (role apigw.ops.loadtest) against a real reference gateway, with real autocannon.

A short run with low thresholds passes and prints its table; an impossible threshold fails with one line naming
the scenario, the figure and the threshold; --check runs nothing (no login, no install, no load) and shows the
commands with the secrets masked; a URL outside the inventory and bad inputs are refused with one line.
Nothing here asserts a time: the thresholds are either out of reach of any machine or trivially met.

    python -m pytest tests/roles/test_loadtest.py -q
"""

import json
import os
import shutil
import tempfile

import pytest

from tests.gateway.conftest import PASSWORD, Gateway, Upstream
from tests.harness.redis_servers import start_standalone
from tests.roles.playbook_runner import ansible_playbook

PLAYBOOK = "playbooks/loadtest.yml"
# few connections and seconds: the run proves the plumbing, the CPU is shared with other tests
LIGHT = {"healthz": 4, "login": 2, "reports": 2}
# thresholds any machine meets, with the runbook's error threshold kept (the gateway's limits are lifted)
LOW = {name: {"min_req_per_s": 1, "max_p95_ms": 60000, "max_p99_ms": 60000} for name in LIGHT}


@pytest.fixture(scope="module")
def gateway():
    workdir = tempfile.mkdtemp(prefix="apigw-loadtest-")
    redis = start_standalone()
    upstream = Upstream(workdir).start()
    limits = {"RATE_LIMIT_GLOBAL_MAX": 10**9, "RATE_LIMIT_USER_MAX": 10**9, "RATE_LIMIT_AUTH_MAX": 10**9}
    service = Gateway(workdir, redis, upstream.url, limits).start()
    yield service
    service.stop()
    upstream.stop()
    redis.stop()
    shutil.rmtree(workdir, ignore_errors=True)


@pytest.fixture(scope="module")
def prefix(tmp_path_factory):
    """One autocannon install for the module (npm into a private prefix, as the role does it)."""
    return str(tmp_path_factory.mktemp("loadtest") / "prefix")


def run(collection_root, base_dir, *extra, **variables):
    args = []
    for name, value in variables.items():
        args += ["-e", json.dumps({name: value})]
    return ansible_playbook(collection_root, PLAYBOOK, *args, *extra, base_dir=base_dir)


def failure_line(result):
    """The one line the failing task printed."""
    lines = [line for line in (result.stdout + result.stderr).splitlines() if "[ERROR]: Task failed" in line]
    assert result.returncode != 0 and lines, result.stdout + result.stderr
    return lines[-1]


def table(result):
    return [line.strip().strip('",') for line in result.stdout.splitlines() if line.strip().startswith('"| ')]


def test_short_run_passes_and_prints_the_table(collection_root, base_dir, gateway, prefix):
    result = run(collection_root, base_dir, loadtest_url=gateway.url, loadtest_prefix=prefix, loadtest_duration=2,
                 loadtest_connections=LIGHT, loadtest_thresholds=LOW, loadtest_username="alice",
                 loadtest_password=PASSWORD)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    rows = table(result)
    assert rows[0].startswith("| scenario | conns | req/s"), output
    assert [row.split("|")[1].strip() for row in rows[1:]] == ["healthz", "login", "reports"], output
    assert all(row.rstrip(" |").endswith("ok") for row in rows[1:]), output
    # the runbook's error threshold held: every answer of every scenario was a 2xx
    assert all(row.split("|")[8].strip() == "0" and row.split("|")[9].strip() == "0" for row in rows[1:]), output
    assert PASSWORD not in output
    with open(os.path.join(prefix, "node_modules", "autocannon", "package.json")) as handle:
        assert json.load(handle)["version"] == "8.0.0"
    assert not os.path.exists(os.path.join(prefix, "login-body.json")), "the login body was left behind"
    # the load really reached the gateway: logins of alice and reports with her token
    events = [record["eventType"] for record in gateway.audit_records() if record.get("username") == "alice"]
    assert events.count("LOGIN_SUCCESS") > 2, events


def test_impossible_threshold_fails_with_one_line(collection_root, base_dir, gateway, prefix):
    result = run(collection_root, base_dir, loadtest_url=gateway.url, loadtest_prefix=prefix, loadtest_duration=1,
                 loadtest_scenarios=["healthz"], loadtest_connections=LIGHT,
                 loadtest_thresholds={"healthz": {"min_req_per_s": 10**9, "max_p95_ms": None, "max_p99_ms": None}})
    line = failure_line(result)
    assert f"Load test of {gateway.url} missed healthz: req/s " in line, line
    assert "< 1,000,000,000 (min_req_per_s)" in line, line
    assert "P95" not in line and "P99" not in line, line  # thresholds set to null are not checked
    assert "| healthz " in result.stdout  # the table is printed before the failure


def test_wrong_password_fails_with_one_line(collection_root, base_dir, gateway, prefix):
    result = run(collection_root, base_dir, loadtest_url=gateway.url, loadtest_prefix=prefix,
                 loadtest_scenarios=["reports"], loadtest_username="bob", loadtest_password="not-his-password")
    line = failure_line(result)
    assert f"Could not log in as bob at {gateway.url}/auth/login" in line and "HTTP 401" in line, line
    assert "not-his-password" not in result.stdout + result.stderr


def test_maintenance_smoke_step_runs_it(collection_root, base_dir, gateway, prefix):
    """maintenance.yml -e maintenance_loadtest=true load-tests /healthz in the window; a miss keeps maintenance on."""
    common = ["-e", json.dumps({"maintenance_gateway_urls": [gateway.url]}),
              "-e", f"apigw_redis_port={gateway.redis.port}", "-e", "maintenance_backup=false",
              "-e", "maintenance_drain_seconds=0", "-e", "maintenance_loadtest=true",
              "-e", "maintenance_loadtest_duration=1", "-e", f"loadtest_prefix={prefix}",
              "-e", json.dumps({"loadtest_connections": LIGHT})]
    passed = ansible_playbook(collection_root, "playbooks/maintenance.yml", *common, "-e", "maintenance_reason=CHG-lt1",
                              "-e", json.dumps({"loadtest_thresholds": LOW}), base_dir=base_dir)
    assert passed.returncode == 0, passed.stdout + passed.stderr
    assert "| healthz " in passed.stdout and "| login " not in passed.stdout, passed.stdout
    missed = ansible_playbook(collection_root, "playbooks/maintenance.yml", *common, "-e", "maintenance_reason=CHG-lt2",
                              "-e", json.dumps({"loadtest_thresholds": {"healthz": {"min_req_per_s": 10**9}}}),
                              base_dir=base_dir)
    line = failure_line(missed)
    assert "Fail when a threshold was missed" in line and "healthz: req/s" in line, line
    assert "Maintenance mode is still ON" in line, line
    assert gateway.redis.cli("HGET", "gateway:maintenance", "enabled").strip() not in ("", "0", "false")
    gateway.redis.cli("DEL", "gateway:maintenance")


def test_check_mode_runs_nothing(collection_root, base_dir, gateway, tmp_path):
    fresh = str(tmp_path / "never-made")
    before = len(gateway.audit_records())
    result = run(collection_root, base_dir, "--check", loadtest_url=gateway.url, loadtest_prefix=fresh,
                 loadtest_username="carol", loadtest_password=PASSWORD)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert "Check mode - nothing was run" in output, output
    assert f"install autocannon 8.0.0 into {fresh} with npm" in output, output
    assert f"healthz: node {fresh}/autocannon-p95.js --json -c 100 -d 30 -t 10 {gateway.url}/healthz" in output
    assert f"-m POST -H Content-Type=application/json -i {fresh}/login-body.json {gateway.url}/auth/login" in output
    assert f"-c 20 -d 30 -t 10 -H 'Authorization=Bearer ********' {gateway.url}/reports/q3-sales" in output
    assert '\\"password\\": \\"********\\"' in output, output
    assert PASSWORD not in output
    assert not os.path.exists(fresh), "check mode made the prefix"
    assert len(gateway.audit_records()) == before, "check mode logged in"


def test_external_url_refused(collection_root, base_dir, tmp_path):
    fresh = str(tmp_path / "prefix")
    result = run(collection_root, base_dir, loadtest_url="http://203.0.113.7:8080", loadtest_prefix=fresh)
    line = failure_line(result)
    assert "Refusing to load-test http://203.0.113.7:8080: 203.0.113.7 is not a host of the inventory" in line, line
    assert "loadtest_allow_external=true" in line
    assert not os.path.exists(fresh)


@pytest.mark.parametrize("variables, message", [
    ({"loadtest_duration": 0}, "loadtest_duration must be 1-300 seconds per scenario (got 0)"),
    ({"loadtest_duration": 301}, "loadtest_duration must be 1-300 seconds per scenario (got 301)"),
    ({"loadtest_scenarios": []}, "loadtest_scenarios is empty"),
    ({"loadtest_scenarios": ["soak"]},
     "value of loadtest_scenarios must be one or more of: healthz, login, reports. Got no match for: soak"),
    ({"loadtest_connections": {"healthz": 0}}, "loadtest_connections must be 1-1000 per scenario"),
    ({"loadtest_thresholds": {"healthz": {"min_rps": 1}}}, "min_rps"),
    ({"loadtest_thresholds": {"login": {"max_p95_ms": -1}}}, "loadtest_thresholds must not be negative"),
    ({"loadtest_url": "ftp://127.0.0.1"}, "loadtest_url must be an http:// or https:// URL with a host"),
    ({"loadtest_url": "http://127.0.0.1:8080/healthz"}, "loadtest_url is the gateway's base URL, without a path"),
    ({"loadtest_username": "", "loadtest_scenarios": ["login"]}, "The login and reports scenarios need the test user"),
    ({"loadtest_report_id": "../etc"}, "loadtest_report_id must be 1-64 letters"),
    ({"loadtest_hosts": "nosuchgroup"}, "No host of the inventory matches nosuchgroup (loadtest_hosts)"),
])
def test_bad_input_one_line(collection_root, base_dir, tmp_path, variables, message):
    fresh = str(tmp_path / "prefix")
    result = run(collection_root, base_dir, loadtest_prefix=fresh, **variables)
    output = result.stdout + result.stderr
    assert result.returncode != 0, output
    assert message in failure_line(result) or message in output, output
    assert not os.path.exists(fresh), "a refused run installed something"
