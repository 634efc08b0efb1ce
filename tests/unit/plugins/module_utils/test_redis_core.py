# Copyright: apigw.ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Connection layer, keyspace and scan/delete engine against real redis-server processes."""

from __future__ import annotations

import pytest

from ansible_collections.apigw.ops.plugins.module_utils import key_scan
from ansible_collections.apigw.ops.plugins.module_utils.keyspace import Keyspace, KeyspaceError, glob_escape
from ansible_collections.apigw.ops.tests.unit.plugins.module_utils.connection_params import closed_port, params
from ansible_collections.apigw.ops.plugins.module_utils.redis_connection import (
    RedisOpsError,
    open_target,
    to_wire,
)


# --- connection layer -------------------------------------------------------


def test_connect_standalone_decodes_replies(redis_standalone):
    target = open_target(params(**redis_standalone.connection()))
    target.client.set("k", b"\xff\xfebinary")
    value = target.client.get("k")
    assert isinstance(value, str)
    target.client.set("k2", to_wire(value))  # round-trips bytes that are not UTF-8
    assert redis_standalone.primary.cli("STRLEN", "k2").strip() == "8"


def test_connect_password_acl_tls(redis_password, redis_acl, redis_tls):
    for topo in (redis_password, redis_acl, redis_tls):
        target = open_target(params(**topo.connection()))
        assert target.client.ping() is True


def test_connect_by_url(redis_acl, redis_tls):
    assert open_target(params(url=redis_acl.primary.url())).client.ping()
    tls = redis_tls.connection()
    target = open_target(params(url=redis_tls.primary.url(), tls=True, ca_path=tls["ca_path"],
                                client_cert=tls["client_cert"], client_key=tls["client_key"]))
    assert target.client.ping()


def test_unreachable_is_one_line():
    with pytest.raises(RedisOpsError) as err:
        open_target(params(host="127.0.0.1", port=closed_port()))
    message = str(err.value)
    assert message.startswith("Cannot connect to Redis at 127.0.0.1:")
    assert "\n" not in message


def test_wrong_password(redis_password, redis_acl):
    with pytest.raises(RedisOpsError, match="^Authentication to Redis at .* failed"):
        open_target(params(host="127.0.0.1", port=redis_password.primary.port, password="wrong"))
    with pytest.raises(RedisOpsError, match="requires a password"):
        open_target(params(host="127.0.0.1", port=redis_password.primary.port))
    with pytest.raises(RedisOpsError, match="^Authentication to Redis"):
        open_target(params(host="127.0.0.1", port=redis_acl.primary.port, redis_username="apigw-ops", password="nope"))


def test_tls_mismatch(redis_tls):
    conn = redis_tls.connection()
    # plain TCP against a TLS port
    with pytest.raises(RedisOpsError) as err:
        open_target(params(host="127.0.0.1", port=conn["port"]))
    assert "\n" not in str(err.value)
    # TLS without the CA that signed the server certificate
    with pytest.raises(RedisOpsError, match="^TLS to Redis at"):
        open_target(params(host="127.0.0.1", port=conn["port"], tls=True))


def test_tls_against_plain_server(redis_standalone):
    with pytest.raises(RedisOpsError) as err:
        open_target(params(host="127.0.0.1", port=redis_standalone.primary.port, tls=True))
    assert "\n" not in str(err.value)


def test_cluster_without_mode_says_so(redis_cluster):
    target = open_target(params(**{k: v for k, v in redis_cluster.connection().items() if k != "mode"}))
    with pytest.raises(RedisOpsError, match="set mode=cluster"):
        from ansible_collections.apigw.ops.plugins.module_utils.redis_connection import translate_errors
        with translate_errors(target.description):
            for number in range(50):
                target.client.set("key-%d" % number, 1)


def test_sentinel_needs_hosts():
    with pytest.raises(RedisOpsError, match="sentinel_hosts"):
        open_target(params(mode="sentinel"))


# --- keyspace -----------------------------------------------------------------

