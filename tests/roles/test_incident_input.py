"""The incident playbooks: bad input fails at the start with one clear line and touches nothing; a real run on a
real Redis and a real audit log blocks exactly the top IPs, and --check reports them and writes nothing.

Runs ansible-playbook against a collection tree (scripts/collection-tree.sh), as tests/roles/test_bad_input.py.

    python -m pytest tests/roles/test_incident_input.py -q
"""

import json
import os

import pytest

from tests.harness.redis_servers import free_port, start_standalone
from tests.roles.playbook_runner import ansible_playbook

BRUTE = "playbooks/incident_bruteforce.yml"
DDOS = "playbooks/incident_ddos.yml"


@pytest.fixture(scope="module")
def redis():
    server = start_standalone()
    yield server
    server.stop()


def run(collection_root, playbook, *extra, base_dir, redis_port=None):
    return ansible_playbook(collection_root, playbook, "-e", "apigw_redis_port=%d" % (redis_port or free_port()),
                            *extra, base_dir=base_dir)


def summary(result):
    """The one-line summary the playbook printed."""
    lines = [line for line in result.stdout.splitlines() if '"msg": "' in line]
    assert lines, result.stdout + result.stderr
    return json.loads("{" + lines[-1].strip() + "}")["msg"]


def write_audit(path, failures):
    """failures: {ip: n}; plus one hostile username and two successful logins."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as handle:
        for ip, count in failures.items():
            for n in range(count):
                handle.write(json.dumps({"timestamp": "2026-01-15T10:00:%02d.000Z" % (n % 60),
                                         "eventType": "LOGIN_FAILURE", "username": "admin", "ip": ip,
                                         "requestId": "r-%s-%d" % (ip, n)}) + "\n")
        handle.write(json.dumps({"timestamp": "2026-01-15T10:01:00.000Z", "eventType": "LOGIN_SUCCESS",
                                 "username": "{{ lookup('pipe', 'touch /tmp/apigw-pwned') }}", "ip": "10.0.0.1",
                                 "requestId": "ok-1"}) + "\n")
        handle.write("not json\n")
    return str(path)


@pytest.mark.parametrize("playbook, extra, message", [
    (BRUTE, ["incident_threshold=0"], "incident_threshold must be 1 or more failures (got 0)."),
    (BRUTE, ["incident_threshold=many"], "incident_threshold"),
    (BRUTE, ["incident_block_ttl=0"], "incident_block_ttl must be between 1 and 604800 seconds (got 0)."),
    (BRUTE, ["incident_block_ttl=9999999"], "incident_block_ttl must be between 1 and 604800 seconds"),
    (BRUTE, ["incident_top=0"], "incident_top must be between 1 and 1000 (got 0)."),
    (BRUTE, ["incident_block_value=5"], "incident_block_value must be 1000 or more"),
    (BRUTE, ["incident_auth_max=0"], "incident_auth_max must be between 1 and 1000 (got 0)."),
    (BRUTE, ["incident_since="], "incident_since must be a time"),
    (BRUTE, ['{"incident_since": "last tuesday"}'], "since='last tuesday' is not a time"),
    (BRUTE, ["apigw_redis_mode=mesh"], "apigw_redis_mode must be one of: standalone, cluster, sentinel"),
    (DDOS, ["incident_threshold=-3"], "incident_threshold must be 1 or more requests (got -3)."),
    (DDOS, ["incident_block_ttl=0"], "incident_block_ttl must be between 1 and 604800 seconds (got 0)."),
    (DDOS, ["incident_rate_limit_profile=aggressive"],
     "value of incident_rate_limit_profile must be one of: strict, moderate, permissive, got: aggressive"),
    (DDOS, ["incident_top=5000"], "incident_top must be between 1 and 1000 (got 5000)."),
    (DDOS, ["incident_max_keys=-1"], "incident_max_keys must be 0 (no cap) or more"),
])
def test_bad_input_is_refused_before_anything_runs(collection_root, tmp_path, playbook, extra, message):
    audit = write_audit(tmp_path / "logs" / "audit-logs.json", {"192.0.2.1": 30})
    args = []
    for item in extra:
        args += ["-e", item]
    result = run(collection_root, playbook, "-e", "incident_audit_log=" + audit, *args, base_dir=tmp_path)
    output = result.stdout + result.stderr
    assert result.returncode != 0, output
    assert message in output, output
    # refused before Redis was contacted (nothing listens on the port given) and before any block
    assert "Cannot connect to Redis" not in output and "Resolution 1" not in output, output


def test_bruteforce_check_then_block(collection_root, tmp_path, redis):
    # the playbook's default path: <apigw_base_dir>/logs/audit-logs.json (APIGW_BASE_DIR is tmp_path)
    write_audit(tmp_path / "logs" / "audit-logs.json",
                {"192.0.2.10": 40, "192.0.2.11": 25, "192.0.2.12": 25, "192.0.2.13": 3, "192.0.2.99": 50})
    common = ["-e", "incident_since=2026-01-15T00:00:00Z", "-e", "incident_threshold=20",
              "-e", '{"incident_allowlist": ["192.0.2.99"]}', "-e", "incident_block_ttl=120"]
    redis.cli("FLUSHALL")
    check = run(collection_root, BRUTE, "--check", *common, base_dir=tmp_path, redis_port=redis.port)
    assert check.returncode == 0, check.stdout + check.stderr
    line = summary(check)
    assert "143 login failure(s)" in line and "would block 3 IP(s) on scope auth for 120 s" in line, line
    assert "192.0.2.10, 192.0.2.11, 192.0.2.12" in line and "firewall/WAF blocking is not automated" in line
    assert "{{ lookup('pipe', 'touch /tmp/apigw-pwned') }}" in line          # printed literally, never templated
    assert not os.path.exists("/tmp/apigw-pwned")
    assert redis.cli("DBSIZE").strip() == "0"                              # --check wrote nothing

    real = run(collection_root, BRUTE, *common, base_dir=tmp_path, redis_port=redis.port)
    assert real.returncode == 0, real.stdout + real.stderr
    assert "blocked 3 IP(s) on scope auth for 120 s (3 counter(s) written)" in summary(real)
    keys = sorted(redis.cli("--scan", "--pattern", "ratelimit:*").split())
    assert keys == ["ratelimit:auth:192.0.2.10", "ratelimit:auth:192.0.2.11", "ratelimit:auth:192.0.2.12"]
    for key in keys:
        assert redis.cli("GET", key).strip() == "1000000" and 0 < int(redis.cli("TTL", key)) <= 120

    again = run(collection_root, BRUTE, *common, base_dir=tmp_path, redis_port=redis.port)
    assert again.returncode == 0 and "changed=0" in again.stdout, again.stdout   # idempotent: already blocked


def test_bruteforce_missing_audit_log_is_one_line(collection_root, tmp_path, redis):
    result = run(collection_root, BRUTE, "-e", "incident_audit_log=%s" % (tmp_path / "nope.json"),
                 base_dir=tmp_path, redis_port=redis.port)
    assert result.returncode != 0
    assert "Audit log %s does not exist" % (tmp_path / "nope.json") in result.stdout, result.stdout


def test_ddos_check_then_block(collection_root, tmp_path, redis):
    redis.cli("FLUSHALL")
    for ip, hits in (("198.51.100.1", 900), ("198.51.100.2", 300), ("198.51.100.3", 40), ("10.0.0.5", 5000)):
        redis.cli("SET", "ratelimit:global:" + ip, hits, "EX", 60)
    common = ["-e", "incident_threshold=100", "-e", '{"incident_allowlist": ["10.0.0.5"]}']
    check = run(collection_root, DDOS, "--check", *common, base_dir=tmp_path, redis_port=redis.port)
    assert check.returncode == 0, check.stdout + check.stderr
    line = summary(check)
    assert "6240 request(s) in the current window from 4 IP(s)" in line, line
    assert "would block 2 IP(s) on scope global for 600 s" in line and "198.51.100.1, 198.51.100.2" in line
    assert redis.cli("GET", "ratelimit:global:198.51.100.1").strip() == "900"
    real = run(collection_root, DDOS, *common, base_dir=tmp_path, redis_port=redis.port)
    assert real.returncode == 0, real.stdout + real.stderr
    assert "blocked 2 IP(s)" in summary(real)
    assert redis.cli("GET", "ratelimit:global:198.51.100.1").strip() == "1000000"
    assert redis.cli("GET", "ratelimit:global:198.51.100.3").strip() == "40"
    assert redis.cli("GET", "ratelimit:global:10.0.0.5").strip() == "5000"
