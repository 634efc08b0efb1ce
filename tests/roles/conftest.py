"""Fixtures of the playbook tests: one collection tree per test session, a base directory that must stay absent."""

import os
import shutil
import subprocess
import tempfile

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


@pytest.fixture(scope="session")
def collection_root(tmp_path_factory):
    """(directory holding ansible_collections, path of the apigw/ops tree) of this checkout."""
    root = str(tmp_path_factory.mktemp("collections"))
    env = dict(os.environ, APIGW_COLLECTION_ROOT=root)
    path = subprocess.run([os.path.join(REPO, "scripts", "collection-tree.sh")], env=env, check=True,
                          capture_output=True, text=True).stdout.strip()
    return root, path


@pytest.fixture
def base_dir():
    path = tempfile.mkdtemp(prefix="apigw-bad-")
    os.rmdir(path)  # a refusing playbook must not create it
    yield path
    shutil.rmtree(path, ignore_errors=True)