def test_glob_escape_and_patterns():
    ks = Keyspace()
    assert glob_escape("al*ce?[x]\\") == "al\\*ce\\?\\[x\\]\\\\"
    assert ks.pattern("lockout", username="al*ce") == "lockout:al\\*ce:*"
    assert ks.pattern("lockout") == "lockout:*:*"
    assert ks.key("lockout", username="alice", ip="10.0.0.1") == "lockout:alice:10.0.0.1"
    assert ks.parse("lockout", "lockout:alice:2001:db8::1") == {"username": "alice", "ip": "2001:db8::1"}
    assert ks.parse("ratelimit_global", "ratelimit:user:u1") is None
    assert ks.ratelimit_scopes() == ["auth", "global", "user"]


def test_keyspace_override_and_errors():
    ks = Keyspace({"ratelimit_api": "rl:api:{ip}", "lockout": "lo:{username}"})
    assert "api" in ks.ratelimit_scopes()
    assert ks.pattern("lockout", username="bob") == "lo:bob"
    with pytest.raises(KeyspaceError, match="needs a value for ip"):
        ks.key("ratelimit_api")
    with pytest.raises(KeyspaceError, match="Unknown keyspace entry"):
        ks.template("nope")
    with pytest.raises(KeyspaceError, match="non-empty"):
        Keyspace({"lockout": ""})


def test_glob_safety_against_real_redis(redis_standalone):
    server = redis_standalone.primary
    for key in ("lockout:alice:10.0.0.1", "lockout:al*ce:10.0.0.1", "lockout:al?ce:10.0.0.2"):
        server.cli("SET", key, "1")
    target = open_target(params(**redis_standalone.connection()))
    ks = Keyspace()
    found = key_scan.scan_keys(target, ks.pattern("lockout", username="al*ce"))
    assert list(found.keys) == ["lockout:al*ce:10.0.0.1"]
    found = key_scan.scan_keys(target, ks.pattern("lockout", username="*"))
    assert list(found.keys) == []


# --- scan/delete engine -----------------------------------------------------------

def _fill(server, count, prefix="ratelimit:global:10.0."):
    script = "for i=1,%d do redis.call('SET', ARGV[1] .. i, i) end return 1" % count
    server.cli("EVAL", script, "0", prefix)


def test_scan_then_unlink_standalone(redis_standalone):
    server = redis_standalone.primary
    _fill(server, 5000)
    _fill(server, 300, prefix="lockout:bob:")
    target = open_target(params(**redis_standalone.connection()))
    plan = key_scan.scan_keys(target, "ratelimit:*", count=500, sample_size=5)
    assert plan.matched == 5000 and plan.scanned == 5300 and not plan.truncated
    assert len(plan.sample()) == 5
    assert server.cli("DBSIZE").strip() == "5300"  # the scan wrote nothing
    deleted = key_scan.unlink_keys(target, plan, batch_size=333)
    assert deleted == 5000
    assert server.cli("DBSIZE").strip() == "300"
    again = key_scan.scan_keys(target, "ratelimit:*")
    assert again.matched == 0 and key_scan.unlink_keys(target, again) == 0


def test_limit_truncates_without_full_scan(redis_standalone):
    _fill(redis_standalone.primary, 2000)
    target = open_target(params(**redis_standalone.connection()))
    plan = key_scan.scan_keys(target, "ratelimit:*", count=100, limit=150)
    assert plan.truncated and plan.matched > 150


def test_cluster_scans_every_primary_and_unlinks_without_crossslot(redis_cluster):
    target = open_target(params(**redis_cluster.connection()))
    pipe = target.client.pipeline()
    for number in range(3000):
        pipe.set("ratelimit:user:u%d" % number, number)
    pipe.set("{tag}ratelimit:a", 1)
    pipe.set("other:1", 1)
    pipe.execute()
    per_node = [int(s.cli("DBSIZE").strip()) for s in redis_cluster.servers]
    assert all(n > 0 for n in per_node)
    plan = key_scan.scan_keys(target, "ratelimit:*")
    assert plan.matched == 3000 and plan.scanned == 3002
    assert len(plan.by_node) == 3
    assert key_scan.unlink_keys(target, plan, batch_size=50) == 3000
    assert sum(int(s.cli("DBSIZE").strip()) for s in redis_cluster.servers) == 2


