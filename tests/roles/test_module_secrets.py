"""No secret in any output, for every module that takes a Redis connection.

Every such module runs with a secret in every option that can hold one - ``password``, a ``url`` with a
password (default user and ACL user), ``redis_username`` + ``password`` (ACL), the password of a Sentinel
deployment (its sentinels ask the same ``requirepass``) - at ``-vvv --diff``, in check mode and in apply
mode, succeeding and failing (wrong password, unreachable port), against real redis-server processes.
The whole output of ansible-playbook (stdout and stderr) is searched for each secret: zero hits.
The collection has no option for a TLS key passphrase (client_key must be unencrypted), so there is none
to test.  Each task's outcome is asserted too, so the test cannot pass by running nothing.

    python -m pytest tests/roles/test_module_secrets.py -q
"""

import json
import os
import secrets

import pytest

from tests.harness.redis_servers import RedisServer, free_port, start_sentinel
from tests.roles.playbook_runner import ansible_playbook


def _secret(name):
    # distinct, unguessable and long: a hit can only be a leak, never a coincidence
    return "S3cr%s%s" % (name, secrets.token_hex(10))


PW = _secret("pw")
ACL_USER = "apigw-ops"
ACL_PW = _secret("acl")
SENTINEL_PW = _secret("sent")
WRONG = {name: _secret(name) for name in ("wrongpw", "wrongurl", "wrongacl", "wrongsent", "downpw", "downurl")}
SECRETS = [PW, ACL_PW, SENTINEL_PW] + list(WRONG.values())

# every module of the collection that takes the connection options, with arguments that reach Redis
MODULES = {
    "gateway_lockout": {"username": "alice"},
    "gateway_lockout_info": {"username": "alice"},
    "gateway_ratelimit": {"scope": "global", "subject": ["10.0.0.1"]},
    "gateway_ratelimit_info": {"scope": "all", "top": 3},
    "gateway_token": {"jti": ["jti-secret-test-0001"]},
    "gateway_token_info": {"user_id": "user-1"},
    "gateway_maintenance": {"state": "present", "reason": "secret test"},
    "redis_backup": {"state": "present", "name": "secret-%Y%m%d%H%M%S", "method": "bgsave", "keep_min": 1},
    "redis_backup_info": {},
}
# redis_backup_info accepts the connection (for module_defaults of the group) but reads only files
NO_CONNECTION = {"redis_backup_info"}


def _populate(server, password, username=None):
    """Keys each module acts on, so that check and apply runs report changes and diffs."""
    import redis

    client = redis.Redis(host=server.host, port=server.port, username=username, password=password)
    client.set("lockout:alice:10.0.0.1", "1", ex=900)
    client.set("loginfail:alice:10.0.0.1", "3", ex=900)
    client.set("ratelimit:global:10.0.0.1", "50", ex=60)
    client.hset("token:user:user-1", "jti-secret-test-0001", 4102444800)
    client.delete("gateway:maintenance")
    client.close()


@pytest.fixture(scope="module")
def servers():
    password = RedisServer(password=PW).start()
    acl = RedisServer(acl_user=(ACL_USER, ACL_PW)).start()
    sentinel = None
    try:
        sentinel = start_sentinel(password=SENTINEL_PW, sentinel_password=SENTINEL_PW)
        yield password, acl, sentinel
    finally:
        for server in [password, acl] + (list(sentinel[:2]) + sentinel[2] if sentinel else []):
            server.stop()


