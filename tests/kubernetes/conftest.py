"""Fixtures of the kubernetes runtime's tests: a collection tree, and every combination rendered twice in GitOps
mode - one inventory host per combination, so that one ansible-playbook run renders them all."""

import hashlib
import json
import os

import pytest

# the playbook tests' collection tree, re-exported for this directory
from tests.roles.conftest import collection_root  # noqa: F401  # pylint: disable=unused-import
from tests.roles.playbook_runner import ansible_playbook

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PLAYBOOK = os.path.join(os.path.dirname(os.path.abspath(__file__)), "render.yml")
EXTERNAL = {"gateway_kubernetes_redis": "external", "gateway_redis_url": "redis://10.20.0.5:6379/0",
            "gateway_kubernetes_redis_egress": [{"cidr": "10.20.0.0/24", "ports": [6379, 26379]}]}
# Every combination the role supports: 1 and 3 replicas, HPA on and off, the StatefulSet and an external Redis.
COMBINATIONS = {
    "r1-statefulset": {"gateway_replicas": 1},
    "r3-hpa-statefulset": {"gateway_replicas": 3, "gateway_kubernetes_hpa": True},
    "r3-external": {"gateway_replicas": 3, **EXTERNAL},
    "r1-hpa-external": {"gateway_replicas": 1, "gateway_kubernetes_hpa": True, **EXTERNAL},
}


def render_hosts(collection_root, directory, hosts, *extra):  # noqa: F811  (the fixture imported above)
    """Render once per host of ``hosts`` (name -> variables); each host's output goes to directory/<name>."""
    inventory = os.path.join(directory, "inventory.json")
    with open(inventory, "w", encoding="utf-8") as handle:
        json.dump({"all": {"hosts": {
            name: {"ansible_connection": "local", "render_dir": os.path.join(directory, name), **variables}
            for name, variables in hosts.items()}}}, handle)
    return ansible_playbook(collection_root, PLAYBOOK, "-e", "render_hosts=all", *extra,
                            base_dir=directory, inventory=inventory)


def tree_hash(directory):
    digest = hashlib.sha256()
    for name in sorted(os.listdir(directory)):
        with open(os.path.join(directory, name), "rb") as handle:
            digest.update(name.encode() + b"\0" + handle.read() + b"\0")
    return digest.hexdigest()


@pytest.fixture(scope="session")
def renders(collection_root, tmp_path_factory):  # noqa: F811
    """name -> {dir, first, second, hash_before, hash_after}: every combination rendered, then rendered again."""
    directory = str(tmp_path_factory.mktemp("renders"))
    first = render_hosts(collection_root, directory, COMBINATIONS)
    assert first.returncode == 0, first.stdout + first.stderr
    before = {name: tree_hash(os.path.join(directory, name, "manifests")) for name in COMBINATIONS}
    second = render_hosts(collection_root, directory, COMBINATIONS)
    assert second.returncode == 0, second.stdout + second.stderr
    return {name: {"dir": os.path.join(directory, name, "manifests"), "first": first, "second": second,
                   "hash_before": before[name], "hash_after": tree_hash(os.path.join(directory, name, "manifests"))}
            for name in COMBINATIONS}
