"""The apigw.ops.monitoring role, run for real.

* playbooks/monitoring.yml is run four ways (check, apply, check, apply) on localhost into a temporary directory;
  the second check and apply change nothing;
* the rendered rules pass `promtool check rules` and the unit tests beside this file (`promtool test rules`:
  each runbook alert fires above its threshold and not at or below it, each recording rule computes its query);
* a real reference gateway, after real traffic (a 5xx, failed logins, rate-limit refusals, /readyz with Redis up
  and with Redis unreachable), serves a /metrics that `promtool check metrics` accepts and on which every metric
  and label value the gateway rules select exists;
* a real Prometheus scraping that gateway through the role's scrape configuration is reloaded by the role, which
  then verifies that every rule is loaded, and raises the runbook's alerts.

    python -m pytest tests/monitoring -q        (needs promtool and prometheus: Debian package prometheus)
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile

import httpx
import pytest
import yaml

from tests.gateway.conftest import PASSWORD, wait_for, wait_http
from tests.harness.redis_servers import free_port

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
BIN = os.path.dirname(sys.executable)
UNIT_TESTS = ("recording_test.yml", "alerts_test.yml", "host_alerts_test.yml")
RULES = "apigw-gateway.rules.yml"
SCRAPE = "apigw-gateway.scrape.yml"
# the gateway's metrics as the runbook's Dashboard Queries name them
RUNBOOK_METRICS = {"http_requests_total", "http_request_duration_seconds_bucket", "rate_limit_exceeded_total",
                   "login_failures_total"}
SELECTOR = re.compile(r"([A-Za-z_:][A-Za-z0-9_:]*)\{([^}]*)\}")
MATCHER = re.compile(r'\s*([A-Za-z_][A-Za-z0-9_]*)\s*(=~|!~|!=|=)\s*"((?:[^"\\]|\\.)*)"\s*')


def tool(name):
    path = shutil.which(name)
    if path is None:
        pytest.fail(f"{name} not found: install the Debian package prometheus (scripts/bootstrap.sh dev does)")
    return path


@pytest.fixture(scope="module")
def promtool():
    return tool("promtool")


@pytest.fixture(scope="module")
def collection():
    """The collection laid out as ansible_collections/apigw/ops in a temporary directory."""
    root = tempfile.mkdtemp(prefix="apigw-monitoring-")
    path = subprocess.run([os.path.join(REPO, "scripts", "collection-tree.sh")], check=True, capture_output=True,
                          text=True, env=dict(os.environ, APIGW_COLLECTION_ROOT=root)).stdout.strip()
    yield root, path
    shutil.rmtree(root, ignore_errors=True)


def playbook(collection, out_dir, *extra, check=False, hosts=("-e", "monitoring_hosts=localhost")):
    """Run playbooks/monitoring.yml on localhost, writing under out_dir; return (result, changed count)."""
    root, path = collection
    env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=root, ANSIBLE_NOCOLOR="1", ANSIBLE_FORCE_COLOR="0",
               ANSIBLE_CONFIG=os.path.join(path, "ansible.cfg"))
    args = [os.path.join(BIN, "ansible-playbook"), "-i", os.path.join(path, "inventories", "local"),
            os.path.join(path, "playbooks", "monitoring.yml"), *hosts,
            "-e", f"monitoring_rules_dir={out_dir}/rules", "-e", f"monitoring_scrape_config_dir={out_dir}/scrape",
            *extra, *(["--check"] if check else [])]
    result = subprocess.run(args, env=env, capture_output=True, text=True, cwd=path, check=False)
    recap = re.search(r"^localhost\s+:.*\bchanged=(\d+)", result.stdout, re.MULTILINE)
    return result, int(recap.group(1)) if recap else None


def output(result):
    return result.stdout + result.stderr


def promtool_test(promtool, rules_dir, *names):
    for name in names:
        shutil.copy(os.path.join(HERE, name), rules_dir)
    return subprocess.run([promtool, "test", "rules", *names], cwd=rules_dir, capture_output=True, text=True,
                          check=False)


@pytest.fixture(scope="module")
def rendered(collection, promtool):
    """The role applied four ways with its defaults; yields the output directory."""
    out = tempfile.mkdtemp(prefix="apigw-monitoring-out-")
    runs = {}
    for name, check in (("check1", True), ("apply1", False), ("check2", True), ("apply2", False)):
        runs[name] = playbook(collection, out, check=check)
        if name == "check1":
            runs["files_after_check1"] = os.path.exists(os.path.join(out, "rules", RULES))
    yield out, runs
    shutil.rmtree(out, ignore_errors=True)


def test_four_ways_second_run_changes_nothing(rendered):
    out, runs = rendered
    for name in ("check1", "apply1", "check2", "apply2"):
        assert runs[name][0].returncode == 0, f"{name}: {output(runs[name][0])}"
    assert runs["check1"][1] > 0 and not runs["files_after_check1"], "check mode must predict and not write"
    assert runs["apply1"][1] > 0
    assert runs["check2"][1] == 0, output(runs["check2"][0])
    assert runs["apply2"][1] == 0, output(runs["apply2"][0])
    assert oct(os.stat(os.path.join(out, "rules", RULES)).st_mode & 0o777) == "0o644"


def test_rules_pass_promtool_check_and_unit_tests(rendered, promtool):
    out, _runs = rendered
    rules_dir = os.path.join(out, "rules")
    check = subprocess.run([promtool, "check", "rules", RULES], cwd=rules_dir, capture_output=True, text=True,
                           check=False)
    assert check.returncode == 0 and "SUCCESS: 12 rules found" in check.stdout, check.stdout + check.stderr
    result = promtool_test(promtool, rules_dir, *UNIT_TESTS)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.count("SUCCESS") == len(UNIT_TESTS), result.stdout


def test_rules_have_runbook_shape(rendered):
    out, _runs = rendered
    with open(os.path.join(out, "rules", RULES)) as handle:
        groups = {group["name"]: group["rules"] for group in yaml.safe_load(handle)["groups"]}
    alerts = {rule["alert"]: rule for rules in groups.values() for rule in rules if "alert" in rule}
    assert {name: (rule["labels"]["severity"], rule["for"]) for name, rule in alerts.items()} == {
        "ApigwServiceDown": ("critical", "1m"), "ApigwHighErrorRate": ("critical", "5m"),
        "ApigwRedisDown": ("critical", "1m"), "ApigwHostDiskFull": ("critical", "5m"),
        "ApigwHostHighCpu": ("warning", "10m"), "ApigwHostHighMemory": ("warning", "10m"),
        "ApigwSlowResponses": ("warning", "5m"), "ApigwHighRateLimitHits": ("warning", "1m")}
    for name, rule in alerts.items():
        assert set(rule["annotations"]) == {"summary", "description", "runbook_url"}, name
        assert rule["annotations"]["runbook_url"].startswith("https://github.com/apigw/ops/blob/main/docs/runbook.md#")
    records = [rule["record"] for rule in groups["apigw-gateway"] if "record" in rule]
    assert records == ["job:http_requests_5xx:ratio_rate5m", "job:http_request_duration_seconds:p95_rate5m",
                       "job:rate_limit_exceeded:rate5m", "job:login_failures:increase15m"]


def test_scrape_config_targets_the_inventory_gateways(rendered, promtool):
    out, _runs = rendered
    path = os.path.join(out, "scrape", SCRAPE)
    check = subprocess.run([promtool, "check", "config", path], capture_output=True, text=True, check=False)
    assert check.returncode == 0, check.stdout + check.stderr
    with open(path) as handle:
        jobs = yaml.safe_load(handle)["scrape_configs"]
    # inventories/local: one replica on gateway_port 8080 of localhost
    assert jobs == [{"job_name": "apigw-gateway", "metrics_path": "/metrics", "scheme": "http",
                     "scrape_interval": "15s", "static_configs": [{"targets": ["127.0.0.1:8080"]}]}]


def test_thresholds_are_variables(collection, promtool, tmp_path):
    result, changed = playbook(collection, str(tmp_path), "-e", "monitoring_error_rate_threshold=0.07",
                               "-e", "monitoring_host_alerts=false")
    assert result.returncode == 0 and changed, output(result)
    text = (tmp_path / "rules" / RULES).read_text()
    assert 'job:http_requests_5xx:ratio_rate5m{job="apigw-gateway"} > 0.07' in text
    assert "node_" not in text
    # the unit tests are bound to the runbook's 5%: at 7% the 6% case, and only it, no longer fires
    unit = promtool_test(promtool, str(tmp_path / "rules"), "alerts_test.yml")
    assert unit.returncode != 0, unit.stdout + unit.stderr
    failures = re.findall(r"alertname: \w+, time: \w+", unit.stderr)
    assert failures == ["alertname: ApigwHighErrorRate, time: 6m"], unit.stderr


def test_extra_alert_labels(collection, tmp_path):
    result, _changed = playbook(collection, str(tmp_path), "-e", '{"monitoring_alert_labels": {"team": "sre"}}')
    assert result.returncode == 0, output(result)
    with open(tmp_path / "rules" / RULES) as handle:
        rules = [rule for group in yaml.safe_load(handle)["groups"] for rule in group["rules"] if "alert" in rule]
    assert len(rules) == 8 and all(rule["labels"]["team"] == "sre" for rule in rules)


def test_bad_threshold_is_refused_before_writing(collection, tmp_path):
    result, _changed = playbook(collection, str(tmp_path), "-e", "monitoring_error_rate_threshold=five")
    assert result.returncode != 0
    assert "monitoring_error_rate_threshold" in output(result) and "float" in output(result), output(result)
    assert not (tmp_path / "rules").exists()


def test_no_prometheus_host_is_refused(collection, tmp_path):
    # inventories/local has no prometheus group
    result, _changed = playbook(collection, str(tmp_path), hosts=())
    assert result.returncode != 0
    assert "No host of the inventory matches prometheus (monitoring_hosts)" in output(result), output(result)
    assert not (tmp_path / "rules").exists()


def test_missing_promtool_is_refused_before_writing(collection, tmp_path):
    result, _changed = playbook(collection, str(tmp_path), "-e", "monitoring_promtool=/nonexistent/promtool")
    assert result.returncode != 0
    assert "/nonexistent/promtool (monitoring_promtool) cannot be run on localhost" in output(result), output(result)
    assert not (tmp_path / "rules").exists()


# -- the rules against a real gateway ------------------------------------------------------------------------------

class UnreachableRedis:
    """A Redis URL where nothing listens: the gateway's /readyz answers 503."""

    def __init__(self):
        self.port = free_port()

    def url(self):
        return f"redis://127.0.0.1:{self.port}/0"


