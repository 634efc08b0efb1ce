# Copyright: apigw.ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The connection layer in mode=sentinel, against a real primary, its replica and 3 sentinels."""

from __future__ import annotations

import json
from contextlib import contextmanager

import pytest

from ansible.module_utils.testing import patch_module_args

from ansible_collections.apigw.ops.tests.unit.plugins.module_utils.connection_params import closed_port, params
from ansible_collections.apigw.ops.plugins.module_utils.redis_connection import (
    RedisOpsError,
    open_target,
)
from ansible_collections.apigw.ops.plugins.modules import gateway_lockout, gateway_token
from ansible_collections.apigw.ops.tests.harness import redis_servers


def run(capsys, module, check_mode=False, **args):
    if check_mode:
        args["_ansible_check_mode"] = True
    args["_ansible_diff"] = True
    with patch_module_args(args), pytest.raises(SystemExit):
        module.main()
    return json.loads(capsys.readouterr().out)


def four_ways(capsys, module, **args):
    results = [run(capsys, module, check_mode=check, **args) for check in (True, False, True, False)]
    assert results[0]["changed"] and results[1]["changed"], results[:2]
    assert not results[2]["changed"] and not results[3]["changed"], results[2:]
    return results


def one_line_error(**overrides):
    with pytest.raises(RedisOpsError) as err:
        open_target(params(**overrides))
    message = str(err.value)
    assert "\n" not in message and len(message) < 400, message
    return message


@contextmanager
def sentinel_topology(**kwargs):
    """A sentinel topology of the test's own (for variants, and for tests that change it)."""
    topo = redis_servers.start_sentinel_topology(**kwargs)
    try:
        yield topo
    finally:
        topo.stop()


# --- connecting ---------------------------------------------------------------

def test_reads_and_writes_reach_the_primary(redis_sentinel):
    conn = redis_sentinel.connection()
    assert conn["mode"] == "sentinel" and conn["sentinel_master"] == "apigw" and len(conn["sentinel_hosts"]) == 3
    target = open_target(params(**conn))
    primary, replica = redis_sentinel.servers
    assert target.mode == "sentinel" and target.primaries() == [target.client]
    assert target.node_name(target.client) == "127.0.0.1:%d" % primary.port
    assert target.description.startswith("sentinel master apigw via 127.0.0.1:")
    target.client.set("lockout:alice:10.0.0.1", b"\xff1", ex=900)
    assert target.client.get("lockout:alice:10.0.0.1") == "\udcff1"
    assert primary.cli("STRLEN", "lockout:alice:10.0.0.1").strip() == "2"
    assert target.client.wait(1, 0) == 1  # the replica has it too: writes went to the primary
    assert replica.cli("EXISTS", "lockout:alice:10.0.0.1").strip() == "1"


def test_one_sentinel_answering_is_enough(redis_sentinel):
    conn = redis_sentinel.connection()
    hosts = ["127.0.0.1:%d" % closed_port(), "127.0.0.1:%d" % closed_port()] + conn["sentinel_hosts"][-1:]
    target = open_target(params(**dict(conn, sentinel_hosts=hosts)))
    assert target.client.ping() is True


# --- modules through sentinel ---------------------------------------------------

def test_gateway_lockout_four_ways(capsys, redis_sentinel):
    primary = redis_sentinel.primary
    for key in ("lockout:al*ce:10.0.0.1", "loginfail:al*ce:10.0.0.1", "lockout:alice:10.0.0.1"):
        primary.cli("SET", key, 3, "EX", 900)
    conn = redis_sentinel.connection()
    results = four_ways(capsys, gateway_lockout, username="al*ce", **conn)
    assert results[1]["lockouts"] == ["lockout:al*ce:10.0.0.1"] and results[1]["verified"] is True
    assert primary.cli("--scan").split() == ["lockout:alice:10.0.0.1"]

    results = four_ways(capsys, gateway_lockout, username="carol", ip="2001:db8::1", state="present", ttl=600, **conn)
    assert results[1]["key"] == "lockout:carol:2001:db8::1" and results[1]["verified"] is True
    assert 0 < int(primary.cli("TTL", "lockout:carol:2001:db8::1")) <= 600


def test_gateway_token_four_ways(capsys, redis_sentinel):
    results = four_ways(capsys, gateway_token, jti="sentinel-jti-1234", refresh_lifetime=1000,
                        **redis_sentinel.connection())
    assert results[1]["verified"]
    assert 900 < int(redis_sentinel.primary.cli("TTL", "token:blacklist:sentinel-jti-1234")) <= 1000


