"""The Recovery Procedure on a live stack: `restore.yml --check` predicts every step and changes nothing; a missing
backup names the latest verified one; a broken manifest is named in one line.

Deploys the local stack (site.yml: Redis and the gateway under supervisord) into a throw-away base directory on
free ports, takes a backup with backup.yml, runs the checks, and removes the stack (teardown.yml -e purge=true).

    python -m pytest tests/roles/test_backup_restore_live.py -q
"""

import hashlib
import json
import os
import shutil
import subprocess
import tempfile

import pytest

from tests.roles.playbook_runner import ansible_playbook, free_port


@pytest.fixture(scope="module")
def stack(collection_root):
    base = tempfile.mkdtemp(prefix="apigw-live-")
    ports = {"redis": free_port(), "gateway": free_port(), "upstream": free_port()}
    ports["gateway"] = free_port(exclude=(ports["redis"],))
    ports["upstream"] = free_port(exclude=(ports["redis"], ports["gateway"]))
    extra = ["-e", "redis_port=%d" % ports["redis"], "-e", "gateway_port=%d" % ports["gateway"],
             "-e", "gateway_upstream_port=%d" % ports["upstream"], "-e", "redis_password=live-S3cret-pw"]

    def run(playbook, *more):
        return ansible_playbook(collection_root, playbook, *extra, *more, base_dir=base)

    deployed = run("playbooks/site.yml")
    assert deployed.returncode == 0, deployed.stdout[-3000:] + deployed.stderr[-2000:]
    try:
        yield base, ports, run
    finally:
        run("playbooks/teardown.yml", "-e", "purge=true")
        shutil.rmtree(base, ignore_errors=True)


def redis_cli(base, port, *args):
    cli = shutil.which("redis-cli")
    out = subprocess.run([cli, "-p", str(port), "-a", "live-S3cret-pw", "--no-auth-warning", *args],
                         capture_output=True, text=True, check=True, timeout=30)
    return out.stdout.strip()


def tree_state(*roots):
    """{path: sha256} of every regular file under the roots."""
    out = {}
    for root in roots:
        for folder, _dirs, files in os.walk(root):
            for name in files:
                path = os.path.join(folder, name)
                if os.path.isfile(path) and not os.path.islink(path):
                    with open(path, "rb") as handle:
                        out[path] = hashlib.sha256(handle.read()).hexdigest()
    return out


def test_restore_check_predicts_every_step_and_changes_nothing(stack):
    base, ports, run = stack
    redis_cli(base, ports["redis"], "SET", "live:before-backup", "1")
    backup = run("playbooks/backup.yml", "-e", "backup_name=live-point")
    assert backup.returncode == 0, backup.stdout[-3000:]
    redis_cli(base, ports["redis"], "SET", "live:after-backup", "1")
    redis_cli(base, ports["redis"], "SAVE")  # the dump now differs from the backup: step 3 would replace it
    run_id = redis_cli(base, ports["redis"], "INFO", "server").split("run_id:")[1].split()[0]
    data_dir = os.path.join(base, "redis")
    files_before = tree_state(os.path.join(base, "backup"), data_dir)

    result = run("playbooks/restore.yml", "--check", "-e", "restore_backup=live-point")
    out = result.stdout
    assert result.returncode == 0, out[-4000:] + result.stderr[-2000:]
    for step in ("1. Stop the gateway", "2. Stop Redis", "3. Restore the backup", "4. Start Redis",
                 "5. Verify data (check mode)", "6. Start the gateway", "7. Verify operation (check mode)"):
        assert "TASK [" in out and step in out, step
    assert "looks running" not in out
    report = [line for line in out.splitlines() if "Would restore live-point" in line]
    assert report and "the dump would be replaced" in report[0], out[-3000:]
    assert "keys to load" in report[0], report[0]
    # nothing changed: the same Redis process with both keys, the same files
    assert redis_cli(base, ports["redis"], "INFO", "server").split("run_id:")[1].split()[0] == run_id
    assert redis_cli(base, ports["redis"], "EXISTS", "live:before-backup", "live:after-backup") == "2"
    assert tree_state(os.path.join(base, "backup"), data_dir) == files_before


def test_missing_backup_names_the_latest_verified(stack):
    _base, _ports, run = stack
    result = run("playbooks/restore.yml", "-e", "restore_backup=dump-19990101")
    assert result.returncode != 0
    assert "latest verified there: live-point" in result.stdout, result.stdout[-3000:]
    assert "TASK [2. Stop Redis" not in result.stdout


def test_broken_manifest_is_named_in_one_line(stack):
    base, _ports, run = stack
    os.makedirs(os.path.join(base, "backup"), exist_ok=True)  # also when this test runs alone
    path = os.path.join(base, "backup", "broken-point.manifest.json")
    with open(path, "w") as handle:
        handle.write('{"name": "broken-point", "file": "\x01')
    try:
        result = run("playbooks/restore.yml", "-e", "restore_backup=broken-point")
    finally:
        os.unlink(path)
    assert result.returncode != 0
    lines = [line for line in result.stdout.splitlines() if '"msg":' in line and "Manifest" in line]
    assert len(lines) == 1, result.stdout[-3000:]
    message = json.loads(lines[0].split("=> ", 1)[1])["msg"]  # fatal: [localhost]: FAILED! => {...}
    assert message.startswith("Manifest %s is not a valid apigw.ops backup manifest (not JSON" % path), message
    assert "nothing was stopped" in message