@pytest.fixture(scope="module")
def gateways(gateway_factory):
    """A gateway with a tight login limit, and one whose Redis is unreachable; each has served real traffic."""
    healthy = gateway_factory({"RATE_LIMIT_AUTH_MAX": 3, "CIRCUIT_BREAKER_THRESHOLD": 1000})
    no_redis = gateway_factory({"REDIS_TIMEOUT_MS": 200}, redis=UnreachableRedis())
    access = healthy.tokens("alice", ip="10.77.0.9")["accessToken"]
    with healthy.client("10.77.0.1") as client:
        for _attempt in range(5):
            client.post("/auth/login", json={"username": "bob", "password": "wrong"})  # 401 x3, then 429
        client.get("/readyz")
    with healthy.client("10.77.0.2", headers={"Authorization": f"Bearer {access}"}) as client:
        client.get("/reports/ok")
        client.get("/reports/bad?status=500")  # the upstream's 500 -> 502
    with no_redis.client("10.77.0.3") as client:
        assert client.get("/readyz").status_code == 503
        client.post("/auth/login", json={"username": "alice", "password": PASSWORD})
    return healthy, no_redis


def samples(text):
    """(name, labels) of every sample in a text exposition."""
    found = []
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        match = re.match(r"([A-Za-z_:][A-Za-z0-9_:]*)(?:\{(.*)\})?\s", line)
        labels = dict(re.findall(r'([A-Za-z_][A-Za-z0-9_]*)="((?:[^"\\]|\\.)*)"', match.group(2) or ""))
        found.append((match.group(1), labels))
    return found


