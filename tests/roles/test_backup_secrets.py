"""No secret in any output: every redis_backup state, run with `-vvv --diff` in check and apply mode, succeeding
and failing, against a real redis-server whose redis.conf holds every kind of secret; the whole output of
ansible-playbook is searched for each secret: zero hits.

    python -m pytest tests/roles/test_backup_secrets.py -q
"""

import hashlib
import json
import os
import tempfile

import pytest

from tests.harness.redis_servers import RedisServer
from tests.roles.playbook_runner import ansible_playbook

PASSWORD = "S3cr-requirepass-7f1"
BOB_HASH = hashlib.sha256(b"S3cr-bob-pw").hexdigest()
DAVE_HASH = hashlib.sha256(b"S3cr-dave-pw").hexdigest()
SECRET_LINES = [
    "requirepass %s" % PASSWORD,
    "masterauth S3cr-masterauth-a91",
    "masteruser S3cr-masteruser-c22",
    "user alice on >S3cr-alice-pw-d33 ~* &* +@all",
    "user bob on #%s ~* +@all" % BOB_HASH,
    "user carol on >S3cr-carol-pw-e44 >S3cr-carol-old-f55 <S3cr-carol-old-f55 ~* +@all",
    "user dave off #%s !%s" % (DAVE_HASH, DAVE_HASH),
    "tls-key-file-pass S3cr-tls-key-pass-b66",
    "tls-client-key-file-pass S3cr-tls-client-pass-c77",
    "# requirepass S3cr-old-commented-d88",
    "rename-command DEBUG %s-debug" % PASSWORD,  # a value that came from the password option
]
# Redis refuses "sentinel" directives outside sentinel mode: added to the file after the start (the module reads
# the file, not the server)
AFTER_START = ["sentinel auth-pass apigw S3cr-sentinel-auth-e99", "sentinel sentinel-pass S3cr-sentinel-peers-f00"]
FRAGMENTS = [PASSWORD, "S3cr-masterauth-a91", "S3cr-masteruser-c22", "S3cr-alice-pw-d33", BOB_HASH,
             "S3cr-carol-pw-e44", "S3cr-carol-old-f55", DAVE_HASH, "S3cr-tls-key-pass-b66", "S3cr-tls-client-pass-c77",
             "S3cr-old-commented-d88", "S3cr-sentinel-auth-e99", "S3cr-sentinel-peers-f00", "S3cr"]

PHASE_LIVE = """
- name: redis_backup, every state that talks to a live Redis, check and apply, success and failure
  hosts: localhost
  gather_facts: false
  module_defaults:
    apigw.ops.redis_backup: {{host: 127.0.0.1, port: {port}, password: "{{{{ secret_password }}}}"}}
  tasks:
    - name: present (check, then apply)
      apigw.ops.redis_backup: {{path: "{backups}", name: secret-test, method: bgsave}}
      check_mode: "{{{{ item }}}}"
      loop: [true, false]
    - name: present with the wrong password (fails)
      apigw.ops.redis_backup: {{path: "{backups}", name: secret-fail, password: nope-wrong}}
      ignore_errors: true
    - name: present into a missing directory (fails)
      apigw.ops.redis_backup: {{path: "{backups}/missing", name: secret-fail}}
      ignore_errors: true
    - name: pruned (check, then apply)
      apigw.ops.redis_backup: {{state: pruned, path: "{backups}", keep_days: 0}}
      check_mode: "{{{{ item }}}}"
      loop: [true, false]
    - name: pruned in a missing directory (fails)
      apigw.ops.redis_backup: {{state: pruned, path: "{backups}/missing"}}
      ignore_errors: true
    - name: aof_enabled as the default user (check, then apply)
      apigw.ops.redis_backup: {{state: aof_enabled, path: "{backups}", config_file: "{config}"}}
      check_mode: "{{{{ item }}}}"
      loop: [true, false]
    - name: aof_enabled as ACL user alice (check)
      apigw.ops.redis_backup: {{state: aof_enabled, path: "{backups}", config_file: "{config}",
                                redis_username: alice, password: "{{{{ secret_alice }}}}"}}
      check_mode: true
    - name: aof_enabled with the wrong password (fails)
      apigw.ops.redis_backup: {{state: aof_enabled, path: "{backups}", config_file: "{config}", password: nope}}
      ignore_errors: true
    - name: restored while Redis runs (fails, check and apply)
      apigw.ops.redis_backup: {{state: restored, path: "{backups}", config_file: "{config}"}}
      check_mode: "{{{{ item }}}}"
      loop: [true, false]
      ignore_errors: true
"""

