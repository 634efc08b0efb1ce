"""No secret in any output, for every playbook that takes one: the Redis password (apigw_redis_password) or a URL
with the password in it (apigw_redis_url).

Each playbook runs at ``-vvv --diff`` in check mode and in apply mode, succeeding (the right secret) and failing
(a wrong one, which Redis refuses), against a real redis-server with ``requirepass``. The whole output of
ansible-playbook (stdout and stderr) is searched for every secret: zero hits. The outcome of each run is asserted
too, so the test cannot pass by running nothing. (The modules' own test: tests/roles/test_module_secrets.py.)

    python -m pytest tests/roles/test_playbook_secrets.py -q
"""

import json
import secrets

import pytest

from tests.harness.redis_servers import RedisServer
from tests.roles.playbook_runner import ansible_playbook


def _secret(name):
    # distinct, unguessable and long: a hit can only be a leak, never a coincidence
    return "S3cr%s%s" % (name, secrets.token_hex(10))


PW = _secret("pw")
WRONG_PW = _secret("wrongpw")
WRONG_URL_PW = _secret("wrongurl")
SECRETS = [PW, WRONG_PW, WRONG_URL_PW]

# every playbook that takes the Redis connection, with inputs that reach Redis and change something
PLAYBOOKS = {
    "clear_ratelimits": {"ratelimit_scope": "global", "ratelimit_subjects": ["10.0.0.1"]},
    "unlock_account": {"unlock_username": "alice"},
    "revoke_tokens": {"revoke_jtis": ["jti-secret-test-0001"]},
    "incident_ddos": {"incident_threshold": 10, "incident_block_ttl": 60},
    "incident_bruteforce": {
        "incident_audit_hosts": "localhost",
        "incident_since": "2026-01-15T00:00:00Z",
        "incident_threshold": 1,
        "incident_show_events": True,
    },
    # check mode runs the window end to end without a gateway; apply mode needs one (it waits for the 503s)
    "maintenance": {"maintenance_reason": "secret test", "maintenance_backup": False},
}
# (label, check mode, how the secret is given, succeeds)
RUNS = [
    ("check-password", True, "password", True),
    ("apply-url", False, "url", True),
    ("check-wrong-url", True, "wrong_url", False),
    ("apply-wrong-password", False, "wrong_password", False),
]
CASES = [(name, *run) for name in PLAYBOOKS for run in RUNS if not (name == "maintenance" and run[0] == "apply-url")]


@pytest.fixture(scope="module")
def redis():
    server = RedisServer(password=PW).start()
    yield server
    server.stop()


def populate(server, tmp_path):
    """Keys and an audit log each playbook acts on, so that every successful run changes something."""
    server.cli("FLUSHALL")
    server.cli("SET", "lockout:alice:10.0.0.1", "1", "EX", "900")
    server.cli("SET", "ratelimit:global:10.0.0.1", "50", "EX", "900")
    server.cli("SET", "ratelimit:global:10.0.0.9", "500", "EX", "900")
    server.cli("HSET", "token:user:user-1", "jti-secret-test-0001", "4102444800")
    audit = tmp_path / "logs" / "audit-logs.json"
    audit.parent.mkdir(parents=True, exist_ok=True)
    audit.write_text(
        "".join(
            json.dumps(
                {
                    "timestamp": "2026-01-15T10:00:0%d.000Z" % n,
                    "eventType": "LOGIN_FAILURE",
                    "username": "admin",
                    "ip": "192.0.2.7",
                    "requestId": "r-%d" % n,
                }
            )
            + "\n"
            for n in range(3)
        )
    )


@pytest.mark.parametrize(
    "playbook, label, check, given, succeeds", CASES, ids=["%s-%s" % (case[0], case[1]) for case in CASES]
)
def test_no_secret_in_output(collection_root, redis, tmp_path, playbook, label, check, given, succeeds):
    populate(redis, tmp_path)
    connection = {
        "password": {"apigw_redis_port": redis.port, "apigw_redis_password": PW},
        "url": {"apigw_redis_url": "redis://:%s@127.0.0.1:%d/0" % (PW, redis.port)},
        "wrong_url": {"apigw_redis_url": "redis://:%s@127.0.0.1:%d/0" % (WRONG_URL_PW, redis.port)},
        "wrong_password": {"apigw_redis_port": redis.port, "apigw_redis_password": WRONG_PW},
    }[given]
    extra = dict(PLAYBOOKS[playbook], **connection)
    args = ["-vvv", "--diff", "-e", json.dumps(extra)] + (["--check"] if check else [])
    result = ansible_playbook(collection_root, "playbooks/%s.yml" % playbook, *args, base_dir=str(tmp_path))
    output = result.stdout + result.stderr
    assert (result.returncode == 0) == succeeds, output[-3000:]
    if not succeeds:
        assert "fatal: [localhost]" in output and ("uth" in output or "password" in output), output[-3000:]
    leaks = [secret for secret in SECRETS if secret in output]
    assert leaks == [], "secret(s) in the output of %s %s: %s" % (
        playbook,
        label,
        [line for line in output.splitlines() if any(secret in line for secret in leaks)][:5],
    )