def test_exact_keys_on_cluster(redis_cluster):
    target = open_target(params(**redis_cluster.connection()))
    keys = ["token:blacklist:j%d" % n for n in range(20)]
    for key in keys[:10]:
        target.client.set(key, "1")
    plan = key_scan.scan_for_exact_keys(target, keys)
    assert plan.matched == 10
    assert key_scan.unlink_keys(target, plan) == 10
    assert key_scan.existing_keys(target, keys) == []


def test_cluster_node_down_is_refused():
    from ansible_collections.apigw.ops.tests.harness import redis_servers
    nodes = redis_servers.start_cluster()
    try:
        nodes[1].kill()
        conn = nodes[0].connection()
        conn["mode"] = "cluster"
        with pytest.raises(RedisOpsError) as err:
            open_target(params(**conn))
        assert "\n" not in str(err.value)
        assert "nothing was changed" in str(err.value) or "Cannot connect" in str(err.value)
    finally:
        for node in nodes:
            node.stop()


def test_empty_and_match_all_patterns_refused(redis_standalone):
    redis_standalone.primary.cli("SET", "ratelimit:global:10.0.0.1", "1")
    target = open_target(params(**redis_standalone.connection()))
    with pytest.raises(RedisOpsError, match="empty pattern"):
        key_scan.scan_keys(target, "")
    for pattern in ("*", "**"):
        with pytest.raises(RedisOpsError, match="matches every key"):
            key_scan.scan_keys(target, pattern)
    assert key_scan.scan_keys(target, "*", allow_match_all=True).matched == 1
    assert redis_standalone.primary.cli("DBSIZE").strip() == "1"


def test_redis_dies_mid_scan_is_one_line(redis_fresh):
    target = open_target(params(**redis_fresh.connection()))
    redis_fresh.primary.kill()
    with pytest.raises(RedisOpsError) as err:
        key_scan.scan_keys(target, "ratelimit:*")
    assert str(err.value).startswith("Cannot connect to Redis")


def test_unlink_window_and_clean_connection(redis_standalone):
    """More batches than MAX_IN_FLIGHT: every reply is read, and the pooled connection is reusable."""
    server = redis_standalone.primary
    _fill(server, key_scan.MAX_IN_FLIGHT * 3, prefix="ratelimit:window:")
    target = open_target(params(**redis_standalone.connection()))
    plan = key_scan.scan_keys(target, "ratelimit:window:*", raw=True)
    assert key_scan.unlink_keys(target, plan, batch_size=1) == key_scan.MAX_IN_FLIGHT * 3
    assert target.client.ping() is True
    assert not target.client.connection_pool._in_use_connections  # pylint: disable=protected-access
    assert key_scan.scan_keys(target, "ratelimit:window:*").matched == 0


def test_non_utf8_keys_round_trip(redis_standalone):
    target = open_target(params(**redis_standalone.connection()))
    raw_key = b"ratelimit:user:\xff\xfe-" + "é".encode("utf-8")
    target.client.set(raw_key, "1")
    decoded = key_scan.scan_keys(target, "ratelimit:user:\xff*".encode("latin-1").decode("utf-8", "surrogateescape"))
    assert decoded.matched == 1 and to_wire(next(decoded.keys)) == raw_key
    assert key_scan.unlink_keys(target, decoded) == 1
    assert target.client.exists(raw_key) == 0


def test_unlink_refused_by_acl_is_one_line_and_changes_nothing(redis_standalone):
    server = redis_standalone.primary
    server.cli("ACL", "SETUSER", "no-unlink", "on", ">no-unlink-pw", "~*", "+@all", "-unlink")
    try:
        _fill(server, 50, prefix="ratelimit:acl:")
        conn = dict(redis_standalone.connection(), redis_username="no-unlink", password="no-unlink-pw")
        target = open_target(params(**conn))
        plan = key_scan.scan_keys(target, "ratelimit:acl:*")
        assert plan.matched == 50
        with pytest.raises(RedisOpsError) as err:
            key_scan.unlink_keys(target, plan, batch_size=10)
        assert "\n" not in str(err.value) and "unlink" in str(err.value).lower()
        assert key_scan.scan_keys(target, "ratelimit:acl:*").matched == 50  # nothing deleted, connection usable
    finally:
        server.cli("ACL", "DELUSER", "no-unlink")
        server.cli("EVAL", "for _, k in ipairs(redis.call('KEYS', 'ratelimit:acl:*')) do redis.call('DEL', k) end", "0")