def selectors(rules):
    """(metric, [(label, op, value)]) of every selector in the rules' expressions, except recorded names."""
    recorded = {rule["record"] for rule in rules if "record" in rule}
    found = []
    for rule in rules:
        for name, body in SELECTOR.findall(rule["expr"]):
            if name not in recorded:
                found.append((name, MATCHER.findall(body)))
    return found


def matches(labels, matchers):
    for label, op, value in matchers:
        actual = labels.get(label, "")
        if (op == "=" and actual != value) or (op == "!=" and actual == value):
            return False
        if op in ("=~", "!~") and bool(re.fullmatch(value, actual)) != (op == "=~"):
            return False
    return True


def test_gateway_metrics_pass_promtool_and_feed_every_rule(rendered, gateways, promtool):
    out, _runs = rendered
    with open(os.path.join(out, "rules", RULES)) as handle:
        gateway_rules = next(g["rules"] for g in yaml.safe_load(handle)["groups"] if g["name"] == "apigw-gateway")
    used = selectors(gateway_rules)
    assert {name for name, _m in used} == RUNBOOK_METRICS | {"up"}, used

    scraped = []
    for gateway in gateways:
        text = httpx.get(gateway.url + "/metrics", timeout=10).text
        lint = subprocess.run([promtool, "check", "metrics"], input=text, capture_output=True, text=True, check=False)
        assert lint.returncode == 0, lint.stdout + lint.stderr
        scraped += samples(text)
    names = {name for name, _labels in scraped}
    assert names >= RUNBOOK_METRICS, sorted(names)
    for name, matchers in used:
        if name == "up":  # Prometheus' own, per target
            continue
        # job is the target's label, added by Prometheus; every other matcher must select a real sample
        wanted = [m for m in matchers if m[0] != "job"]
        assert any(n == name and matches(labels, wanted) for n, labels in scraped), (name, wanted)


