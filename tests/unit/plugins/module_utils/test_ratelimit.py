# Copyright: apigw.ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Rate-limit plans against a real redis-server: one SCAN pass for several scopes, exact check mode."""

from __future__ import annotations

import pytest

from ansible_collections.apigw.ops.plugins.module_utils import key_scan
from ansible_collections.apigw.ops.plugins.module_utils.gateway_keys import covering_scan
from ansible_collections.apigw.ops.plugins.module_utils.keyspace import Keyspace
from ansible_collections.apigw.ops.plugins.module_utils.ratelimit import RatelimitRequest
from ansible_collections.apigw.ops.plugins.module_utils.redis_connection import (
    RedisOpsError,
    open_target,
    redis_connection_argument_spec,
)


def params(conn, **overrides):
    values = {name: opt.get("default") for name, opt in redis_connection_argument_spec().items()}
    values.update({name: opt.get("default") for name, opt in key_scan.scan_engine_argument_spec().items()})
    values.update(conn)
    values.update(scope="all", subject=None, state="absent", value=None, ttl=None, confirm_all=False)
    values.update(overrides)
    return values


def test_covering_scan_is_one_pattern_with_exact_filter():
    ks = Keyspace()
    entries = ["ratelimit_" + s for s in ks.ratelimit_scopes()]
    patterns, accept = covering_scan(entries, ks)
    assert patterns == ["ratelimit:*"]
    assert accept("ratelimit:global:10.0.0.1") and accept("ratelimit:user:u")
    assert not accept("ratelimit:other:x") and not accept("ratelimit:global:")
    # templates without a common prefix: one pattern each, no filter
    custom = Keyspace({"ratelimit_api": "api-rl:{ip}"})
    patterns, accept = covering_scan(["ratelimit_api", "ratelimit_global"], custom)
    assert patterns == ["api-rl:*", "ratelimit:global:*"] and accept is None
    # a template with a glob character in its text stays literal
    odd = Keyspace({"ratelimit_global": "rl[g]:{ip}", "ratelimit_user": "rl[u]:{user_id}",
                    "ratelimit_auth": "rl*a:{ip}"})
    patterns, accept = covering_scan(["ratelimit_global", "ratelimit_user", "ratelimit_auth"], odd)
    assert patterns == ["rl*"] and accept("rl[g]:1.2.3.4") and not accept("rlg:1.2.3.4")


@pytest.mark.parametrize("kind", ["standalone", "cluster"])
def test_plan_is_read_only_and_exact(kind, redis_standalone, redis_cluster):
    topo = redis_standalone if kind == "standalone" else redis_cluster
    target = open_target(params(topo.connection()))
    pipe = target.client.pipeline(transaction=False)
    for number in range(2000):
        pipe.set("ratelimit:global:10.0.%d.%d" % (number // 256, number % 256), 1, ex=600)
        pipe.set("ratelimit:user:u%d" % number, 1, ex=600)
    pipe.set("ratelimit:other:x", 1)
    pipe.set("lockout:a:10.0.0.1", 1)
    pipe.execute()

    def count():
        return sum(int(s.cli("DBSIZE").strip()) for s in topo.servers)

    before = count()
    request = RatelimitRequest(Keyspace(), params(topo.connection(), confirm_all=True, max_keys=0))
    plan = request.plan(target)
    assert count() == before == 4002  # planning wrote nothing
    assert plan.changed and plan.found.matched == 4000 and plan.found.scan_calls <= 3 * (4002 // 1000 + 3)
    plan.apply(target)
    assert plan.deleted == 4000 and count() == 2
    assert not request.plan(target).changed


def test_cap_and_confirmation(redis_standalone):
    conn = redis_standalone.connection()
    with pytest.raises(RedisOpsError, match="confirm_all=true"):
        RatelimitRequest(Keyspace(), params(conn))
    with pytest.raises(RedisOpsError, match="Unknown scope 'x'"):
        RatelimitRequest(Keyspace(), params(conn, scope="x"))
    with pytest.raises(RedisOpsError, match="fits no scope"):
        RatelimitRequest(Keyspace({"ratelimit_user": "ratelimit:user:{ip}"}), params(conn, subject=["bob"]))


LOAD_3000 = "for i=1,3000 do redis.call('SET', 'ratelimit:global:10.1.' .. (i % 200) .. '.' .. i, 1) end"


def test_redis_dies_between_plan_and_apply_then_rerun_completes(redis_fresh):
    server = redis_fresh.primary
    server.cli("EVAL", LOAD_3000, "0")
    conn = redis_fresh.connection()
    target = open_target(params(conn, socket_timeout=2.0))
    request = RatelimitRequest(Keyspace(), params(conn, confirm_all=True, max_keys=0))
    plan = request.plan(target)
    assert plan.found.matched == 3000
    server.kill()
    with pytest.raises(RedisOpsError) as err:
        plan.apply(target)
    assert str(err.value).startswith("Cannot connect to Redis") and "\n" not in str(err.value)
    server.start()
    server.cli("EVAL", LOAD_3000, "0")
    target = open_target(params(conn))
    rerun = request.plan(target)
    rerun.apply(target)
    assert rerun.deleted == 3000 and server.cli("DBSIZE").strip() == "0"