PHASE_STOPPED = """
- name: redis_backup state=restored into the stopped Redis, check and apply, success and failure
  hosts: localhost
  gather_facts: false
  tasks:
    - name: restored (check, then apply)
      apigw.ops.redis_backup: {{state: restored, path: "{backups}", config_file: "{config}",
                                aof_handling: disable_then_rewrite, backup: secret-test}}
      check_mode: "{{{{ item }}}}"
      loop: [true, false]
    - name: restored of a missing backup (fails)
      apigw.ops.redis_backup: {{state: restored, path: "{backups}", config_file: "{config}", backup: nothing}}
      check_mode: "{{{{ item }}}}"
      loop: [true, false]
      ignore_errors: true
    - name: aof_enabled against the stopped Redis (fails)
      apigw.ops.redis_backup: {{state: aof_enabled, path: "{backups}", config_file: "{config}", port: {port},
                                password: "{{{{ secret_password }}}}"}}
      ignore_errors: true
"""


@pytest.fixture
def server():
    redis = RedisServer(password=PASSWORD)
    lines = [line for line in redis.config_lines() if not line.startswith(("requirepass", "masterauth"))]
    with open(redis.config_path, "w") as handle:
        handle.write("\n".join(lines + SECRET_LINES) + "\n")
    redis.start(write_config=False)
    with open(redis.config_path, "a") as handle:
        handle.write("\n".join(AFTER_START) + "\n")
    yield redis
    redis.stop()


def run_phase(collection_root, template, server, backups, base_dir):
    """Run the playbook; the secrets come in as extra vars from a file (Ansible quotes playbook lines in errors)."""
    with tempfile.NamedTemporaryFile("w", suffix=".yml", delete=False) as handle:
        handle.write(template.format(port=server.port, backups=backups, config=server.config_path))
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as secrets:
        json.dump({"secret_password": PASSWORD, "secret_alice": "S3cr-alice-pw-d33"}, secrets)
    try:
        result = ansible_playbook(collection_root, handle.name, "-vvv", "--diff", "-e", "@" + secrets.name,
                                  base_dir=base_dir)
    finally:
        os.unlink(handle.name)
        os.unlink(secrets.name)
    return result.stdout + result.stderr, result


def test_no_secret_in_any_output(collection_root, server, tmp_path, base_dir):
    backups = str(tmp_path / "backups")
    os.mkdir(backups)
    live, result = run_phase(collection_root, PHASE_LIVE, server, backups, base_dir)
    assert result.returncode == 0, live[-4000:]
    server.stop(remove=False)
    stopped, result = run_phase(collection_root, PHASE_STOPPED, server, backups, base_dir)
    assert result.returncode == 0, stopped[-4000:]
    output = live + stopped
    (tmp_path / "output.txt").write_text(output)  # kept by pytest for a look after a failure
    # every state ran, the config was shown (masked) and each failure happened
    assert output.count("ok=") == 2 and "failed=0" in output
    assert "appendonly_runtime" in output and "user alice on ******** ~* &* +@all" in output
    assert "sentinel auth-pass apigw ********" in output and "tls-key-file-pass ********" in output
    for expected in ("Authentication", "looks running", "No backup named nothing", "Cannot connect",
                     "aof_disabled_for_restore"):
        assert expected in output, expected
    for fragment in FRAGMENTS:
        hits = [line for line in output.splitlines() if fragment in line]
        assert not hits, (fragment, hits[:3])
