"""Fixtures of the kubernetes runtime's tests: a collection tree, and each combination rendered twice."""

import hashlib
import os
import subprocess

import pytest

from tests.roles.playbook_runner import ansible_playbook

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

HERE = os.path.dirname(os.path.abspath(__file__))
PLAYBOOK = os.path.join(HERE, "render.yml")
EXTERNAL = ["-e", "gateway_kubernetes_redis=external", "-e", "gateway_redis_url=redis://10.20.0.5:6379/0",
            "-e", '{"gateway_kubernetes_redis_egress": [{"cidr": "10.20.0.0/24", "ports": [6379, 26379]}]}']
# Every combination the role supports: 1 and 3 replicas, HPA on and off, the StatefulSet and an external Redis.
COMBINATIONS = {
    "r1-statefulset": ["-e", "gateway_replicas=1"],
    "r3-hpa-statefulset": ["-e", "gateway_replicas=3", "-e", "gateway_kubernetes_hpa=true"],
    "r3-external": ["-e", "gateway_replicas=3", *EXTERNAL],
    "r1-hpa-external": ["-e", "gateway_replicas=1", "-e", "gateway_kubernetes_hpa=true", *EXTERNAL],
}


@pytest.fixture(scope="session")
def collection_root(tmp_path_factory):
    """(directory holding ansible_collections, path of the apigw/ops tree), as in tests/roles."""
    root = str(tmp_path_factory.mktemp("collections"))
    env = dict(os.environ, APIGW_COLLECTION_ROOT=root)
    path = subprocess.run([os.path.join(REPO, "scripts", "collection-tree.sh")], env=env, check=True,
                          capture_output=True, text=True).stdout.strip()
    return root, path


def render(collection_root, render_dir, *extra):
    return ansible_playbook(collection_root, PLAYBOOK, "-e", f"render_dir={render_dir}", *extra,
                            base_dir=render_dir, inventory="localhost,")


def tree_hash(directory):
    digest = hashlib.sha256()
    for name in sorted(os.listdir(directory)):
        with open(os.path.join(directory, name), "rb") as handle:
            digest.update(name.encode() + b"\0" + handle.read() + b"\0")
    return digest.hexdigest()


@pytest.fixture(scope="session")
def renders(collection_root, tmp_path_factory):
    """name -> (manifest directory, first run, second run): each combination rendered twice (GitOps mode)."""
    out = {}
    for name, extra in COMBINATIONS.items():
        render_dir = str(tmp_path_factory.mktemp(name))
        first = render(collection_root, render_dir, *extra)
        assert first.returncode == 0, first.stdout + first.stderr
        manifests = os.path.join(render_dir, "manifests")
        before = tree_hash(manifests)
        second = render(collection_root, render_dir, *extra)
        assert second.returncode == 0, second.stdout + second.stderr
        out[name] = {"dir": manifests, "first": first, "second": second, "hash_before": before,
                     "hash_after": tree_hash(manifests)}
    return out
