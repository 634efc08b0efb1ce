"""The incident playbooks: a real run on a real Redis and a real audit log blocks exactly the top IPs, and --check
reports them and writes nothing; only aggregates are printed unless incident_show_events, and then token-like fields
are masked. (Bad input: tests/roles/test_playbook_inputs.py.)

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
        redis.cli("SET", "ratelimit:global:" + ip, hits, "EX", 3600)  # outlives a slow run
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


SECRETS = ["tok-SECRET-1", "pw-SECRET-2", "Bearer SECRET-3", "eyJhbGciOi.eyJzdWIiOiJ4.c2lnbmF0dXJl"]


def write_audit_with_secrets(path):
    """Login failures a careless gateway logged with credentials in them (top level, nested, a JWT-shaped value)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as handle:
        for n in range(3):
            handle.write(json.dumps({"timestamp": "2026-01-15T10:00:0%d.000Z" % n, "eventType": "LOGIN_FAILURE",
                                     "username": "admin", "ip": "192.0.2.50", "requestId": "req-secret-%d" % n,
                                     "token": SECRETS[0], "password": SECRETS[1],
                                     "headers": {"Authorization": SECRETS[2], "userAgent": "curl"},
                                     "note": SECRETS[3]}) + "\n")


def test_bruteforce_prints_aggregates_only_even_at_v(collection_root, tmp_path, redis):
    write_audit_with_secrets(tmp_path / "logs" / "audit-logs.json")
    result = run(collection_root, BRUTE, "--check", "-v", "-e", "incident_since=2026-01-15T00:00:00Z",
                 base_dir=tmp_path, redis_port=redis.port)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert "3 login failure(s)" in summary(result) and "192.0.2.50" in summary(result)
    assert "req-secret-" not in output, output            # no raw event at all
    assert [secret for secret in SECRETS if secret in output] == [], output


def test_bruteforce_shows_events_masked_when_asked(collection_root, tmp_path, redis):
    write_audit_with_secrets(tmp_path / "logs" / "audit-logs.json")
    result = run(collection_root, BRUTE, "--check", "-vvv", "-e", "incident_since=2026-01-15T00:00:00Z",
                 "-e", "incident_show_events=true", "-e", "incident_events_limit=2", base_dir=tmp_path,
                 redis_port=redis.port)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert "req-secret-1" in output and "req-secret-2" in output and "req-secret-0" not in output, output
    assert '"userAgent": "curl"' in output and '"token": "********"' in output, output
    assert [secret for secret in SECRETS if secret in output] == [], output
