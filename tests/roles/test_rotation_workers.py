"""rotate_jwt_keys.yml waits for every worker of a replica: a key is activated only once every worker publishes it,
and retired only once every worker signs with another key.

The gateway is deployed for real by the gateway role (tests/roles/playbooks/gateway_only.yml: supervisord, one
replica, 2 workers) in a throw-away base directory, against a real redis-server from the harness. One worker is
stopped (SIGSTOP) so that it can neither reload nor answer: the rotation must stop after publishing, with the new key
still "next", and the retirement must stop before unpublishing anything. Once the worker runs again, both succeed.

    python -m pytest tests/roles/test_rotation_workers.py -q
"""

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

import pytest

from tests.harness.redis_servers import start_standalone
from tests.roles.playbook_runner import ansible_playbook, free_port

OVERLAP_PAST = 604800 + 3600 + 60  # jwt_rotation_now this far ahead: the overlap of the rotated key is over


class Stack:
    def __init__(self, collection_root, redis):
        self.collection_root = collection_root
        self.base_dir = tempfile.mkdtemp(prefix="apigw-rotation-")
        self.port = free_port()
        self.vars = ["-e", f"gateway_port={self.port}", "-e", f"gateway_redis_port={redis.port}",
                     "-e", "gateway_workers=2", "-e", "gateway_upstream_enabled=false",
                     # the gateway's packages and supervisor are in this virtualenv already: nothing to download
                     "-e", f"gateway_venv_dir={sys.prefix}"]
        self.keys_dir = os.path.join(self.base_dir, "gateway", "keys")

    def play(self, playbook, *extra):
        result = ansible_playbook(self.collection_root, playbook, *self.vars, *extra, base_dir=self.base_dir)
        return result.returncode, result.stdout + result.stderr

    def keyset(self):
        with open(os.path.join(self.keys_dir, "keyset.json")) as handle:
            return json.load(handle)

    def published(self):
        with open(os.path.join(self.keys_dir, "jwks.json")) as handle:
            return [key["kid"] for key in json.load(handle)["keys"]]

    def workers(self, expected=2):
        """The worker pids of the replica: the children of the processes supervisord runs.  Read until
        ``expected`` of them are up: supervisorctl reports pid 0 for a program that is (re)starting."""
        supervisorctl = os.path.join(sys.prefix, "bin", "supervisorctl")
        conf = os.path.join(self.base_dir, "supervisor", "supervisord.conf")
        children = []
        for _attempt in range(300):
            status = subprocess.run([supervisorctl, "-c", conf, "pid", "all"], capture_output=True, text=True,
                                    check=False).stdout.split()
            children = []
            for parent in (int(pid) for pid in status if pid.isdigit() and int(pid) > 0):
                try:
                    with open(f"/proc/{parent}/task/{parent}/children") as handle:
                        children += [int(pid) for pid in handle.read().split()]
                except FileNotFoundError:  # exited since supervisorctl answered
                    pass
            if len(children) >= expected:
                break
            time.sleep(0.1)
        return children

    def stop(self):
        pidfile = os.path.join(self.base_dir, "supervisor", "supervisord.pid")
        if os.path.exists(pidfile):
            with open(pidfile) as handle:
                pid = int(handle.read().strip())
            try:
                os.kill(pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            for _attempt in range(300):  # supervisord stops the gateway first (drain), then exits
                try:
                    os.kill(pid, 0)
                except ProcessLookupError:
                    break
                time.sleep(0.1)
        shutil.rmtree(self.base_dir, ignore_errors=True)


@pytest.fixture(scope="module")
def stack(collection_root):
    redis = start_standalone()
    deployed = Stack(collection_root, redis)
    try:
        code, output = deployed.play(os.path.join(os.path.dirname(__file__), "playbooks", "gateway_only.yml"))
        assert code == 0, output[-3000:]
        yield deployed
    finally:
        deployed.stop()
        redis.stop()


@contextlib.contextmanager
def _stopped(pid):
    """The worker `pid` is stopped (SIGSTOP) inside the block and continued (SIGCONT) after it, whatever happens."""
    os.kill(pid, signal.SIGSTOP)
    try:
        yield
    finally:
        os.kill(pid, signal.SIGCONT)


def test_rotation_and_retirement_wait_for_every_worker(stack):
    workers = stack.workers()
    assert len(workers) == 2, workers
    old_active = stack.keyset()["active"]
    quick = ["-e", "jwt_rotation_confirm_timeout=5"]

    # a stopped worker cannot confirm the publication: the new key is published but never activated
    with _stopped(workers[1]):
        code, output = stack.play("playbooks/rotate_jwt_keys.yml", "-e", "jwt_rotation_id=w1", *quick)
    assert code != 0, output
    assert "2. Publish: not every gateway worker serves the key set" in output, output
    assert "1 of 2 workers confirmed" in output, output
    assert "TASK [apigw.ops.jwt_rotation : 3. Make it the signing key" not in output
    keyset = stack.keyset()
    new = next(kid for kid, entry in keyset["keys"].items() if entry["status"] == "next")
    assert keyset["active"] == old_active and new in stack.published()

    # the worker runs again (and handles the SIGHUP it was sent): the same run completes the rotation
    code, output = stack.play("playbooks/rotate_jwt_keys.yml", "-e", "jwt_rotation_id=w1")
    assert code == 0, output[-3000:]
    assert "every worker (2)" in output
    assert stack.keyset()["active"] == new and stack.published() == [new, old_active]

    # a stopped worker may still sign with the old key as far as anyone can tell: nothing is unpublished
    later = ["-e", f"jwt_rotation_now={int(time.time()) + OVERLAP_PAST}"]
    with _stopped(workers[0]):
        code, output = stack.play("playbooks/rotate_jwt_keys.yml", "-e", "jwt_rotation_phase=retire", *later, *quick)
    assert code != 0, output
    assert "5. Before retiring: not every gateway worker serves the key set" in output, output
    assert "TASK [apigw.ops.jwt_rotation : 5. Remove the old keys" not in output
    assert stack.published() == [new, old_active]

    code, output = stack.play("playbooks/rotate_jwt_keys.yml", "-e", "jwt_rotation_phase=retire", *later)
    assert code == 0, output[-3000:]
    assert stack.published() == [new] and stack.keyset()["keys"][old_active]["status"] == "retired"
    assert sorted(stack.workers()) == sorted(workers)  # reloads, never restarts
