# Copyright: apigw.ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Real redis-server fixtures for unit tests (no fakes): one server per topology per session."""

from __future__ import annotations

import pytest

from ansible_collections.apigw.ops.tests.harness import redis_servers


def _topology(kind):
    topo = redis_servers.start_topology(kind)
    return topo


@pytest.fixture(scope="session")
def redis_standalone_topology():
    topo = _topology("standalone")
    yield topo
    topo.stop()


@pytest.fixture
def redis_standalone(redis_standalone_topology):
    """A clean standalone server (flushed before each test)."""
    redis_standalone_topology.primary.cli("FLUSHALL")
    return redis_standalone_topology


@pytest.fixture(scope="session")
def redis_password():
    topo = _topology("password")
    yield topo
    topo.stop()


@pytest.fixture(scope="session")
def redis_acl():
    topo = _topology("acl")
    yield topo
    topo.stop()


@pytest.fixture(scope="session")
def redis_tls():
    topo = _topology("tls")
    yield topo
    topo.stop()


@pytest.fixture(scope="session")
def redis_cluster_topology():
    topo = _topology("cluster")
    yield topo
    topo.stop()


@pytest.fixture
def redis_cluster(redis_cluster_topology):
    """A clean 3-primary cluster (every primary flushed before each test)."""
    for node in redis_cluster_topology.servers:
        node.cli("FLUSHALL")
    return redis_cluster_topology


@pytest.fixture
def redis_fresh():
    """A standalone server of the test's own, for tests that stop or break it."""
    topo = _topology("standalone")
    yield topo
    topo.stop()


@pytest.fixture(scope="session")
def redis_sentinel_topology():
    topo = _topology("sentinel")
    yield topo
    topo.stop()


@pytest.fixture
def redis_sentinel(redis_sentinel_topology):
    """A clean primary + replica watched by 3 sentinels as master ``apigw`` (flushed before each test)."""
    redis_sentinel_topology.primary.cli("FLUSHALL")
    return redis_sentinel_topology