# --- failures: one line, nothing changed -----------------------------------------

def test_wrong_master_name(capsys, redis_sentinel):
    conn = dict(redis_sentinel.connection(), sentinel_master="mymaster")
    message = one_line_error(**conn)
    assert message == ("The sentinels at %s monitor no master named 'mymaster' (they monitor: apigw). "
                       "Check sentinel_master." % ",".join(conn["sentinel_hosts"]))
    redis_sentinel.primary.cli("SET", "lockout:bob:10.0.0.1", 1)
    result = run(capsys, gateway_lockout, username="bob", **conn)
    assert result["failed"] and result["msg"] == message
    assert redis_sentinel.primary.cli("EXISTS", "lockout:bob:10.0.0.1").strip() == "1"


def test_unreachable_sentinels(capsys):
    hosts = ["127.0.0.1:%d" % closed_port(), "127.0.0.1:%d" % closed_port()]
    message = one_line_error(mode="sentinel", sentinel_hosts=hosts, sentinel_master="apigw")
    assert message.startswith("No sentinel of sentinel_hosts answered (%s, %s: Connection refused). " % tuple(hosts))
    assert message.endswith("Check sentinel_hosts, that the sentinels run, and tls; nothing was changed.")
    result = run(capsys, gateway_lockout, username="bob", mode="sentinel", sentinel_hosts=hosts,
                 sentinel_master="apigw", socket_timeout=1.0)
    assert result["failed"] and result["msg"] == message


def test_data_node_given_as_sentinel(redis_sentinel):
    primary = redis_sentinel.primary
    message = one_line_error(**dict(redis_sentinel.connection(), sentinel_hosts=["127.0.0.1:%d" % primary.port]))
    assert message.startswith("127.0.0.1:%d is not a sentinel" % primary.port)


def test_wrong_password_for_the_data_nodes(redis_sentinel):
    message = one_line_error(**dict(redis_sentinel.connection(), password="not-the-password"))
    assert message.startswith("Authentication to Redis at 127.0.0.1:%d failed" % redis_sentinel.primary.port)
    message = one_line_error(**dict(redis_sentinel.connection(), password=None))
    assert message.startswith("Redis at 127.0.0.1:%d requires a password" % redis_sentinel.primary.port)


# --- other sentinel set-ups -------------------------------------------------------

def test_sentinels_that_ask_the_password_too():
    with sentinel_topology(sentinel_password=redis_servers.PASSWORD) as topo:
        conn = topo.connection()
        assert open_target(params(**conn)).client.set("k", 1)
        message = one_line_error(**dict(conn, password=None))
        assert message.startswith("Redis at sentinel %s requires a password (NOAUTH)" % conn["sentinel_hosts"][0])


def test_acl_user_that_only_the_data_nodes_know():
    """Sentinels without that user refuse its credentials; they are asked without them."""
    with sentinel_topology(password=None, acl_user=(redis_servers.ACL_USER, redis_servers.ACL_PASSWORD)) as topo:
        conn = topo.connection()
        assert conn["redis_username"] == redis_servers.ACL_USER
        target = open_target(params(**conn))
        assert target.client.acl_whoami() == redis_servers.ACL_USER
        message = one_line_error(**dict(conn, password="wrong"))
        assert message.startswith("Authentication to Redis at 127.0.0.1:%d failed" % topo.primary.port)


def test_sentinel_over_tls():
    with sentinel_topology(tls=True) as topo:
        conn = topo.connection()
        assert conn["tls"] and conn["ca_path"]
        target = open_target(params(**conn))
        target.client.set("k", "v")
        assert topo.primary.cli("GET", "k").strip() == "v"
        message = one_line_error(**dict(conn, ca_path=None))
        assert message.startswith("TLS to Redis at sentinel %s failed" % conn["sentinel_hosts"][0])
        message = one_line_error(**dict(conn, tls=False))
        assert "it probably expects TLS. Set tls=true" in message, message


def test_failover_is_followed():
    with sentinel_topology() as topo:
        new = topo.servers[1]  # the replica
        conn = topo.connection()
        open_target(params(**conn)).client.set("before", 1)
        assert open_target(params(**conn)).client.wait(1, 0) == 1
        topo.sentinels[0].cli("SENTINEL", "FAILOVER", "apigw")
        redis_servers.wait_failover(topo.sentinels, new)
        target = open_target(params(**conn))
        assert target.node_name(target.client) == "127.0.0.1:%d" % new.port
        target.client.set("after", 1)
        assert new.cli("MGET", "before", "after").split() == ["1", "1"]
