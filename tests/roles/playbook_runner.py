"""Running the collection's playbooks from tests: ansible-playbook against a collection tree made by
scripts/collection-tree.sh (the `collection_root` fixture of conftest.py), with a throw-away base directory."""

import os
import subprocess
import sys

from tests.harness.redis_servers import free_port

BIN = os.path.dirname(sys.executable)

__all__ = ["ansible_playbook", "assert_refused", "free_port", "stack_ports"]


def stack_ports():
    """Extra vars that put Redis, the gateway and the upstream on free ports (nothing real listens there)."""
    return ["-e", f"redis_port={free_port()}", "-e", f"gateway_port={free_port()}",
            "-e", f"gateway_upstream_port={free_port()}"]


def ansible_playbook(collection_root, playbook, *extra, base_dir, path_prepend=None, inventory=None):
    """Run ``playbook`` (relative to the collection tree, or absolute) with the local inventory, or ``inventory``."""
    root, path = collection_root
    env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=root, ANSIBLE_NOCOLOR="1", ANSIBLE_FORCE_COLOR="0",
               APIGW_BASE_DIR=str(base_dir), ANSIBLE_CONFIG=os.path.join(path, "ansible.cfg"))
    if path_prepend:
        env["PATH"] = path_prepend + os.pathsep + env["PATH"]
    args = [os.path.join(BIN, "ansible-playbook"), "-i", inventory or os.path.join(path, "inventories", "local"),
            playbook if os.path.isabs(playbook) else os.path.join(path, playbook), *extra]
    return subprocess.run(args, env=env, capture_output=True, text=True, cwd=path, timeout=600, check=False)


def assert_refused(result, message, base_dir):
    """The playbook failed with ``message`` and created nothing under ``base_dir``."""
    output = result.stdout + result.stderr
    assert result.returncode != 0, output
    assert message in output, output
    assert not os.path.exists(base_dir), f"{base_dir} was created: something was half-deployed"