# -- the role against a real Prometheus ----------------------------------------------------------------------------

@pytest.fixture
def prometheus(tmp_path):
    """Start a real Prometheus (lifecycle API on) from a prometheus.yml the test writes; yields a starter."""
    procs = []

    def start(config):
        tool("prometheus")
        port = free_port()
        path = tmp_path / "prometheus.yml"
        path.write_text(yaml.safe_dump(config))
        log = tmp_path / "prometheus.log"
        with open(log, "wb") as out:
            proc = subprocess.Popen([shutil.which("prometheus"), f"--config.file={path}",
                                     f"--storage.tsdb.path={tmp_path / 'data'}", "--web.enable-lifecycle",
                                     f"--web.listen-address=127.0.0.1:{port}"], stdout=out, stderr=subprocess.STDOUT)
        procs.append(proc)
        wait_http(f"http://127.0.0.1:{port}/-/ready", timeout=60, proc=proc, log=str(log))
        return f"http://127.0.0.1:{port}"

    yield start
    for proc in procs:
        proc.terminate()
        proc.wait(30)


def firing(base):
    response = httpx.get(f"{base}/api/v1/query", params={"query": 'ALERTS{alertstate="firing"}'}, timeout=5)
    return {item["metric"]["alertname"] for item in response.json()["data"]["result"]}


def redis_down_duration(base):
    """The `for:` of ApigwRedisDown as loaded by Prometheus, in seconds."""
    groups = httpx.get(f"{base}/api/v1/rules", timeout=5).json()["data"]["groups"]
    assert [group["name"] for group in groups] == ["apigw-gateway"]
    return next(rule for rule in groups[0]["rules"] if rule["name"] == "ApigwRedisDown")["duration"]


def test_role_reloads_prometheus_which_raises_the_runbook_alerts(collection, gateways, prometheus, tmp_path):
    _healthy, no_redis = gateways
    out = str(tmp_path / "out")
    target = ["-e", f'{{"monitoring_gateway_targets": ["127.0.0.1:{no_redis.port}"]}}',
              "-e", "monitoring_host_alerts=false", "-e", "monitoring_scrape_interval=1s"]
    first, _changed = playbook(collection, out, *target)
    assert first.returncode == 0, output(first)
    # prometheus.yml = the rules directory + the role's scrape configuration, as an operator would write it
    with open(os.path.join(out, "scrape", SCRAPE)) as handle:
        scrape = yaml.safe_load(handle)
    base = prometheus({"global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
                       "rule_files": [os.path.join(out, "rules", "*.yml")], **scrape})

    # new durations: the role rewrites the rules, reloads Prometheus and checks that every rule is loaded
    fast = ["-e", "monitoring_redis_down_for=0s", "-e", "monitoring_error_rate_for=0s",
            "-e", "monitoring_redis_down_window=1m", "-e", f"monitoring_prometheus_url={base}"]
    predicted, changed = playbook(collection, out, *target, *fast, check=True)
    assert predicted.returncode == 0 and changed == 1, output(predicted)  # the rules file; nothing reloaded
    assert redis_down_duration(base) == 60
    second, changed = playbook(collection, out, *target, *fast)
    assert second.returncode == 0 and changed == 2, output(second)  # the rules file and the reload
    assert "Prometheus has loaded the 9 rules of apigw-gateway.rules.yml" in second.stdout, output(second)
    assert redis_down_duration(base) == 0

    # a readiness probe on the gateway whose Redis is unreachable: every /readyz answers 503
    def alerts_after_probes():
        with no_redis.client() as client:
            for _probe in range(5):
                client.get("/readyz")
        return {"ApigwRedisDown", "ApigwHighErrorRate"} <= firing(base)

    wait_for(alerts_after_probes, timeout=120, interval=0.2, message="ApigwRedisDown and ApigwHighErrorRate firing")
    assert "ApigwServiceDown" not in firing(base)

    # nothing changed: no reload, and the loaded rules are verified again
    third, changed = playbook(collection, out, *target, *fast)
    assert third.returncode == 0 and changed == 0, output(third)
    assert "Prometheus has loaded the 9 rules" in third.stdout


def test_unreachable_prometheus_fails_with_the_reason(collection, tmp_path):
    url = f"http://127.0.0.1:{free_port()}"
    result, _changed = playbook(collection, str(tmp_path), "-e", f"monitoring_prometheus_url={url}")
    assert result.returncode != 0
    assert f"Prometheus at {url} did not reload its configuration (not reachable" in output(result), output(result)
    assert (tmp_path / "rules" / RULES).exists()  # the files are written and valid; only the reload failed
