# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Messages an on-call engineer can act on, each produced by a real redis-server in that state:
LOADING, a connection lost in the middle of a large delete, and TLS mismatches in both directions."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type  # pylint: disable=invalid-name

import re
import shutil
import time

import pytest

from ansible_collections.apigw.ops.plugins.module_utils import key_scan
from ansible_collections.apigw.ops.plugins.module_utils.key_scan import scan_engine_argument_spec
from ansible_collections.apigw.ops.plugins.module_utils.keyspace import Keyspace
from ansible_collections.apigw.ops.plugins.module_utils.ratelimit import RatelimitRequest
from ansible_collections.apigw.ops.plugins.module_utils.redis_connection import RedisOpsError, open_target
from ansible_collections.apigw.ops.tests.harness import redis_servers
from ansible_collections.apigw.ops.tests.unit.plugins.module_utils.connection_params import params

LOADING_KEYS = 20000


class LoadingServer(redis_servers.RedisServer):
    """A server that loads its RDB slowly (``key-load-delay``: microseconds per key, a debug setting of
    Redis 7) and answers clients while it loads: it stays LOADING for LOADING_KEYS ms at least."""

    def wait_ready(self, timeout=15.0):
        deadline = time.monotonic() + timeout
        last = None
        while time.monotonic() < deadline:
            try:
                last = redis_servers._raw_command(self.host, self.port, "PING")
                if last.startswith("-LOADING"):
                    return
            except OSError as exc:
                last = str(exc)
            time.sleep(0.05)
        raise redis_servers.HarnessError("redis-server on port %d never reported LOADING: %s" % (self.port, last))


def test_loading_says_so_and_that_retrying_is_safe():
    import redis

    server = redis_servers.start_standalone()
    loading = None
    try:
        client = redis.Redis(host=server.host, port=server.port)
        for start in range(0, LOADING_KEYS, 1000):
            client.mset(dict(("key:%d" % i, "x" * 100) for i in range(start, start + 1000)))
        client.save()
        client.close()
        server.stop(remove=False)
        loading = LoadingServer(port=server.port, extra_config={
            "key-load-delay": 1000, "loading-process-events-interval-bytes": 1024})
        shutil.rmtree(loading.dir)  # its own (empty but for the owner file): it serves server's dump.rdb
        loading.dir = server.dir  # the same dump.rdb
        loading.start()
        with pytest.raises(RedisOpsError) as failure:
            open_target(params(host=loading.host, port=loading.port))
        message = str(failure.value)
        assert "LOADING" in message and "re-running is safe" in message, message
        assert "Cannot connect" not in message and "running" not in message.replace("re-running", ""), message
        assert redis_servers._raw_command(loading.host, loading.port, "PING").startswith("-LOADING")
    finally:
        if loading is not None:
            loading.stop()
        server.stop()


def _connections_received(server):
    """Connections the server accepted so far (this INFO call's own connection included)."""
    stats = server.cli("INFO", "stats")
    return int(re.search(r"total_connections_received:(\d+)", stats).group(1))


def test_tls_client_against_plain_port(redis_standalone, redis_tls):
    server = redis_standalone.primary
    before = _connections_received(server)
    with pytest.raises(RedisOpsError) as failure:
        open_target(params(host=server.host, port=server.port, tls=True, ca_path=redis_tls.primary.tls["ca"],
                           socket_timeout=1.0))
    message = str(failure.value)
    assert "tls=false" in message and "plain" in message, message
    attempts = _connections_received(server) - before - 1
    if "Timeout" in message:
        # the plain server waits for a line the TLS hello never sends: one timeout, not retried
        assert attempts == 1, message
    else:  # the hello happened to contain a newline: the server answered, the TLS layer refused the answer
        assert attempts <= 2, message


def test_plain_client_against_tls_port(redis_tls):
    server = redis_tls.primary
    with pytest.raises(RedisOpsError) as failure:
        open_target(params(host=server.host, port=server.port))
    message = str(failure.value)
    assert "expects TLS" in message and "tls=true" in message, message


def test_connection_lost_mid_delete_says_how_many_and_to_rerun(redis_fresh, monkeypatch):
    import redis

    server = redis_fresh.primary
    client = redis.Redis(host=server.host, port=server.port)
    total = 3000
    client.mset(dict(("ratelimit:global:10.%d.%d.1" % (i // 250, i % 250), 1) for i in range(total)))
    client.set("ratelimit:user:keep-me", 1)
    batches = key_scan._batches
    cut_after = 150  # batches written before the connection is killed (MAX_IN_FLIGHT = 64 behind)

    def batches_then_kill(target, keys, batch_size):
        for index, batch in enumerate(batches(target, keys, batch_size)):
            if index == cut_after:
                client.client_kill_filter(_type="normal", skipme=True)
            yield batch
    monkeypatch.setattr(key_scan, "_batches", batches_then_kill)

    args = dict((name, spec.get("default")) for name, spec in scan_engine_argument_spec().items())
    args.update(scope="global", state="absent", batch_size=10)
    request = RatelimitRequest(Keyspace(), args)
    target = open_target(params(host=server.host, port=server.port))
    plan = request.plan(target)
    assert plan.found.matched == total
    with pytest.raises(RedisOpsError) as failure:
        plan.apply(target)
    message = str(failure.value)
    assert "Re-running the task deletes what is left" in message and "tls" not in message.lower(), message
    confirmed = int(re.search(r": (\d+) of the %d planned keys were confirmed deleted" % total, message).group(1))
    remaining = len(list(client.scan_iter("ratelimit:global:*", count=1000)))
    assert 0 < confirmed <= total - remaining < total, (message, remaining)

    monkeypatch.setattr(key_scan, "_batches", batches)
    target = open_target(params(host=server.host, port=server.port))
    again = request.plan(target)
    assert again.found.matched == remaining
    again.apply(target)
    assert again.deleted == remaining
    assert list(client.scan_iter("ratelimit:*")) == [b"ratelimit:user:keep-me"]


def test_password_inside_url_is_masked_on_its_own(capsys):
    """no_log hides the whole url; a message that holds only the password part is masked too."""
    import json

    from ansible.module_utils.basic import AnsibleModule
    from ansible.module_utils.testing import patch_module_args

    from ansible_collections.apigw.ops.plugins.module_utils.redis_connection import (
        mask_url_secrets,
        redis_connection_argument_spec,
    )

    secret = "pw-in-url-4b1d9"
    with patch_module_args({"url": "redis://ops:%s@127.0.0.1:6379/0" % secret}), pytest.raises(SystemExit):
        module = AnsibleModule(argument_spec=redis_connection_argument_spec())
        mask_url_secrets(module)
        module.fail_json(msg="a message built from the parsed URL: %s" % secret)
    out = capsys.readouterr().out
    assert secret not in out and json.loads(out)["invocation"]["module_args"]["url"] == \
        "VALUE_SPECIFIED_IN_NO_LOG_PARAMETER", out