def _connections(servers):
    """(label, connection options, expected to succeed)."""
    password, acl, (primary, _replica, sentinels) = servers
    closed = free_port()
    base = {"host": password.host, "port": password.port, "socket_timeout": 5}
    sentinel = {"mode": "sentinel", "sentinel_master": sentinels[0].master_name, "socket_timeout": 5,
                "sentinel_hosts": ["%s:%d" % (s.host, s.port) for s in sentinels]}
    return [
        ("password", dict(base, password=PW), True),
        ("url", {"url": "redis://:%s@%s:%d/0" % (PW, password.host, password.port)}, True),
        ("acl", {"host": acl.host, "port": acl.port, "redis_username": ACL_USER, "password": ACL_PW}, True),
        ("acl url", {"url": "redis://%s:%s@%s:%d/0" % (ACL_USER, ACL_PW, acl.host, acl.port)}, True),
        ("sentinel", dict(sentinel, password=SENTINEL_PW), True),
        ("wrong password", dict(base, password=WRONG["wrongpw"]), False),
        ("wrong password in url",
         {"url": "redis://:%s@%s:%d/0" % (WRONG["wrongurl"], password.host, password.port)}, False),
        ("wrong ACL password", {"host": acl.host, "port": acl.port, "redis_username": ACL_USER,
                                "password": WRONG["wrongacl"]}, False),
        ("wrong sentinel password", dict(sentinel, password=WRONG["wrongsent"]), False),
        ("unreachable", {"host": "127.0.0.1", "port": closed, "password": WRONG["downpw"]}, False),
        ("unreachable url", {"url": "redis://:%s@127.0.0.1:%d/0" % (WRONG["downurl"], closed)}, False),
    ], (primary, password, acl)


def _playbook(connections, backups):
    """One play: every module x every connection, each result registered and its outcome asserted."""
    tasks, checks = [], []
    for index, (label, connection, succeeds) in enumerate(connections):
        for module, module_args in MODULES.items():
            args = dict(module_args, path=backups) if module.startswith("redis_backup") else dict(module_args)
            name = "r%d_%s" % (index, module)
            tasks.append({"name": "%s via %s" % (module, label), "apigw.ops.%s" % module: dict(args, **connection),
                          "register": name, "ignore_errors": True})
            expect = succeeds or module in NO_CONNECTION
            checks.append("%s is %s" % (name, "succeeded" if expect else "failed"))
            if not expect:
                checks.append("%s.msg.splitlines() | length == 1" % name)
    tasks.append({"name": "Every task ended as expected", "ansible.builtin.assert": {"that": checks, "quiet": True}})
    return [{"name": "Secrets never shown", "hosts": "localhost", "gather_facts": False, "tasks": tasks}]


@pytest.mark.parametrize("check_mode", [True, False], ids=["check", "apply"])
def test_no_secret_in_output(collection_root, servers, tmp_path, check_mode):
    connections, (primary, password, acl) = _connections(servers)
    _populate(password, PW)
    _populate(acl, ACL_PW, ACL_USER)
    _populate(primary, SENTINEL_PW)
    backups = tmp_path / "backups"
    backups.mkdir()
    playbook = tmp_path / "secrets.yml"
    # JSON is YAML: no quoting surprises for values with ':' or '%'
    playbook.write_text(json.dumps(_playbook(connections, str(backups)), indent=1))
    extra = ["-vvv", "--diff"] + (["--check"] if check_mode else [])
    result = ansible_playbook(collection_root, str(playbook), *extra, base_dir=tmp_path / "base",
                              inventory=os.path.join(collection_root[1], "inventories", "local"))
    output = result.stdout + result.stderr
    if os.environ.get("APIGW_SECRETS_LOG"):  # to read what was searched
        with open(os.environ["APIGW_SECRETS_LOG"] + ("-check" if check_mode else "-apply"), "w") as handle:
            handle.write(output)
    assert result.returncode == 0, output[-3000:]
    assert "Every task ended as expected" in output
    failing = sum(1 for _label, _conn, succeeds in connections if not succeeds) * (len(MODULES) - len(NO_CONNECTION))
    recap = output[output.rindex("PLAY RECAP"):]
    assert "ok=%d " % (len(connections) * len(MODULES) + 1) in recap and "ignored=%d " % failing in recap, recap
    leaks = {secret: output.count(secret) for secret in SECRETS if secret in output}
    assert not leaks, "secrets in the output: %s" % leaks
    assert "S3cr" not in output  # no part of any secret's name either
    # the masking is visible where the values were: the invocation shows the placeholder instead
    assert "VALUE_SPECIFIED_IN_NO_LOG_PARAMETER" in output
